"""Credentials handshake in both directions, with a second sandbox or the stub CPO as peer."""

from __future__ import annotations

import base64

import pytest

from simulator.emsp import EmspSandbox, RegistrationError
from tests.simulator.emsp.conftest import auth, call


async def test_sandbox_as_initiator_and_responder_with_a_second_sandbox(emsp, http):
    async with EmspSandbox.start(party_id="RSP") as responder:
        token_a = responder.issue_token_a()
        peer = await emsp.register_with(responder.versions_url, token_a)

        assert peer.registered and peer.initiator
        # Each side sends what the other expects (TOKEN_C one way, TOKEN_B the other).
        assert emsp.peer.token_out == responder.peer.token_in
        assert responder.peer.token_out == emsp.peer.token_in
        assert responder.peer.roles[0]["party_id"] == "EMS"
        assert emsp.peer.roles[0]["party_id"] == "RSP"
        # The Responder fetched our versions with TOKEN_B before answering.
        b = emsp.peer.token_in
        assert [r.path for r in emsp.requests if r.token == b][:2] == [
            "/ocpi/versions",
            "/ocpi/2.2.1",
        ]
        # The POST carried TOKEN_A Base64-encoded in the header, not in the body.
        post = responder.requests_to("/credentials", "POST")[0]
        assert post.authorization == "Token " + base64.b64encode(token_a.encode()).decode()
        assert post.body["token"] == b
        # TOKEN_A is dead afterwards; TOKEN_C works.
        status, _, _ = await call(http, "GET", responder.versions_url, token_a)
        assert status == 401
        status, body, _ = await call(http, "GET", responder.versions_url, emsp.peer.token_out)
        assert status == 200 and body["data"][0]["version"] == "2.2.1"


async def test_credentials_get_put_delete_and_405s(emsp, http):
    async with EmspSandbox.start(party_id="RSP") as responder:
        creds_url = responder.base_url + "/ocpi/2.2.1/credentials"
        token_a = responder.issue_token_a()
        # PUT/DELETE before registration: 405.
        status, _, _ = await call(http, "PUT", creds_url, token_a, emsp.own_credentials("x"))
        assert status == 405
        await emsp.register_with(responder.versions_url, token_a)
        old_c = emsp.peer.token_out
        status, body, _ = await call(http, "GET", creds_url, old_c)
        assert status == 200 and body["data"]["token"] == old_c
        # POST when already registered: 405.
        status, _, _ = await call(http, "POST", creds_url, old_c, emsp.own_credentials("y"))
        assert status == 405
        # Rotation: new tokens both ways, the old TOKEN_C is refused.
        old_b = emsp.peer.token_in
        await emsp.update_credentials()
        assert emsp.peer.token_out != old_c and emsp.peer.token_in != old_b
        assert responder.peer.token_out == emsp.peer.token_in
        status, _, _ = await call(http, "GET", responder.versions_url, old_c)
        assert status == 401
        answer = await emsp.unregister()
        assert answer.http_status == 200 and answer.status_code == 1000
        assert not responder.peer.registered and not emsp.peer.registered
        status, _, _ = await call(http, "GET", responder.versions_url, emsp.peer.token_out or "z")
        assert status == 401


async def test_responder_answers_3001_when_it_cannot_reach_the_initiator(emsp, http):
    token_a = emsp.issue_token_a()
    creds_url = emsp.base_url + "/ocpi/2.2.1/credentials"
    body = {
        "token": "initiator-b",
        "url": "http://127.0.0.1:9/ocpi/versions",
        "roles": [
            {
                "role": "CPO",
                "party_id": "CPO",
                "country_code": "NL",
                "business_details": {"name": "x"},
            }
        ],
    }
    status, reply, headers = await call(
        http,
        "POST",
        creds_url,
        token_a,
        body,
        headers={"X-Request-ID": "rid-1", "X-Correlation-ID": "cid-1"},
    )
    assert status == 200 and reply["status_code"] == 3001
    assert headers["X-Request-ID"] == "rid-1" and headers["X-Correlation-ID"] == "cid-1"
    assert not emsp.peer.registered
    assert token_a in emsp.token_as  # still usable for a second attempt


async def test_bad_credentials_body_is_2001_and_nothing_changes(emsp, http):
    token_a = emsp.issue_token_a()
    status, reply, _ = await call(
        http, "POST", emsp.base_url + "/ocpi/2.2.1/credentials", token_a, {"token": "t"}
    )
    assert status == 200 and reply["status_code"] == 2001
    assert not emsp.peer.registered


async def test_auth_header_raw_base64_missing_and_token_a_scope(emsp, http):
    token_a = emsp.issue_token_a()
    for headers in (auth(token_a), auth(token_a, raw=True)):
        async with http.get(emsp.versions_url, headers=headers) as r:
            assert r.status == 200
    async with http.get(emsp.versions_url) as r:
        assert r.status == 401
        assert (await r.json())["status_code"] == 2000
    # TOKEN_A may not be used on functional modules.
    status, _, _ = await call(http, "GET", emsp.base_url + "/ocpi/emsp/2.2.1/tokens", token_a)
    assert status == 401


async def test_version_details_publish_the_emsp_interfaces(emsp, http):
    status, body, _ = await call(http, "GET", emsp.base_url + "/ocpi/2.2.1", emsp.issue_token_a())
    assert status == 200
    got = {(e["identifier"], e["role"]) for e in body["data"]["endpoints"]}
    assert {
        ("credentials", "SENDER"),
        ("tokens", "SENDER"),
        ("sessions", "RECEIVER"),
        ("cdrs", "RECEIVER"),
        ("locations", "RECEIVER"),
        ("tariffs", "RECEIVER"),
        ("commands", "SENDER"),
    } <= got


async def test_initiator_reports_missing_version(emsp):
    async with EmspSandbox.start(party_id="RSP") as other:
        with pytest.raises(RegistrationError) as err:
            await emsp.register_with(other.versions_url, "not-a-token")
        assert err.value.status_code == 3001
        assert not emsp.peer.registered and not emsp.pending_tokens


async def test_stub_cpo_registers_with_the_sandbox_as_responder(paired):
    emsp, cpo = paired
    assert emsp.peer.registered and not emsp.peer.initiator
    assert emsp.peer.token_out == cpo.token_in and emsp.peer.token_in == cpo.token_out
    assert emsp.peer.endpoint("tokens", "RECEIVER") == f"{cpo.base}/ocpi/cpo/2.2.1/tokens"
    assert not emsp.token_as
