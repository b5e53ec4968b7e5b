"""The authorization policy as pure functions: facts in, a frozen :class:`Decision` out.

Why pure: the rules (the operator's own cards, OCPI 2.2.1 §4.5 whitelist table, the
fallback an operator agrees with each eMSP) are the part of the product most worth
reading and testing on their own, without sockets, clocks or a database. The asyncio
shell (:mod:`csms.authz.service`, :mod:`csms.authz.realtime`) fetches the facts, reads
the clock and enforces the deadline; everything it decides is decided here.

Precedence: the first row that applies decides, top to bottom.

=====  ==========  ============================================  ==========================
 row   source      applies when                                  decision
=====  ==========  ============================================  ==========================
 1     local       the uid is one of the operator's own cards    :func:`own_card`
                   (``id_tags``); without roaming, every uid     (unknown -> Invalid)
 2     command     an OCPI START_SESSION / RESERVE_NOW           the eMSP's decision,
                   pre-authorized this uid at this charger       :func:`commanded`
 3     reused      a StartTransaction within the reuse window    that decision,
                   after an Accepted remote/fallback Authorize   :func:`reused`
                   of the same uid at the same charger
 4     cache       a token an eMSP published, whitelist          :func:`from_cache`
                   ALWAYS or ALLOWED
 5     remote      the eMSP gave a definite answer in time       :func:`after_remote`
 6     fallback    the eMSP gave no answer (timeout, error...)   :func:`fallback`
=====  ==========  ============================================  ==========================

Then, for an Accepted decision of rows 3 to 6 (:func:`needs_concurrency_check`): a
StartTransaction, and an Authorize when configured, is ConcurrentTx while the token
charges elsewhere (:func:`concurrent_tx`). Outside the table: a StopTransaction whose
idTag started the transaction gets the start decision, with no lookup at all
(:func:`stop_reuses_start`); an authorizer that fails anyway yields
:data:`AUTHORIZER_FAILED`.

Own cards (row 1): unknown -> Invalid; Blocked/Expired/Invalid as stored; Accepted with
its own expiry in the past -> Expired; Accepted -> expiryDate = now + id_tag_expiry_s,
never later than the card's own expiry, so the charger's cache forgets it in time.

Roaming tokens (rows 4 to 6), in order: :func:`from_cache` decides or says
:data:`NEED_REMOTE`; :func:`after_remote` maps a definite real-time answer (final);
:func:`fallback` decides from what we hold when the eMSP gave none. :func:`resolve`
chains them for a single outcome, :func:`pick` folds a fan-out over several eMSPs.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

from csms import datetimes
from csms.authz.model import (
    Allowed,
    AuthMethod,
    AuthStatus,
    CachedToken,
    Decision,
    FallbackRules,
    OwnCard,
    RemoteOutcome,
    RemoteRefused,
    RemoteVerdict,
    Source,
    TokenUnknown,
    Unreachable,
    Whitelist,
    normalise,
)

DEFAULT_EXPIRY_S: Final = 86400
PARENT_ID_TAG_MAX: Final = 20  # OCPP 1.6 idTagInfo.parentIdTag is CiString20


class NeedRemote(enum.Enum):
    """Sentinel type (h11 style): the cache cannot decide, ask the eMSP."""

    NEED_REMOTE = "NEED_REMOTE"


NEED_REMOTE: Final = NeedRemote.NEED_REMOTE

# The ONE mapping of OCPI AllowedType to OCPP 1.6 idTagInfo.status.
# NO_CREDIT -> Blocked: 1.6 has no "no credit" status and Blocked is the one chargers
# show as "card refused" without suggesting the card is broken (Invalid) or old (Expired).
ALLOWED_TO_STATUS: Final[Mapping[Allowed, AuthStatus]] = {
    Allowed.ALLOWED: AuthStatus.ACCEPTED,
    Allowed.BLOCKED: AuthStatus.BLOCKED,
    Allowed.EXPIRED: AuthStatus.EXPIRED,
    Allowed.NO_CREDIT: AuthStatus.BLOCKED,
    Allowed.NOT_ALLOWED: AuthStatus.INVALID,
}

# Which whitelist values let the cache decide on its own (no real-time call).
CACHE_DECIDES: Final = frozenset({Whitelist.ALWAYS, Whitelist.ALLOWED})


def expiry(now: datetime, expiry_s: int) -> str:
    """``idTagInfo.expiryDate``: how long the charger may keep the answer in its own cache."""
    return _expiry_at(int(now.timestamp()), expiry_s)


@functools.lru_cache(maxsize=8)
def _expiry_at(epoch_s: int, expiry_s: int) -> str:
    # Cached per second: formatting a date is a visible share of a cache-hit decision.
    moment = datetime.fromtimestamp(epoch_s + expiry_s, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _token_fields(token: CachedToken | None) -> dict[str, str | None]:
    if token is None:
        return {}
    group = token.group_id
    return {
        "partner_id": token.partner_id,
        "token_type": token.token_type,
        "token_country_code": token.country_code,
        "token_party_id": token.party_id,
        "contract_id": token.contract_id,
        "token_uid": token.uid,
        # A group id longer than OCPP allows would make the whole CALLRESULT invalid.
        "parent_id_tag": group if group and len(group) <= PARENT_ID_TAG_MAX else None,
    }


def _decision(
    status: AuthStatus,
    source: Source,
    reason: str,
    token: CachedToken | None,
    now: datetime,
    expiry_s: int,
    **more: object,
) -> Decision:
    fields: dict[str, object] = {**_token_fields(token), **more}
    if status is AuthStatus.ACCEPTED:
        fields["expiry_date"] = expiry(now, expiry_s)
    return Decision(status=status, source=source, reason=reason, **fields)  # type: ignore[arg-type]


def choose_cached(tokens: Iterable[CachedToken]) -> CachedToken | None:
    """Pick one of the tokens several eMSPs published under the same uid.

    Valid before invalid (a card one eMSP blocked may be live at another), then the
    most recently updated; ties keep the store's order.
    """
    best: CachedToken | None = None
    for tok in tokens:
        if best is None or (tok.valid, tok.last_updated) > (best.valid, best.last_updated):
            best = tok
    return best


def from_cache(
    token: CachedToken | None, now: datetime, expiry_s: int = DEFAULT_EXPIRY_S
) -> Decision | Literal[NeedRemote.NEED_REMOTE]:
    """Decide from the cache, or say that only the eMSP can (OCPI §4.5)."""
    if token is None or token.whitelist not in CACHE_DECIDES:
        return NEED_REMOTE
    if token.valid:
        return _decision(
            AuthStatus.ACCEPTED,
            Source.CACHE,
            f"whitelist {token.whitelist}",
            token,
            now,
            expiry_s,
            auth_method=AuthMethod.WHITELIST,
        )
    return _decision(
        AuthStatus.INVALID,
        Source.CACHE,
        f"whitelist {token.whitelist}, token not valid",
        token,
        now,
        expiry_s,
        auth_method=AuthMethod.WHITELIST,
    )


def after_remote(
    outcome: RemoteVerdict | TokenUnknown | RemoteRefused,
    now: datetime,
    expiry_s: int = DEFAULT_EXPIRY_S,
    cached: CachedToken | None = None,
) -> Decision:
    """A definite real-time answer is final: no fallback, whatever the cache says."""
    if isinstance(outcome, TokenUnknown):
        return _decision(
            AuthStatus.INVALID,
            Source.REMOTE,
            "unknown token (eMSP answered 404/2004)",
            None,
            now,
            expiry_s,
            partner_id=outcome.partner_id,
            auth_method=AuthMethod.AUTH_REQUEST,
        )
    if isinstance(outcome, RemoteRefused):
        return _decision(
            AuthStatus.INVALID,
            Source.REMOTE,
            f"eMSP refused the request: {outcome.detail}".rstrip(": "),
            cached,
            now,
            expiry_s,
            partner_id=outcome.partner_id,
            auth_method=AuthMethod.AUTH_REQUEST,
        )
    token = outcome.token or cached
    return _decision(
        ALLOWED_TO_STATUS[outcome.allowed],
        Source.REMOTE,
        f"eMSP answered {outcome.allowed}",
        token,
        now,
        expiry_s,
        partner_id=outcome.partner_id,
        allowed=outcome.allowed,
        authorization_reference=outcome.authorization_reference,
        display_text=outcome.display_text,
        auth_method=AuthMethod.AUTH_REQUEST,
    )


def fallback(
    cached: CachedToken | None,
    rules: FallbackRules = FallbackRules(),
    *,
    now: datetime,
    expiry_s: int = DEFAULT_EXPIRY_S,
    why: str = "eMSP unreachable",
) -> Decision:
    """The eMSP gave no answer: decide from what we hold, as agreed with the partner.

    ALLOWED_OFFLINE + valid -> Accepted (OCPI), ALLOWED + valid -> Accepted (whitelisting
    is allowed), each overridable to reject per partner; NEVER, an unknown token and a
    token marked not valid are always rejected.
    """
    if cached is None:
        return _decision(
            AuthStatus.INVALID, Source.FALLBACK, f"{why}; unknown token", None, now, expiry_s
        )
    accept = {
        Whitelist.ALWAYS: True,
        Whitelist.ALLOWED: rules.allowed_accept,
        Whitelist.ALLOWED_OFFLINE: rules.allowed_offline_accept,
        Whitelist.NEVER: False,
    }[cached.whitelist]
    if not cached.valid:
        status, detail = AuthStatus.INVALID, "token not valid"
    elif accept:
        status, detail = AuthStatus.ACCEPTED, "accepted offline"
    else:
        status, detail = AuthStatus.INVALID, "no offline acceptance"
    return _decision(
        status,
        Source.FALLBACK,
        f"{why}; whitelist {cached.whitelist}, {detail}",
        cached,
        now,
        expiry_s,
        auth_method=AuthMethod.WHITELIST,
    )


def resolve(
    cached: CachedToken | None,
    outcome: RemoteOutcome | None,
    now: datetime,
    rules: FallbackRules = FallbackRules(),
    expiry_s: int = DEFAULT_EXPIRY_S,
) -> Decision:
    """The whole policy for one eMSP: cache, else its answer, else the fallback.

    ``outcome`` is ignored when the cache decides (no call is made then); ``None`` when
    the cache cannot decide means nobody could be asked, which is treated as unreachable.
    """
    first = from_cache(cached, now, expiry_s)
    if first is not NEED_REMOTE:
        return first
    if outcome is None:
        return fallback(cached, rules, now=now, expiry_s=expiry_s, why="no eMSP to ask")
    if isinstance(outcome, Unreachable):
        return fallback(
            cached, rules, now=now, expiry_s=expiry_s, why=f"eMSP unreachable ({outcome.kind})"
        )
    return after_remote(outcome, now, expiry_s, cached)


def pick(outcomes: Sequence[RemoteOutcome]) -> RemoteOutcome | None:
    """Fold a fan-out's outcomes into the one that decides an unknown token.

    The first ``ALLOWED`` wins; otherwise the first other definite verdict (that eMSP
    knows the token and said no); otherwise, if anyone was unreachable, that (the token
    may be theirs: fallback); otherwise a refusal; ``TokenUnknown`` only when every
    eMSP said so; ``None`` when there was nobody to ask.
    """
    verdicts = [o for o in outcomes if isinstance(o, RemoteVerdict)]
    for v in verdicts:
        if v.allowed is Allowed.ALLOWED:
            return v
    if verdicts:
        return verdicts[0]
    for kind in (Unreachable, RemoteRefused, TokenUnknown):
        for o in outcomes:
            if isinstance(o, kind):
                return o
    return None


def is_final_for_fanout(outcome: RemoteOutcome) -> bool:
    """A fan-out can stop waiting for the others once one eMSP allowed the token."""
    return isinstance(outcome, RemoteVerdict) and outcome.allowed is Allowed.ALLOWED


# ---------------------------------------------------------------------- own cards (row 1)

UNKNOWN_CARD: Final = Decision(AuthStatus.INVALID, Source.LOCAL, reason="unknown idTag")


def own_card(card: OwnCard | None, token_type: str, now: datetime, expiry_s: int) -> Decision:
    """The operator's own card decides; ``None`` (not in ``id_tags``) is Invalid."""
    if card is None:
        return UNKNOWN_CARD
    status = card.status
    own_expiry = card.expiry
    if status is AuthStatus.ACCEPTED and own_expiry is not None and own_expiry <= now:
        status = AuthStatus.EXPIRED
    if status is not AuthStatus.ACCEPTED:
        return Decision(
            status,
            Source.LOCAL,
            reason=f"idTag is {status.value}",
            parent_id_tag=card.parent_id_tag,
        )
    if own_expiry is not None and own_expiry < now + timedelta(seconds=expiry_s):
        expiry_date = datetimes.seconds(own_expiry)
    else:
        expiry_date = expiry(now, expiry_s)
    return Decision(
        AuthStatus.ACCEPTED,
        Source.LOCAL,
        parent_id_tag=card.parent_id_tag,
        expiry_date=expiry_date,
        token_type=token_type,
        auth_method=AuthMethod.WHITELIST,
        reason="idTag is Accepted",
    )


# ---------------------------------------------------------------------- rows 2 and 3


def commanded(decision: Decision) -> Decision:
    """What a command pre-authorization answers: the eMSP's decision, source COMMAND."""
    return dataclasses.replace(
        decision,
        source=Source.COMMAND,
        auth_method=AuthMethod.COMMAND,
        reason=decision.reason or "pre-authorized by command",
    )


def held_for_reuse(trigger: str, decision: Decision) -> bool:
    """An Accepted Authorize the eMSP was asked about (or the fallback gave) is kept for
    the StartTransaction that follows (OCPI §8.4: no second real-time call)."""
    return (
        trigger == AUTHORIZE
        and decision.status is AuthStatus.ACCEPTED
        and decision.source in (Source.REMOTE, Source.FALLBACK)
    )


def reused(held: Decision) -> Decision:
    return dataclasses.replace(
        held, source=Source.REUSED, reason=f"reuses Authorize ({held.source})"
    )


# ---------------------------------------------------------------------- ConcurrentTx

AUTHORIZE: Final = "Authorize"
START_TRANSACTION: Final = "StartTransaction"
_NOT_CHECKED: Final = frozenset({Source.COMMAND, Source.LOCAL})


def needs_concurrency_check(trigger: str, decision: Decision, on_authorize: bool) -> bool:
    """An Accepted roaming decision for a StartTransaction (or an Authorize, when
    configured) must still pass the ConcurrentTx query; command and own-card decisions
    never do (the eMSP started it, or the operator vouches for the card)."""
    return (
        decision.status is AuthStatus.ACCEPTED
        and decision.source not in _NOT_CHECKED
        and (trigger == START_TRANSACTION or (trigger == AUTHORIZE and on_authorize))
    )


def concurrent_tx(
    decision: Decision,
    charger_id: str,
    trigger: str,
    connector_id: int | None,
    active: Iterable[tuple[str, int]],
) -> Decision:
    """ConcurrentTx when the token charges elsewhere: another charger for an Authorize (at
    the same charger the driver is most likely presenting the card to stop), another
    connector for a StartTransaction (its own row may already be stored)."""
    for other_charger, other_connector in active:
        if other_charger != charger_id or (
            trigger == START_TRANSACTION and other_connector != connector_id
        ):
            return dataclasses.replace(
                decision,
                status=AuthStatus.CONCURRENT_TX,
                expiry_date=None,
                reason=f"active transaction at {other_charger}/{other_connector}",
            )
    return decision


# ---------------------------------------------------------------------- outside the table


def stop_reuses_start(stop_tag: str, started_tag_norm: str) -> bool:
    """A StopTransaction presenting the idTag that started it gets the start decision."""
    return normalise(stop_tag) == started_tag_norm


AUTHORIZER_FAILED: Final = Decision(AuthStatus.INVALID, Source.FALLBACK, reason="authorizer failed")
