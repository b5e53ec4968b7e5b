"""The pure policy, as the tables an operator agrees with an eMSP (OCPI 2.2.1 §4.5) and
keeps for its own cards (``id_tags``).

The expectations below are written out by hand from the spec digest and the documented
fallback, independently of the code: each dimension (what the cache decides, what a
definite answer means, what the fallback does) is one small table, and the test walks
EVERY whitelist x valid x remote outcome combination through :func:`policy.resolve`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from csms.authz import policy
from csms.authz.model import (
    Allowed,
    AuthMethod,
    AuthStatus,
    CachedToken,
    Decision,
    FallbackRules,
    OwnCard,
    RemoteRefused,
    RemoteVerdict,
    Source,
    TokenUnknown,
    Unreachable,
    UnreachableKind,
    Whitelist,
)

NOW = datetime(2024, 5, 3, 12, 0, 0, tzinfo=UTC)
A, B, E, INV = AuthStatus.ACCEPTED, AuthStatus.BLOCKED, AuthStatus.EXPIRED, AuthStatus.INVALID
REMOTE = "remote"  # the cache cannot decide


def token(whitelist: Whitelist, valid: bool, group_id: str | None = "GRP-1") -> CachedToken:
    return CachedToken(
        country_code="nl",
        party_id="ems",
        uid="04a1b2c3",
        token_type="RFID",
        contract_id="NL-EMS-C0001-1",
        valid=valid,
        whitelist=whitelist,
        group_id=group_id,
        last_updated="2024-05-01T09:30:00Z",
    )


# What the cache alone decides.
CACHE: dict[tuple[Whitelist | None, bool], AuthStatus | str] = {
    (Whitelist.ALWAYS, True): A,
    (Whitelist.ALWAYS, False): INV,
    (Whitelist.ALLOWED, True): A,
    (Whitelist.ALLOWED, False): INV,
    (Whitelist.ALLOWED_OFFLINE, True): REMOTE,
    (Whitelist.ALLOWED_OFFLINE, False): REMOTE,  # valid=false still asks (spec §4.5)
    (Whitelist.NEVER, True): REMOTE,
    (Whitelist.NEVER, False): REMOTE,
    (None, False): REMOTE,  # unknown token
}

# A definite answer is final, whatever the cache held.
DEFINITE = {
    "ALLOWED": A,
    "BLOCKED": B,
    "EXPIRED": E,
    "NO_CREDIT": B,
    "NOT_ALLOWED": INV,
    "unknown-404": INV,
    "refused-401": INV,
}

# The eMSP gave no answer (default partner rules).
FALLBACK = {
    (Whitelist.ALLOWED_OFFLINE, True): A,
    (Whitelist.ALLOWED_OFFLINE, False): INV,
    (Whitelist.NEVER, True): INV,
    (Whitelist.NEVER, False): INV,
    (None, False): INV,
}


def outcome(name: str):
    if name in Allowed.__members__:
        return RemoteVerdict(
            partner_id="NL-EMS",
            allowed=Allowed(name),
            token=token(Whitelist.NEVER, True, group_id="GRP-REMOTE"),
            authorization_reference="AuTh-7f3E",
            display_text="Enjoy",
        )
    if name == "unknown-404":
        return TokenUnknown(partner_id="NL-EMS")
    if name == "refused-401":
        return RemoteRefused(partner_id="NL-EMS", detail="HTTP 401")
    return Unreachable(partner_id="NL-EMS", kind=UnreachableKind(name), detail="x")


OUTCOMES = [*DEFINITE, *(k.value for k in UnreachableKind)]
CASES = [(wl, valid, o) for (wl, valid) in CACHE for o in OUTCOMES]


@pytest.mark.parametrize(("whitelist", "valid", "name"), CASES)
def test_every_whitelist_valid_outcome(whitelist, valid, name):
    cached = None if whitelist is None else token(whitelist, valid)
    d = policy.resolve(cached, outcome(name), NOW, expiry_s=3600)
    by_cache = CACHE[(whitelist, valid)]
    if by_cache != REMOTE:
        assert (d.status, d.source, d.auth_method) == (by_cache, Source.CACHE, AuthMethod.WHITELIST)
        assert d.authorization_reference is None
    elif name in DEFINITE:
        assert (d.status, d.source, d.auth_method) == (
            DEFINITE[name],
            Source.REMOTE,
            AuthMethod.AUTH_REQUEST,
        )
        assert d.partner_id == "NL-EMS"
    else:
        assert d.status == FALLBACK[(whitelist, valid)]
        assert d.source is Source.FALLBACK
        assert name in d.reason
    assert (d.expiry_date == "2024-05-03T13:00:00Z") == (d.status is A)


def test_table_covers_every_whitelist_and_allowed_value():
    assert {wl for wl, _ in CACHE} == {*Whitelist, None}
    assert set(Allowed.__members__) <= set(DEFINITE)
    assert len(CASES) == 9 * (7 + len(UnreachableKind))


def test_remote_answer_carries_reference_verbatim_group_and_display_text():
    d = policy.resolve(token(Whitelist.NEVER, True), outcome("ALLOWED"), NOW)
    assert d.authorization_reference == "AuTh-7f3E"
    assert d.parent_id_tag == "GRP-REMOTE"  # from the token the eMSP sent back
    assert d.display_text == "Enjoy"
    assert d.allowed is Allowed.ALLOWED
    assert (d.token_country_code, d.token_party_id, d.contract_id) == (
        "nl",
        "ems",
        "NL-EMS-C0001-1",
    )


def test_remote_answer_without_token_keeps_cached_token_fields():
    v = RemoteVerdict(partner_id="NL-EMS", allowed=Allowed.BLOCKED, token=None)
    d = policy.after_remote(v, NOW, cached=token(Whitelist.NEVER, True))
    assert (d.status, d.parent_id_tag, d.contract_id) == (B, "GRP-1", "NL-EMS-C0001-1")


def test_group_id_longer_than_ocpp_parent_id_tag_is_left_out():
    d = policy.from_cache(token(Whitelist.ALWAYS, True, group_id="G" * 21), NOW)
    assert d is not policy.NEED_REMOTE
    assert d.parent_id_tag is None and d.status is A


def test_cache_sentinel_for_remote_whitelists():
    assert policy.from_cache(None, NOW) is policy.NEED_REMOTE
    assert policy.from_cache(token(Whitelist.NEVER, True), NOW) is policy.NEED_REMOTE


@pytest.mark.parametrize(
    ("whitelist", "rules", "expected"),
    [
        (Whitelist.ALLOWED_OFFLINE, FallbackRules(allowed_offline_accept=False), INV),
        (Whitelist.ALLOWED_OFFLINE, FallbackRules(allowed_accept=False), A),
        (Whitelist.ALLOWED, FallbackRules(), A),
        (Whitelist.ALLOWED, FallbackRules(allowed_accept=False), INV),
        (Whitelist.NEVER, FallbackRules(True, True), INV),
        (Whitelist.ALWAYS, FallbackRules(False, False), A),
    ],
)
def test_partner_overrides_of_the_fallback(whitelist, rules, expected):
    d = policy.fallback(token(whitelist, True), rules, now=NOW)
    assert (d.status, d.source) == (expected, Source.FALLBACK)


def test_override_never_accepts_a_token_marked_not_valid():
    d = policy.fallback(token(Whitelist.ALLOWED_OFFLINE, False), FallbackRules(True, True), now=NOW)
    assert d.status is INV


def test_no_emsp_to_ask_is_the_fallback():
    d = policy.resolve(token(Whitelist.ALLOWED_OFFLINE, True), None, NOW)
    assert (d.status, d.source) == (A, Source.FALLBACK)
    d = policy.resolve(None, None, NOW)
    assert (d.status, d.source) == (INV, Source.FALLBACK)


def test_pick_fanout_outcomes():
    ok = RemoteVerdict(partner_id="DE-B", allowed=Allowed.ALLOWED)
    blocked = RemoteVerdict(partner_id="DE-C", allowed=Allowed.BLOCKED)
    unknown = TokenUnknown(partner_id="NL-A")
    down = Unreachable(partner_id="NL-D", kind=UnreachableKind.TIMEOUT)
    refused = RemoteRefused(partner_id="NL-R")
    assert policy.pick([unknown, blocked, ok]) is ok
    assert policy.pick([unknown, blocked, down]) is blocked
    assert policy.pick([unknown, refused, down]) is down
    assert policy.pick([unknown, refused]) is refused
    assert policy.pick([unknown, TokenUnknown(partner_id="X")]) is unknown
    assert policy.pick([]) is None
    assert policy.is_final_for_fanout(ok) and not policy.is_final_for_fanout(blocked)


def test_choose_cached_prefers_valid_then_newest():
    old = token(Whitelist.ALWAYS, True)
    new = CachedToken(**{**_fields(old), "party_id": "XYZ", "last_updated": "2024-06-01T00:00:00Z"})
    blocked = CachedToken(
        **{**_fields(new), "valid": False, "last_updated": "2025-01-01T00:00:00Z"}
    )
    assert policy.choose_cached([blocked, old, new]) is new
    assert policy.choose_cached([]) is None


def _fields(t: CachedToken) -> dict:
    return {f: getattr(t, f) for f in t.__slots__}


# ---------------------------------------------------------------------- own cards (row 1)

# (stored status, own expiry relative to NOW in seconds or None) -> (status, expiryDate)
# with authz.id_tag_expiry_s = 3600: the answer's expiry is NOW + 1 h, never later than
# the card's own expiry.
OWN = {
    ("Accepted", None): (A, "2024-05-03T13:00:00Z"),
    ("Accepted", 7200): (A, "2024-05-03T13:00:00Z"),
    ("Accepted", 600): (A, "2024-05-03T12:10:00Z"),
    ("Accepted", 0): (E, None),  # expires this very moment: already expired
    ("Accepted", -60): (E, None),
    ("Blocked", None): (B, None),
    ("Blocked", 600): (B, None),
    ("Expired", None): (E, None),
    ("Expired", 600): (E, None),  # as stored, whatever its date says
    ("Invalid", None): (INV, None),
}


def card(status: str, expires_in: int | None) -> OwnCard:
    expiry = None if expires_in is None else NOW + timedelta(seconds=expires_in)
    return OwnCard("Fleet-01", AuthStatus(status), expiry, parent_id_tag="FLEET")


@pytest.mark.parametrize(("stored", "expires_in"), list(OWN))
def test_every_own_card_row(stored: str, expires_in: int | None) -> None:
    d = policy.own_card(card(stored, expires_in), "RFID", NOW, 3600)
    status, expiry_date = OWN[(stored, expires_in)]
    assert (d.status, d.source, d.expiry_date) == (status, Source.LOCAL, expiry_date)
    assert d.parent_id_tag == "FLEET"
    assert d.reason == f"idTag is {status.value}"
    if status is A:
        assert (d.auth_method, d.token_type) == (AuthMethod.WHITELIST, "RFID")


def test_own_card_table_covers_every_storable_status() -> None:
    assert {s for s, _ in OWN} == {s.value for s in AuthStatus} - {"ConcurrentTx"}


def test_unknown_own_card_is_invalid() -> None:
    d = policy.own_card(None, "RFID", NOW, 3600)
    assert (d.status, d.source, d.reason, d.expiry_date) == (
        INV,
        Source.LOCAL,
        "unknown idTag",
        None,
    )


# ---------------------------------------------------------------------- rows 2, 3 and after


def test_command_and_reuse_keep_the_decision_under_their_own_source() -> None:
    given = policy.resolve(token(Whitelist.NEVER, True), outcome("ALLOWED"), NOW)
    command = policy.commanded(given)
    assert (command.source, command.auth_method) == (Source.COMMAND, AuthMethod.COMMAND)
    assert command.authorization_reference == given.authorization_reference
    again = policy.reused(given)
    assert (again.source, again.reason) == (Source.REUSED, "reuses Authorize (remote)")
    assert policy.held_for_reuse("Authorize", given)
    assert not policy.held_for_reuse("StartTransaction", given)
    cached = policy.from_cache(token(Whitelist.ALWAYS, True), NOW)
    assert cached is not policy.NEED_REMOTE and not policy.held_for_reuse("Authorize", cached)


# (trigger, source, check on Authorize configured) -> ConcurrentTx query made
CONCURRENCY_CHECKED = {
    ("StartTransaction", Source.REMOTE, False): True,
    ("StartTransaction", Source.CACHE, False): True,
    ("StartTransaction", Source.REUSED, False): True,
    ("StartTransaction", Source.FALLBACK, False): True,
    ("StartTransaction", Source.COMMAND, False): False,
    ("StartTransaction", Source.LOCAL, False): False,
    ("Authorize", Source.CACHE, False): False,
    ("Authorize", Source.CACHE, True): True,
    ("Authorize", Source.LOCAL, True): False,
    ("StopTransaction", Source.REMOTE, True): False,
}


@pytest.mark.parametrize(("trigger", "source", "on_authorize"), list(CONCURRENCY_CHECKED))
def test_which_accepted_decisions_are_checked_for_concurrent_tx(trigger, source, on_authorize):
    accepted = Decision(A, source)
    expected = CONCURRENCY_CHECKED[(trigger, source, on_authorize)]
    assert policy.needs_concurrency_check(trigger, accepted, on_authorize) is expected
    assert not policy.needs_concurrency_check(trigger, Decision(B, source), on_authorize)


def test_concurrent_tx_is_another_charger_or_for_a_start_another_connector() -> None:
    d = Decision(A, Source.REMOTE, expiry_date="2024-05-03T13:00:00Z")
    assert policy.concurrent_tx(d, "CP1", "Authorize", None, [("CP1", 2)]) is d
    other = policy.concurrent_tx(d, "CP1", "Authorize", None, [("CP2", 1)])
    assert (other.status, other.expiry_date, other.reason) == (
        AuthStatus.CONCURRENT_TX,
        None,
        "active transaction at CP2/1",
    )
    start = policy.concurrent_tx(d, "CP1", "StartTransaction", 1, [("CP1", 2)])
    assert start.status is AuthStatus.CONCURRENT_TX
    assert policy.concurrent_tx(d, "CP1", "StartTransaction", 2, [("CP1", 2)]) is d


def test_stop_tag_that_started_the_transaction_reuses_its_decision() -> None:
    assert policy.stop_reuses_start("fleet-01", "FLEET-01")
    assert not policy.stop_reuses_start("OTHER", "FLEET-01")
