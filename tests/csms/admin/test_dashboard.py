"""The dashboard over HTTP: login, the session cookie, CSRF, logout, the pages and the
live stream, against a real CSMS (the browser tests drive the same in Chromium).

Cookies are read from ``Set-Cookie`` and sent back by hand: the point is to see exactly
what the server sets and accepts.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiohttp import web
from yarl import URL

from csms.admin.context import actor_of
from csms.store.admin_sessions import AdminSessionRepo, hash_cookie
from csms.system import System
from simulator.chargepoint import SimulatedChargePoint
from tests.support.csms import ADMIN_TOKEN, admin_url, ocpp_url, running_csms

COOKIE = "__Host-csms_session"


def _actor_route() -> web.RouteTableDef:
    """A write route that answers with the actor the auth put on the request."""
    routes = web.RouteTableDef()

    @routes.post("/api/test/actor")
    async def actor(request: web.Request) -> web.Response:
        return web.json_response({"actor": actor_of(request)})

    return routes


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[System]:
    async with running_csms(
        tmp_path, extra_admin_routes=_actor_route(), server={"unknown_chargers": "accept"}
    ) as system:
        yield system


@pytest.fixture
async def browser(app: System) -> AsyncIterator[aiohttp.ClientSession]:
    """A client without the bearer token and without automatic cookies or redirects."""
    async with aiohttp.ClientSession(
        base_url=admin_url(app), cookie_jar=aiohttp.DummyCookieJar()
    ) as session:
        yield session


async def _login(
    browser: aiohttp.ClientSession, token: str = ADMIN_TOKEN
) -> aiohttp.ClientResponse:
    return await browser.post(
        "/login", data={"token": token, "next": "/dashboard/chargers"}, allow_redirects=False
    )


async def _logged_in(browser: aiohttp.ClientSession) -> tuple[dict[str, str], str]:
    """Log in; returns the Cookie header to send and the page's CSRF token."""
    resp = await _login(browser)
    assert resp.status == 303
    cookie = SimpleCookie(resp.headers["Set-Cookie"])[COOKIE].value
    headers = {"Cookie": f"{COOKIE}={cookie}"}
    page = await (await browser.get("/dashboard/", headers=headers)).text()
    marker = '<meta name="csrf-token" content="'
    csrf = page[page.index(marker) + len(marker) :].split('"', 1)[0]
    assert len(csrf) > 20
    return headers, csrf


async def test_pages_redirect_to_login_and_the_api_stays_401(
    browser: aiohttp.ClientSession,
) -> None:
    resp = await browser.get("/dashboard/transactions", allow_redirects=False)
    assert resp.status == 302
    location = URL(resp.headers["Location"])
    assert location.path == "/login"
    assert location.query["next"] == "/dashboard/transactions"
    resp = await browser.get("/", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"].startswith("/login")
    resp = await browser.get("/api/chargers", allow_redirects=False)
    assert resp.status == 401
    assert (await resp.json())["error"] == "unauthorized"
    login = await browser.get("/login")
    assert login.status == 200
    assert 'name="token"' in await login.text()


async def test_wrong_token_is_refused_and_sets_no_cookie(browser: aiohttp.ClientSession) -> None:
    resp = await _login(browser, "not-the-token")
    assert resp.status == 401
    assert "Set-Cookie" not in resp.headers
    assert "wrong admin token" in await resp.text()


async def test_login_sets_a_strict_httponly_secure_cookie_kept_only_as_a_hash(
    app: System, browser: aiohttp.ClientSession
) -> None:
    resp = await _login(browser)
    assert resp.status == 303
    assert resp.headers["Location"] == "/dashboard/chargers"
    raw = resp.headers["Set-Cookie"]
    morsel = SimpleCookie(raw)[COOKIE]
    assert morsel["httponly"] is True
    assert morsel["secure"] is True
    assert morsel["samesite"] == "Strict"
    assert morsel["path"] == "/"
    rows = await app.db.fetchall("SELECT id_hash, expires_at FROM admin_sessions")
    assert [r[0] for r in rows] == [hash_cookie(morsel.value)]
    assert morsel.value not in rows[0][0]


async def test_login_from_another_site_is_refused(browser: aiohttp.ClientSession) -> None:
    resp = await browser.post(
        "/login",
        data={"token": ADMIN_TOKEN},
        headers={"Origin": "https://evil.example"},
        allow_redirects=False,
    )
    assert resp.status == 403
    assert "Set-Cookie" not in resp.headers


async def test_next_never_leaves_the_server(browser: aiohttp.ClientSession) -> None:
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        resp = await browser.post(
            "/login", data={"token": ADMIN_TOKEN, "next": target}, allow_redirects=False
        )
        assert resp.headers["Location"] == "/dashboard/", target


async def test_every_page_renders_with_the_session_and_says_roaming_off(
    browser: aiohttp.ClientSession, app: System
) -> None:
    headers, _ = await _logged_in(browser)
    await app.admin.db.execute(
        "INSERT INTO chargers (id, registration_status, created_at) VALUES ('CP9', 'Accepted', 'x')"
    )
    for path, text in (
        ("/dashboard/", "chargers online"),
        ("/dashboard/chargers", "CP9"),
        ("/dashboard/chargers/CP9", "Remote start"),
        ("/dashboard/transactions", "roaming off"),
        ("/dashboard/authorizations", "No decision matches"),
        ("/dashboard/roaming", "roaming off"),
        ("/dashboard/locations", "roaming off"),
    ):
        resp = await browser.get(path, headers=headers)
        assert resp.status == 200, path
        assert text in await resp.text(), path
        assert resp.headers["Cache-Control"] == "no-store"
    missing = await browser.get("/dashboard/chargers/NOPE", headers=headers)
    assert missing.status == 404
    assert "No charger &#39;NOPE&#39; in the registry." in await missing.text()


async def test_a_write_with_the_cookie_needs_the_csrf_token(
    browser: aiohttp.ClientSession, app: System
) -> None:
    headers, csrf = await _logged_in(browser)
    refused = await browser.post("/api/tokens", json={"id_tag": "CSRF1"}, headers=headers)
    assert refused.status == 403
    assert (await refused.json())["error"] == "csrf_failed"
    wrong = await browser.post(
        "/api/tokens", json={"id_tag": "CSRF1"}, headers={**headers, "X-CSRF-Token": "x" * 43}
    )
    assert wrong.status == 403
    assert await app.db.fetchone("SELECT 1 FROM id_tags WHERE id_tag = 'CSRF1'") is None
    done = await browser.post(
        "/api/tokens", json={"id_tag": "CSRF1"}, headers={**headers, "X-CSRF-Token": csrf}
    )
    assert done.status == 201
    # Reads with the cookie need no token.
    assert (await browser.get("/api/tokens", headers=headers)).status == 200


async def test_the_actor_of_a_write_is_the_session_or_the_token(
    browser: aiohttp.ClientSession, app: System
) -> None:
    headers, csrf = await _logged_in(browser)
    resp = await browser.post("/api/test/actor", headers={**headers, "X-CSRF-Token": csrf})
    actor = (await resp.json())["actor"]
    (row,) = await app.db.fetchall("SELECT id_hash FROM admin_sessions")
    assert actor == f"session:{row[0][:8]}"
    resp = await browser.post("/api/test/actor", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert (await resp.json())["actor"] == "token"


async def test_a_wrong_bearer_is_not_rescued_by_a_cookie(browser: aiohttp.ClientSession) -> None:
    headers, _ = await _logged_in(browser)
    resp = await browser.get("/api/chargers", headers={**headers, "Authorization": "Bearer no"})
    assert resp.status == 401


async def test_logout_ends_the_session_on_the_server(
    browser: aiohttp.ClientSession, app: System
) -> None:
    headers, csrf = await _logged_in(browser)
    no_token = await browser.post("/logout", headers=headers, allow_redirects=False)
    assert no_token.status == 403  # logout is a write too
    resp = await browser.post(
        "/logout", data={"csrf_token": csrf}, headers=headers, allow_redirects=False
    )
    assert resp.status == 303
    assert await app.db.fetchall("SELECT * FROM admin_sessions") == []
    after = await browser.get("/dashboard/", headers=headers, allow_redirects=False)
    assert after.status == 302


async def test_an_expired_session_is_refused(browser: aiohttp.ClientSession, app: System) -> None:
    repo = AdminSessionRepo(app.db)
    past = datetime.now(UTC) - timedelta(hours=2)
    cookie, _ = await repo.create(past, timedelta(hours=1), None)
    resp = await browser.get(
        "/dashboard/", headers={"Cookie": f"{COOKIE}={cookie}"}, allow_redirects=False
    )
    assert resp.status == 302
    assert await repo.purge_expired(datetime.now(UTC)) == 1


async def _next_change(stream: aiohttp.StreamReader, topic: str) -> dict[str, str]:
    """The next ``change`` event of ``topic`` on an SSE stream (bounded by the caller)."""
    event: str | None = None
    while True:
        line = (await stream.readline()).decode().rstrip("\n")
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: ") and event == "change":
            data = orjson.loads(line[6:])
            if data["topic"] == topic:
                return data


async def test_the_stream_tells_when_a_charger_connects(
    browser: aiohttp.ClientSession, app: System
) -> None:
    headers, _ = await _logged_in(browser)
    page = await (await browser.get("/dashboard/chargers", headers=headers)).text()
    assert 'data-topics="chargers"' in page
    resp = await browser.get("/dashboard/events?topics=chargers", headers=headers)
    assert resp.headers["Content-Type"] == "text/event-stream"
    async with asyncio.timeout(10):
        first = await _next_change(resp.content, "chargers")
        assert first["version"] in page  # the page carries the version it was rendered at
        async with SimulatedChargePoint.connect(
            ocpp_url(app), "LIVE1", heartbeat=False, step_delay_s=0
        ):
            moved = await _next_change(resp.content, "chargers")
    assert moved["version"] != first["version"]
    resp.close()


async def test_unknown_topics_are_a_400(browser: aiohttp.ClientSession) -> None:
    headers, _ = await _logged_in(browser)
    resp = await browser.get("/dashboard/events?topics=chargers,weather", headers=headers)
    assert resp.status == 400
    assert "weather" in (await resp.json())["message"]


async def _next_event(stream: aiohttp.StreamReader) -> str:
    while True:
        line = (await stream.readline()).decode()
        if not line:
            return ""  # the server closed the stream
        if line.startswith("event: "):
            return line[7:].strip()


async def test_logout_ends_the_open_stream(browser: aiohttp.ClientSession) -> None:
    headers, csrf = await _logged_in(browser)
    resp = await browser.get("/dashboard/events?topics=authorizations", headers=headers)
    async with asyncio.timeout(10):
        assert await _next_event(resp.content) == "change"
        await browser.post("/logout", data={"csrf_token": csrf}, headers=headers)
        assert await _next_event(resp.content) == "ended"
        assert await _next_event(resp.content) == ""
    resp.close()


async def test_stopping_the_server_ends_open_streams_at_once(tmp_path: Path) -> None:
    async with (
        running_csms(tmp_path) as system,
        aiohttp.ClientSession(base_url=admin_url(system)) as client,
    ):
        resp = await client.get(
            "/dashboard/events?topics=chargers",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        assert await _next_event(resp.content) == "change"
        loop = asyncio.get_running_loop()
        began = loop.time()
        await asyncio.wait_for(system.stop(), timeout=10)
        assert loop.time() - began < 5  # not aiohttp's 60 s wait for open handlers
        async with asyncio.timeout(5):
            assert await _next_event(resp.content) == ""
        resp.close()


async def test_the_decision_log_filters(browser: aiohttp.ClientSession, app: System) -> None:
    headers, _ = await _logged_in(browser)
    for uid, source, status in (
        ("AAAA1111", "local", "Accepted"),
        ("BBBB2222", "cache", "Invalid"),
        ("CCCC3333", "remote", "Accepted"),
    ):
        await app.db.execute(
            "INSERT INTO authorizations (decided_at, charger_id, trigger, uid, uid_norm, source,"
            " status, latency_ms, reason) VALUES ('2026-12-07T10:00:00.000Z', 'CP1',"
            " 'Authorize', ?, ?, ?, ?, 1.0, 'r')",
            (uid, uid, source, status),
        )

    async def shown(query: str) -> list[str]:
        page = await (
            await browser.get(f"/dashboard/authorizations?{query}", headers=headers)
        ).text()
        return [u for u in ("AAAA…11", "BBBB…22", "CCCC…33") if u in page]

    assert await shown("") == ["AAAA…11", "BBBB…22", "CCCC…33"]
    assert await shown("source=cache") == ["BBBB…22"]
    assert await shown("status=Accepted") == ["AAAA…11", "CCCC…33"]
    assert await shown("uid=cccc3333") == ["CCCC…33"]
    assert await shown("charger_id=CP2") == []
