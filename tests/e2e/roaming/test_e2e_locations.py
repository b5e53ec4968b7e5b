"""Locations: EVSE status follows StatusNotification to the eMSP; Sender GET lists paginate."""

from __future__ import annotations

import urllib.parse

from tests.e2e.roaming.test_metrics import scrape, value
from tests.support.csms import admin_session, admin_url
from tests.support.waiting import wait_until


async def test_evse_status_changes_reach_the_emsp(make_world):
    async with make_world() as w:
        emsp = w.emsp
        await w.outbox_idle()
        assert emsp.evse_status("LOC-1", "LOC-1-CP1-2") == "UNKNOWN"  # initial PUT
        async with w.charger() as cp:
            await emsp.wait_until(lambda: emsp.evse_status("LOC-1", "LOC-1-CP1-2") == "AVAILABLE")
            await cp.status(2, "Unavailable")
            await emsp.wait_until(lambda: emsp.evse_status("LOC-1", "LOC-1-CP1-2") == "INOPERATIVE")
            await cp.status(2, "Faulted", error_code="GroundFailure", force=True)
            await emsp.wait_until(lambda: emsp.evse_status("LOC-1", "LOC-1-CP1-2") == "OUTOFORDER")
        patches = [e for e in emsp.location_events if e[0] == "PATCH"]
        assert all(set(p[2]) == {"status", "last_updated"} for p in patches)
        # Our own GET shows the same status, with the location's last_updated bumped.
        reply = await emsp.call_peer("GET", "locations", "SENDER", "LOC-1", "LOC-1-CP1-2")
        assert reply.data["status"] == "OUTOFORDER"
        loc = await emsp.call_peer("GET", "locations", "SENDER", "LOC-1")
        assert loc.data["last_updated"] >= reply.data["last_updated"]
        conn = await emsp.call_peer("GET", "locations", "SENDER", "LOC-1", "LOC-1-CP1-2", "1")
        assert conn.data["format"] == "CABLE" and conn.data["max_amperage"] == 16
        missing = await emsp.call_peer("GET", "locations", "SENDER", "NOPE")
        assert missing.http_status == 404


def _next(headers: dict[str, str]) -> str | None:
    link = headers.get("Link")
    if not link:
        return None
    return link.split(";")[0].strip("<> ")


async def test_sender_lists_paginate_with_headers(make_world):
    async with make_world() as w:
        emsp = w.emsp
        emsp.add_token("0B0B0B0B", whitelist="ALWAYS")
        await emsp.push_tokens()
        async with w.charger() as cp:
            for i in range(3):
                await cp.start_transaction(1, "0B0B0B0B", meter_start=i * 1000, meter_loop=False)
                await cp.stop_transaction(1, meter_stop=i * 1000 + 500, reason="Local")
        await emsp.wait_until(lambda: len(emsp.cdrs) == 3)

        first = await emsp.call_peer("GET", "cdrs", "SENDER", query="?limit=2")
        assert first.ok and len(first.data) == 2
        assert first.headers["X-Total-Count"] == "3" and first.headers["X-Limit"] == "1000"
        nxt = _next(first.headers)
        assert nxt is not None
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(nxt).query)
        assert q["offset"] == ["2"] and q["limit"] == ["2"]
        second = await emsp.client.call("GET", nxt, token=emsp.peer.token_out)
        assert len(second.body["data"]) == 1 and _next(second.headers) is None
        ids = [c["id"] for c in first.data + second.body["data"]]
        assert sorted(ids) == sorted(emsp.cdrs.keys())

        no_from = await emsp.call_peer("GET", "sessions", "SENDER")
        assert no_from.status_code == 2001  # date_from is required for sessions
        sessions = await emsp.call_peer(
            "GET", "sessions", "SENDER", query="?date_from=2000-01-01T00:00:00Z&limit=1"
        )
        assert sessions.headers["X-Total-Count"] == "3" and len(sessions.data) == 1
        assert "date_from=2000-01-01T00%3A00%3A00Z" in sessions.headers["Link"]
        future = await emsp.call_peer(
            "GET", "sessions", "SENDER", query="?date_from=2099-01-01T00:00:00Z"
        )
        assert future.headers["X-Total-Count"] == "0" and "Link" not in future.headers

        locs = await emsp.call_peer("GET", "locations", "SENDER", query="?limit=1")
        assert locs.headers["X-Total-Count"] == "1" and "Link" not in locs.headers
        assert [e["uid"] for e in locs.data[0]["evses"]] == ["LOC-1-CP1-1", "LOC-1-CP1-2"]
        tariffs = await emsp.call_peer("GET", "tariffs", "SENDER")
        assert tariffs.data[0]["id"] == "AC-STD" and tariffs.headers["X-Total-Count"] == "1"


async def test_connectors_no_evse_maps_are_listed_as_unmapped(make_world):
    async with (
        make_world(register=False) as w,
        w.charger("CP2") as cp,
        admin_session(w.app) as admin,
    ):
        await cp.status(1, "Preparing")

        async def listed() -> list[dict[str, object]]:
            async with admin.get("/api/locations/unmapped") as resp:
                assert resp.status == 200
                return list((await resp.json())["unmapped"])

        async def cp2_preparing() -> bool:
            return any(u["status"] == "Preparing" for u in await listed())

        await wait_until(cp2_preparing, what="CP2 connector 1 listed as unmapped")
        rows = await listed()
        # The boot announced connectors 0, 1 and 2: connector 0 is the whole charger and
        # never listed; CP1's connectors are mapped in the locations file.
        assert [(u["charger_id"], u["connector_id"], u["status"]) for u in rows] == [
            ("CP2", 1, "Preparing"),
            ("CP2", 2, "Available"),
        ]
        samples = await scrape(admin_url(w.app))
        assert value(samples, "csms_ocpi_unmapped_connectors") == 2
