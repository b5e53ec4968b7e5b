"""Tokens a CPO may decide on without asking the eMSP: what goes into chargers' Local
Authorization Lists (OCPI 2.2.1 §12.4.5 WhitelistType).

Why a separate read and not :class:`roaming.store.tokens.TokenStore`: the lists need a
bounded slice of the table (the most recently updated tokens that qualify, plus the
ones a charger has seen), never the whole table; the query says exactly which tokens
qualify: whitelist ALWAYS, ALLOWED or ALLOWED_OFFLINE, ``valid``, not removed, of a
registered partner, an RFID uid that fits an OCPP 1.6 idTag (CiString20).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Final

from roaming.ports import SqlDatabase

_CHUNK: Final = 500

# The WHERE terms repeat the partial index ocpi_tokens_listable's (0016) word for word,
# so SQLite can use it.
_SELECT = (
    "SELECT t.uid, t.uid_norm, t.group_id, t.last_updated, p.key AS partner_key "
    "FROM ocpi_tokens t JOIN ocpi_partners p ON p.id = t.partner_id "
    "WHERE t.removed = 0 AND t.valid = 1 AND t.type = 'RFID' "
    "AND t.whitelist IN ('ALWAYS', 'ALLOWED', 'ALLOWED_OFFLINE') "
    "AND length(t.uid) <= 20 AND p.status = 'registered'"
)


@dataclass(frozen=True, slots=True)
class ListableToken:
    partner_key: str
    uid: str
    uid_norm: str
    group_id: str | None
    last_updated: str


def _token(row: Any) -> ListableToken:
    return ListableToken(
        row["partner_key"], row["uid"], row["uid_norm"], row["group_id"], row["last_updated"]
    )


def _excluding(partners: Collection[str]) -> tuple[str, list[str]]:
    if not partners:
        return "", []
    keys = sorted(k.upper() for k in partners)
    return f" AND p.key NOT IN ({', '.join('?' * len(keys))})", keys


async def recently_updated(
    db: SqlDatabase, limit: int, excluded_partners: Collection[str] = ()
) -> list[ListableToken]:
    """The ``limit`` most recently updated listable tokens, newest first (by the text of
    ``last_updated``: OCPI timestamps are UTC ISO 8601, so text order is time order)."""
    where, params = _excluding(excluded_partners)
    rows = await db.fetchall(
        f"{_SELECT}{where} ORDER BY t.last_updated DESC, t.uid_norm DESC LIMIT ?",
        (*params, limit),
    )
    return [_token(r) for r in rows]


async def by_uids(
    db: SqlDatabase, uids: Collection[str], excluded_partners: Collection[str] = ()
) -> list[ListableToken]:
    """The listable tokens with these normalised uids (any partner not excluded)."""
    where, params = _excluding(excluded_partners)
    wanted = sorted(uids)
    out: list[ListableToken] = []
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        rows = await db.fetchall(
            f"{_SELECT}{where} AND t.uid_norm IN ({', '.join('?' * len(chunk))})",
            (*params, *chunk),
        )
        out.extend(_token(r) for r in rows)
    return out
