"""The step kinds a scenario file may use, each a small coroutine over the shared context.

Why a table (:data:`STEP_KINDS`) of implementation and allowed keys: the parser rejects
an unknown step or key before anything connects, and docs/simulator.md lists the same
kinds.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import Any

from simulator.chargepoint import ConnectFailed, SimulatedChargePoint, SimulatorError, shifted
from simulator.failover import jittered_backoff
from simulator.scenarios.context import Context, ScenarioFailed, expect, tag_status


def _last_request(cp: SimulatedChargePoint, action: str) -> dict[str, Any]:
    return next(s.request for s in reversed(cp.steps) if s.action == action)


async def _connect(ctx: Context, cp_id: str | None = None) -> SimulatedChargePoint:
    cp = SimulatedChargePoint(
        ctx.url, cp_id or ctx.cp_id, password=ctx.password, on_step=ctx.printer, **ctx.cp_kwargs
    )
    await cp.open()
    return cp


async def _boot(ctx: Context, i: int, s: dict[str, Any]) -> None:
    cp = ctx.charger
    resp = await cp.boot(
        retry=s.get("retry", True),
        attempts=s.get("attempts", 3),
        max_wait_s=s.get("max_wait_s"),
        announce=s.get("announce", True),
    )
    expect(i, "boot", s.get("expect", "Accepted"), resp.get("status"))


async def _status(ctx: Context, i: int, s: dict[str, Any]) -> None:
    await ctx.charger.status(
        s.get("connector", 1),
        s["status"],
        error_code=s.get("error_code", "NoError"),
        force=s.get("force", False),
    )


async def _authorize(ctx: Context, i: int, s: dict[str, Any]) -> None:
    resp = await ctx.charger.authorize(ctx.fmt(s.get("id_tag", "{id_tag}")))
    expect(i, "authorize", s.get("expect"), tag_status(resp))


async def _start(ctx: Context, i: int, s: dict[str, Any]) -> None:
    cp = ctx.charger
    at = s.get("at_s")
    connector = s.get("connector", 1)
    resp = await cp.start_transaction(
        connector,
        ctx.fmt(s.get("id_tag", "{id_tag}")),
        s.get("meter_start"),
        timestamp=shifted(seconds=at) if at is not None else None,
    )
    if cp.connected:
        ctx.last_tx_request = ("StartTransaction", _last_request(cp, "StartTransaction"))
        ctx.last_tx_response = resp
        expect(i, "start", s.get("expect"), tag_status(resp))
        ctx.say(f"      transactionId={resp.get('transactionId')}")
    else:
        ctx.say(f"      offline: StartTransaction queued (connector {connector})")


async def _meter(ctx: Context, i: int, s: dict[str, Any]) -> None:
    cp = ctx.charger
    connector = s.get("connector", 1)
    conn = cp.connectors[connector]
    at = s.get("at_s")
    for n in range(s.get("count", 1)):
        if n and s.get("interval_s", 0):
            await asyncio.sleep(s["interval_s"])
        conn.meter_wh += s.get("energy_step_wh", 1000)
        ts = shifted(seconds=at + n * s.get("spacing_s", 60)) if at is not None else None
        await cp.send_meter_values(connector, timestamp=ts)
        if not cp.connected:
            ctx.say(f"      offline: MeterValues queued (connector {connector})")


async def _stop(ctx: Context, i: int, s: dict[str, Any]) -> None:
    cp = ctx.charger
    connector = s.get("connector", 1)
    at = s.get("at_s")
    if s.get("energy_step_wh"):
        cp.connectors[connector].meter_wh += s["energy_step_wh"]
    resp = await cp.stop_transaction(
        connector,
        reason=s.get("reason", "Local"),
        meter_stop=s.get("meter_stop"),
        id_tag=ctx.fmt(s["id_tag"]) if "id_tag" in s else None,
        timestamp=shifted(seconds=at) if at is not None else None,
    )
    if cp.connected:
        ctx.last_tx_request = ("StopTransaction", _last_request(cp, "StopTransaction"))
        ctx.last_tx_response = resp
        if "expect" in s:
            expect(i, "stop", s["expect"], tag_status(resp))
    else:
        ctx.say(f"      offline: StopTransaction queued (connector {connector})")


async def _wait(ctx: Context, i: int, s: dict[str, Any]) -> None:
    await asyncio.sleep(float(s.get("seconds", 1)))


async def _heartbeat(ctx: Context, i: int, s: dict[str, Any]) -> None:
    await ctx.charger.heartbeat()


async def _disconnect(ctx: Context, i: int, s: dict[str, Any]) -> None:
    await ctx.charger.disconnect()
    ctx.say("      socket closed, now offline")


async def _reconnect(ctx: Context, i: int, s: dict[str, Any]) -> None:
    cp = ctx.charger
    queued = len(cp.offline_queue)
    steps = await cp.reconnect(boot=s.get("boot", False), replay=False)
    replayed = await cp.replay_queue(drop_starts=s.get("drop_starts", False))
    ctx.say(f"      reconnected; replayed {len(replayed)} of {queued} queued messages")
    expect(
        i, "reconnect", s.get("expect_replayed"), len(replayed) if "expect_replayed" in s else None
    )
    del steps


async def _expect_call(ctx: Context, i: int, s: dict[str, Any]) -> None:
    action = s["action"]
    timeout = float(s.get("timeout_s", 60))
    ctx.say(f"      waiting up to {timeout:g} s for the CSMS to send {action}")
    try:
        payload = await ctx.charger.wait_for_call(action, timeout=timeout, count=s.get("count", 1))
    except TimeoutError:
        raise ScenarioFailed(i, "expect_call", f"no {action} within {timeout:g} s") from None
    ctx.say(f"      <- {action} {payload}")


async def _wait_tx(ctx: Context, i: int, s: dict[str, Any]) -> None:
    cp = ctx.charger
    connector = s.get("connector", 1)
    want_active = s.get("state", "active") == "active"
    timeout = float(s.get("timeout_s", 10))

    def ok() -> bool:
        tx = cp.transactions.get(connector)
        if {"remote-start", "remote-stop"} & set(cp.follow_ups()):
            return False
        if want_active:
            return tx is not None and tx.id is not None
        return tx is None and cp.connectors[connector].status.value == "Available"

    try:
        await cp.wait_until(ok, timeout)
    except TimeoutError:
        raise ScenarioFailed(
            i, "wait_tx", f"connector {connector} not {s.get('state', 'active')}"
        ) from None
    tx = cp.transactions.get(connector)
    if tx is not None:
        ctx.say(f"      connector {connector}: transaction {tx.id} active")


async def _retry_last(ctx: Context, i: int, s: dict[str, Any]) -> None:
    """Resend the last Start/StopTransaction verbatim with a new message id (a lost answer)."""
    cp = ctx.charger
    if ctx.last_tx_request is None:
        raise ScenarioFailed(i, "retry_last", "no transaction message sent yet")
    action, payload = ctx.last_tx_request
    resp = await cp.request(action, payload)
    if action == "StartTransaction" and s.get("expect_same_tx", True):
        first = (ctx.last_tx_response or {}).get("transactionId")
        expect(i, "retry_last", first, resp.get("transactionId"))
        ctx.say(f"      same transactionId {resp.get('transactionId')} on retry")


async def _second_socket(ctx: Context, i: int, s: dict[str, Any]) -> None:
    """Open another socket with the same id; by default expect the first one to be closed."""
    first = ctx.charger
    second = await _connect(ctx)
    ctx.extra.append(second)
    await second.boot(retry=False)
    if s.get("expect_first_closed", True):
        try:
            await first.wait_closed(float(s.get("timeout_s", 5)))
        except TimeoutError:
            raise ScenarioFailed(i, "second_socket", "first socket was not closed") from None
        ctx.say("      first socket closed by the CSMS; second one is live")
    ctx.extra.remove(second)
    ctx.extra.append(first)
    ctx.cp = second


async def _storm(ctx: Context, i: int, s: dict[str, Any]) -> None:
    """N chargers connect at once, retrying with exponential backoff and full jitter."""
    n = int(s.get("chargers", 20))
    pattern = str(s.get("id_pattern", ctx.cp_id + "-{n:03d}"))
    base, cap = float(s.get("base_s", 0.05)), float(s.get("cap_s", 2.0))
    attempts = int(s.get("attempts", 8))
    stats = {"retries": 0}

    async def one(k: int) -> SimulatedChargePoint:
        rng = random.Random(ctx.rng.random())
        cid = pattern.format(n=k)
        for attempt in range(attempts):
            cp = SimulatedChargePoint(ctx.url, cid, password=ctx.password, **ctx.cp_kwargs)
            try:
                await cp.open()
                await cp.boot(retry=True, attempts=2, max_wait_s=cap)
                if cp.registration == "Accepted":
                    return cp
                await cp.close()
            except (ConnectFailed, SimulatorError):
                await cp.close()
                if attempt == attempts - 1:
                    raise
            stats["retries"] += 1
            await asyncio.sleep(jittered_backoff(attempt, base, cap, rng))
        raise ScenarioFailed(i, "storm", f"{cid} never got Accepted")

    started = time.perf_counter()
    results = await asyncio.gather(*(one(k) for k in range(1, n + 1)), return_exceptions=True)
    good = [r for r in results if isinstance(r, SimulatedChargePoint)]
    ctx.extra.extend(good)
    elapsed = time.perf_counter() - started
    ctx.say(
        f"      {len(good)}/{n} chargers connected and booted in {elapsed:.2f} s "
        f"({stats['retries']} retries)"
    )
    connected = sum(1 for cp in good if cp.connected)
    if connected != n:
        errors = [str(r)[:200] for r in results if not isinstance(r, SimulatedChargePoint)]
        first = f"; first error: {errors[0]}" if errors else ""
        raise ScenarioFailed(i, "storm", f"{connected}/{n} connected{first}")


async def _data_transfer(ctx: Context, i: int, s: dict[str, Any]) -> None:
    resp = await ctx.charger.data_transfer(
        s.get("vendor_id", "csms-sim"), s.get("message_id"), s.get("data")
    )
    expect(i, "data_transfer", s.get("expect"), resp.get("status"))


async def _raw(ctx: Context, i: int, s: dict[str, Any]) -> None:
    reply = await ctx.charger.send_raw(ctx.fmt(s["frame"]), timeout=float(s.get("timeout_s", 5)))
    ctx.say(f"      <- {reply}")
    if "expect_contains" in s and (reply is None or s["expect_contains"] not in reply):
        raise ScenarioFailed(i, "raw", f"reply {reply!r} lacks {s['expect_contains']!r}")


Handler = Callable[[Context, int, dict[str, Any]], Any]
#: step kind -> (implementation, allowed keys)
STEP_KINDS: dict[str, tuple[Handler, set[str]]] = {
    "boot": (_boot, {"retry", "attempts", "max_wait_s", "expect", "announce"}),
    "status": (_status, {"connector", "status", "error_code", "force"}),
    "authorize": (_authorize, {"id_tag", "expect"}),
    "start": (_start, {"connector", "id_tag", "meter_start", "expect", "at_s"}),
    "meter": (_meter, {"connector", "count", "interval_s", "energy_step_wh", "at_s", "spacing_s"}),
    "stop": (
        _stop,
        {"connector", "reason", "meter_stop", "id_tag", "at_s", "expect", "energy_step_wh"},
    ),
    "wait": (_wait, {"seconds"}),
    "heartbeat": (_heartbeat, set()),
    "disconnect": (_disconnect, set()),
    "reconnect": (_reconnect, {"boot", "drop_starts", "expect_replayed"}),
    "expect_call": (_expect_call, {"action", "timeout_s", "count"}),
    "wait_tx": (_wait_tx, {"connector", "state", "timeout_s"}),
    "retry_last": (_retry_last, {"expect_same_tx"}),
    "second_socket": (_second_socket, {"expect_first_closed", "timeout_s"}),
    "storm": (_storm, {"chargers", "id_pattern", "base_s", "cap_s", "attempts"}),
    "data_transfer": (_data_transfer, {"vendor_id", "message_id", "data", "expect"}),
    "raw": (_raw, {"frame", "timeout_s", "expect_contains"}),
}
