"""``csms-sim`` as an operator runs it: a real subprocess against the real CSMS."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from tests.simulator.charge_point.conftest import TAG, Csms
from tests.support.waiting import wait_until


async def csms_sim(*args: str, timeout: float = 30) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "simulator.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_run_basic_prints_steps_and_persists(csms: Csms) -> None:
    code, out, err = await csms_sim(
        "run", "--url", csms.url, "--id", "CP-CLI", "--id-tag", TAG, "--scenario", "basic"
    )
    assert code == 0, err
    assert "-> BootNotification" in out and "Accepted" in out
    assert " ms" in out and out.rstrip().endswith("ok")
    rows = await csms.rows(
        "SELECT meter_start, meter_stop, stop_reason FROM transactions WHERE charger_id = 'CP-CLI'"
    )
    assert rows == [{"meter_start": 1000, "meter_stop": 2750, "stop_reason": "Local"}]


async def test_run_exits_non_zero_when_refused(csms: Csms) -> None:
    await csms.add_charger("CP-LOCKED", password="right-password")
    code, out, err = await csms_sim(
        "run", "--url", csms.url, "--id", "CP-LOCKED", "--password", "wrong-password"
    )
    assert code == 1
    assert "HTTP 401" in err
    assert "wrong-password" not in out + err


async def test_run_fails_clearly_on_a_rejected_card(csms: Csms) -> None:
    code, _out, err = await csms_sim(
        "run", "--url", csms.url, "--id", "CP-CLI2", "--id-tag", "NOT-KNOWN", "--scenario", "basic"
    )
    assert code == 1
    assert "step 2 (authorize) failed: expected 'Accepted', got 'Invalid'" in err


async def test_fleet_run_uses_the_id_pattern(csms: Csms) -> None:
    code, out, err = await csms_sim(
        "run",
        "--url",
        csms.url,
        "--chargers",
        "3",
        "--id-pattern",
        "FLEET{n:02d}",
        "--id-tags",
        TAG,
        "--seed",
        "3",
    )
    assert code == 0, err
    assert "3/3 chargers completed scenario basic" in out
    rows = await csms.rows("SELECT DISTINCT charger_id FROM transactions ORDER BY charger_id")
    assert [r["charger_id"] for r in rows] == ["FLEET01", "FLEET02", "FLEET03"]


async def test_serve_answers_csms_calls_until_stopped(csms: Csms) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "simulator.cli",
        "serve",
        "--url",
        csms.url,
        "--id",
        "CP-SERVE",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 15)
        assert line.decode().startswith("CP-SERVE ready")
        answer = await csms.app.gateway.call("CP-SERVE", "RemoteStartTransaction", {"idTag": TAG})
        assert answer == {"status": "Accepted"}
        rows: list[dict[str, Any]] = await wait_until(
            lambda: csms.rows("SELECT id FROM transactions WHERE charger_id = 'CP-SERVE'"),
            timeout=5,
            what="the remotely started transaction in the CSMS",
        )
        assert len(rows) == 1
    finally:
        proc.terminate()
        code = await asyncio.wait_for(proc.wait(), 10)
    assert code == 0
