"""Credentials handshake in both directions against the eMSP sandbox, over real HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web

from roaming import credentials
from roaming.credentials import RegistrationError
from roaming.partners import PartnerStatus, TokenKind
from tests.roaming.conftest import Cpo


async def test_emsp_registers_with_us_using_the_right_token_at_each_step(cpo: Cpo, emsp):
    token_a = await cpo.invite("NL", "EMS")
    await emsp.register_with(cpo.versions_url, token_a)
    token_b = emsp.peer.token_in  # what the eMSP gave us to call it
    token_c = emsp.peer.token_out  # what we issued to the eMSP

    # The eMSP called us with TOKEN_A for versions, details and the POST.
    assert cpo.seen == [
        ("GET", "/ocpi/versions", token_a),
        ("GET", "/ocpi/2.2.1", token_a),
        ("POST", "/ocpi/2.2.1/credentials", token_a),
    ]
    # During the POST we fetched the eMSP's versions and details with TOKEN_B.
    ours = [r for r in emsp.requests if "/ocpi/" in r.path]
    assert [r.method for r in ours] == ["GET", "GET"]
    assert {r.token for r in ours} == {token_b}
    assert token_c not in (token_a, token_b)

    partner = await cpo.partner("NL-EMS")
    assert partner.status is PartnerStatus.REGISTERED
    assert partner.token_in_kind is TokenKind.C
    assert partner.token_out == token_b
    assert partner.version == "2.2.1"
    assert partner.endpoint("tokens") is not None

    # TOKEN_A is dead; TOKEN_C works.
    status, body, _ = await cpo.call("GET", "/ocpi/versions", token_a)
    assert status == 401 and body["status_code"] == 2000
    status, body, _ = await cpo.call("GET", "/ocpi/versions", token_c)
    assert status == 200 and body["status_code"] == 1000
    # GET credentials returns our credentials with the caller's token.
    status, body, _ = await cpo.call("GET", "/ocpi/2.2.1/credentials", token_c)
    assert body["data"]["token"] == token_c
    assert body["data"]["roles"][0]["role"] == "CPO"


async def test_we_register_with_emsp_and_use_their_token_c(cpo: Cpo, emsp):
    token_a = emsp.issue_token_a()
    partner = await credentials.register_with(cpo.ctx, emsp.versions_url, token_a)
    assert partner.key == "NL-EMS"
    assert partner.status is PartnerStatus.REGISTERED
    # We read their versions/details and POSTed with TOKEN_A ...
    assert [(r.method, r.token) for r in emsp.requests[:3]] == [
        ("GET", token_a),
        ("GET", token_a),
        ("POST", token_a),
    ]
    token_b = emsp.requests[2].body["token"]
    # ... they called back our versions/details with our TOKEN_B ...
    assert cpo.seen == [("GET", "/ocpi/versions", token_b), ("GET", "/ocpi/2.2.1", token_b)]
    # ... and we now hold their TOKEN_C and use it for every later call.
    assert partner.token_out == emsp.peer.token_in
    outcome = await cpo.sync.run(partner)
    assert outcome.ok
    assert emsp.requests[-1].token == emsp.peer.token_in
    # Our TOKEN_B authenticates them now; TOKEN_A was theirs, never ours.
    status, _, _ = await cpo.call("GET", "/ocpi/2.2.1", token_b)
    assert status == 200


def emsp_credentials(versions_url: str) -> dict[str, Any]:
    """The credentials NL-EMS posts with TOKEN_A (its TOKEN_B and versions URL)."""
    return {
        "token": "their-token-b",
        "url": versions_url,
        "roles": [
            {
                "role": "EMSP",
                "party_id": "EMS",
                "country_code": "NL",
                "business_details": {"name": "x"},
            }
        ],
    }


async def test_registration_fails_cleanly_when_their_api_is_unusable(cpo: Cpo):
    token_a = await cpo.invite("NL", "EMS")
    body = emsp_credentials("http://127.0.0.1:9/ocpi/versions")  # nothing listens on port 9
    status, env, _ = await cpo.call("POST", "/ocpi/2.2.1/credentials", token_a, body=body)
    assert status == 200 and env["status_code"] == 3001
    # Nothing changed: TOKEN_A still opens versions, the partner is still invited.
    assert (await cpo.partner()).status is PartnerStatus.INVITED
    status, _, _ = await cpo.call("GET", "/ocpi/versions", token_a)
    assert status == 200


async def _versions_peer(details: dict[str, Any] | None, versions: list[str]) -> web.AppRunner:
    async def get_versions(request: web.Request) -> web.Response:
        base = f"http://{request.host}"
        data = [{"version": v, "url": f"{base}/details/{v}"} for v in versions]
        return web.json_response(
            {"data": data, "status_code": 1000, "timestamp": "2024-01-01T00:00:00Z"}
        )

    async def get_details(request: web.Request) -> web.Response:
        return web.json_response(
            {"data": details, "status_code": 1000, "timestamp": "2024-01-01T00:00:00Z"}
        )

    app = web.Application()
    app.router.add_get("/versions", get_versions)
    app.router.add_get("/details/{v}", get_details)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner


@pytest.mark.parametrize(
    ("versions", "endpoints", "code"),
    [
        (["2.1.1"], [], 3002),
        (["2.2.1"], [{"identifier": "credentials", "role": "SENDER", "url": "http://x/c"}], 3003),
    ],
)
async def test_no_common_version_3002_and_missing_endpoints_3003(
    cpo: Cpo, versions, endpoints, code
):
    runner = await _versions_peer({"version": "2.2.1", "endpoints": endpoints}, versions)
    port = runner.addresses[0][1]
    try:
        token_a = await cpo.invite("NL", "EMS")
        body = emsp_credentials(f"http://127.0.0.1:{port}/versions")
        status, env, _ = await cpo.call("POST", "/ocpi/2.2.1/credentials", token_a, body=body)
        assert status == 200 and env["status_code"] == code
        assert (await cpo.partner()).status is PartnerStatus.INVITED
    finally:
        await runner.cleanup()


async def test_bad_credentials_body_names_the_field(cpo: Cpo):
    token_a = await cpo.invite("NL", "EMS")
    body = {
        "token": "tok",
        "url": "http://127.0.0.1:9/v",
        "roles": [{"role": "EMSP", "country_code": "NL", "party_id": "EMSX"}],
    }
    status, env, _ = await cpo.call("POST", "/ocpi/2.2.1/credentials", token_a, body=body)
    assert env["status_code"] == 2001
    assert "roles[0].party_id" in env["status_message"]
    status, env, _ = await cpo.call("POST", "/ocpi/2.2.1/credentials", token_a, raw=b"{not json")
    assert status == 400 and env["status_code"] == 2001


async def test_unknown_and_missing_tokens_get_401_in_an_envelope(cpo: Cpo):
    status, env, _ = await cpo.call("GET", "/ocpi/versions", None)
    assert status == 401 and env["status_code"] == 2000 and "timestamp" in env
    status, env, _ = await cpo.call("GET", "/ocpi/versions", "never-issued")
    assert status == 401 and env["status_code"] == 2000
    status, env, _ = await cpo.call("GET", "/ocpi/cpo/2.2.1/tokens/NL/EMS/X", "never-issued")
    assert status == 401


async def test_raw_and_base64_headers_are_both_accepted(registered):
    cpo, emsp = registered
    token_c = emsp.peer.token_out
    for encoding in ("base64", "raw"):
        status, env, _ = await cpo.call("GET", "/ocpi/2.2.1", token_c, encoding=encoding)
        assert status == 200 and env["status_code"] == 1000
    # The spec's own examples base64-encode a trailing newline: tolerated.
    import base64

    value = base64.b64encode((token_c + "\n").encode()).decode()
    status, _, _ = await cpo.call(
        "GET", "/ocpi/2.2.1", None, headers={"Authorization": f"Token {value}"}
    )
    assert status == 200


async def test_token_a_only_opens_versions_and_credentials(cpo: Cpo):
    token_a = await cpo.invite("NL", "EMS")
    status, env, _ = await cpo.call("GET", "/ocpi/2.2.1", token_a)
    assert status == 200
    ids = {(e["identifier"], e["role"]) for e in env["data"]["endpoints"]}
    assert ("tokens", "RECEIVER") in ids and ("credentials", "SENDER") in ids
    status, env, _ = await cpo.call("GET", "/ocpi/cpo/2.2.1/tokens/NL/EMS/AB", token_a)
    assert status == 401 and env["status_code"] == 2000


async def test_405_rules(cpo: Cpo, registered):
    _, emsp = registered
    token_c = emsp.peer.token_out
    body = emsp.own_credentials("x")
    status, env, _ = await cpo.call("POST", "/ocpi/2.2.1/credentials", token_c, body=body)
    assert status == 405 and env["status_code"] == 2000
    token_a = await cpo.invite("DE", "ABC")
    for method in ("PUT", "DELETE"):
        status, env, _ = await cpo.call(method, "/ocpi/2.2.1/credentials", token_a, body=body)
        assert status == 405 and env["status_code"] == 2000
    # A method the route does not have at all: still an envelope.
    status, env, _ = await cpo.call("PATCH", "/ocpi/2.2.1/credentials", token_c, body={})
    assert status == 405 and env["status_code"] == 2000


async def test_emsp_put_rotates_token_old_one_refused(registered):
    cpo, emsp = registered
    old_c = emsp.peer.token_out
    await emsp.update_credentials()
    new_c = emsp.peer.token_out
    assert new_c != old_c
    status, _, _ = await cpo.call("GET", "/ocpi/versions", old_c)
    assert status == 401
    status, _, _ = await cpo.call("GET", "/ocpi/versions", new_c)
    assert status == 200
    partner = await cpo.partner()
    assert partner.token_out == emsp.peer.token_in  # their new TOKEN_B


async def test_we_rotate_with_put_to_them(registered):
    cpo, emsp = registered
    partner = await cpo.partner()
    our_old_token = emsp.peer.token_out  # what they use to call us
    their_old_token = partner.token_out
    updated = await credentials.rotate(cpo.ctx, partner)
    put = [r for r in emsp.requests if r.method == "PUT"][-1]
    assert put.token == their_old_token  # authenticated with the token they had issued us
    assert updated.token_out == emsp.peer.token_in != their_old_token
    assert emsp.peer.token_out != our_old_token
    status, _, _ = await cpo.call("GET", "/ocpi/versions", our_old_token)
    assert status == 401
    status, _, _ = await cpo.call("GET", "/ocpi/versions", emsp.peer.token_out)
    assert status == 200


async def test_emsp_delete_unregisters_tokens_stop_at_once(registered):
    cpo, emsp = registered
    token_c = emsp.peer.token_out
    reply = await emsp.unregister()
    assert reply.http_status == 200
    assert (await cpo.partner()).status is PartnerStatus.UNREGISTERED
    status, _, _ = await cpo.call("GET", "/ocpi/versions", token_c)
    assert status == 401


async def test_we_unregister_and_tell_them(registered):
    cpo, emsp = registered
    token_c = emsp.peer.token_out
    error = await credentials.unregister(cpo.ctx, await cpo.partner())
    assert error is None
    assert [r.method for r in emsp.requests][-1] == "DELETE"
    assert not emsp.peer.registered
    status, _, _ = await cpo.call("GET", "/ocpi/versions", token_c)
    assert status == 401


async def test_register_with_bad_token_a_changes_nothing(cpo: Cpo, emsp):
    with pytest.raises(RegistrationError):
        await credentials.register_with(cpo.ctx, emsp.versions_url, "not-their-token")
    assert await cpo.store.partners.list_partners() == []


async def test_request_and_correlation_ids_echoed(registered):
    cpo, emsp = registered
    token_c = emsp.peer.token_out
    headers = {"X-Request-ID": "req-123", "X-Correlation-ID": "corr-456"}
    _, _, h = await cpo.call("GET", "/ocpi/versions", token_c, headers=headers)
    assert h["X-Request-ID"] == "req-123" and h["X-Correlation-ID"] == "corr-456"
    _, _, h = await cpo.call("GET", "/ocpi/versions", "unknown", headers=headers)
    assert h["X-Request-ID"] == "req-123" and h["X-Correlation-ID"] == "corr-456"
    _, _, h = await cpo.call("GET", "/ocpi/versions", token_c)
    assert h["X-Request-ID"] and h["X-Correlation-ID"]


async def test_unknown_path_is_404_envelope(registered):
    cpo, emsp = registered
    status, env, _ = await cpo.call("GET", "/ocpi/nothing-here", emsp.peer.token_out)
    assert status == 404 and env["status_code"] == 2000
