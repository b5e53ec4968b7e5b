"""End to end over real sockets: simulator charger -> CSMS (OCPP) -> eMSP sandboxes (OCPI).

The CSMS runs with OCPI enabled, so the roaming-aware authorizer reads the real token
store and calls through the real OCPI client. The two eMSPs are sandboxes; their partner
rows are written straight into the roaming store (the credentials handshake is tested
elsewhere and is not what these tests are about). Deadline: 0.5 s via config.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from csms.system import System
from roaming import auth
from roaming.models import (
    BusinessDetails,
    CredentialsRole,
    Endpoint,
    InterfaceRole,
    Role,
    Token,
)
from roaming.partners import TokenKind
from roaming.store import RoamingStore
from simulator.chargepoint import SimulatedChargePoint
from simulator.emsp import EmspSandbox
from tests.support.csms import ocpp_url, running_csms, runtime_of
from tests.support.waiting import wait_until

DEADLINE = 0.5
MARGIN = 0.35  # charger round trip + scheduling on a busy 2-core CI box

ALWAYS = "04ab01ff"  # cached ALWAYS at NL-EMS, lower case in the cache
AOFF = "AOFF0001"  # cached ALLOWED_OFFLINE at NL-EMS
NEVER = "NEVER001"  # cached NEVER at NL-EMS
ONLY_B = "BBB-ONLY-7"  # not cached; only DE-BBB knows it


def locations_toml(*chargers: str) -> str:
    """One location per charger (``LOC-<charger>``), one EVSE ``<charger>-1`` on connector 1."""
    evse = (
        'standard = "IEC_62196_T2", format = "SOCKET", power_type = "AC_1_PHASE", '
        "max_voltage = 230, max_amperage = 16"
    )
    return "".join(
        f"""
[[locations]]
id = "LOC-{cp}"
name = "Kerbside {cp}"
address = "Dorpsstraat 1"
city = "Utrecht"
postal_code = "3511AA"
country = "NLD"
latitude = "52.09074"
longitude = "5.12142"
time_zone = "Europe/Amsterdam"
parking_type = "ON_STREET"
evses = [{{ uid = "{cp}-1", charger_id = "{cp}", connector_id = 1, {evse} }}]
"""
        for cp in chargers
    )


async def register(store: RoamingStore, emsp: EmspSandbox, secret: str) -> Any:
    """Pair the sandbox with the CPO as a completed handshake would have."""
    emsp.peer.token_in = secret
    emsp.peer.registered = True
    key = f"{emsp.country_code}-{emsp.party_id}"
    ours = auth.generate_token()
    invited = await store.partners.create_invited(
        key,
        emsp.country_code,
        emsp.party_id,
        auth.hash_token(ours),
        kind=TokenKind.C,
        initiated_by="us",
    )
    role = CredentialsRole(
        Role.EMSP, BusinessDetails(emsp.business_name), emsp.party_id, emsp.country_code
    )
    endpoints = [
        Endpoint(e["identifier"], InterfaceRole(e["role"]), e["url"])
        for e in emsp.endpoints()
        if e["identifier"] != "credentials"
    ]
    return await store.partners.complete_registration(
        invited.id,
        roles=[role],
        token_in_hash=auth.hash_token(ours),
        token_in_kind=TokenKind.C,
        token_out=secret,
        auth_encoding="base64",
        versions_url=emsp.versions_url,
        version="2.2.1",
        endpoints=endpoints,
    )


def token_json(emsp: EmspSandbox, uid: str, whitelist: str, valid: bool = True) -> dict[str, Any]:
    return {
        "country_code": emsp.country_code,
        "party_id": emsp.party_id,
        "uid": uid,
        "type": "RFID",
        "contract_id": f"{emsp.country_code}-{emsp.party_id}-C-{uid}",
        "issuer": emsp.business_name,
        "group_id": "GRP-" + uid[:8],
        "valid": valid,
        "whitelist": whitelist,
        "last_updated": "2024-05-01T09:30:00Z",
    }


@dataclass
class World:
    app: System
    nl: EmspSandbox
    de: EmspSandbox

    def cp(self, cp_id: str) -> Any:
        return SimulatedChargePoint.connect(
            ocpp_url(self.app), cp_id, heartbeat=False, meter_interval_s=0, step_delay_s=0
        )

    async def decisions(self) -> list[dict[str, Any]]:
        await self.app.authorization.decisions.flush()
        rows = await self.app.db.fetchall("SELECT * FROM authorizations ORDER BY id")
        return [dict(r) for r in rows]

    def authorize_calls(self, emsp: EmspSandbox) -> int:
        return len(emsp.requests_to("/authorize", "POST"))


@pytest.fixture
async def world(tmp_path) -> AsyncIterator[World]:
    loc_file = tmp_path / "locations.toml"
    loc_file.write_text(locations_toml("CP1", "CP2"))
    async with (
        EmspSandbox.start(country_code="NL", party_id="EMS", control_port=None) as nl,
        EmspSandbox.start(country_code="DE", party_id="BBB", control_port=None) as de,
        running_csms(
            tmp_path,
            server={"unknown_chargers": "accept", "call_timeout_s": 5.0},
            authz={"authorize_deadline_s": DEADLINE},
            ocpi={"enabled": True, "country_code": "NL", "party_id": "CPO"},
            ocpi_cpo={"locations_file": str(loc_file)},
        ) as app,
    ):
        store = runtime_of(app).store
        p_nl = await register(store, nl, "secret-for-nl")
        await register(store, de, "secret-for-de")
        for uid, wl in ((ALWAYS, "ALWAYS"), (AOFF, "ALLOWED_OFFLINE"), (NEVER, "NEVER")):
            body = token_json(nl, uid, wl)
            nl.add_tokens([body])
            await store.tokens.upsert_token(p_nl.id, Token.from_json(body))
        de.add_tokens([token_json(de, ONLY_B, "NEVER")])
        yield World(app, nl, de)


async def timed(coro) -> tuple[Any, float]:
    t0 = time.monotonic()
    result = await coro
    return result, time.monotonic() - t0


async def test_cache_hit_makes_no_emsp_request_and_uid_case_does_not_matter(world: World):
    async with world.cp("CP1") as cp:
        await cp.boot()
        r = await cp.authorize(ALWAYS.upper())
    assert r["idTagInfo"]["status"] == "Accepted"
    assert r["idTagInfo"]["parentIdTag"] == "GRP-04ab01ff"
    assert world.authorize_calls(world.nl) == 0 and world.authorize_calls(world.de) == 0
    [d] = await world.decisions()
    assert (d["source"], d["uid"], d["partner_id"]) == ("cache", ALWAYS.upper(), "NL-EMS")


async def test_allowed_offline_and_never_go_remote_with_location_refs(world: World):
    async with world.cp("CP1") as cp:
        await cp.boot()
        assert (await cp.authorize(AOFF))["idTagInfo"]["status"] == "Accepted"
        assert (await cp.authorize(NEVER.lower()))["idTagInfo"]["status"] == "Accepted"
    calls = world.nl.requests_to("/authorize", "POST")
    # The uid in the URL is the eMSP's spelling of the token it pushed, not the charger's.
    assert [c.path.split("/")[-2] for c in calls] == [AOFF, NEVER]
    assert calls[0].query == {"type": "RFID"}
    assert calls[0].body == {"location_id": "LOC-CP1", "evse_uids": ["CP1-1"]}
    assert calls[0].header("X-Request-ID") and calls[0].header("X-Correlation-ID")
    assert world.authorize_calls(world.de) == 0
    assert [d["source"] for d in await world.decisions()] == ["remote", "remote"]


async def test_emsp_reference_is_stored_on_the_transaction_verbatim_and_reused(world: World):
    async with world.cp("CP1") as cp:
        await cp.boot()
        await cp.authorize(NEVER)
        r = await cp.start_transaction(1, NEVER, meter_loop=False)
    assert r["idTagInfo"]["status"] == "Accepted"
    [ref] = world.nl.references_for(NEVER)  # one eMSP call: StartTransaction reused it
    assert any(c.isupper() for c in ref) and any(c.islower() for c in ref)
    row = await world.app.db.fetchone(
        "SELECT * FROM transactions WHERE id = ?", (r["transactionId"],)
    )
    assert row["authorization_reference"] == ref
    assert (row["partner_id"], row["auth_method"], row["contract_id"]) == (
        "NL-EMS",
        "AUTH_REQUEST",
        f"NL-EMS-C-{NEVER}",
    )
    assert [d["source"] for d in await world.decisions()] == ["remote", "reused"]


async def test_emsp_slower_than_the_deadline_gets_the_fallback_in_time(world: World):
    world.nl.set_authorize_behaviour("delay", delay_ms=3000)
    async with world.cp("CP1") as cp:
        await cp.boot()
        r, took = await timed(cp.authorize(AOFF))
        assert r["idTagInfo"]["status"] == "Accepted"
        assert DEADLINE - 0.05 <= took < DEADLINE + MARGIN
        r, took = await timed(cp.authorize(NEVER))
        assert r["idTagInfo"]["status"] == "Invalid"
        assert took < DEADLINE + MARGIN
    decided = await world.decisions()
    assert [d["source"] for d in decided] == ["fallback", "fallback"]
    assert all("timeout" in d["reason"] for d in decided)


@pytest.mark.parametrize("mode", ["http500", "malformed", "non_envelope", "drop"])
async def test_broken_emsp_answers_are_fallback(world: World, mode: str):
    world.nl.set_authorize_behaviour(mode)
    async with world.cp("CP1") as cp:
        await cp.boot()
        assert (await cp.authorize(AOFF))["idTagInfo"]["status"] == "Accepted"
        assert (await cp.authorize(NEVER))["idTagInfo"]["status"] == "Invalid"
    assert world.authorize_calls(world.nl) == 2
    assert [d["source"] for d in await world.decisions()] == ["fallback", "fallback"]


async def test_unknown_token_404_is_invalid_without_fallback(world: World):
    world.nl.set_authorize_behaviour("unknown")
    async with world.cp("CP1") as cp:
        await cp.boot()
        r = await cp.authorize(AOFF)  # ALLOWED_OFFLINE would be accepted by the fallback
    assert r["idTagInfo"]["status"] == "Invalid"
    [d] = await world.decisions()
    assert (d["source"], d["status"]) == ("remote", "Invalid")


async def test_fan_out_over_two_emsps_picks_the_one_that_knows_the_token(world: World):
    # DE answers 200 ms late: NL's "unknown" is then certainly asked and answered first
    # (when DE's ALLOWED came first, the fan-out cancelled NL's request, sometimes before
    # it reached NL, and the count below was 0).
    world.de.set_authorize_behaviour("delay", delay_ms=200)
    async with world.cp("CP1") as cp:
        await cp.boot()
        r = await cp.start_transaction(1, ONLY_B.lower(), meter_loop=False)
    assert r["idTagInfo"]["status"] == "Accepted"
    assert world.authorize_calls(world.nl) == 1  # answered 404
    [ref] = world.de.references_for(ONLY_B)
    row = await world.app.db.fetchone(
        "SELECT * FROM transactions WHERE id = ?", (r["transactionId"],)
    )
    assert (row["partner_id"], row["authorization_reference"]) == ("DE-BBB", ref)
    # the token the eMSP sent back is learnt in the background
    store = world.app.authorization.token_cache.store
    learnt = await wait_until(
        lambda: store.tokens.get_token(ONLY_B.upper(), "RFID"), what="the token learnt"
    )
    assert [(t.partner_key, t.whitelist) for t in learnt] == [("DE-BBB", "NEVER")]


async def test_hung_emsp_delays_neither_other_chargers_nor_calls_on_the_same_socket(world: World):
    world.nl.set_authorize_behaviour("hang", uid=NEVER)
    async with world.cp("CP1") as cp1, world.cp("CP2") as cp2:
        await cp1.boot()
        await cp2.boot()
        t0 = time.monotonic()
        hung = asyncio.ensure_future(cp1.authorize(NEVER))
        await world.nl.wait_until(lambda: world.authorize_calls(world.nl) == 1, timeout=2)
        r2, took2 = await timed(cp2.authorize(ALWAYS))
        assert r2["idTagInfo"]["status"] == "Accepted" and took2 < DEADLINE / 2
        answer, took_call = await timed(
            world.app.gateway.call("CP1", "RemoteStartTransaction", {"idTag": ALWAYS})
        )
        assert answer["status"] == "Accepted" and took_call < DEADLINE / 2
        assert not hung.done()
        r1 = await hung
        assert r1["idTagInfo"]["status"] == "Invalid"  # NEVER + unreachable
        assert time.monotonic() - t0 < DEADLINE + MARGIN


async def test_concurrent_tx_on_another_charger(world: World):
    async with world.cp("CP1") as cp1, world.cp("CP2") as cp2:
        await cp1.boot()
        await cp2.boot()
        r = await cp1.start_transaction(1, ALWAYS, meter_loop=False)
        assert r["idTagInfo"]["status"] == "Accepted"
        r = await cp2.start_transaction(1, ALWAYS.upper(), meter_loop=False)
        assert r["idTagInfo"]["status"] == "ConcurrentTx"
        # the transaction is stored anyway, with the status the charger got
        row = await world.app.db.fetchone(
            "SELECT start_status FROM transactions WHERE id = ?", (r["transactionId"],)
        )
        assert row["start_status"] == "ConcurrentTx"
