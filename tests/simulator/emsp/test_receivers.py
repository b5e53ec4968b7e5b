"""Receivers (sessions, CDRs, locations, tariffs, command results), outages, commands."""

from __future__ import annotations

import aiohttp
import pytest

from tests.simulator.emsp.conftest import call

BASE = "/ocpi/emsp/2.2.1"


def session_obj(**kw):
    s = {
        "country_code": "NL", "party_id": "CPO", "id": "S-1",
        "start_date_time": "2024-05-03T12:00:05Z", "kwh": 0.0,
        "cdr_token": {"country_code": "NL", "party_id": "EMS", "uid": "CARD1", "type": "RFID",
                      "contract_id": "NL-EMS-1"},
        "auth_method": "AUTH_REQUEST", "authorization_reference": "Ref-ab12CD34",
        "location_id": "LOC-1", "evse_uid": "EVSE-1", "connector_id": "1",
        "currency": "EUR", "status": "PENDING", "last_updated": "2024-05-03T12:00:05Z",
    }  # fmt: skip
    s.update(kw)
    return s


def period(t: str, kwh: float):
    return {"start_date_time": t, "dimensions": [{"type": "ENERGY", "volume": kwh}]}


def cdr_obj(cid: str = "CDR-1"):
    return {
        "country_code": "NL", "party_id": "CPO", "id": cid,
        "start_date_time": "2024-05-03T12:00:05Z", "end_date_time": "2024-05-03T13:00:00Z",
        "session_id": "S-1",
        "cdr_token": {"country_code": "NL", "party_id": "EMS", "uid": "CARD1", "type": "RFID",
                      "contract_id": "NL-EMS-1"},
        "auth_method": "AUTH_REQUEST", "authorization_reference": "Ref-ab12CD34",
        "cdr_location": {"id": "LOC-1"}, "currency": "EUR",
        "charging_periods": [period("2024-05-03T12:00:05Z", 5.0)],
        "total_cost": {"excl_vat": 1.0}, "total_energy": 5.0, "total_time": 1.0,
        "last_updated": "2024-05-03T13:00:00Z",
    }  # fmt: skip


async def test_session_put_patch_semantics(paired):
    emsp, cpo = paired
    url = f"{emsp.base_url}{BASE}/sessions/NL/CPO/S-1"
    r = await cpo.call(
        "PUT", url, session_obj(charging_periods=[period("2024-05-03T12:00:05Z", 1)])
    )
    assert r["status_code"] == 1000
    r = await cpo.call(
        "PATCH", url,
        {"status": "ACTIVE", "kwh": 2.0, "charging_periods": [period("2024-05-03T12:10:00Z", 1)],
         "last_updated": "2024-05-03T12:10:00Z"},
    )  # fmt: skip
    assert r["status_code"] == 1000
    s = emsp.sessions["s-1"]
    assert s["status"] == "ACTIVE" and s["kwh"] == 2.0 and len(s["charging_periods"]) == 2
    # PATCH with no periods leaves them; PUT without periods removes them.
    await cpo.call("PATCH", url, {"kwh": 3.0, "last_updated": "2024-05-03T12:20:00Z"})
    assert len(emsp.sessions["S-1"]["charging_periods"]) == 2
    await cpo.call("PUT", url, session_obj(status="COMPLETED"))
    assert "charging_periods" not in emsp.sessions["S-1"]
    assert [m for m, _, _ in emsp.session_events] == ["PUT", "PATCH", "PATCH", "PUT"]
    assert emsp.violations == []
    got = await cpo.call("GET", url)
    assert got["data"]["status"] == "COMPLETED"


async def test_session_violations_are_2001_and_recorded(paired):
    emsp, cpo = paired
    url = f"{emsp.base_url}{BASE}/sessions/NL/CPO/S-1"
    r = await cpo.call("PUT", url, session_obj())
    r = await cpo.call("PATCH", url, {"status": "ACTIVE"})
    assert r["status_code"] == 2001 and "last_updated" in r["status_message"]
    r = await cpo.call("PUT", url, session_obj(last_updated="2024-05-03T12:00:05+00:00"))
    assert r["status_code"] == 2001
    r = await cpo.call("PUT", f"{emsp.base_url}{BASE}/sessions/NL/CPO/OTHER", session_obj())
    assert r["status_code"] == 2001
    bad = session_obj()
    del bad["cdr_token"]
    r = await cpo.call("PUT", url, bad)
    assert r["status_code"] == 2001 and "cdr_token" in r["status_message"]
    assert len(emsp.violations) == 4
    assert emsp.sessions["S-1"]["status"] == "PENDING"  # nothing applied


async def test_cdr_post_location_header_and_duplicates(paired, http):
    emsp, cpo = paired
    cdrs_url = f"{emsp.base_url}{BASE}/cdrs"
    status, body, headers = await call(http, "POST", cdrs_url, cpo.token_out, cdr_obj())
    assert status == 201 and body["status_code"] == 1000
    location = headers["Location"]
    status, body, _ = await call(http, "GET", location, cpo.token_out)
    assert status == 200 and body["data"]["authorization_reference"] == "Ref-ab12CD34"
    status, _, headers = await call(http, "POST", cdrs_url, cpo.token_out, cdr_obj())
    assert status == 200 and headers["Location"] == location
    assert len(emsp.cdrs) == 1 and len(emsp.cdr_posts) == 2 and emsp.cdr_duplicates == {"CDR-1": 1}
    bad = cdr_obj("CDR-2")
    del bad["total_cost"]
    status, body, _ = await call(http, "POST", cdrs_url, cpo.token_out, bad)
    assert body["status_code"] == 2001 and "CDR-2" not in emsp.cdrs


async def test_invalid_json_body_is_http_400(paired, http):
    emsp, cpo = paired
    from tests.simulator.emsp.conftest import auth

    headers = {**auth(cpo.token_out), "Content-Type": "application/json"}
    async with http.post(f"{emsp.base_url}{BASE}/cdrs", data=b"{nope", headers=headers) as r:
        assert r.status == 400
        assert (await r.json())["status_code"] == 2001
    assert emsp.requests[-1].body == "{nope"


async def test_locations_evse_status_patch_and_tariffs(paired):
    emsp, cpo = paired
    loc = {
        "country_code": "NL", "party_id": "CPO", "id": "LOC-1", "publish": True,
        "address": "Street 1", "city": "Town", "country": "NLD",
        "coordinates": {"latitude": "52.00000", "longitude": "4.00000"},
        "time_zone": "Europe/Amsterdam", "last_updated": "2024-05-01T00:00:00Z",
        "evses": [{"uid": "EVSE-1", "status": "AVAILABLE", "connectors": [],
                   "last_updated": "2024-05-01T00:00:00Z"}],
    }  # fmt: skip
    url = f"{emsp.base_url}{BASE}/locations/NL/CPO/LOC-1"
    assert (await cpo.call("PUT", url, loc))["status_code"] == 1000
    r = await cpo.call(
        "PATCH", url + "/EVSE-1", {"status": "CHARGING", "last_updated": "2024-05-03T12:00:07Z"}
    )
    assert r["status_code"] == 1000
    assert emsp.evse_status("loc-1", "evse-1") == "CHARGING"
    assert emsp.locations["LOC-1"]["last_updated"] == "2024-05-03T12:00:07Z"
    r = await cpo.call(
        "PATCH", url + "/EVSE-9", {"status": "CHARGING", "last_updated": "2024-05-03T12:00:07Z"}
    )
    assert r["status_code"] == 2001
    tariff = {
        "country_code": "NL", "party_id": "CPO", "id": "T-1", "currency": "EUR",
        "elements": [{"price_components": [{"type": "ENERGY", "price": 0.3, "step_size": 1}]}],
        "last_updated": "2024-05-01T00:00:00Z",
    }  # fmt: skip
    turl = f"{emsp.base_url}{BASE}/tariffs/NL/CPO/T-1"
    assert (await cpo.call("PUT", turl, tariff))["status_code"] == 1000
    assert "T-1" in emsp.tariffs
    assert (await cpo.call("DELETE", turl))["status_code"] == 1000
    assert "T-1" not in emsp.tariffs


async def test_outage_503_and_refused_connections_then_back_up(paired, http):
    emsp, cpo = paired
    await emsp.set_down("503")
    async with http.get(emsp.versions_url) as r:
        assert r.status == 503
    await emsp.set_down("refuse")
    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession() as fresh, fresh.get(emsp.versions_url):
            pass
    await emsp.set_down("up")
    status, _, _ = await call(http, "GET", emsp.versions_url, cpo.token_out)
    assert status == 200


async def test_commands_round_trip_with_command_result(paired):
    emsp, cpo = paired
    emsp.add_token("CARD1")
    sent = await emsp.start_session("LOC-1", "EVSE-1", "CARD1", "Ref-Cmd1aB")
    assert sent.reply.http_status == 200 and sent.result == "ACCEPTED"
    name, body = cpo.commands[-1]
    assert name == "START_SESSION"
    assert body["token"]["uid"] == "CARD1" and body["authorization_reference"] == "Ref-Cmd1aB"
    assert body["response_url"] == sent.response_url
    result = await emsp.wait_command_result(sent.ref, timeout=2)
    assert result == {"result": "ACCEPTED"}
    cpo.command_result = "REJECTED"
    stop = await emsp.stop_session("S-1")
    assert (await emsp.wait_command_result(stop.ref, timeout=2))["result"] == "REJECTED"
    assert cpo.commands[-1] == (
        "STOP_SESSION",
        {"response_url": stop.response_url, "session_id": "S-1"},
    )
