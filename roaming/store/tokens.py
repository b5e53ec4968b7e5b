"""Tokens pushed by eMSPs or fetched by token sync: the ``ocpi_tokens`` table.

Why batch upserts with a generation column: a full token sync may carry a million
tokens. Each page is written with one ``executemany`` in one transaction, stamping
``sync_generation = run id``; after a complete run one ``UPDATE`` marks every token of
that partner with an older generation as removed. Pushed tokens are stamped with the
newest run id, so a push that lands during a run is never swept by that run. Nothing is
ever loaded into memory to compute the difference. The runs themselves are
:mod:`roaming.store.token_syncs`, which writes its pages through this store.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson

from roaming.models import (
    EnergyContract,
    ProfileType,
    Token,
    TokenType,
    WhitelistType,
    norm,
    now_str,
)
from roaming.ports import SqlDatabase, SqlExecutor, StoredToken
from roaming.store.group_commit import GroupCommit, Pushed
from roaming.store.listeners import TokenListener, TokenListeners

_TOKEN_COLS = ", ".join(
    f"t.{c}"
    for c in (
        "country_code", "party_id", "uid", "type", "contract_id", "visual_number", "issuer",
        "group_id", "valid", "whitelist", "language", "default_profile_type", "energy_contract",
        "last_updated", "removed", "received_at",
    )
)  # fmt: skip

# The larger generation (SQLite's two-argument MAX; PostgreSQL calls it GREATEST).
_GREATER_GENERATION = (
    "CASE WHEN excluded.sync_generation > ocpi_tokens.sync_generation"
    " THEN excluded.sync_generation ELSE ocpi_tokens.sync_generation END"
)

_UPSERT = (
    """
INSERT INTO ocpi_tokens (
    country_code_norm, party_id_norm, uid_norm, type, partner_id, country_code, party_id, uid,
    contract_id, visual_number, issuer, group_id, valid, whitelist, language,
    default_profile_type, energy_contract, last_updated, removed, sync_generation, received_at
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)
ON CONFLICT (country_code_norm, party_id_norm, uid_norm, type) DO UPDATE SET
    partner_id = excluded.partner_id, country_code = excluded.country_code,
    party_id = excluded.party_id, uid = excluded.uid, contract_id = excluded.contract_id,
    visual_number = excluded.visual_number, issuer = excluded.issuer,
    group_id = excluded.group_id, valid = excluded.valid, whitelist = excluded.whitelist,
    language = excluded.language, default_profile_type = excluded.default_profile_type,
    energy_contract = excluded.energy_contract, last_updated = excluded.last_updated,
    removed = 0, sync_generation = """
    + _GREATER_GENERATION
    + """,
    received_at = excluded.received_at
"""
)


_SYNC_DATA_COLS = (
    "partner_id", "country_code", "party_id", "uid", "contract_id", "visual_number", "issuer",
    "group_id", "valid", "whitelist", "language", "default_profile_type", "energy_contract",
    "last_updated", "received_at",
)  # fmt: skip
# A sync page is a snapshot taken before it is written: a push or PATCH committed in
# between (e.g. the eMSP blocking the card) is newer and must survive the page. So the
# page's values replace a row only when the page's copy is at least as new (or the row
# was removed); the generation stamp is taken either way, so the sweep still sees it.
# (A time that does not parse counts as newer: julianday is NULL for it.)
_NEWER = (
    "(ocpi_tokens.removed = 1"
    " OR julianday(excluded.last_updated) >= julianday(ocpi_tokens.last_updated)"
    " OR julianday(excluded.last_updated) IS NULL OR julianday(ocpi_tokens.last_updated) IS NULL)"
)
_UPSERT_SYNC = (
    _UPSERT[: _UPSERT.index("DO UPDATE SET")]
    + "DO UPDATE SET\n    "
    + ",\n    ".join(
        f"{c} = CASE WHEN {_NEWER} THEN excluded.{c} ELSE ocpi_tokens.{c} END"
        for c in _SYNC_DATA_COLS
    )
    + ",\n    removed = 0,"
    + "\n    sync_generation = "
    + _GREATER_GENERATION
    + "\n"
)

# Pushes take the newest sync run id as their generation inside the statement (no
# separate query, no extra hop to the database thread).
_UPSERT_PUSH = _UPSERT.replace(
    "?, 0, ?, ?)", "?, 0, (SELECT COALESCE(MAX(id), 0) FROM ocpi_token_syncs), ?)", 1
)
if _UPSERT_PUSH == _UPSERT:  # pragma: no cover - guards an edit of _UPSERT's VALUES
    raise RuntimeError("_UPSERT_PUSH: the VALUES tail of _UPSERT changed")


def _push_row(partner_id: int, t: Token, received_at: str) -> tuple[Any, ...]:
    row = _token_row(partner_id, t, 0, received_at)
    return row[:-2] + row[-1:]


def _token_row(partner_id: int, t: Token, generation: int, received_at: str) -> tuple[Any, ...]:
    return (
        t.country_code.upper(),
        t.party_id.upper(),
        t.uid.upper(),
        t.type.value,
        partner_id,
        t.country_code,
        t.party_id,
        t.uid,
        t.contract_id,
        t.visual_number,
        t.issuer,
        t.group_id,
        1 if t.valid else 0,
        t.whitelist.value,
        t.language,
        t.default_profile_type.value if t.default_profile_type else None,
        orjson.dumps(t.energy_contract.to_json()).decode() if t.energy_contract else None,
        t.last_updated,
        generation,
        received_at,
    )


def _token_from_row(row: Any) -> Token:
    ec = row["energy_contract"]
    dpt = row["default_profile_type"]
    return Token(
        country_code=row["country_code"],
        party_id=row["party_id"],
        uid=row["uid"],
        type=TokenType(row["type"]),
        contract_id=row["contract_id"],
        issuer=row["issuer"],
        valid=bool(row["valid"]),
        whitelist=WhitelistType(row["whitelist"]),
        last_updated=row["last_updated"],
        visual_number=row["visual_number"],
        group_id=row["group_id"],
        language=row["language"],
        default_profile_type=ProfileType(dpt) if dpt else None,
        energy_contract=EnergyContract.from_json(orjson.loads(ec)) if ec else None,
    )


def _stored(row: Any) -> StoredToken:
    return StoredToken(
        partner_key=row["partner_key"],
        token=_token_from_row(row),
        removed=bool(row["removed"]),
        received_at=row["received_at"],
    )


class TokenStore:
    """Every partner's tokens; each committed write is told to the token listeners."""

    def __init__(self, db: SqlDatabase, listeners: TokenListeners) -> None:
        self.db = db
        self.listeners = listeners
        self._pushes = GroupCommit(db, self._write_pushes, self._pushes_committed)

    def add_token_listener(self, listener: TokenListener) -> Callable[[], None]:
        """Call ``listener`` after every committed token write; returns the remover."""
        return self.listeners.add(listener)

    async def upsert_token(self, partner_id: int, token: Token) -> bool:
        """Store one pushed token; True if it was new. Concurrent pushes share one commit."""
        return await self._pushes.submit(partner_id, token)

    async def _write_pushes(self, tx: SqlExecutor, batch: Sequence[Pushed]) -> list[bool]:
        """A batch of pushes inside the group's transaction; "created" per item, in order."""
        now = now_str()
        keys = [
            (norm(t.country_code), norm(t.party_id), norm(t.uid), t.type.value) for _, t in batch
        ]
        existing: set[tuple[str, str, str, str]] = set()
        for start in range(0, len(keys), 200):
            chunk = keys[start : start + 200]
            # A join from the key list makes SQLite probe the primary key per item
            # (a row-value IN over VALUES would scan the table).
            rows = await tx.fetchall(
                "WITH k(a, b, c, d) AS (VALUES "
                + ", ".join(["(?, ?, ?, ?)"] * len(chunk))
                + ") SELECT t.country_code_norm, t.party_id_norm, t.uid_norm, t.type "
                "FROM k JOIN ocpi_tokens t ON t.country_code_norm = k.a AND "
                "t.party_id_norm = k.b AND t.uid_norm = k.c AND t.type = k.d",
                [v for k in chunk for v in k],
            )
            existing.update((r[0], r[1], r[2], r[3]) for r in rows)
        # Stamped with the newest run id (read by the statement itself, in this
        # transaction): a full run in progress then never sweeps a token pushed while it
        # ran; the next run still can.
        await tx.executemany(_UPSERT_PUSH, [_push_row(pid, t, now) for pid, t in batch])
        created = []
        for k in keys:
            created.append(k not in existing)
            existing.add(k)
        return created

    def _pushes_committed(self, batch: Sequence[Pushed]) -> None:
        self.listeners.notify({norm(t.uid) for _, t in batch})

    async def find_token(
        self,
        country_code: str,
        party_id: str,
        uid: str,
        token_type: str,
        *,
        include_removed: bool = False,
    ) -> StoredToken | None:
        row = await self.db.fetchone(
            f"SELECT {_TOKEN_COLS}, p.key AS partner_key FROM ocpi_tokens t "
            "JOIN ocpi_partners p ON p.id = t.partner_id "
            "WHERE country_code_norm = ? AND party_id_norm = ? AND uid_norm = ? AND type = ?",
            (norm(country_code), norm(party_id), norm(uid), token_type),
        )
        if row is None or (row["removed"] and not include_removed):
            return None
        return _stored(row)

    async def get_token(self, uid_norm: str, token_type: str | None) -> list[StoredToken]:
        """Every partner's token with this uid (and type); removed ones flagged, not hidden."""
        if token_type is None:
            rows = await self.db.fetchall(
                f"SELECT {_TOKEN_COLS}, p.key AS partner_key FROM ocpi_tokens t "
                "JOIN ocpi_partners p ON p.id = t.partner_id WHERE uid_norm = ?",
                (norm(uid_norm),),
            )
        else:
            rows = await self.db.fetchall(
                f"SELECT {_TOKEN_COLS}, p.key AS partner_key FROM ocpi_tokens t "
                "JOIN ocpi_partners p ON p.id = t.partner_id WHERE uid_norm = ? AND type = ?",
                (norm(uid_norm), token_type),
            )
        return [_stored(r) for r in rows]

    async def count_tokens(self, partner_id: int, *, removed: bool | None = None) -> int:
        if removed is None:
            row = await self.db.fetchone(
                "SELECT count(*) AS n FROM ocpi_tokens WHERE partner_id = ?", (partner_id,)
            )
        else:
            row = await self.db.fetchone(
                "SELECT count(*) AS n FROM ocpi_tokens WHERE partner_id = ? AND removed = ?",
                (partner_id, 1 if removed else 0),
            )
        return int(row["n"])

    async def write_sync_page(
        self, tx: SqlExecutor, partner_id: int, tokens: Sequence[Token], generation: int
    ) -> set[str]:
        """One sync page inside the caller's transaction; returns the normalised uids
        written, for the caller to tell the listeners after its commit."""
        now = now_str()
        rows = [_token_row(partner_id, t, generation, now) for t in tokens]
        if rows:
            await tx.executemany(_UPSERT_SYNC, rows)
        return {r[2] for r in rows}

    @staticmethod
    async def sweep(tx: SqlExecutor, partner_id: int, generation: int) -> int:
        """Mark removed every token of the partner not seen since ``generation``."""
        return await tx.execute(
            "UPDATE ocpi_tokens SET removed = 1 WHERE partner_id = ? AND "
            "sync_generation < ? AND removed = 0",
            (partner_id, generation),
        )
