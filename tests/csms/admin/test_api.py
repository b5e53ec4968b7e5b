"""Admin API over real HTTP: auth, registry, tokens, transactions, input errors."""

from __future__ import annotations

import aiohttp

from csms.system import System
from tests.support.csms import admin_session


async def test_health_needs_no_token(csms_app: System) -> None:
    async with admin_session(csms_app, token=None) as anon:
        resp = await anon.get("/api/health")
        assert resp.status == 200
        assert (await resp.json()) == {"status": "ok"}


async def test_every_other_route_needs_the_bearer_token(csms_app: System) -> None:
    async with admin_session(csms_app, token=None) as anon:
        resp = await anon.get("/api/chargers")
        assert resp.status == 401
        assert (await resp.json())["error"] == "unauthorized"
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    async with admin_session(csms_app, token="wrong") as wrong:
        for method, path in (
            ("GET", "/api/chargers"),
            ("POST", "/api/chargers"),
            ("GET", "/api/tokens"),
            ("POST", "/api/chargers/CP1/calls/Reset"),
        ):
            resp = await wrong.request(method, path, json={"id": "X"})
            assert resp.status == 401, path
        # nothing was created by the rejected POST
    async with admin_session(csms_app) as ok:
        assert (await (await ok.get("/api/chargers")).json())["chargers"] == []


async def test_chargers_add_list_show_remove(http: aiohttp.ClientSession) -> None:
    resp = await http.post("/api/chargers", json={"id": "CP-1", "password": "s3cret-password-123"})
    assert resp.status == 201
    created = await resp.json()
    assert created["id"] == "CP-1"
    assert created["has_password"] is True
    assert created["connected"] is False
    assert "password" not in created and "password_hash" not in created
    await http.post("/api/chargers", json={"id": "CP-2"})

    listed = (await (await http.get("/api/chargers")).json())["chargers"]
    assert [c["id"] for c in listed] == ["CP-1", "CP-2"]
    assert listed[1]["has_password"] is False

    shown = await http.get("/api/chargers/CP-2")
    assert shown.status == 200
    assert (await shown.json())["active_transactions"] == []

    dup = await http.post("/api/chargers", json={"id": "CP-1"})
    assert dup.status == 409
    assert (await dup.json())["error"] == "already_exists"

    gone = await http.delete("/api/chargers/CP-1")
    assert gone.status == 200
    assert [c["id"] for c in (await (await http.get("/api/chargers")).json())["chargers"]] == [
        "CP-2"
    ]
    assert (await http.get("/api/chargers/CP-1")).status == 404
    again = await http.delete("/api/chargers/CP-1")
    assert again.status == 404
    assert (await again.json())["error"] == "unknown_charger"


async def test_bad_charger_input_is_400_naming_the_problem(http: aiohttp.ClientSession) -> None:
    resp = await http.post(
        "/api/chargers", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert resp.status == 400
    body = await resp.json()
    assert body["error"] == "malformed_json"
    assert "not valid JSON" in body["message"]

    resp = await http.post("/api/chargers", json=["CP1"])
    assert resp.status == 400
    assert "JSON object" in (await resp.json())["message"]

    resp = await http.post("/api/chargers", json={"id": "bad id/with slash"})
    assert resp.status == 400
    assert "'id'" in (await resp.json())["message"]

    resp = await http.post("/api/chargers", json={"id": "CP1", "password": 5})
    assert resp.status == 400
    assert "'password'" in (await resp.json())["message"]

    resp = await http.post("/api/chargers", json={"id": "CP1", "colour": "red"})
    assert resp.status == 400
    assert "colour" in (await resp.json())["message"]

    resp = await http.post("/api/chargers", data=b"")
    assert resp.status == 400
    assert "empty" in (await resp.json())["message"]

    # nothing was stored by any of them
    assert (await (await http.get("/api/chargers")).json())["chargers"] == []


async def test_tokens_add_list_block(http: aiohttp.ClientSession) -> None:
    resp = await http.post(
        "/api/tokens",
        json={"id_tag": "Tag1", "expiry_date": "2030-01-01T00:00:00Z", "parent_id_tag": "GROUP"},
    )
    assert resp.status == 201
    saved = await resp.json()
    assert saved["status"] == "Accepted"
    assert saved["expiry_date"] == "2030-01-01T00:00:00Z"
    assert saved["parent_id_tag"] == "GROUP"

    # same tag, other case: an update of the same row (id tags are case-insensitive)
    resp = await http.post("/api/tokens", json={"id_tag": "TAG1", "status": "Invalid"})
    assert resp.status == 200
    await http.post("/api/tokens", json={"id_tag": "TAG2"})
    tokens = (await (await http.get("/api/tokens")).json())["tokens"]
    assert [(t["id_tag"], t["status"]) for t in tokens] == [
        ("TAG1", "Invalid"),
        ("TAG2", "Accepted"),
    ]

    blocked = await http.post("/api/tokens/tag2/block")
    assert blocked.status == 200
    assert (await blocked.json())["status"] == "Blocked"
    assert (await (await http.get("/api/tokens/TAG2")).json())["status"] == "Blocked"
    missing = await http.post("/api/tokens/NOPE/block")
    assert missing.status == 404
    assert (await missing.json())["error"] == "unknown_token"


async def test_bad_token_input_is_400(http: aiohttp.ClientSession) -> None:
    cases = [
        ({"id_tag": "T", "status": "ConcurrentTx"}, "'status'"),
        ({"id_tag": "T", "status": "Maybe"}, "'status'"),
        ({"id_tag": "T", "expiry_date": "tomorrow"}, "'expiry_date'"),
        ({"id_tag": "T", "expiry_date": "2030-01-01T00:00:00"}, "time zone"),
        ({"id_tag": "X" * 21}, "20"),
        ({"id_tag": ""}, "'id_tag'"),
        ({}, "'id_tag'"),
    ]
    for body, fragment in cases:
        resp = await http.post("/api/tokens", json=body)
        assert resp.status == 400, body
        assert fragment in (await resp.json())["message"], body
    assert (await (await http.get("/api/tokens")).json())["tokens"] == []


async def test_transactions_query_errors_and_unknown(http: aiohttp.ClientSession) -> None:
    assert (await (await http.get("/api/transactions")).json())["transactions"] == []
    for query in ("limit=0", "limit=abc", "active=perhaps"):
        resp = await http.get(f"/api/transactions?{query}")
        assert resp.status == 400, query
        assert (await resp.json())["error"] == "invalid_query"
    resp = await http.get("/api/transactions/42")
    assert resp.status == 404
    assert (await http.get("/api/transactions/abc")).status == 400


async def test_unknown_route_is_json_404(http: aiohttp.ClientSession) -> None:
    resp = await http.get("/api/nothing-here")
    assert resp.status == 404
    assert (await resp.json())["error"] == "not_found"
