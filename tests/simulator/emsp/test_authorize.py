"""Real-time authorize answers and every switchable misbehaviour, flipped while running."""

from __future__ import annotations

import asyncio
import re

import aiohttp
import pytest

from simulator.emsp import AuthorizeMode
from tests.simulator.emsp.conftest import auth, call
from tests.support.waiting import stays_false


def _url(emsp, uid: str, type_: str = "RFID") -> str:
    return f"{emsp.base_url}/ocpi/emsp/2.2.1/tokens/{uid}/authorize?type={type_}"


async def test_allowed_answer_carries_token_and_a_recorded_mixed_case_reference(paired, http):
    emsp, cpo = paired
    emsp.add_token("04A1B2C3", whitelist="NEVER")
    body_in = {"location_id": "LOC-1", "evse_uids": ["EVSE-1"]}
    status, body, headers = await call(
        http, "POST", _url(emsp, "04a1b2c3"), cpo.token_out, body_in,
        headers={"X-Request-ID": "r-9", "OCPI-from-party-id": "CPO", "OCPI-from-country-code": "NL"},
    )  # fmt: skip
    assert status == 200 and body["status_code"] == 1000
    info = body["data"]
    assert info["allowed"] == "ALLOWED"
    assert info["token"]["uid"] == "04A1B2C3" and info["token"]["whitelist"] == "NEVER"
    assert info["location"] == body_in
    ref = info["authorization_reference"]
    assert re.fullmatch(r"Ref-[0-9a-fA-F]{8}", ref) and ref != ref.upper() and ref != ref.lower()
    assert emsp.authorizations[-1].authorization_reference == ref
    assert emsp.references_for("04A1B2C3") == [ref]
    assert emsp.authorize_counts == {"04A1B2C3": 1}
    assert headers["X-Request-ID"] == "r-9"
    assert headers["OCPI-to-party-id"] == "CPO" and headers["OCPI-from-party-id"] == "EMS"


@pytest.mark.parametrize("allowed", ["BLOCKED", "EXPIRED", "NO_CREDIT", "NOT_ALLOWED"])
async def test_per_token_verdicts_come_with_http_200(paired, http, allowed):
    emsp, cpo = paired
    emsp.add_token("CARD1")
    emsp.set_allowed("card1", allowed)
    status, body, _ = await call(http, "POST", _url(emsp, "CARD1"), cpo.token_out)
    assert status == 200 and body["data"]["allowed"] == allowed
    assert "location" not in body["data"]


async def test_unknown_token_is_404_with_2004_and_type_matters(paired, http):
    emsp, cpo = paired
    emsp.add_token("CARD1", type="RFID")
    status, body, _ = await call(http, "POST", _url(emsp, "NOPE"), cpo.token_out)
    assert status == 404 and body["status_code"] == 2004 and "data" not in body
    status, body, _ = await call(http, "POST", _url(emsp, "CARD1", "APP_USER"), cpo.token_out)
    assert status == 404
    assert emsp.authorize_counts == {"NOPE": 1, "CARD1": 1}


async def test_delay_hang_release_and_switching_back(paired, http):
    emsp, cpo = paired
    emsp.add_token("CARD1")
    emsp.set_authorize_behaviour("delay", delay_ms=150)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    status, _, _ = await call(http, "POST", _url(emsp, "CARD1"), cpo.token_out)
    assert status == 200 and loop.time() - t0 >= 0.15
    emsp.set_authorize_behaviour(AuthorizeMode.HANG)
    pending = asyncio.create_task(call(http, "POST", _url(emsp, "CARD1"), cpo.token_out))
    await emsp.wait_until(lambda: emsp.authorize_counts.get("CARD1") == 2)
    await stays_false(pending.done, period=0.05, what="the hung authorize answering")
    emsp.release_hung()
    status, body, _ = await asyncio.wait_for(pending, 2)
    assert status == 200 and body["data"]["allowed"] == "ALLOWED"
    # Switching to normal also releases anything still hanging.
    emsp.set_authorize_behaviour("hang")
    pending = asyncio.create_task(call(http, "POST", _url(emsp, "CARD1"), cpo.token_out))
    await emsp.wait_until(lambda: emsp.authorize_counts.get("CARD1") == 3)
    emsp.set_authorize_behaviour("normal")
    status, _, _ = await asyncio.wait_for(pending, 2)
    assert status == 200


async def test_http500_malformed_non_envelope_unknown(paired, http):
    emsp, cpo = paired
    emsp.add_token("CARD1")
    emsp.set_authorize_behaviour("http500")
    status, body, _ = await call(http, "POST", _url(emsp, "CARD1"), cpo.token_out)
    assert status == 500 and isinstance(body, str)
    emsp.set_authorize_behaviour("malformed")
    status, body, _ = await call(http, "POST", _url(emsp, "CARD1"), cpo.token_out)
    assert status == 200 and isinstance(body, str) and body.startswith('{"data"')
    emsp.set_authorize_behaviour("non_envelope")
    status, body, _ = await call(http, "POST", _url(emsp, "CARD1"), cpo.token_out)
    assert status == 200 and "status_code" not in body and body["allowed"] == "ALLOWED"
    emsp.set_authorize_behaviour("unknown")
    status, body, _ = await call(http, "POST", _url(emsp, "CARD1"), cpo.token_out)
    assert status == 404 and body["status_code"] == 2004
    assert emsp.authorize_counts["CARD1"] == 4
    assert emsp.authorizations == []  # none of these answered from the table


async def test_drop_closes_the_socket_without_an_answer(paired, http):
    emsp, cpo = paired
    emsp.add_token("CARD1")
    emsp.set_authorize_behaviour("drop")
    with pytest.raises(aiohttp.ClientError):
        await call(http, "POST", _url(emsp, "CARD1"), cpo.token_out)
    assert emsp.authorize_counts["CARD1"] == 1


async def test_per_uid_behaviour_overrides_global(paired, http):
    emsp, cpo = paired
    emsp.add_token("SLOW")
    emsp.add_token("FAST")
    emsp.set_authorize_behaviour("http500", uid="slow")
    assert (await call(http, "POST", _url(emsp, "SLOW"), cpo.token_out))[0] == 500
    assert (await call(http, "POST", _url(emsp, "FAST"), cpo.token_out))[0] == 200


async def test_behaviour_switched_through_the_control_endpoint(paired, http):
    emsp, cpo = paired
    emsp.add_token("CARD1")
    ctl = emsp.control_url
    async with http.post(f"{ctl}/control/behaviour", json={"mode": "http500"}) as r:
        assert r.status == 200
    assert (await call(http, "POST", _url(emsp, "CARD1"), cpo.token_out))[0] == 500
    async with http.post(f"{ctl}/control/behaviour", json={"mode": "bogus"}) as r:
        assert r.status == 400 and "bogus" in (await r.json())["error"]
    assert emsp.behaviour.authorize.mode == AuthorizeMode.HTTP_500  # unchanged by bad input
    async with http.post(f"{ctl}/control/tokens/CARD1/allowed", json={"allowed": "EXPIRED"}) as r:
        assert r.status == 200
    async with http.post(f"{ctl}/control/behaviour", json={"mode": "normal"}) as r:
        assert r.status == 200
    _, body, _ = await call(http, "POST", _url(emsp, "CARD1"), cpo.token_out)
    assert body["data"]["allowed"] == "EXPIRED"
    async with http.get(f"{ctl}/control/state") as r:
        state = await r.json()
    assert state["authorize_counts"] == {"CARD1": 2} and state["registered"] is True


async def test_raw_token_header_is_accepted_on_authorize(paired, http):
    emsp, cpo = paired
    emsp.add_token("CARD1")
    async with http.post(_url(emsp, "CARD1"), headers=auth(cpo.token_out, raw=True)) as r:
        assert r.status == 200
