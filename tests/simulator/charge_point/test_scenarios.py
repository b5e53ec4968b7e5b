"""Each built-in scenario against the real CSMS, asserting what the scenario is about."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from simulator.scenarios import (
    ScenarioError,
    ScenarioResult,
    builtin_names,
    load_scenario,
    parse_scenario,
    run_scenario,
)
from tests.simulator.charge_point.conftest import TAG, Csms
from tests.support.waiting import wait_until


async def run(
    csms: Csms, name: str, cp_id: str, lines: list[str] | None = None, **kw: object
) -> tuple[ScenarioResult, list[str]]:
    """Run a scenario; its printed lines go to ``lines`` (a fresh list unless given)."""
    lines = [] if lines is None else lines
    scenario = kw.pop("scenario", None) or load_scenario(name)
    result = await run_scenario(
        scenario,  # type: ignore[arg-type]
        url=csms.url,
        cp_id=cp_id,
        id_tag=TAG,
        say=lines.append,
        response_timeout=3.0,
        **kw,  # type: ignore[arg-type]
    )
    return result, lines


def age_s(ts: str) -> float:
    return (datetime.now(UTC) - datetime.fromisoformat(ts.replace("Z", "+00:00"))).total_seconds()


def test_every_builtin_parses() -> None:
    names = builtin_names()
    assert {
        "basic",
        "rejected_card",
        "remote_start_stop",
        "offline_session",
        "tx_retry",
        "two_sockets",
        "reconnect_storm",
        "silent_charger",
        "starts_anyway",
    } <= set(names)
    for name in names:
        assert load_scenario(name).steps


def test_bad_scenarios_are_refused_with_the_reason() -> None:
    with pytest.raises(ScenarioError, match="unknown do = 'jump'"):
        parse_scenario('[[steps]]\ndo = "jump"\n')
    with pytest.raises(ScenarioError, match=r"unknown keys \['colour'\]"):
        parse_scenario('[[steps]]\ndo = "boot"\ncolour = "red"\n')
    with pytest.raises(ScenarioError, match="not valid TOML"):
        parse_scenario("[[steps]\n")
    with pytest.raises(ScenarioError, match="unknown scenario 'nope'"):
        load_scenario("nope")


async def test_basic(csms: Csms) -> None:
    result, lines = await run(csms, "basic", "SC-BASIC")
    assert result.ok, result.error
    assert any("transactionId=" in line for line in lines)
    (tx,) = await csms.rows("SELECT * FROM transactions WHERE charger_id = 'SC-BASIC'")
    assert (tx["meter_start"], tx["meter_stop"]) == (1000, 2750)
    n = await csms.rows(
        "SELECT count(*) AS n FROM meter_values WHERE source = 'MeterValues' AND transaction_id = ?",
        tx["id"],
    )
    assert n[0]["n"] == 6  # 3 samples x (energy, power)


async def test_rejected_card(csms: Csms) -> None:
    result, _ = await run(csms, "rejected_card", "SC-REJ")
    assert result.ok, result.error
    assert result.charger is not None
    auth = [s for s in result.charger.steps if s.action == "Authorize"]
    assert auth[0].response == {"idTagInfo": {"status": "Invalid"}} or (
        auth[0].response["idTagInfo"]["status"] == "Invalid"  # type: ignore[index]
    )
    assert await csms.rows("SELECT * FROM transactions WHERE charger_id = 'SC-REJ'") == []


async def test_remote_start_stop_waits_for_the_csms(csms: Csms) -> None:
    lines: list[str] = []
    task = asyncio.create_task(run(csms, "remote_start_stop", "SC-REMOTE", lines=lines))
    gw = csms.app.gateway

    async def scenario_says(text: str) -> None:
        await wait_until(lambda: any(text in line for line in lines), timeout=10, what=text)

    await scenario_says("for the CSMS to send RemoteStartTransaction")
    assert (await gw.call("SC-REMOTE", "RemoteStartTransaction", {"idTag": TAG, "connectorId": 1}))[
        "status"
    ] == "Accepted"
    await scenario_says("for the CSMS to send RemoteStopTransaction")
    (row,) = await csms.rows("SELECT id FROM transactions WHERE charger_id = 'SC-REMOTE'")
    tx_id = row["id"]
    assert (await gw.call("SC-REMOTE", "RemoteStopTransaction", {"transactionId": tx_id}))[
        "status"
    ] == "Accepted"
    result, _ = await asyncio.wait_for(task, 10)
    assert result.ok, result.error
    (row,) = await csms.rows("SELECT stop_reason FROM transactions WHERE id = ?", tx_id)
    assert row["stop_reason"] == "Remote"


async def test_offline_session_replays_in_order_with_history(csms: Csms) -> None:
    result, lines = await run(csms, "offline_session", "SC-OFF")
    assert result.ok, result.error
    assert any("replayed 4 of 4" in line for line in lines)
    (tx,) = await csms.rows("SELECT * FROM transactions WHERE charger_id = 'SC-OFF'")
    assert 590 < age_s(tx["start_timestamp"]) < 700  # charger's time, not arrival time
    assert 290 < age_s(tx["stop_timestamp"]) < 400
    assert age_s(tx["start_received_at"]) < 60
    assert (tx["meter_start"], tx["meter_stop"]) == (5000, 6000)
    values = await csms.rows(
        "SELECT value, timestamp FROM meter_values WHERE transaction_id = ? AND source = 'MeterValues' "
        "AND measurand = 'Energy.Active.Import.Register' ORDER BY id",
        tx["id"],
    )
    assert [v["value"] for v in values] == ["5400", "5800"]
    assert values[0]["timestamp"] < values[1]["timestamp"]
    orphans = await csms.rows(
        "SELECT transaction_id, kind, meter_stop FROM stop_records WHERE charger_id = 'SC-OFF'"
    )
    assert orphans == [{"transaction_id": -1, "kind": "orphan", "meter_stop": 150}]


async def test_tx_retry_yields_the_same_transaction(csms: Csms) -> None:
    result, lines = await run(csms, "tx_retry", "SC-RETRY")
    assert result.ok, result.error
    assert any("same transactionId" in line for line in lines)
    rows = await csms.rows("SELECT id, meter_stop FROM transactions WHERE charger_id = 'SC-RETRY'")
    assert len(rows) == 1 and rows[0]["meter_stop"] == 2300
    dup = await csms.rows("SELECT kind FROM stop_records WHERE charger_id = 'SC-RETRY'")
    assert dup == [{"kind": "duplicate"}]


async def test_two_sockets_first_is_closed(csms: Csms) -> None:
    result, _lines = await run(csms, "two_sockets", "SC-TWO", keep_open=True)
    try:
        assert result.ok, result.error
        first = result.extra[0]
        assert not first.connected
        assert result.charger is not None and result.charger.connected
        assert csms.app.gateway.is_connected("SC-TWO")
    finally:
        for cp in [result.charger, *result.extra]:
            if cp is not None:
                await cp.close()


async def test_reconnect_storm_every_charger_ends_connected(csms: Csms) -> None:
    result, lines = await run(csms, "reconnect_storm", "STORM", keep_open=True, seed=42)
    try:
        assert result.ok, result.error
        assert len(result.extra) == 25 and all(cp.connected for cp in result.extra)
        live = [cid for cid in csms.app.gateway.connections() if cid.startswith("STORM-")]
        assert len(live) == 25
        assert any("25/25 chargers connected" in line for line in lines)
    finally:
        for cp in [result.charger, *result.extra]:
            if cp is not None:
                await cp.close()


async def test_silent_charger_sends_no_heartbeat(csms: Csms) -> None:
    scenario = load_scenario("silent_charger")
    short = dataclasses.replace(scenario, steps=(scenario.steps[0], {"do": "wait", "seconds": 0.5}))
    result, _ = await run(csms, "", "SC-SILENT", scenario=short, keep_open=True)
    try:
        assert result.ok, result.error
        assert result.charger is not None and result.charger.connected
        assert [s.action for s in result.charger.steps] == ["BootNotification"]
        assert csms.app.gateway.is_connected("SC-SILENT")
    finally:
        if result.charger is not None:
            await result.charger.close()


async def test_starts_anyway_transaction_is_stored(csms: Csms) -> None:
    result, _ = await run(csms, "starts_anyway", "SC-ANYWAY")
    assert result.ok, result.error
    (tx,) = await csms.rows("SELECT * FROM transactions WHERE charger_id = 'SC-ANYWAY'")
    assert tx["start_status"] == "Invalid"
    assert (tx["meter_start"], tx["stop_reason"]) == (700, "DeAuthorized")


def test_historical_helper_is_in_the_past() -> None:
    from simulator.chargepoint import shifted

    assert (
        timedelta(seconds=590)
        < timedelta(seconds=age_s(shifted(seconds=-600)))
        < timedelta(seconds=610)
    )
