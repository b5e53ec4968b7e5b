"""The whole CSMS with OCPI on: CLI -> admin API -> roaming, with the eMSP sandbox."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json

from csms.cli import main as cli_main
from simulator.emsp.sandbox import EmspSandbox
from tests.support.csms import ADMIN_TOKEN, admin_url, running_csms, runtime_of


async def cli(app, *argv: str) -> tuple[int, str]:
    """Run ``csms ...`` in a thread (it uses a blocking HTTP client) against ``app``."""
    args = [*argv, "--admin-url", admin_url(app), "--admin-token", ADMIN_TOKEN]

    def run() -> tuple[int, str]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = cli_main(args)
        return code, out.getvalue()

    return await asyncio.to_thread(run)


def js(out: str):
    """The JSON document in ``out`` (log lines of the in-process server may precede it)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line[:1] in "{[")
    return json.loads("\n".join(lines[start:]))


async def test_invite_register_sync_show_rotate_unregister_via_cli(tmp_path):
    async with (
        running_csms(tmp_path, ocpi={"enabled": True, "token_sync_page_size": 5}) as app,
        EmspSandbox.start(
            country_code="NL", party_id="EMS", control_port=None, page_limit=5
        ) as emsp,
    ):
        assert app.ocpi_port
        emsp.generate_tokens(12, seed=2)
        code, out = await cli(
            app, "partners", "invite", "--country-code", "NL", "--party-id", "EMS", "--json"
        )
        assert code == 0
        invited = js(out)
        assert invited["versions_url"] == f"http://127.0.0.1:{app.ocpi_port}/ocpi/versions"
        await emsp.register_with(invited["versions_url"], invited["token_a"])

        code, out = await cli(app, "tokens", "sync", "NL-EMS", "--wait", "--json")
        assert code == 0
        [run] = js(out)["runs"]
        assert run["status"] == "complete" and run["tokens_seen"] == 12 and run["pages"] == 3

        code, out = await cli(app, "partners", "show", "NL-EMS")
        assert code == 0 and "registered" in out and "token sync runs" in out
        assert invited["token_a"] not in out  # no secrets in operator output

        code, out = await cli(app, "partners", "list", "--json")
        assert [p["key"] for p in js(out)] == ["NL-EMS"]

        runtime = runtime_of(app)
        [tok] = await runtime.tokens.get_token(emsp.tokens.records()[0].uid.lower(), "RFID")
        assert tok.partner_key == "NL-EMS"
        assert [
            p.key for p in await runtime.store.partners.registered_partners_with_tokens_sender()
        ] == ["NL-EMS"]

        old = emsp.peer.token_out
        code, out = await cli(app, "partners", "rotate", "NL-EMS")
        assert code == 0 and emsp.peer.token_out != old

        code, out = await cli(app, "partners", "unregister", "NL-EMS")
        assert code == 0 and "unregistered" in out
        assert not emsp.peer.registered

        code, _ = await cli(app, "partners", "show", "XX-NOPE")
        assert code == 1


async def test_we_register_via_cli(tmp_path):
    async with (
        running_csms(tmp_path, ocpi={"enabled": True}) as app,
        EmspSandbox.start(country_code="DE", party_id="EMP", control_port=None) as emsp,
    ):
        token_a = emsp.issue_token_a()
        code, out = await cli(
            app, "partners", "register", "--versions-url", emsp.versions_url, "--token-a", token_a
        )
        assert code == 0 and "DE-EMP" in out
        assert emsp.peer.registered
        code, out = await cli(
            app, "partners", "register", "--versions-url", emsp.versions_url, "--token-a", "wrong"
        )
        assert code == 1
