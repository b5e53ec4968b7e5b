"""Tokens Receiver: PUT / PATCH / GET by the owning eMSP, over real HTTP."""

from __future__ import annotations

import pytest

from simulator.emsp.sandbox import EmspSandbox
from tests.roaming.conftest import Cpo

TOKENS = "/ocpi/cpo/2.2.1/tokens"


def token_body(uid_: str = "04a1b2c3d4e580", /, **over):
    body = {
        "country_code": "NL",
        "party_id": "EMS",
        "uid": uid_,
        "type": "RFID",
        "contract_id": "NL-EMS-C00012345-7",
        "issuer": "Example Mobility BV",
        "valid": True,
        "whitelist": "ALLOWED",
        "last_updated": "2024-05-01T09:30:00Z",
    }
    body.update(over)
    return body


async def test_sandbox_pushes_tokens_and_reads_them_back(registered):
    cpo, emsp = registered
    emsp.add_token("04aBcD01", whitelist="ALWAYS")
    emsp.add_token("APP-1", type="APP_USER", whitelist="NEVER")
    replies = await emsp.push_tokens()
    assert [r.http_status for r in replies] == [201, 201]
    assert all(r.status_code == 1000 for r in replies)
    again = await emsp.push_token("04aBcD01")
    assert again.http_status == 200
    reply = await emsp.get_token_at_cpo("04ABCD01")  # other case, same token
    assert reply.http_status == 200
    assert reply.data["uid"] == "04aBcD01"  # original spelling kept
    assert reply.data["whitelist"] == "ALWAYS"
    found = await cpo.store.tokens.get_token("04abcd01", None)
    assert [(t.partner_key, t.uid, t.type) for t in found] == [("NL-EMS", "04aBcD01", "RFID")]
    assert await cpo.store.tokens.get_token("APP-1", "RFID") == []
    assert [t.whitelist for t in await cpo.store.tokens.get_token("APP-1", "APP_USER")] == ["NEVER"]


async def test_mixed_case_uid_is_one_token_spelling_of_last_put_wins(registered):
    cpo, emsp = registered
    tok = emsp.peer.token_out
    for uid in ("04a1b2", "04A1B2"):
        status, env, _ = await cpo.call("PUT", f"{TOKENS}/nl/ems/{uid}", tok, body=token_body(uid))
        assert env["status_code"] == 1000
    status, env, _ = await cpo.call("GET", f"{TOKENS}/NL/EMS/04a1B2?type=RFID", tok)
    assert status == 200 and env["data"]["uid"] == "04A1B2"
    assert len(await cpo.store.tokens.get_token("04A1B2", "RFID")) == 1


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"uid": "X" * 37}, "uid"),
        ({"valid": "yes"}, "valid"),
        ({"whitelist": "SOMETIMES"}, "whitelist"),
        ({"type": "NFC"}, "type"),
        ({"contract_id": None}, "contract_id"),
        ({"issuer": 5}, "issuer"),
        ({"last_updated": "2024-05-01T09:30:00+00:00"}, "last_updated"),
        ({"language": "nld"}, "language"),
        ({"energy_contract": {"contract_id": "x"}}, "energy_contract.supplier_name"),
        ({"visual_number": "x" * 65}, "visual_number"),
    ],
)
async def test_put_bad_body_names_the_field_and_stores_nothing(registered, override, field):
    cpo, emsp = registered
    body = token_body("BAD1", **override)
    uid = "BAD1"
    ttype = body["type"] if body["type"] in ("RFID", "APP_USER") else "RFID"
    _, env, _ = await cpo.call(
        "PUT", f"{TOKENS}/NL/EMS/{uid}?type={ttype}", emsp.peer.token_out, body=body
    )
    assert env["status_code"] == 2001, env
    assert env["status_message"].startswith(field + ":"), env["status_message"]
    assert await cpo.store.tokens.get_token(uid, None) == []


async def test_url_must_match_body(registered):
    cpo, emsp = registered
    tok = emsp.peer.token_out
    cases = [
        (f"{TOKENS}/NL/EMS/OTHER", "uid"),
        (f"{TOKENS}/NL/EMS/AAA1?type=APP_USER", "type"),
    ]
    for path, field in cases:
        status, env, _ = await cpo.call("PUT", path, tok, body=token_body("AAA1"))
        assert env["status_code"] == 2001 and env["status_message"].startswith(field), env
    status, env, _ = await cpo.call("PUT", f"{TOKENS}/NL/EMS/AAA1", tok, raw=b"not json")
    assert status == 400 and env["status_code"] == 2001


async def test_patch_requires_last_updated_and_changes_only_given_fields(registered):
    cpo, emsp = registered
    tok = emsp.peer.token_out
    await cpo.call("PUT", f"{TOKENS}/NL/EMS/P1", tok, body=token_body("P1", group_id="G1"))
    status, env, _ = await cpo.call("PATCH", f"{TOKENS}/NL/EMS/p1", tok, body={"valid": False})
    assert env["status_code"] == 2001 and "last_updated" in env["status_message"]
    status, env, _ = await cpo.call(
        "PATCH",
        f"{TOKENS}/NL/EMS/p1",
        tok,
        body={"valid": "no", "last_updated": "2024-06-01T00:00:00Z"},
    )
    assert env["status_code"] == 2001 and env["status_message"].startswith("valid")
    status, env, _ = await cpo.call(
        "PATCH",
        f"{TOKENS}/NL/EMS/p1",
        tok,
        body={"valid": False, "last_updated": "2024-06-01T00:00:00Z"},
    )
    assert status == 200 and env["status_code"] == 1000
    _, env, _ = await cpo.call("GET", f"{TOKENS}/NL/EMS/P1", tok)
    assert env["data"]["valid"] is False
    assert env["data"]["group_id"] == "G1"
    assert env["data"]["last_updated"] == "2024-06-01T00:00:00Z"
    # The sandbox's own PATCH (block) goes through too.
    emsp.add_token("S1")
    await emsp.push_token("S1")
    reply = await emsp.block_token("S1")
    assert reply.status_code == 1000
    [stored] = await cpo.store.tokens.get_token("S1", "RFID")
    assert stored.valid is False


async def test_patch_and_get_of_unknown_token_is_404(registered):
    cpo, emsp = registered
    tok = emsp.peer.token_out
    body = {"valid": False, "last_updated": "2024-06-01T00:00:00Z"}
    status, env, _ = await cpo.call("PATCH", f"{TOKENS}/NL/EMS/NOPE", tok, body=body)
    assert status == 404 and env["status_code"] == 2004
    status, env, _ = await cpo.call("GET", f"{TOKENS}/NL/EMS/NOPE", tok)
    assert status == 404 and env["status_code"] == 2004


async def test_partner_cannot_touch_another_partys_tokens(registered):
    cpo, emsp = registered
    async with EmspSandbox.start(country_code="DE", party_id="OTH", control_port=None) as other:
        await other.register_with(cpo.versions_url, await cpo.invite("DE", "OTH"))
        await cpo.call("PUT", f"{TOKENS}/NL/EMS/MINE", emsp.peer.token_out, body=token_body("MINE"))
        tok = other.peer.token_out
        for method, body in (
            ("GET", None),
            ("PUT", token_body("MINE", contract_id="STOLEN")),
            ("PATCH", {"valid": False, "last_updated": "2024-06-01T00:00:00Z"}),
        ):
            status, env, _ = await cpo.call(method, f"{TOKENS}/NL/EMS/MINE", tok, body=body)
            assert status == 404 and env["status_code"] == 2000, (method, env)
        [stored] = await cpo.store.tokens.get_token("MINE", "RFID")
        assert stored.valid is True and stored.contract_id == "NL-EMS-C00012345-7"
        # Its own party works.
        body = token_body("THEIRS", country_code="DE", party_id="OTH")
        status, env, _ = await cpo.call("PUT", f"{TOKENS}/DE/OTH/THEIRS", tok, body=body)
        assert status == 201 and env["status_code"] == 1000
        assert [t.partner_key for t in await cpo.store.tokens.get_token("THEIRS", None)] == [
            "DE-OTH"
        ]


async def test_unregistered_partner_tokens_refused(registered):
    cpo, emsp = registered
    tok = emsp.peer.token_out
    await emsp.unregister()
    status, env, _ = await cpo.call("PUT", f"{TOKENS}/NL/EMS/A1", tok, body=token_body("A1"))
    assert status == 401 and env["status_code"] == 2000


async def test_post_and_delete_on_tokens_are_405_envelopes(registered):
    cpo, emsp = registered
    for method in ("POST", "DELETE"):
        status, env, _ = await cpo.call(method, f"{TOKENS}/NL/EMS/A1", emsp.peer.token_out, body={})
        assert status == 405 and env["status_code"] == 2000


async def test_cpo_server_cpo_call_encoding_unused(cpo: Cpo):
    # No partner: versions needs a token.
    status, env, _ = await cpo.call("GET", "/ocpi/2.2.1", None)
    assert status == 401 and env["status_code"] == 2000
