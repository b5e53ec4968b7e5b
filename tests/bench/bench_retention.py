"""Decision log retention (``python -m tests.bench retention``): what a stored decision
costs on disk, how fast the purge deletes, and what it adds to Authorize while it runs.

Three parts:

1. **Bytes per decision**: ``ROWS`` decision rows as the log writes them (cache hits and
   real-time decisions with an authorization reference, alternating) into a fresh SQLite
   file through the store's own connection; (file size after a checkpoint - before) /
   rows.
2. **Purge, in process**: the same rows, stamped older than the horizon, deleted by
   :class:`csms.retention.Retention` with the default batch (500) and pause (50 ms);
   rows per second of wall time, and of the statements' own time (the store lock is
   held only for one statement: its p50/max is the longest a queued write waits).
3. **Purge beside Authorize**: ``csms serve`` (pinned to core 0) with ``PURGE_ROWS``
   expired decisions put into its store while it runs, a purge round every 5 s; open-loop
   Authorize (own cards, 2,000/s over 1,000 chargers) while the purge runs, then again
   once it has finished; p50/p99 side by side. The server's ``retention_purged`` log
   lines give its rows per second.

Figures go to the console and ``var/bench/retention.json``; the README quotes them.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from csms import datetimes
from csms.config import RetentionConfig
from csms.retention import Retention
from csms.store.authorizations import COLUMNS
from csms.store.db import Database
from tests.bench.authorize.measure import load
from tests.bench.authorize.servers import fresh_store, start_csms, store_template
from tests.bench.authorize.settings import CHARGERS, OWN_TAGS, QUICK
from tests.bench.authorize.trees import current_tree
from tests.bench.procs import CLIENT_CPU, OUT, loadavg, pin_self, raise_nofile, steal_seconds

ROWS = 200_000 // QUICK
PURGE_ROWS = 400_000 // QUICK
_INSERT = (
    f"INSERT INTO authorizations ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
)


def rows_at(at: datetime, n: int) -> list[tuple[Any, ...]]:
    """Decision rows as the log writes them: cache hits and real-time decisions."""
    stamp = datetimes.millis(at)
    out = []
    for i in range(n):
        remote = i % 2 == 1
        values = {
            "decided_at": stamp,
            "charger_id": f"LOAD{i % 1000 + 1:05d}",
            "connector_id": None,
            "trigger": "Authorize",
            "uid": f"HIT{i % 1000 + 1:05d}",
            "uid_norm": f"HIT{i % 1000 + 1:05d}",
            "partner_id": "NL-EMS",
            "token_type": "RFID",
            "source": "remote" if remote else "cache",
            "allowed": "ALLOWED",
            "status": "Accepted",
            "authorization_reference": f"Ref-{i}" if remote else None,
            "display_text": None,
            "latency_ms": 51.234 if remote else 0.052,
            "reason": None,
        }
        out.append(tuple(values[c] for c in COLUMNS))
    return out


def size(path: Path) -> int:
    return sum(
        Path(f"{path}{s}").stat().st_size for s in ("", "-wal") if Path(f"{path}{s}").exists()
    )


def remove(path: Path) -> None:
    for s in ("", "-wal", "-shm"):
        Path(f"{path}{s}").unlink(missing_ok=True)


async def on_disk_and_purge() -> dict[str, Any]:
    path = OUT / "retention.sqlite3"
    remove(path)
    db = await Database.open(str(path))
    try:
        await db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        before = size(path)
        old = datetime.now(UTC) - timedelta(days=200)
        rows = rows_at(old, ROWS)
        for i in range(0, len(rows), 1000):  # the log's own batch size
            async with db.transaction() as tx:
                await tx.executemany(_INSERT, rows[i : i + 1000])
        await db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        grown = size(path) - before
        config = RetentionConfig(max_rows_per_round=10**9)
        statements: list[float] = []
        execute = db.execute

        async def timed(sql: str, params: Any = ()) -> int:
            t = time.perf_counter()
            try:
                return await execute(sql, params)
            finally:
                statements.append(time.perf_counter() - t)

        db.execute = timed  # type: ignore[method-assign]
        result = await Retention(db, config).purge_round()
        busy = sum(statements)
        return {
            "rows": ROWS,
            "bytes_per_decision": round(grown / ROWS, 1),
            "purged": result.deleted,
            "purge_wall_s": round(result.seconds, 3),
            "purge_rows_per_s_wall": round(result.deleted / result.seconds),
            "purge_rows_per_s_busy": round(result.deleted / busy),
            "statement_p50_ms": round(statistics.median(statements) * 1000, 2),
            "statement_max_ms": round(max(statements) * 1000, 2),
            "batch_rows": config.batch_rows,
            "pause_s": config.pause_s,
        }
    finally:
        await db.close()


async def beside_authorize() -> dict[str, Any]:
    tree = current_tree()
    template = store_template(tree, CHARGERS)
    name = "retention-serve"
    fresh_store(template, name)
    # Before the server starts: the purge walks the lowest ids, so expired rows must come
    # first, as they do in a log written in time order.
    db = sqlite3.connect(OUT / f"{name}.sqlite3")
    try:
        with db:
            db.executemany(_INSERT, rows_at(datetime.now(UTC) - timedelta(days=200), PURGE_ROWS))
    finally:
        db.close()
    extra = "\n[retention]\ndecisions_days = 90\ninterval_s = 1.0\n"  # first round after 1 s
    proc, ports = start_csms(tree, name, extra)
    try:
        log_from = 0
        await load(ports.ocpp_url, CHARGERS, 5000, tags=OWN_TAGS)  # warm up; the purge runs
        during = await load(ports.ocpp_url, CHARGERS, 40000 // QUICK, tags=OWN_TAGS, rate=2000)
        mid = purged_lines_since(proc.log_path, log_from)
        deadline = time.monotonic() + 300
        while sum(x["rows"] for x in purged_lines_since(proc.log_path, log_from)) < PURGE_ROWS:
            if time.monotonic() > deadline:
                raise RuntimeError("the purge did not finish in 300 s")
            await asyncio.sleep(1)
        after = await load(ports.ocpp_url, CHARGERS, 40000 // QUICK, tags=OWN_TAGS, rate=2000)
        lines = purged_lines_since(proc.log_path, log_from)
    finally:
        proc.stop()
    seconds = sum(x["seconds"] for x in lines)
    rows = sum(x["rows"] for x in lines)
    d, a = during.actions["Authorize"], after.actions["Authorize"]
    return {
        "purge_rows": rows,
        "server_purge_rows_per_s": round(rows / seconds) if seconds else None,
        "purged_while_measuring": sum(x["rows"] for x in mid),
        "purge_ran_through_the_measurement": sum(x["rows"] for x in mid) < rows,
        "during": {"p50_ms": d.p50_ms, "p99_ms": d.p99_ms, "errors": during.errors},
        "after": {"p50_ms": a.p50_ms, "p99_ms": a.p99_ms, "errors": after.errors},
    }


def purged_lines_since(log: Path, offset: int) -> list[dict[str, Any]]:
    with log.open("rb") as f:
        f.seek(offset)
        text = f.read().decode(errors="replace")
    return [json.loads(x) for x in text.splitlines() if '"retention_purged"' in x]


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    before, steal0, wall0 = loadavg(), steal_seconds(), time.monotonic()
    affinity = os.sched_getaffinity(0)
    pin_self(CLIENT_CPU)
    raise_nofile()
    try:
        import uvloop

        disk = uvloop.run(on_disk_and_purge())
        print(f"  on disk and purge: {disk}", flush=True)
        serve = uvloop.run(beside_authorize())
        print(f"  purge beside Authorize: {serve}", flush=True)
    finally:
        os.sched_setaffinity(0, affinity)
    out = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "loadavg": {"before": before, "after": loadavg()},
        "steal_s": round(steal_seconds() - steal0, 2),
        "wall_s": round(time.monotonic() - wall0, 1),
        "disk": disk,
        "serve": serve,
    }
    (OUT / "retention.json").write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2), flush=True)
