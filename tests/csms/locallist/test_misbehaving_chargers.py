"""Chargers that hang or refuse: the list sync records it, retries, and never holds up the
charger's own messages."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from csms.store.id_tags import IdTagRepo
from csms.system import System
from tests.support.csms import admin_session, ocpp_url, running_csms
from tests.support.raw_cp import HANG, Error, RawChargePoint, Result
from tests.support.waiting import wait_until

LISTS = {"enabled": True, "debounce_s": 0.05, "connect_delay_s": 0.0, "retry_initial_s": 0.1}
PROFILES = {
    "configurationKey": [
        {
            "key": "SupportedFeatureProfiles",
            "readonly": True,
            "value": "Core,LocalAuthListManagement",
        },
        {"key": "LocalAuthListMaxLength", "readonly": True, "value": "50"},
        {"key": "SendLocalListMaxLength", "readonly": True, "value": "10"},
    ]
}


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[System]:
    async with running_csms(
        tmp_path,
        server={"unknown_chargers": "accept", "call_timeout_s": 0.3},
        local_lists=LISTS,
    ) as system:
        await IdTagRepo(system.db).add("OWN1")
        yield system


async def state_of(app: System, cp_id: str) -> dict[str, Any]:
    async with admin_session(app) as http, http.get(f"/api/local-lists/{cp_id}") as r:
        return dict(await r.json())


async def test_a_charger_that_never_answers_sendlocallist_is_retried_and_still_served(
    app: System,
) -> None:
    def reply(action: str, payload: dict[str, Any]) -> Any:
        if action == "GetConfiguration":
            return Result(PROFILES)
        if action == "GetLocalListVersion":
            return Result({"listVersion": 0})
        return HANG

    cp = await RawChargePoint.connect(ocpp_url(app), "CP-HANG", reply)
    try:
        await wait_until(
            lambda: sum(a == "SendLocalList" for a, _ in cp.received) >= 2,
            what="the unanswered list sent again",
        )
        state = await state_of(app, "CP-HANG")
        assert state["last_result"] == "failed" and "SendLocalList" in state["last_detail"]
        assert state["version"] == 0 and state["size"] == 0
        # Meanwhile the charger's own messages are answered at once.
        started = time.perf_counter()
        answer = await cp.call("Heartbeat", {}, timeout=2.0)
        assert answer[0] == 3 and time.perf_counter() - started < 0.25
    finally:
        await cp.close()


async def test_a_callerror_to_getconfiguration_is_recorded(app: System) -> None:
    def reply(action: str, payload: dict[str, Any]) -> Any:
        return Error("NotImplemented", "no configuration here")

    cp = await RawChargePoint.connect(ocpp_url(app), "CP-ERR", reply)
    try:

        async def failed() -> bool:
            state = await state_of(app, "CP-ERR")
            return state["last_result"] == "failed" and "NotImplemented" in state["last_detail"]

        await wait_until(failed, what="the failed read recorded")
        assert [a for a, _ in cp.received if a == "SendLocalList"] == []
    finally:
        await cp.close()


async def test_a_charger_answering_failed_keeps_its_version_and_is_retried(app: System) -> None:
    def reply(action: str, payload: dict[str, Any]) -> Any:
        if action == "GetConfiguration":
            return Result(PROFILES)
        if action == "GetLocalListVersion":
            return Result({"listVersion": 0})
        return Result({"status": "Failed"})

    cp = await RawChargePoint.connect(ocpp_url(app), "CP-FAIL", reply)
    try:
        await wait_until(
            lambda: sum(a == "SendLocalList" for a, _ in cp.received) >= 2,
            what="the refused list sent again",
        )
        [first, *_] = [p for a, p in cp.received if a == "SendLocalList"]
        assert first["updateType"] == "Full" and first["listVersion"] == 1
        state = await state_of(app, "CP-FAIL")
        assert state["last_result"] == "failed" and state["version"] == 0
    finally:
        await cp.close()
