"""The eMSP's own token table: filling it, setting verdicts, and paging it as the Sender list.

Why functions over :class:`~simulator.emsp.state.SandboxState`: the table is filled by
tests, the CLI and the control API, and read by the OCPI tokens Sender; all of them
share these few rules (the party stamped on new tokens, the allowed verdicts, the
lazily generated list that replaces the table when set).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, TypedDict, Unpack

from simulator.emsp.state import SandboxState
from simulator.emsp.tokens import TokenSpec, load_file
from simulator.emsp.wire import now_iso, parse_time

ALLOWED_TYPES = ("ALLOWED", "BLOCKED", "EXPIRED", "NO_CREDIT", "NOT_ALLOWED")


def check_allowed(value: str | None) -> str | None:
    """The verdict upper-cased; ValueError for anything OCPI's AllowedType does not know."""
    if value is None:
        return None
    up = value.upper()
    if up not in ALLOWED_TYPES:
        raise ValueError(f"allowed must be one of {', '.join(ALLOWED_TYPES)}, got {value!r}")
    return up


def add_token(
    state: SandboxState,
    uid: str,
    *,
    type: str = "RFID",
    whitelist: str = "ALLOWED",
    valid: bool = True,
    allowed: str | None = None,
    contract_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    party = state.party
    token = {
        "country_code": party.country_code,
        "party_id": party.party_id,
        "uid": uid,
        "type": type,
        "contract_id": contract_id or f"{party.country_code}-{party.party_id}-{uid}"[:36],
        "issuer": party.business_name,
        "valid": valid,
        "whitelist": whitelist,
        "last_updated": now_iso(),
        **extra,
    }
    return state.tokens.put(token, check_allowed(allowed)).token


def add_tokens(state: SandboxState, tokens: Iterable[Mapping[str, Any]]) -> int:
    """Put whole Token objects; an ``_allowed`` field sets the authorize verdict."""
    n = 0
    for t in tokens:
        tok = dict(t)
        allowed = tok.pop("_allowed", None)
        state.tokens.put(tok, check_allowed(allowed))
        n += 1
    return n


def load_tokens(state: SandboxState, path: str | Path) -> int:
    return add_tokens(state, load_file(path, state.party.country_code, state.party.party_id))


class SpecOptions(TypedDict, total=False):
    """How generated tokens look; every key has the default of :class:`TokenSpec`."""

    seed: int
    uid_pattern: str
    whitelist_mix: Mapping[str, int] | None
    type: str
    invalid_every: int


def token_spec(state: SandboxState, count: int, options: SpecOptions) -> TokenSpec:
    """How to generate ``count`` tokens of this party (see :class:`TokenSpec`)."""
    party = state.party
    return TokenSpec(
        count=count,
        country_code=party.country_code,
        party_id=party.party_id,
        seed=options.get("seed", 1),
        uid_pattern=options.get("uid_pattern", "04{n:010X}"),
        whitelist_mix=dict(options.get("whitelist_mix") or {"ALLOWED": 1}),
        type=options.get("type", "RFID"),
        invalid_every=options.get("invalid_every", 0),
        issuer=party.business_name,
    )


def generate_tokens(
    state: SandboxState, count: int, **options: Unpack[SpecOptions]
) -> list[dict[str, Any]]:
    """``count`` generated tokens put into the table; returns them."""
    tokens = list(token_spec(state, count, options).generate())
    add_tokens(state, tokens)
    return tokens


def serve_generated_tokens(
    state: SandboxState, count: int, **options: Unpack[SpecOptions]
) -> TokenSpec:
    """Serve ``count`` generated tokens lazily as the Sender list (not in the table)."""
    state.generated = token_spec(state, count, options)
    return state.generated


def set_allowed(state: SandboxState, uid: str, allowed: str, type: str = "RFID") -> None:
    """How the real-time authorize answers for this token from now on."""
    rec = state.tokens.get(uid, type)
    if rec is None:
        raise KeyError(f"unknown token {uid!r}/{type}")
    rec.allowed = check_allowed(allowed) or "ALLOWED"


def token_page(
    state: SandboxState,
    date_from: datetime | None,
    date_to: datetime | None,
    offset: int,
    limit: int,
) -> tuple[list[dict[str, Any]], int]:
    """One page of the Sender list and the total: the lazy list if set, else the table."""
    if state.generated is not None:
        rng = state.generated.index_range(date_from, date_to)
        sub = rng[offset : offset + limit]
        return [state.generated.token(n) for n in sub], len(rng)
    rows = [r.token for r in state.tokens.records()]
    if date_from is not None or date_to is not None:
        rows = [t for t in rows if _in_window(t, date_from, date_to)]
    return rows[offset : offset + limit], len(rows)


def _in_window(
    token: Mapping[str, Any], date_from: datetime | None, date_to: datetime | None
) -> bool:
    try:
        moment = parse_time(str(token.get("last_updated", "")))
    except ValueError:
        return False
    return (date_from is None or moment >= date_from) and (date_to is None or moment < date_to)
