"""The sandbox against the real CSMS (OCPI enabled): registration both ways, pushes, commands."""

from __future__ import annotations

import pytest

from simulator.emsp import EmspSandbox
from tests.support.csms import admin_session, running_csms


@pytest.fixture
async def csms(tmp_path):
    async with running_csms(tmp_path, ocpi={"enabled": True}) as app:
        yield app


async def test_sandbox_initiates_with_csms_token_a_then_rotates_and_unregisters(csms):
    async with admin_session(csms) as admin, EmspSandbox.start() as emsp:
        async with admin.post(
            "/api/partners/invite", json={"country_code": "NL", "party_id": "EMS"}
        ) as r:
            assert r.status in (200, 201), await r.text()
            invite = await r.json()
        peer = await emsp.register_with(invite["versions_url"], invite["token_a"])
        assert peer.registered and peer.roles[0]["role"] == "CPO"
        assert peer.endpoint("tokens", "RECEIVER") is not None
        # The CSMS called us back with our TOKEN_B, Base64 in the header.
        callbacks = [r for r in emsp.requests if r.token == emsp.peer.token_in]
        assert [r.path for r in callbacks][:2] == ["/ocpi/versions", "/ocpi/2.2.1"]

        emsp.add_token("04AABBCCDD", whitelist="NEVER")
        (put,) = await emsp.push_tokens()
        assert put.ok, put.body
        got = await emsp.get_token_at_cpo("04aabbccdd")
        assert got.ok and got.data["whitelist"] == "NEVER"
        blocked = await emsp.block_token("04AABBCCDD")
        assert blocked.ok, blocked.body
        assert (await emsp.get_token_at_cpo("04AABBCCDD")).data["valid"] is False

        old_out = emsp.peer.token_out
        await emsp.update_credentials()
        assert emsp.peer.token_out != old_out
        assert (await emsp.get_token_at_cpo("04AABBCCDD")).ok  # new token works
        answer = await emsp.unregister()
        assert answer.http_status == 200 and answer.status_code == 1000


async def test_csms_initiates_with_sandbox_token_a(csms):
    async with admin_session(csms) as admin, EmspSandbox.start() as emsp:
        token_a = emsp.issue_token_a()
        body = {"versions_url": emsp.versions_url, "token_a": token_a}
        async with admin.post("/api/partners/register", json=body) as r:
            assert r.status in (200, 201), await r.text()
        assert emsp.peer.registered and not emsp.peer.initiator
        assert token_a not in emsp.token_as  # TOKEN_A retired
        post = emsp.requests_to("/credentials", "POST")[0]
        assert post.token == token_a and post.body["roles"][0]["role"] == "CPO"
        assert [r.token for r in emsp.requests[:3]] == [token_a] * 3
        # From then on the CSMS uses TOKEN_C (ours), e.g. for a paginated token sync pull.
        emsp.state.page_limit = 2
        emsp.generate_tokens(5)
        body = {"partner": "NL-EMS", "incremental": False, "wait": True}
        async with admin.post("/api/tokens/sync", json=body) as r:
            assert r.status == 200, await r.text()
            runs = (await r.json())["runs"]
        assert runs[0]["status"] == "complete" and runs[0]["tokens_seen"] == 5, runs
        pulls = emsp.requests_to("/tokens", "GET")
        assert len(pulls) == 3
        assert all(r.token == emsp.peer.token_in for r in emsp.requests[3:])
