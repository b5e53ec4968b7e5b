"""The audit trail: a scripted admin session through the real ``csms`` CLI against a real
CSMS; every write shows up in ``csms audit list`` with who, what, target and result, and
no secret of any request body is stored or logged."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from csms.admin.context import ACTOR
from csms.cli import main
from tests.support.csms import ADMIN_TOKEN, admin_session, admin_url, running_csms

PASSWORD = "pw-audit-0123456789abcdef"
TOKEN_ID = "token:" + hashlib.sha256(ADMIN_TOKEN.encode()).hexdigest()[:12]


async def _cli(url: str, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    code = await asyncio.to_thread(main, [*argv, "--admin-url", url, "--admin-token", ADMIN_TOKEN])
    out, err = capsys.readouterr()
    return code, out + err


def _session_route() -> web.RouteTableDef:
    """A write made in a dashboard session: the session layer names the actor."""
    routes = web.RouteTableDef()

    @routes.post("/api/session-probe/{thing}")
    async def probe(request: web.Request) -> web.Response:
        request[ACTOR] = "session:7f3a"
        return web.json_response({"ok": True})

    return routes


async def test_every_write_of_an_admin_session_is_listed_with_who_what_target_result(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with running_csms(tmp_path, extra_admin_routes=_session_route()) as app:
        url = admin_url(app)
        script = [
            (("chargers", "add", "CP-AUD", "--password", PASSWORD), 0),
            (("tokens", "add", "TAG-AUD"), 0),
            (("tokens", "block", "TAG-AUD"), 0),
            (("chargers", "pending", "CP-AUD"), 0),
            (("reset", "CP-AUD", "--type", "Soft"), 1),  # not connected: 409
            (("chargers", "add", "CP-AUD"), 1),  # exists: 409
            (("chargers", "remove", "CP-AUD"), 0),
        ]
        seen = ""  # CLI output and the in-process server's log lines
        for argv, expected in script:
            code, text = await _cli(url, capsys, *argv)
            seen += text
            assert code == expected, (argv, text)
        async with admin_session(app) as http:
            resp = await http.post("/api/session-probe/x1", json={"password": "p", "id": "X"})
            assert resp.status == 200
            reads = await http.get("/api/chargers")  # a read: not audited
            assert reads.status == 200
        async with admin_session(app, token="wrong") as http:
            refused = await http.post("/api/tokens", json={"id_tag": "NOPE"})
            assert refused.status == 401  # not an admin write: not stored
            # A write to a public path reaches the audit without a token: it is logged
            # as anonymous, never stored, never pinned on the admin token.
            public = await http.post("/api/health", json={"id": "ANON"})
            assert public.status == 405
        seen += "".join(capsys.readouterr())

        code, out = await _cli(url, capsys, "audit", "list", "--json")
        assert code == 0, out
        seen += out
        entries = json.loads(_json_part(out))["entries"]
        got = [(e["actor"], e["action"], e["target"], e["status"]) for e in reversed(entries)]
        assert got == [
            (TOKEN_ID, "POST /api/chargers", "id=CP-AUD", 201),
            (TOKEN_ID, "POST /api/tokens", "id_tag=TAG-AUD", 201),
            (TOKEN_ID, "POST /api/tokens/{id_tag}/block", "id_tag=TAG-AUD", 200),
            (TOKEN_ID, "POST /api/chargers/{charger_id}/registration", "charger_id=CP-AUD", 200),
            (
                TOKEN_ID,
                "POST /api/chargers/{charger_id}/calls/{action}",
                "charger_id=CP-AUD action=Reset",
                409,
            ),
            (TOKEN_ID, "POST /api/chargers", "id=CP-AUD", 409),
            (TOKEN_ID, "DELETE /api/chargers/{charger_id}", "charger_id=CP-AUD", 200),
            ("session:7f3a", "POST /api/session-probe/{thing}", "thing=x1 id=X", 200),
        ]
        assert all(e["method"] == e["action"].split()[0] for e in entries)
        assert PASSWORD not in json.dumps(entries)

        # The table view, and a filter by actor.
        code, out = await _cli(url, capsys, "audit", "list", "--actor", "session:7f3a")
        assert code == 0
        rows = [line for line in out.splitlines() if "session:7f3a" in line]
        assert len(rows) == 1 and "/api/session-probe/{thing}" in rows[0]
        # Each write was also logged as one admin.audit event; no secret anywhere.
        assert seen.count("admin.audit") == len(script) + 2
        assert seen.count("actor=anonymous") == 1
        assert PASSWORD not in seen and ADMIN_TOKEN not in seen.replace("--admin-token", "")


def _json_part(out: str) -> str:
    """The CLI's JSON document among the server's log lines (same stdout in-process)."""
    start = out.index("\n{") + 1 if not out.startswith("{") else 0
    end = out.index("\n}", start) + 2
    return out[start:end]


async def test_a_dashboard_session_write_is_audited_as_its_session(tmp_path: Path) -> None:
    """Log in as a browser does, write with the cookie and CSRF token: the row names the
    session (never the token); the login form itself is not a stored admin write."""
    from tests.csms.admin.test_dashboard import _logged_in

    async with running_csms(tmp_path) as app:
        async with aiohttp.ClientSession(
            base_url=admin_url(app), cookie_jar=aiohttp.DummyCookieJar()
        ) as browser:
            headers, csrf = await _logged_in(browser)
            done = await browser.post(
                "/api/tokens", json={"id_tag": "SESS1"}, headers={**headers, "X-CSRF-Token": csrf}
            )
            assert done.status == 201
        (session,) = await app.db.fetchall("SELECT id_hash FROM admin_sessions")
        async with admin_session(app) as http:
            entries = (await (await http.get("/api/audit")).json())["entries"]
    assert [(e["actor"], e["action"], e["target"], e["status"]) for e in entries] == [
        (f"session:{session[0][:8]}", "POST /api/tokens", "id_tag=SESS1", 201)
    ]
