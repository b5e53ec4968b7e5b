"""A node's death loses and duplicates nothing: two real ``csms serve`` nodes on one
PostgreSQL database with OCPI on, the eMSP sandbox, and the real simulator running
roaming sessions on many chargers spread over both; one node is killed with SIGKILL
mid-load; its chargers boot again on the other node and replay what was left unanswered.

Then the store is the truth: every transaction a charger started is there once and
stopped, a StartTransaction sent again with a new message id got the id it had, and the
eMSP received exactly one CDR POST per stopped roaming transaction.

``FAILOVER_CHARGERS`` (default 200), ``FAILOVER_LOAD_S`` (seconds of load before and after
the kill, default 6) and ``FAILOVER_PAUSE_S`` (a charger's pause between its calls,
default 5.0) make a longer or denser variant; ``FAILOVER_SEED`` repeats the jitter.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from csms.store.db import Database
from simulator.chargepoint import FailoverPolicy, SimulatedChargePoint, SimulatorError, Tx
from simulator.emsp.sandbox import EmspSandbox
from tests.support.nodes import Node, csms_nodes
from tests.support.waiting import scaled, wait_until

CHARGERS = int(os.environ.get("FAILOVER_CHARGERS", "200"))
LOAD_S = float(os.environ.get("FAILOVER_LOAD_S", "6"))
PAUSE_S = float(os.environ.get("FAILOVER_PAUSE_S", "5.0"))
POLICY = FailoverPolicy(initial_s=0.5, max_s=2.0, attempts=30)


def charger_id(i: int) -> str:
    return f"FO{i:04d}"


def token_uid(i: int) -> str:
    return f"FOTOKEN{i:04d}"


def locations_toml(count: int) -> str:
    """One location; an EVSE for every charger (a roaming charge needs one for its CDR)."""
    out = [
        '[[tariffs]]\nid = "AC-STD"\ncurrency = "EUR"\nenergy_price = 0.40\nvat = 21.0\n',
        '[[locations]]\nid = "LOC-F"\nname = "Failover Depot"\naddress = "Kade 1"\n'
        'city = "Amsterdam"\npostal_code = "1011AB"\ncountry = "NLD"\nlatitude = "52.37403"\n'
        'longitude = "4.88969"\ntime_zone = "Europe/Amsterdam"\n',
    ]
    for i in range(count):
        cp = charger_id(i)
        out.append(
            f'[[locations.evses]]\nuid = "{cp}-1"\nevse_id = "NL*CPO*EF{i}*1"\n'
            f'charger_id = "{cp}"\nconnector_id = 1\nstandard = "IEC_62196_T2"\n'
            'format = "SOCKET"\npower_type = "AC_3_PHASE"\nmax_voltage = 230\n'
            'max_amperage = 32\ntariff_ids = ["AC-STD"]\n'
        )
    return "\n".join(out)


def node_config(tmp_path: Path, count: int) -> dict[str, dict[str, Any]]:
    loc_file = tmp_path / "locations.toml"
    loc_file.write_text(locations_toml(count))
    return {
        "server": {"call_timeout_s": 10.0},
        "ocpi_cpo": {
            "locations_file": str(loc_file),
            "outbox_retry_initial_s": 0.05,
            "outbox_retry_max_s": 0.5,
            "outbox_poll_interval_s": 0.1,
            "session_update_interval_s": 60.0,  # no PATCH per MeterValues: a lean outbox
        },
    }


@contextlib.asynccontextmanager
async def roaming_world(
    tmp_path: Path, postgres_url: str, count: int
) -> AsyncIterator[tuple[list[Node], EmspSandbox]]:
    """Two nodes and an eMSP registered through node a, its tokens pushed (whitelist
    ALWAYS: each start is decided from the token cache, with no call to the eMSP)."""
    async with (
        EmspSandbox.start(country_code="NL", party_id="EMS", control_port=None) as emsp,
        csms_nodes(
            tmp_path, postgres_url, 2, ocpi=True, config=node_config(tmp_path, count)
        ) as nodes,
    ):
        emsp.behaviour.cdr_delay_ms = 80  # CDR POSTs stay open a while: kills land mid-POST
        for i in range(count):
            emsp.add_token(token_uid(i), whitelist="ALWAYS")
        invite = await nodes[0].admin(
            "POST", "/api/partners/invite", {"country_code": "NL", "party_id": "EMS"}
        )
        await emsp.register_with(invite["versions_url"], invite["token_a"])
        assert all(r.status_code == 1000 for r in await emsp.push_tokens())
        yield nodes, emsp


@dataclass
class Fleet:
    """The chargers and every transaction they started, as they know it."""

    chargers: list[SimulatedChargePoint] = field(default_factory=list)
    started: list[tuple[str, Tx]] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def pause(self, seconds: float) -> None:
        """A charger's pause between calls, cut short once the load ends."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)

    def settled(self) -> bool:
        """Every charger online with nothing left to replay, every start numbered."""
        return all(
            cp.connected and not cp.offline_queue and "failover" not in cp.follow_ups()
            for cp in self.chargers
        ) and all(tx.id is not None for _, tx in self.started)


def fleet_charger(urls: list[str], i: int, seed: int) -> SimulatedChargePoint:
    return SimulatedChargePoint(
        urls, charger_id(i), connectors=1, heartbeat=False, meter_interval_s=0,
        step_delay_s=0, response_timeout=scaled(20), open_timeout=scaled(10),
        failover=POLICY, seed=seed + i,
    )  # fmt: skip


async def session_loop(cp: SimulatedChargePoint, i: int, fleet: Fleet, rng: random.Random) -> None:
    """Authorize, StartTransaction, MeterValues, StopTransaction, again until told to stop.
    A call lost with its socket is kept and replayed by the charger; the loop only waits
    for the charger to be back before its next session."""
    meter = 0
    await fleet.pause(rng.uniform(0, PAUSE_S))
    for _ in range(10_000):
        if fleet.stop.is_set():
            return
        await cp.wait_until(
            lambda: cp.connected and not cp.offline_queue and "failover" not in cp.follow_ups(),
            timeout=scaled(60),
        )
        try:
            auth = await cp.authorize(token_uid(i))
        except SimulatorError:
            continue  # lost with the socket: nothing to replay for an Authorize
        assert auth["idTagInfo"]["status"] == "Accepted", (cp.id, auth)
        await cp.start_transaction(
            1, token_uid(i), meter_start=meter, move_status=False, meter_loop=False
        )
        fleet.started.append((cp.id, cp.transactions[1]))
        await fleet.pause(PAUSE_S * rng.uniform(0.5, 1.5))
        await cp.send_meter_values(1, energy_wh=meter + 400)
        await cp.stop_transaction(1, meter_stop=meter + 900, move_status=False)
        meter += 1000
        await fleet.pause(PAUSE_S * rng.uniform(0.5, 1.5))


async def store_rows(postgres_url: str) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """(every transaction row, CDR id -> transaction id) as the database holds them."""
    db = await Database.open(postgres_url, migrate=False)
    try:
        rows = [
            dict(r)
            for r in await db.fetchall(
                "SELECT id, charger_id, connector_id, start_timestamp, meter_start,"
                " stop_received_at, partner_id FROM transactions",
                (),
            )
        ]
        cdrs = {
            r[0]: r[1] for r in await db.fetchall("SELECT id, transaction_id FROM ocpi_cdrs", ())
        }
    finally:
        await db.close()
    return rows, cdrs


def delivered_by(nodes: tuple[Node, ...], cdr_ids: dict[str, int]) -> dict[str, list[str]]:
    """For each CDR POSTed more than once: the nodes that logged its delivery (a node
    killed mid-POST logs nothing for it)."""
    out: dict[str, list[str]] = {cid: [] for cid in list(cdr_ids)[:5]}
    for node in nodes:
        for event in node.events("outbox.delivered"):
            cid = str(event.get("object", "")).removeprefix("cdr:")
            if cid in out:
                out[cid].append(node.name)
    return out


async def outbox_drained(node: Node) -> bool:
    counts = (await node.admin("GET", "/api/outbox"))["counts"]
    return not counts.get("pending") and not counts.get("in_flight") and not counts.get("dead")


async def test_a_node_killed_mid_load_loses_and_duplicates_nothing(
    tmp_path: Path, postgres_url: str
) -> None:
    seed = int(os.environ.get("FAILOVER_SEED") or random.randrange(1 << 30))
    async with roaming_world(tmp_path, postgres_url, CHARGERS) as ((a, b), emsp):
        fleet = Fleet()
        for i in range(CHARGERS):
            urls = [a.ocpp_url, b.ocpp_url] if i % 2 == 0 else [b.ocpp_url, a.ocpp_url]
            fleet.chargers.append(fleet_charger(urls, i, seed))
        gate = asyncio.Semaphore(20)

        async def connect(cp: SimulatedChargePoint) -> None:
            async with gate:
                await cp.open()
                assert (await cp.boot())["status"] == "Accepted", cp.id

        loops: list[asyncio.Task[None]] = []
        clock = asyncio.get_running_loop().time
        marks = {"start": clock()}
        try:
            await asyncio.wait_for(
                asyncio.gather(*(connect(cp) for cp in fleet.chargers)), scaled(60)
            )
            marks["booted"] = clock()
            on_a = [cp for cp in fleet.chargers if cp.url.startswith(a.ocpp_url)]
            loops = [
                asyncio.create_task(session_loop(cp, i, fleet, random.Random(seed + i)))
                for i, cp in enumerate(fleet.chargers)
            ]
            await asyncio.sleep(LOAD_S)  # load on both nodes (a duration, not a wait)
            await emsp.wait_until(lambda: emsp.state.cdr_posts_open > 0, timeout=scaled(20))
            open_posts_at_kill = emsp.state.cdr_posts_open
            await a.kill()  # mid-load: calls in flight on a, a CDR POST open at the eMSP
            marks["killed"] = clock()
            await wait_until(
                lambda: all(cp.connected and cp.url.startswith(b.ocpp_url) for cp in on_a),
                timeout=40,
                interval=0.1,
                what="every charger of node a to be back, on node b",
            )
            marks["moved"] = clock()
            await asyncio.sleep(LOAD_S)  # load on the survivor (a duration, not a wait)
            fleet.stop.set()
            await asyncio.wait_for(asyncio.gather(*loops), scaled(60))
            await wait_until(fleet.settled, timeout=30, interval=0.1, what="replays to finish")
            marks["settled"] = clock()
            await wait_until(
                lambda: outbox_drained(b), timeout=60, interval=0.2, what="b's outbox to drain"
            )
            marks["drained"] = clock()
        finally:
            for task in loops:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            await asyncio.gather(*(cp.close() for cp in fleet.chargers), return_exceptions=True)

        rows, cdr_rows = await store_rows(postgres_url)
        replayed = sum(s.queued for cp in on_a for s in cp.steps)
        resent_starts = [
            s for cp in on_a for s in cp.steps if s.queued and s.action == "StartTransaction"
        ]
        by_content: dict[tuple[Any, ...], list[int]] = {}
        for r in rows:
            key = (r["charger_id"], r["connector_id"], r["start_timestamp"], r["meter_start"])
            by_content.setdefault(key, []).append(r["id"])
        duplicated = {k: v for k, v in by_content.items() if len(v) > 1}
        # A start sent again (new message id, same content) got the id of its one row.
        for cp in on_a:
            for step in cp.steps:
                if step.queued and step.action == "StartTransaction" and step.response:
                    req = step.request
                    key = (cp.id, req["connectorId"], req["timestamp"], req["meterStart"])
                    assert by_content.get(key) == [step.response["transactionId"]], (key, step)
        row_of = {r["id"]: r for r in rows}
        started_ids = [tx.id for _, tx in fleet.started]
        lost = [
            (cid, tx.id)
            for cid, tx in fleet.started
            if tx.id not in row_of or row_of[tx.id]["stop_received_at"] is None
        ]
        stopped_roaming = {
            r["id"] for r in rows if r["stop_received_at"] and r["partner_id"] is not None
        }
        posts = emsp.cdr_post_counts
        cdr_duplicates = {cid: n for cid in posts if (n := posts[cid]) > 1}
        report = (
            f"seed={seed} chargers={CHARGERS} moved={len(on_a)} transactions={len(fleet.started)}"
            f" rows={len(rows)} replayed={replayed} resent_starts={len(resent_starts)}"
            f" lost={len(lost)} duplicated={len(duplicated)} stopped_roaming={len(stopped_roaming)}"
            f" cdrs_in_store={len(cdr_rows)} cdrs_at_emsp={len(emsp.cdrs)}"
            f" cdr_posts={len(emsp.cdr_posts)} cdr_duplicates={len(cdr_duplicates)}"
            f" open_posts_at_kill={open_posts_at_kill} phases="
            + ",".join(f"{k}@{v - marks['start']:.1f}s" for k, v in marks.items() if k != "start")
        )
        print(report)
        assert len(on_a) == CHARGERS // 2 or len(on_a) == (CHARGERS + 1) // 2, report
        assert all(len(cp.links) >= 2 and cp.links[-1].booted_at for cp in on_a), report
        assert not lost, (lost[:5], report)
        assert not duplicated, (list(duplicated.items())[:5], report)
        assert len(set(started_ids)) == len(started_ids) == len(rows), report
        # Every stopped roaming transaction has its one CDR, POSTed once, and nothing else.
        assert stopped_roaming == {r["id"] for r in rows}, report
        assert set(cdr_rows.values()) == stopped_roaming, report
        assert not cdr_duplicates, (delivered_by((a, b), cdr_duplicates), report)
        assert set(emsp.cdrs) == set(cdr_rows), report
        assert len(emsp.cdr_posts) == len(cdr_rows), report
        assert not emsp.violations, emsp.violations


async def test_a_start_sent_again_on_another_node_gets_the_same_transaction(
    tmp_path: Path, postgres_url: str
) -> None:
    """The answer to a StartTransaction committed on node a never reached the charger; the
    charger, now on node b, sends the same content with a new message id and gets the same
    transaction id (the database decides, not a node's memory). Its stop, sent again on a
    after b answered it, stops nothing a second time."""
    async with roaming_world(tmp_path, postgres_url, 1) as ((a, b), _emsp):
        cp = SimulatedChargePoint(
            [a.ocpp_url, b.ocpp_url], charger_id(0), connectors=1, heartbeat=False,
            meter_interval_s=0, step_delay_s=0,
        )  # fmt: skip
        await cp.open()
        try:
            await cp.boot()
            first = await cp.start_transaction(
                1, token_uid(0), meter_start=10, move_status=False, meter_loop=False
            )
            [sent] = [s.request for s in cp.steps if s.action == "StartTransaction"]
            cp.session.next_url()
            await cp.reconnect(boot=True)
            assert cp.url.startswith(b.ocpp_url)
            again = await cp.request("StartTransaction", sent)
            assert again["transactionId"] == first["transactionId"], (first, again)
            await cp.stop_transaction(1, meter_stop=500, move_status=False)
            [stop] = [s.request for s in cp.steps if s.action == "StopTransaction"]
            cp.session.next_url()
            await cp.reconnect(boot=True)
            assert cp.url.startswith(a.ocpp_url)
            await cp.request("StopTransaction", stop)
        finally:
            await cp.close()
        rows, _ = await store_rows(postgres_url)
        [row] = rows
        assert row["id"] == first["transactionId"] and row["stop_received_at"] is not None
        db = await Database.open(postgres_url, migrate=False)
        try:
            kinds = [r[0] for r in await db.fetchall("SELECT kind FROM stop_records", ())]
        finally:
            await db.close()
        assert kinds == ["duplicate"], kinds
