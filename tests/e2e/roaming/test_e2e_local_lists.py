"""Roaming cards in chargers' Local Authorization Lists, end to end: the real CSMS, the
eMSP sandbox pushing tokens over OCPI, and the simulator answering SendLocalList."""

from __future__ import annotations

from typing import Any

from csms.store.id_tags import IdTagRepo
from simulator.chargepoint import SimulatedChargePoint, shifted
from tests.support.csms import admin_session, ocpp_url
from tests.support.waiting import wait_until

LISTS = {
    "enabled": True,
    "debounce_s": 0.05,
    "connect_delay_s": 0.0,
    "retry_initial_s": 0.1,
    "retry_max_s": 0.5,
}
OFFLINE_OK = [f"AO{i:04d}" for i in range(50)]
NEVER = [f"NV{i:04d}" for i in range(5)]


def list_calls(cp: SimulatedChargePoint) -> list[dict[str, Any]]:
    return [p for action, p in cp.received_calls if action == "SendLocalList"]


async def recorded(w: Any, cp: SimulatedChargePoint) -> dict[str, Any]:
    """The CSMS's view of the list once it has stored the version the charger holds (it
    stores after the charger's answer is in)."""
    body: dict[str, Any] = {}

    async def same() -> bool:
        async with admin_session(w.app) as http, http.get(f"/api/local-lists/{cp.id}") as r:
            assert r.status == 200
            body.update(await r.json())
        return bool(body["version"] == cp.local_list_version)

    await wait_until(same, what="the accepted version recorded")
    return body


async def push_whitelists(w: Any) -> None:
    for uid in OFFLINE_OK:
        w.emsp.add_token(uid, whitelist="ALLOWED_OFFLINE")
    for uid in NEVER:
        w.emsp.add_token(uid, whitelist="NEVER")
    replies = await w.emsp.push_tokens()
    assert all(r.ok for r in replies)


async def test_whitelisted_tokens_reach_the_charger_and_a_block_is_a_differential(make_world):
    async with make_world(local_lists=LISTS) as w:
        await IdTagRepo(w.app.db).add("OWNCARD1")
        await push_whitelists(w)
        async with w.charger() as cp:
            wanted = {*OFFLINE_OK, "OWNCARD1"}
            await wait_until(lambda: set(cp.local_list) == wanted, what="the whitelisted list")
            assert not set(NEVER) & set(cp.local_list)
            info = cp.local_list["AO0001"]
            assert info["status"] == "Accepted" and info["expiry_date"]
            [full] = list_calls(cp)
            assert full["updateType"] == "Full"  # 51 entries fit in one message (max 100)
            version = cp.local_list_version

            reply = await w.emsp.block_token("AO0007")
            assert reply.ok
            await wait_until(lambda: "AO0007" not in cp.local_list, what="the blocked card removed")
            last = list_calls(cp)[-1]
            assert last["updateType"] == "Differential"
            assert last["localAuthorizationList"] == [{"idTag": "AO0007"}]
            assert cp.local_list_version == version + 1
            assert len(cp.local_list) == 50

            body = await recorded(w, cp)
            assert body["size"] == 50
            assert body["last_result"] == "ok" and body["supported"] is True
            assert body["connected"] is True
            partners = {e["id_tag"]: e["partner"] for e in body["entries"]}
            assert partners["AO0001"] == "NL-EMS" and partners["OWNCARD1"] is None


async def test_a_list_longer_than_send_max_goes_in_chunks(make_world):
    async with make_world(local_lists=LISTS) as w:
        await push_whitelists(w)
        async with w.charger(send_local_list_max_length=20) as cp:
            await wait_until(lambda: len(cp.local_list) == 50, what="the chunked list")
            calls = list_calls(cp)
            assert [c["updateType"] for c in calls] == ["Full", "Differential", "Differential"]
            assert [len(c["localAuthorizationList"]) for c in calls] == [20, 20, 10]
            versions = [c["listVersion"] for c in calls]
            assert versions == [versions[0], versions[0] + 1, versions[0] + 2]
            assert cp.local_list_version == versions[-1]


async def test_the_selection_keeps_own_cards_first_within_the_charger_maximum(make_world):
    async with make_world(local_lists=LISTS) as w:
        await IdTagRepo(w.app.db).add("OWNCARD1")
        await push_whitelists(w)
        async with w.charger(local_list_max_length=10) as cp:
            await wait_until(lambda: len(cp.local_list) == 10, what="a list cut to 10")
            assert "OWNCARD1" in cp.local_list
            assert not set(NEVER) & set(cp.local_list)


async def test_a_charger_without_local_list_management_gets_no_list(make_world):
    async with make_world(local_lists=LISTS) as w:
        await push_whitelists(w)
        profiles = "Core,FirmwareManagement,Reservation,SmartCharging,RemoteTrigger"
        async with w.charger(feature_profiles=profiles) as cp:

            async def told() -> bool:
                async with (
                    admin_session(w.app) as http,
                    http.get("/api/local-lists/CP1") as resp,
                ):
                    return bool((await resp.json())["last_result"] == "not_supported")

            await wait_until(told, what="the charger marked without list support")
            assert list_calls(cp) == [] and cp.local_list == {}
            assert any(a == "GetConfiguration" for a, _ in cp.received_calls)


async def test_offline_start_from_the_list_is_replayed_and_billed_as_whitelist(make_world):
    async with make_world(local_lists=LISTS) as w:
        await push_whitelists(w)
        async with w.charger() as cp:
            await wait_until(lambda: len(cp.local_list) == 50, what="the list")
            await recorded(w, cp)
            await cp.disconnect()
            decision = await cp.authorize("AO0003")  # offline: the charger decides
            assert decision["idTagInfo"]["status"] == "Accepted"
            assert (await cp.authorize("NV0001"))["idTagInfo"]["status"] == "Invalid"
            await cp.start_transaction(
                1, "AO0003", meter_start=1000, timestamp=shifted(seconds=-600), meter_loop=False
            )
            await cp.stop_transaction(
                1, meter_stop=8000, reason="Local", timestamp=shifted(seconds=-60)
            )
            assert len(cp.offline_queue) == 2
            steps = await cp.reconnect()
            assert [s.action for s in steps] == ["StartTransaction", "StopTransaction"]
            assert not cp.offline_queue
            start = steps[0].response
            assert start is not None and start["idTagInfo"]["status"] == "Accepted"

            await w.emsp.wait_until(lambda: len(w.emsp.cdrs) == 1, timeout=10)
            [session] = list(w.emsp.sessions.values())
            [cdr] = list(w.emsp.cdrs.values())
            assert session["auth_method"] == "WHITELIST"
            assert cdr["auth_method"] == "WHITELIST"
            assert cdr["cdr_token"]["uid"] == "AO0003"
            assert cdr["total_energy"] == 7.0
            # Decided from the list: the eMSP was not asked after the fact.
            assert w.emsp.requests_to("/authorize") == []
            async with (
                admin_session(w.app) as http,
                http.get("/api/authorizations", params={"charger_id": "CP1"}) as resp,
            ):
                rows = (await resp.json())["authorizations"]
            [start_row] = [r for r in rows if r["trigger"] == "StartTransaction"]
            assert start_row["status"] == "Accepted" and "local list" in start_row["reason"]


async def test_an_online_start_of_a_listed_allowed_offline_token_still_asks_the_emsp(make_world):
    async with make_world(local_lists=LISTS) as w:
        await push_whitelists(w)
        async with w.charger() as cp:
            await wait_until(lambda: len(cp.local_list) == 50, what="the list")
            start = await cp.start_transaction(1, "AO0004", meter_start=0, meter_loop=False)
            assert start["idTagInfo"]["status"] == "Accepted"
            assert len(w.emsp.requests_to("/authorize")) == 1  # ALLOWED_OFFLINE: real time
            await cp.stop_transaction(1, meter_stop=1000)
            await w.emsp.wait_until(lambda: len(w.emsp.cdrs) == 1, timeout=10)
            [cdr] = list(w.emsp.cdrs.values())
            assert cdr["auth_method"] == "AUTH_REQUEST"


async def test_a_partner_whose_agreement_excludes_lists_stays_out(make_world):
    async with make_world(local_lists=LISTS, partners={"NL-EMS": {"local_list": False}}) as w:
        await IdTagRepo(w.app.db).add("OWNCARD1")
        await push_whitelists(w)
        async with w.charger() as cp:
            await wait_until(lambda: cp.local_list_version > 0, what="a list")
            assert set(cp.local_list) == {"OWNCARD1"}


async def test_a_version_mismatch_at_reconnect_sends_a_full_list(make_world):
    async with make_world(local_lists=LISTS) as w:
        await push_whitelists(w)
        async with w.charger() as cp:
            await wait_until(lambda: len(cp.local_list) == 50, what="the list")
            ours = cp.local_list_version
            await recorded(w, cp)
            await cp.disconnect()
            # The charger lost its list while away (a reset to factory settings).
            cp.state.local_list = {}
            cp.state.local_list_version = 0
            before = len(list_calls(cp))
            await cp.reconnect()
            await wait_until(lambda: len(cp.local_list) == 50, what="the list sent again")
            again = list_calls(cp)[before:]
            assert again[0]["updateType"] == "Full"
            assert again[0]["listVersion"] > ours


async def test_a_chunked_list_broken_off_continues_where_it_stopped_after_reconnect(make_world):
    async with make_world(local_lists=LISTS) as w:
        await push_whitelists(w)
        seen: list[int] = []

        def on_call(action: str, payload: dict[str, Any]) -> None:
            if action == "SendLocalList":
                seen.append(payload["listVersion"])
                if len(seen) == 3:  # the charger's limit drops: the third chunk fails
                    cp.config.keys["SendLocalListMaxLength"].value = "5"

        cp = SimulatedChargePoint(
            ocpp_url(w.app),
            "CP1",
            heartbeat=False,
            step_delay_s=0,
            send_local_list_max_length=20,
            on_call=on_call,
        )
        await cp.open()
        try:
            await cp.boot()
            await wait_until(lambda: len(seen) >= 4, what="the failed chunk retried")
            assert len(cp.local_list) == 40  # Full 20 + Differential 20 accepted
            version = cp.local_list_version
            await cp.disconnect()
            before = len(list_calls(cp))
            await cp.reconnect()  # the limit is read again; the versions still match
            await wait_until(lambda: len(cp.local_list) == 50, what="the rest of the list")
            rest = list_calls(cp)[before:]
            assert [p["updateType"] for p in rest] == ["Differential", "Differential"]
            assert [len(p["localAuthorizationList"]) for p in rest] == [5, 5]
            assert [p["listVersion"] for p in rest] == [version + 1, version + 2]
            assert [p["updateType"] for p in list_calls(cp)].count("Full") == 1
        finally:
            await cp.close()


async def test_a_token_sync_brings_new_tokens_and_drops_ones_no_longer_whitelisted(make_world):
    async with make_world(local_lists=LISTS) as w:
        await push_whitelists(w)
        async with w.charger() as cp:
            await wait_until(lambda: len(cp.local_list) == 50, what="the list")
            # The eMSP's table changes without pushes: one new token, one now NEVER.
            w.emsp.add_token("SYNCED01", whitelist="ALWAYS")
            w.emsp.add_token("AO0000", whitelist="NEVER")
            body = {"partner": "NL-EMS", "wait": True}
            async with admin_session(w.app) as http, http.post("/api/tokens/sync", json=body) as r:
                assert r.status == 200, await r.text()
            await wait_until(
                lambda: "SYNCED01" in cp.local_list and "AO0000" not in cp.local_list,
                what="the synced changes listed",
            )
            assert list_calls(cp)[-1]["updateType"] == "Differential"


async def test_a_full_list_keeps_cards_recently_used_at_that_charger(make_world):
    async with make_world(local_lists=LISTS) as w:
        await IdTagRepo(w.app.db).add("OWNCARD1")
        await push_whitelists(w)
        async with w.charger(local_list_max_length=3) as cp:
            await wait_until(lambda: len(cp.local_list) == 3, what="a list of 3")
            outside = next(uid for uid in OFFLINE_OK if uid not in cp.local_list)
            await cp.start_transaction(1, outside, meter_start=0, meter_loop=False)
            await cp.stop_transaction(1, meter_stop=100)
            async with (
                admin_session(w.app) as http,
                http.post("/api/local-lists/CP1/sync") as r,
            ):
                assert r.status == 202
            await wait_until(lambda: outside in cp.local_list, what="the used card listed")
            assert "OWNCARD1" in cp.local_list and len(cp.local_list) == 3
