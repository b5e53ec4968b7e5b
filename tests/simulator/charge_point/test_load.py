"""The load generator's counts and summary, against the echo server and against the real CSMS."""

from __future__ import annotations

import asyncio
import json
import sys

from simulator.load import LoadConfig, percentile, render, run_load, start_echo_server
from tests.simulator.charge_point.conftest import TAG, Csms


async def test_small_run_against_echo_counts_every_call() -> None:
    echo = await start_echo_server()
    try:
        report = await run_load(LoadConfig(url=echo.url, chargers=10, calls=200))
    finally:
        await echo.close()
    assert (report.calls_planned, report.calls_done, report.errors) == (200, 200, 0)
    assert sum(s.count for s in report.actions.values()) == 200
    starts, stops = (
        report.actions["StartTransaction"].count,
        report.actions["StopTransaction"].count,
    )
    assert starts == stops > 0  # every session is closed within the quota
    for stats in report.actions.values():
        assert 0 < stats.p50_ms <= stats.p95_ms <= stats.p99_ms <= stats.max_ms
    assert report.throughput > 0 and report.generator_capacity > 0
    table = render(report)
    assert "StartTransaction" in table and "200/200 calls" in table


async def test_open_loop_stateless_mix_against_echo() -> None:
    echo = await start_echo_server()
    try:
        report = await run_load(
            LoadConfig(url=echo.url, chargers=5, calls=100, rate=500, mix="Authorize,Heartbeat")
        )
    finally:
        await echo.close()
    assert report.mode == "open@500/s"
    assert {a: s.count for a, s in report.actions.items()} == {"Authorize": 50, "Heartbeat": 50}
    assert report.errors == 0


async def test_small_run_against_the_csms_persists_sessions(csms: Csms) -> None:
    report = await run_load(
        LoadConfig(url=csms.url, chargers=10, calls=200, id_tags=(TAG,), id_pattern="LD{n:03d}")
    )
    assert (report.calls_done, report.errors, report.connect_failures) == (200, 0, 0)
    starts = report.actions["StartTransaction"].count
    rows = await csms.rows(
        "SELECT count(*) AS n, count(stop_received_at) AS stopped FROM transactions "
        "WHERE charger_id LIKE 'LD%'"
    )
    assert rows == [{"n": starts, "stopped": starts}]
    assert report.actions["Authorize"].rejected == 0


async def test_unknown_tags_are_counted_as_rejected_not_errors(csms: Csms) -> None:
    report = await run_load(
        LoadConfig(url=csms.url, chargers=2, calls=20, id_tags=("NOPE",), id_pattern="LR{n}")
    )
    assert report.errors == 0
    authorize = report.actions["Authorize"]
    assert authorize.rejected == authorize.count > 0


async def test_tags_in_order_give_charger_n_the_nth_tag(csms: Csms) -> None:
    tags = (TAG, "ORDER2", "ORDER3")
    cfg = LoadConfig(
        url=csms.url, chargers=6, calls=60, id_tags=tags, id_pattern="LO{n}", tags_in_order=True
    )
    report = await run_load(cfg)
    assert report.errors == 0
    rows = await csms.rows(
        "SELECT DISTINCT charger_id, id_tag FROM transactions WHERE charger_id LIKE 'LO%'"
    )
    assert {(r["charger_id"], r["id_tag"]) for r in rows} == {
        (f"LO{n}", tags[(n - 1) % 3]) for n in range(1, 7)
    }


async def test_cli_json_output_and_calibration() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "simulator.cli",
        "load",
        "--url",
        "ws://127.0.0.1:9/ocpp",
        "--chargers",
        "4",
        "--calls",
        "40",
        "--calibrate",
        "--json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    report = json.loads(out)
    assert proc.returncode == 1  # nothing listens on port 9: a clear failure, not a crash
    assert report["connect_failures"] == 4
    assert report["calibration"]["echo_errors"] == 0
    assert report["calibration"]["echo_throughput"] > 0


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 99), percentile(values, 100)) == (
        50,
        99,
        100,
    )
    assert percentile([], 50) == 0.0
