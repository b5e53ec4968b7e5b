"""The authorization policy as pure functions: facts in, a frozen :class:`Decision` out.

Why pure: the rules (OCPI 2.2.1 §4.5 whitelist table, the fallback an operator agrees
with each eMSP) are the part of the product most worth reading and testing on their
own, without sockets, clocks or a database. The asyncio shell in
:mod:`csms.authz.service` fetches the facts and enforces the deadline; everything it
decides is decided here.

The three steps, in order:

1. :func:`from_cache` - the cached token decides (``ALWAYS``/``ALLOWED``) or says
   :data:`NEED_REMOTE` (``ALLOWED_OFFLINE``, ``NEVER``, unknown token).
2. :func:`after_remote` - a definite real-time answer is final (one table maps it).
3. :func:`fallback` - the eMSP gave no answer; the cached token and the partner's
   agreed rules decide.

:func:`resolve` chains them for a single outcome, :func:`pick` folds the outcomes of a
fan-out over several eMSPs into one.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Final, Literal

from csms.authz.model import (
    Allowed,
    AuthMethod,
    AuthStatus,
    CachedToken,
    Decision,
    FallbackRules,
    RemoteOutcome,
    RemoteRefused,
    RemoteVerdict,
    Source,
    TokenUnknown,
    Unreachable,
    Whitelist,
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
