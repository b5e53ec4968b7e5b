"""What a command pre-authorization carries to another node: the decision as it was
made, and only as long as it is still valid."""

from __future__ import annotations

import orjson

from csms.authz.model import Allowed, AuthMethod, AuthStatus, Decision, Source
from csms.cluster.forwarding_preauth import PER_CHARGER, Carried, decode_decision, encode_decision


def test_a_decision_survives_the_trip_field_for_field() -> None:
    decision = Decision(
        AuthStatus.ACCEPTED,
        Source.COMMAND,
        reason="pre-authorized by OCPI command",
        partner_id="NL-EMS",
        token_type="RFID",
        token_country_code="NL",
        token_party_id="EMS",
        contract_id="NL-EMS-C0001",
        token_uid="c0ffee01",
        allowed=Allowed.ALLOWED,
        authorization_reference="Ref-1",
        auth_method=AuthMethod.COMMAND,
        extra={"k": "v"},
    )
    assert decode_decision(orjson.loads(orjson.dumps(encode_decision(decision)))) == decision
    bare = Decision(AuthStatus.BLOCKED, Source.CACHE)
    assert decode_decision(orjson.loads(orjson.dumps(encode_decision(bare)))) == bare


def test_carried_entries_are_taken_once_with_their_remaining_time_and_expire() -> None:
    now = [100.0]
    carried = Carried(clock=lambda: now[0])
    decision = Decision(AuthStatus.ACCEPTED, Source.COMMAND)
    carried.add("CP1", "T1", decision, ttl_s=10)
    carried.add("CP1", "T2", decision, ttl_s=1)
    now[0] = 102.0
    [entry] = carried.take("CP1")
    assert entry["uid"] == "T1" and entry["ttl_s"] == 8.0
    assert carried.take("CP1") == []
    for n in range(PER_CHARGER + 5):
        carried.add("CP2", f"T{n}", decision, ttl_s=60)
    taken = carried.take("CP2")
    assert len(taken) == PER_CHARGER and taken[-1]["uid"] == f"T{PER_CHARGER + 4}"
