"""Periodic jobs of the CSMS run on one node at a time: two Systems in this process on
one PostgreSQL schema, as two nodes would be. While node A holds a job's lock (a
session advisory lock), node B skips the job; once A lets go, B runs it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from csms import datetimes
from csms.ocpi.commands import EXPIRY_JOB
from csms.retention import JOB
from csms.system import System
from roaming.models import format_datetime
from tests.e2e.roaming.conftest import world
from tests.e2e.roaming.test_reservations import reserve
from tests.support.csms import running_csms
from tests.support.waiting import wait_until


@pytest.fixture
async def two(tmp_path: Path, postgres_url: str) -> AsyncIterator[tuple[System, System]]:
    async with AsyncExitStack() as stack:
        systems = []
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            systems.append(
                await stack.enter_async_context(
                    running_csms(
                        tmp_path / name,
                        store={"url": postgres_url, "pool_size": 4},
                        retention={"decisions_days": 30},
                        cluster={"node_id": f"node-{name}"},
                    )
                )
            )
        yield systems[0], systems[1]


async def old_decisions(app: System, count: int) -> None:
    stamp = datetimes.millis(datetimes.utc_now() - timedelta(days=40))
    await app.db.executemany(
        "INSERT INTO authorizations (charger_id, uid, uid_norm, trigger, status, source,"
        " latency_ms, decided_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            ("CP-OLD", f"UID{n}", f"UID{n}", "Authorize", "Accepted", "local", 0.1, stamp)
            for n in range(count)
        ],
    )


@asynccontextmanager
async def held_elsewhere(app: System, job: str) -> AsyncIterator[None]:
    """Hold ``job``'s lock as another node would. ``app`` runs the job itself every
    0.1 s, so a first try may meet its own round holding the lock for a moment: try
    again until the lock is taken (bounded)."""
    for _ in range(500):
        async with app.cluster.exclusive(job) as mine:
            if mine:
                yield
                return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{job} was never free to take")


async def decisions(app: System) -> int:
    row = await app.db.fetchone("SELECT count(*) AS n FROM authorizations")
    return int(row["n"])


async def test_the_retention_purge_runs_on_one_node_at_a_time(two):
    a, b = two
    assert a.retention is not None and b.retention is not None
    await old_decisions(a, 25)
    async with a.cluster.exclusive(JOB) as mine:
        assert mine
        assert await b.retention.exclusive_round() is None  # B skips: A purges
        assert await decisions(b) == 25
    result = await b.retention.exclusive_round()
    assert result is not None and result.deleted == 25
    assert await decisions(a) == 0


async def test_the_reservation_expiry_check_waits_while_another_node_runs_it(
    tmp_path: Path, postgres_url: str
):
    """The test's own session holds the job, as another node's would."""
    async with (
        world(
            tmp_path, cpo={"reservation_check_interval_s": 0.1}, store={"url": postgres_url}
        ) as w,
        w.charger() as cp,
    ):

        async def status() -> str:
            row = await w.app.db.fetchone("SELECT status FROM ocpi_sessions")
            return str(row["status"]) if row else ""

        async with held_elsewhere(w.app, EXPIRY_JOB):
            expiry_at = datetime.now(UTC) + timedelta(seconds=1)
            await reserve(w, cp, "emsp-res-held", format_datetime(expiry_at))

            def long_past() -> bool:  # several checks of this node fell after the expiry
                return datetime.now(UTC) > expiry_at + timedelta(seconds=1)

            await wait_until(long_past, interval=0.1, what="the expiry to pass")
            assert await status() == "RESERVATION"  # not closed: the other node's job
        await wait_until(lambda: _is(status(), "COMPLETED"), what="expired once released")


async def _is(pending, expected: str) -> bool:
    return await pending == expected
