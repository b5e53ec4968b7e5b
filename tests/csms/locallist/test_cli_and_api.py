"""``csms local-list`` and ``/api/local-lists`` against a running CSMS (own cards only, no
roaming) and the real simulator: status, operator sync, mode override, own-card changes."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from csms.cli import main
from csms.system import System
from simulator.chargepoint import SimulatedChargePoint, charger_url
from tests.support.csms import ADMIN_TOKEN, admin_session, admin_url, ocpp_url, running_csms
from tests.support.waiting import stays_false, wait_until

LISTS = {"enabled": True, "debounce_s": 0.05, "connect_delay_s": 0.0, "retry_initial_s": 0.1}


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[System]:
    async with running_csms(
        tmp_path, server={"unknown_chargers": "accept"}, local_lists=LISTS
    ) as system:
        yield system


_LOG_LINE = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}")


async def cli_json(app: System, capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    conn = ["--admin-url", admin_url(app), "--admin-token", ADMIN_TOKEN, "--json"]
    capsys.readouterr()
    code = await asyncio.to_thread(main, [*argv, *conn])
    out, err = capsys.readouterr()
    assert code == 0, err
    # The in-process server's log lines share stdout (and may hold braces): skip them.
    out = "".join(line for line in out.splitlines(keepends=True) if not _LOG_LINE.match(line))
    return json.loads(out[out.index("{") :])


def sent(cp: SimulatedChargePoint) -> list[dict[str, Any]]:
    return [p for a, p in cp.received_calls if a == "SendLocalList"]


async def test_own_cards_follow_writes_and_the_operator_can_sync_and_turn_off(
    app: System, capsys: pytest.CaptureFixture[str]
) -> None:
    async with admin_session(app) as http:
        assert (await http.post("/api/tokens", json={"id_tag": "OWN1"})).status in (200, 201)
        async with SimulatedChargePoint.connect(ocpp_url(app), "CP-L", heartbeat=False) as cp:
            await cp.boot()
            await wait_until(lambda: set(cp.local_list) == {"OWN1"}, what="the own card listed")

            async def recorded() -> bool:  # stored once the charger's answer is in
                async with http.get("/api/local-lists/CP-L") as r:
                    return bool((await r.json())["version"] == 1)

            await wait_until(recorded, what="the accepted version recorded")
            status = await cli_json(app, capsys, "local-list", "status", "CP-L")
            assert status["version"] == cp.local_list_version == 1
            assert status["size"] == 1 and status["last_result"] == "ok"
            assert status["max_length"] == 1000 and status["send_max_length"] == 100

            # An own-card write reaches the charger as a Differential.
            assert (await http.post("/api/tokens", json={"id_tag": "OWN2"})).status in (200, 201)
            await wait_until(lambda: "OWN2" in cp.local_list, what="the new card listed")
            assert sent(cp)[-1]["updateType"] == "Differential"
            assert (await http.post("/api/tokens/OWN1/block")).status == 200
            await wait_until(lambda: "OWN1" not in cp.local_list, what="the blocked card gone")

            # The operator asks for the whole list.
            answer = await cli_json(app, capsys, "local-list", "sync", "CP-L")
            assert answer == {"charger_id": "CP-L", "queued": "Full"}
            await wait_until(lambda: sent(cp)[-1]["updateType"] == "Full", what="a Full list")
            assert set(cp.local_list) == {"OWN2"}

            # Turned off: later changes are not sent.
            off = await cli_json(app, capsys, "local-list", "mode", "CP-L", "off")
            assert off["mode"] == "off"
            count = len(sent(cp))
            assert (await http.post("/api/tokens", json={"id_tag": "OWN3"})).status in (200, 201)
            await stays_false(lambda: len(sent(cp)) > count, period=0.5, what="a list sent")
            every = await cli_json(app, capsys, "local-list", "status")
            [row] = [c for c in every["chargers"] if c["charger_id"] == "CP-L"]
            assert row["connected"] is True and row["last_result"] == "disabled"


async def test_api_errors_are_clear(app: System) -> None:
    async with admin_session(app) as http:
        r = await http.get("/api/local-lists/NOPE")
        assert r.status == 404 and (await r.json())["error"] == "unknown_charger"
        async with SimulatedChargePoint.connect(ocpp_url(app), "CP-E", heartbeat=False) as cp:
            await cp.boot()
            r = await http.post("/api/local-lists/CP-E/mode", json={"mode": "sometimes"})
            assert r.status == 400 and (await r.json())["error"] == "invalid_body"
            r = await http.post("/api/local-lists/CP-E/mode", data="[1]")
            assert r.status == 400
        r = await http.post("/api/local-lists/CP-E/sync")
        assert r.status == 409 and (await r.json())["error"] == "charger_offline"


async def test_the_list_version_survives_a_restart_and_nothing_is_resent(tmp_path: Path) -> None:
    cp = SimulatedChargePoint("ws://127.0.0.1:1/ocpp", "CP-R", heartbeat=False)
    try:
        async with running_csms(
            tmp_path, server={"unknown_chargers": "accept"}, local_lists=LISTS
        ) as first:
            async with admin_session(first) as http:
                assert (await http.post("/api/tokens", json={"id_tag": "OWN1"})).status < 300
            cp.session.url = charger_url(ocpp_url(first), "CP-R")
            await cp.open()
            await cp.boot()
            await wait_until(lambda: cp.local_list_version == 1, what="the first list")

            async def recorded() -> bool:
                async with admin_session(first) as http, http.get("/api/local-lists/CP-R") as r:
                    return bool((await r.json())["version"] == 1)

            await wait_until(recorded, what="version 1 stored")
            await cp.disconnect()
        async with running_csms(
            tmp_path, server={"unknown_chargers": "accept"}, local_lists=LISTS
        ) as second:
            before = len(sent(cp))
            cp.session.url = charger_url(ocpp_url(second), "CP-R")
            await cp.reconnect()
            await cp.wait_for_call("GetLocalListVersion", count=2)  # read again at connect

            async def in_sync() -> bool:
                async with admin_session(second) as http, http.get("/api/local-lists/CP-R") as r:
                    return bool((await r.json())["last_detail"] == "in sync at version 1")

            await wait_until(in_sync, what="the versions found equal")
            assert len(sent(cp)) == before
            async with admin_session(second) as http:
                assert (await http.post("/api/tokens", json={"id_tag": "OWN2"})).status < 300
                await wait_until(lambda: "OWN2" in cp.local_list, what="the new card")
            [update] = sent(cp)[before:]
            assert update["updateType"] == "Differential" and update["listVersion"] == 2
    finally:
        await cp.close()
