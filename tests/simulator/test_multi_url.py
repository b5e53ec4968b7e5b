"""A charger given several CSMS URLs moves to the next when its link is lost, boots again,
and re-sends the transaction message whose answer never came (new message id, same content).

The CSMS side is two (or three) minimal OCPP servers on 127.0.0.1 sharing one ledger, the
way nodes share one database: a StartTransaction with content already seen gets the same
transaction id, a StopTransaction for a stopped transaction changes nothing. A node "dies"
by committing a chosen CALL to the ledger and then aborting the TCP connection without an
answer, as a node killed between its commit and its reply does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from simulator.chargepoint import FailoverPolicy, NotConnected, SimulatedChargePoint
from simulator.failover import split_urls
from simulator.load import LoadConfig, run_load
from simulator.wire import SUBPROTOCOL, now_iso
from tests.support.waiting import scaled, wait_until

FAST = FailoverPolicy(initial_s=0.02, max_s=0.2, attempts=20)


@dataclass(frozen=True)
class Received:
    node: str
    charger: str
    message_id: str
    action: str
    payload: dict[str, Any]


@dataclass
class Ledger:
    """What the nodes share: transactions by content, stops applied, every CALL received."""

    starts: dict[tuple[Any, ...], int] = field(default_factory=dict)
    stopped: dict[int, int] = field(default_factory=dict)  # transaction id -> stops applied
    calls: list[Received] = field(default_factory=list)

    def of(self, action: str, node: str | None = None) -> list[Received]:
        return [c for c in self.calls if c.action == action and node in (None, c.node)]

    def apply(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        accepted = {"status": "Accepted"}
        if action == "BootNotification":
            return {"status": "Accepted", "currentTime": now_iso(), "interval": 300}
        if action == "Heartbeat":
            return {"currentTime": now_iso()}
        if action == "Authorize":
            return {"idTagInfo": accepted}
        if action == "StartTransaction":
            key = tuple(sorted((k, json.dumps(v)) for k, v in payload.items()))
            tid = self.starts.setdefault(key, len(self.starts) + 1)
            return {"transactionId": tid, "idTagInfo": accepted}
        if action == "StopTransaction":
            tid = int(payload["transactionId"])
            if tid in self.starts.values() and tid not in self.stopped:
                self.stopped[tid] = 1
            return {"idTagInfo": accepted}
        return {}


@dataclass
class Node:
    """A minimal OCPP server: commits each CALL to the ledger and answers it, except that
    it dies (aborts the connection unanswered) on the actions in ``dies_on``, once each."""

    name: str
    ledger: Ledger
    dies_on: set[str] = field(default_factory=set)
    server: Server | None = None
    sockets: set[ServerConnection] = field(default_factory=set)
    died_on: list[Received] = field(default_factory=list)

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"ws://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/ocpp"

    async def handle(self, ws: ServerConnection) -> None:
        self.sockets.add(ws)
        charger = (ws.request.path if ws.request else "").rsplit("/", 1)[-1]
        try:
            async for raw in ws:
                kind, mid, action, payload = json.loads(raw)
                if kind != 2:
                    continue
                got = Received(self.name, charger, mid, action, payload)
                self.ledger.calls.append(got)
                result = self.ledger.apply(action, payload)
                if action in self.dies_on:
                    self.dies_on.discard(action)
                    self.died_on.append(got)
                    ws.transport.abort()  # committed, never answered
                    return
                await ws.send(json.dumps([3, mid, result]))
        except ConnectionClosed:
            pass  # the charger went away first
        finally:
            self.sockets.discard(ws)

    def abort_all(self) -> None:
        for ws in list(self.sockets):
            ws.transport.abort()


@contextlib.asynccontextmanager
async def nodes(*names: str) -> AsyncIterator[list[Node]]:
    ledger = Ledger()
    out = [Node(name, ledger) for name in names]
    async with contextlib.AsyncExitStack() as stack:
        for node in out:
            node.server = await stack.enter_async_context(
                serve(node.handle, "127.0.0.1", 0, subprotocols=[SUBPROTOCOL], ping_interval=None)
            )
        yield out


def charger(urls: list[str], cp_id: str = "CP-F") -> SimulatedChargePoint:
    return SimulatedChargePoint(
        urls, cp_id, heartbeat=False, meter_interval_s=0, step_delay_s=0, failover=FAST, seed=1
    )


async def test_a_stop_left_unanswered_is_sent_again_on_the_next_node_and_stops_once() -> None:
    async with nodes("a", "b") as (a, b):
        ledger = a.ledger
        cp = charger([a.url, b.url])
        await cp.open()
        try:
            assert (await cp.boot())["status"] == "Accepted"
            start = await cp.start_transaction(1, "TAG1", meter_start=100, meter_loop=False)
            tid = start["transactionId"]
            a.dies_on.add("StopTransaction")
            assert await cp.stop_transaction(1, meter_stop=900) == {}  # unanswered: kept
            await cp.wait_until(lambda: cp.connected and not cp.offline_queue, scaled(5))
        finally:
            await cp.close()

        [on_a] = ledger.of("StopTransaction", "a")
        [on_b] = ledger.of("StopTransaction", "b")
        assert on_b.payload == on_a.payload and on_a.payload["transactionId"] == tid
        assert on_b.message_id != on_a.message_id
        assert ledger.stopped == {tid: 1}
        # On b the charger booted first, then replayed: a charger back from a lost link.
        on_b_actions = [c.action for c in ledger.calls if c.node == "b"]
        assert on_b_actions[0] == "BootNotification", on_b_actions
        assert on_b_actions.index("StopTransaction") > 0
        assert [link.url for link in cp.links] == [a.url + "/CP-F", b.url + "/CP-F"]
        assert cp.links[0].lost_at is not None and cp.links[1].booted_at is not None
        assert cp.links[1].served_at is not None  # the replayed stop was answered


async def test_without_failover_a_lost_stop_raises_as_before() -> None:
    """Fault tests count only the calls answered: a charger that does not fail over still
    gets NotConnected for a call its socket took down with it, and keeps nothing."""
    async with nodes("a", "b") as (a, b):
        cp = SimulatedChargePoint([a.url, b.url], "CP-P", heartbeat=False, step_delay_s=0)
        await cp.open()
        try:
            await cp.boot()
            await cp.start_transaction(1, "TAG1", meter_start=0, meter_loop=False)
            a.dies_on.add("StopTransaction")
            with pytest.raises(NotConnected):
                await cp.stop_transaction(1, meter_stop=10, move_status=False)
            assert not cp.offline_queue and len(cp.links) == 1
        finally:
            await cp.close()


async def test_a_start_whose_answer_was_lost_gets_its_id_from_the_next_node() -> None:
    async with nodes("a", "b") as (a, b):
        ledger = a.ledger
        cp = charger([a.url, b.url])
        await cp.open()
        try:
            await cp.boot()
            a.dies_on.add("StartTransaction")
            assert await cp.start_transaction(2, "TAG2", meter_start=5, meter_loop=False) == {}
            tx = cp.transactions[2]
            await cp.wait_until(lambda: tx.id is not None and cp.connected, scaled(5))
            await cp.send_meter_values(2, energy_wh=50)
            await cp.stop_transaction(2, meter_stop=80)
        finally:
            await cp.close()

        [on_a] = ledger.of("StartTransaction", "a")
        [on_b] = ledger.of("StartTransaction", "b")
        assert on_b.payload == on_a.payload and on_b.message_id != on_a.message_id
        assert len(ledger.starts) == 1 and tx.id == 1
        [meter] = ledger.of("MeterValues", "b")
        [stop] = ledger.of("StopTransaction", "b")
        assert meter.payload["transactionId"] == stop.payload["transactionId"] == 1
        assert ledger.stopped == {1: 1}


async def test_messages_queued_behind_a_lost_one_keep_their_order() -> None:
    """A stop made while the lost start still waits for its replay goes after it, with
    the id the replayed start obtained."""
    async with nodes("a", "b") as (a, b):
        ledger = a.ledger
        cp = charger([a.url, b.url])
        cp.driver.policy = FailoverPolicy(initial_s=0.3, max_s=0.3, attempts=5)  # slow back
        await cp.open()
        try:
            await cp.boot()
            a.dies_on.add("StartTransaction")
            await cp.start_transaction(1, "TAG3", meter_start=0, meter_loop=False)
            await cp.stop_transaction(1, meter_stop=10)  # still offline: queued behind
            assert [m.action for m in cp.offline_queue] == ["StartTransaction", "StopTransaction"]
            await cp.wait_until(lambda: cp.connected and not cp.offline_queue, scaled(5))
        finally:
            await cp.close()
        on_b = [c.action for c in ledger.calls if c.node == "b"]
        assert on_b[:3] == ["BootNotification", "StartTransaction", "StopTransaction"], on_b
        assert ledger.of("StopTransaction", "b")[0].payload["transactionId"] == 1
        assert ledger.stopped == {1: 1}


def booted_links(cp: SimulatedChargePoint) -> int:
    return sum(link.booted_at is not None for link in cp.links)


async def test_round_robin_skips_a_dead_url_and_comes_back_around() -> None:
    async with nodes("a", "b") as (a, b):
        dead = "ws://127.0.0.1:9/ocpp"  # discard port: nothing listens
        cp = charger([a.url, dead, b.url])
        await cp.open()
        try:
            await cp.boot()
            a.abort_all()
            await cp.wait_until(lambda: booted_links(cp) == 2 and cp.connected, scaled(5))
            b.abort_all()
            await cp.wait_until(lambda: booted_links(cp) == 3 and cp.connected, scaled(5))
        finally:
            await cp.close()
        assert [link.url.rsplit("/", 2)[0] for link in cp.links] == [
            a.url.rsplit("/", 1)[0],
            b.url.rsplit("/", 1)[0],
            a.url.rsplit("/", 1)[0],
        ]
        assert [c.node for c in a.ledger.of("BootNotification")] == ["a", "b", "a"]


async def test_closing_the_charger_does_not_fail_over() -> None:
    async with nodes("a", "b") as (a, b):
        cp = charger([a.url, b.url])
        await cp.open()
        await cp.boot()
        await cp.close()
        await asyncio.sleep(0)  # let a wrongly spawned failover task start, if any
        assert not cp.follow_ups() and len(cp.links) == 1
        assert not a.ledger.of("BootNotification", "b")


def test_urls_may_be_repeated_or_comma_separated() -> None:
    assert split_urls(["ws://a/ocpp, ws://b/ocpp", "ws://c/ocpp"]) == [
        "ws://a/ocpp",
        "ws://b/ocpp",
        "ws://c/ocpp",
    ]
    assert split_urls("ws://a/ocpp") == ["ws://a/ocpp"]
    with pytest.raises(ValueError):
        split_urls(" , ")


async def test_the_serve_command_moves_to_the_next_url() -> None:
    async with nodes("a", "b") as (a, b):
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "simulator.cli", "serve", "--url", a.url, "--url", b.url,
            "--id", "CP-CLI-F", "--timeout", "5",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert proc.stdout is not None
        lines: list[str] = []

        async def read() -> None:
            assert proc.stdout is not None
            while line := await proc.stdout.readline():
                lines.append(line.decode())

        reader = asyncio.create_task(read())
        try:
            await wait_until(lambda: any("ready" in x for x in lines), timeout=20, what="ready")
            a.abort_all()
            await wait_until(
                lambda: any(f"connected to {b.url}/CP-CLI-F" in x for x in lines),
                timeout=20,
                what="the charger on b",
            )
        finally:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), scaled(10))
            reader.cancel()
        assert [c.node for c in a.ledger.of("BootNotification")] == ["a", "b"]


async def test_the_load_generator_replays_its_unanswered_call_on_the_next_node() -> None:
    async with nodes("a", "b") as (a, b):
        ledger = a.ledger
        a.dies_on.add("StopTransaction")
        cfg = LoadConfig(
            url=f"{a.url},{b.url}", chargers=1, calls=12, id_pattern="LF{n}", timeout=5.0
        )
        report = await asyncio.wait_for(run_load(cfg), scaled(20))
        [on_a] = ledger.of("StopTransaction", "a")
        on_b = ledger.of("StopTransaction", "b")
        assert on_b[0].payload == on_a.payload and on_b[0].message_id != on_a.message_id
        assert report.errors == 0, report.error_kinds
        assert len(ledger.stopped) == len(ledger.starts) and all(
            n == 1 for n in ledger.stopped.values()
        )
        assert report.failovers == 1 and [c.node for c in ledger.of("BootNotification")] == [
            "a",
            "b",
        ]


async def test_the_load_generator_in_open_loop_keeps_every_session_whole() -> None:
    """On a schedule (open loop) too: the MeterValues a node died on is sent again on the
    next one, no call fails, and every session still ends with its one stop."""
    async with nodes("a", "b") as (a, b):
        ledger = a.ledger
        a.dies_on.add("MeterValues")
        cfg = LoadConfig(
            url=f"{a.url},{b.url}",
            chargers=4,
            calls=120,
            rate=400,
            id_pattern="LO{n}",
            timeout=5.0,
            failover_initial_s=0.05,
        )
        report = await asyncio.wait_for(run_load(cfg), scaled(20))
        assert report.errors == 0 and report.failovers == 1, report.error_kinds
        assert report.calls_done == report.calls_planned == 120
        [lost] = a.died_on
        assert any(c.payload == lost.payload for c in ledger.of("MeterValues", "b"))
        assert set(ledger.stopped) == set(ledger.starts.values())
        assert all(n == 1 for n in ledger.stopped.values())
