"""Roaming's own SQL (partners, tokens, token sync runs) over the shared database.

Why a partner cache: every OCPI request resolves its caller from a token hash; the
partner table is tiny and changes only through this class (the CLI goes through the
admin API of the same process), so an in-memory map invalidated on every write saves a
query per request without ever serving a stale token.

Why batch upserts with a generation column: a full token sync may carry a million
tokens. Each page is written with one ``executemany`` in one transaction, stamping
``sync_generation = run id``; after a complete run one ``UPDATE`` marks every token of
that partner with an older generation as removed. Pushed tokens are stamped with the
newest run id, so a push that lands during a run is never swept by that run. Nothing is
ever loaded into memory to compute the difference.

Why token listeners: readers outside roaming (the CSMS authorizer) keep short-lived
in-memory copies of tokens. Every token write here (push, PATCH, learning, sync page,
removal sweep) tells the listeners which uids changed *after* its commit and *before*
its caller is answered, so a card an eMSP has just blocked is never served from such a
copy. Roaming cannot import those readers; they register a plain callback instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any

import orjson
import structlog

from roaming.models import (
    CredentialsRole,
    Endpoint,
    EnergyContract,
    InterfaceRole,
    ModuleID,
    ProfileType,
    Token,
    TokenType,
    WhitelistType,
    norm,
    now_str,
)
from roaming.partners import Partner, PartnerStatus, TokenKind
from roaming.ports import SqlDatabase, SqlExecutor, StoredToken, SyncRun

log = structlog.get_logger("roaming.store")

TokenListener = Callable[[Collection[str] | None], None]
"""Told after a committed token write: the normalised uids written, or None for "any
token may have changed" (removal sweep). Must be quick and must not raise."""

_PARTNER_COLS = (
    "id, key, country_code, party_id, status, initiated_by, roles, token_in_kind, token_out, "
    "auth_encoding, versions_url, version, endpoints, created_at, updated_at, registered_at"
)

_TOKEN_COLS = ", ".join(
    f"t.{c}"
    for c in (
        "country_code", "party_id", "uid", "type", "contract_id", "visual_number", "issuer",
        "group_id", "valid", "whitelist", "language", "default_profile_type", "energy_contract",
        "last_updated", "removed", "received_at",
    )
)  # fmt: skip

_UPSERT = """
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
    removed = 0, sync_generation = MAX(sync_generation, excluded.sync_generation),
    received_at = excluded.received_at
"""


_SYNC_DATA_COLS = (
    "partner_id", "country_code", "party_id", "uid", "contract_id", "visual_number", "issuer",
    "group_id", "valid", "whitelist", "language", "default_profile_type", "energy_contract",
    "last_updated", "received_at",
)  # fmt: skip
# A sync page is a snapshot taken before it is written: a push or PATCH committed in
# between (e.g. the eMSP blocking the card) is newer and must survive the page. So the
# page's values replace a row only when the page's copy is at least as new (or the row
# was removed); the generation stamp is taken either way, so the sweep still sees it.
_NEWER = (
    "(ocpi_tokens.removed = 1 OR COALESCE("
    "julianday(excluded.last_updated) >= julianday(ocpi_tokens.last_updated), 1))"
)
_UPSERT_SYNC = (
    _UPSERT[: _UPSERT.index("DO UPDATE SET")]
    + "DO UPDATE SET\n    "
    + ",\n    ".join(
        f"{c} = CASE WHEN {_NEWER} THEN excluded.{c} ELSE ocpi_tokens.{c} END"
        for c in _SYNC_DATA_COLS
    )
    + ",\n    removed = 0,"
    + "\n    sync_generation = MAX(sync_generation, excluded.sync_generation)\n"
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


def _partner_from_row(row: Any) -> Partner:
    kind = row["token_in_kind"]
    return Partner(
        id=row["id"],
        key=row["key"],
        country_code=row["country_code"],
        party_id=row["party_id"],
        status=PartnerStatus(row["status"]),
        initiated_by=row["initiated_by"],
        roles=tuple(
            CredentialsRole.from_json(r, "roles") for r in orjson.loads(row["roles"] or "[]")
        ),
        token_in_kind=TokenKind(kind) if kind else None,
        token_out=row["token_out"],
        auth_encoding=row["auth_encoding"],
        versions_url=row["versions_url"],
        version=row["version"],
        endpoints=tuple(
            Endpoint.from_json(e, "endpoints") for e in orjson.loads(row["endpoints"] or "[]")
        ),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        registered_at=row["registered_at"],
    )


def _sync_from_row(row: Any) -> SyncRun:
    return SyncRun(
        id=row["id"],
        partner_key=row["key"],
        kind=row["kind"],
        status=row["status"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        date_from=row["date_from"],
        pages=row["pages"],
        tokens_seen=row["tokens_seen"],
        tokens_invalid=row["tokens_invalid"],
        tokens_removed=row["tokens_removed"],
        error=row["error"],
    )


Pushed = tuple[int, Token]  # (partner id, token)


class _GroupCommit:
    """Concurrent token pushes written in one transaction (group commit).

    Why: a PUT costs one SQLite commit plus several hops to aiosqlite's thread and back,
    and each hop waits for the event loop to get round to it; eMSPs push in bursts from
    many connections, so pushes that arrive while a batch is being written are written
    together by the next batch. The batch is taken *after* ``BEGIN`` has returned, so
    pushes that arrived during that hop ride along instead of waiting a whole round.
    Each caller still gets its own result or error, only after the commit; when a
    batch fails, its pushes are retried one by one so that one push the database
    refuses fails alone.
    """

    def __init__(
        self,
        db: SqlDatabase,
        write: Callable[[SqlExecutor, Sequence[Pushed]], Awaitable[list[bool]]],
        committed: Callable[[Sequence[Pushed]], None],
        max_batch: int = 500,
    ) -> None:
        self._db = db
        self._write = write
        self._committed = committed
        self._max = max_batch
        self._queue: list[tuple[int, Token, asyncio.Future[bool]]] = []
        self._task: asyncio.Task[None] | None = None

    async def submit(self, partner_id: int, token: Token) -> bool:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[bool] = loop.create_future()
        self._queue.append((partner_id, token, fut))
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._drain())
        return await fut

    def _take(self) -> list[tuple[int, Token, asyncio.Future[bool]]]:
        batch, self._queue = self._queue[: self._max], self._queue[self._max :]
        return batch

    async def _drain(self) -> None:
        while self._queue:
            batch: list[tuple[int, Token, asyncio.Future[bool]]] = []
            try:
                async with self._db.transaction() as tx:
                    batch = self._take()
                    results = await self._write(tx, [(p, t) for p, t, _ in batch])
            except Exception as exc:
                if len(batch) > 1:
                    await self._one_by_one(batch)  # one bad push must not fail the others
                    continue
                for _, _, fut in batch or self._take():  # every waiter learns about it
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            self._committed([(p, t) for p, t, _ in batch])
            for (_, _, fut), created in zip(batch, results, strict=True):
                if not fut.done():
                    fut.set_result(created)

    async def _one_by_one(self, batch: list[tuple[int, Token, asyncio.Future[bool]]]) -> None:
        """After a failed batch: each push in its own transaction, with its own outcome."""
        for partner_id, token, fut in batch:
            try:
                async with self._db.transaction() as tx:
                    [created] = await self._write(tx, [(partner_id, token)])
            except Exception as exc:
                if not fut.done():
                    fut.set_exception(exc)
                continue
            self._committed([(partner_id, token)])
            if not fut.done():
                fut.set_result(created)


class RoamingStore:
    """Partners, tokens and token sync runs in the CSMS's SQLite database."""

    def __init__(self, db: SqlDatabase) -> None:
        self.db = db
        self._by_hash: dict[str, Partner | None] = {}
        # Partners by key and the eMSPs to ask for unknown tokens: read on every remote
        # Authorize, written only by the methods below, which all call _invalidate().
        self._by_key: dict[str, Partner | None] = {}
        self._senders: list[Partner] | None = None
        self._partners_generation = 0  # bumped by every partner write
        self._pushes = _GroupCommit(db, self._write_pushes, self._pushes_committed)
        self._token_listeners: list[TokenListener] = []

    def _invalidate(self) -> None:
        self._by_hash.clear()
        self._by_key.clear()
        self._senders = None
        self._partners_generation += 1

    # ------------------------------------------------------------------ change listeners

    def add_token_listener(self, listener: TokenListener) -> Callable[[], None]:
        """Call ``listener`` after every committed token write; returns the remover."""
        self._token_listeners.append(listener)

        def remove() -> None:
            if listener in self._token_listeners:
                self._token_listeners.remove(listener)

        return remove

    def _tokens_changed(self, uids: Collection[str] | None) -> None:
        for listener in tuple(self._token_listeners):
            try:
                listener(uids)
            except Exception:  # a broken reader must not fail the write that succeeded
                log.exception("roaming.token_listener_failed")

    # ------------------------------------------------------------------ partners

    async def partner_by_token_hash(self, token_hash: str) -> Partner | None:
        if token_hash in self._by_hash:
            return self._by_hash[token_hash]
        row = await self.db.fetchone(
            f"SELECT {_PARTNER_COLS} FROM ocpi_partners "
            "WHERE token_in_hash = ? OR token_in_next_hash = ?",
            (token_hash, token_hash),
        )
        partner = _partner_from_row(row) if row else None
        if len(self._by_hash) > 10_000:
            self._by_hash.clear()  # unknown hashes must not grow the cache without bound
        self._by_hash[token_hash] = partner
        return partner

    async def partner_by_key(self, key: str) -> Partner | None:
        """Memoised (Partner is frozen); a read that raced a partner write is answered
        but not kept, so the memo never holds a row older than the last write."""
        key = key.upper()
        if key in self._by_key:
            return self._by_key[key]
        generation = self._partners_generation
        row = await self.db.fetchone(
            f"SELECT {_PARTNER_COLS} FROM ocpi_partners WHERE key = ?", (key,)
        )
        partner = _partner_from_row(row) if row else None
        if generation == self._partners_generation:
            if len(self._by_key) > 10_000:
                self._by_key.clear()  # unknown keys must not grow the memo without bound
            self._by_key[key] = partner
        return partner

    async def partner_by_id(self, partner_id: int) -> Partner | None:
        row = await self.db.fetchone(
            f"SELECT {_PARTNER_COLS} FROM ocpi_partners WHERE id = ?", (partner_id,)
        )
        return _partner_from_row(row) if row else None

    async def list_partners(self) -> list[Partner]:
        rows = await self.db.fetchall(f"SELECT {_PARTNER_COLS} FROM ocpi_partners ORDER BY key")
        return [_partner_from_row(r) for r in rows]

    async def registered_partners_with_tokens_sender(self) -> list[Partner]:
        """Registered partners whose version details list a tokens SENDER interface
        (memoised like :meth:`partner_by_key`: asked for every unknown token)."""
        if self._senders is not None:
            return list(self._senders)
        generation = self._partners_generation
        senders = [
            p
            for p in await self.list_partners()
            if p.registered and p.endpoint(ModuleID.TOKENS, InterfaceRole.SENDER)
        ]
        if generation == self._partners_generation:
            self._senders = senders
        return list(senders)

    async def create_invited(
        self,
        key: str,
        country_code: str,
        party_id: str,
        token_in_hash: str,
        *,
        kind: TokenKind,
        initiated_by: str,
        versions_url: str | None = None,
    ) -> Partner:
        """A partner row awaiting the handshake; re-inviting a known key replaces its token.

        Tokens a partner pushed earlier stay attached to the row (same id).
        """
        now = now_str()
        async with self.db.transaction() as tx:
            existing = await tx.fetchone(
                "SELECT id, status FROM ocpi_partners WHERE key = ?", (key,)
            )
            if existing is not None:
                if existing["status"] == PartnerStatus.REGISTERED:
                    raise ValueError(f"partner {key} is registered; unregister it first")
                await tx.execute(
                    "UPDATE ocpi_partners SET status = 'invited', initiated_by = ?, "
                    "token_in_hash = ?, token_in_kind = ?, token_in_next_hash = NULL, "
                    "token_out = NULL, versions_url = ?, updated_at = ? WHERE id = ?",
                    (initiated_by, token_in_hash, kind.value, versions_url, now, existing["id"]),
                )
                pid = existing["id"]
            else:
                pid = await tx.insert(
                    "INSERT INTO ocpi_partners (key, country_code, party_id, status, "
                    "initiated_by, token_in_hash, token_in_kind, versions_url, created_at, "
                    "updated_at) VALUES (?, ?, ?, 'invited', ?, ?, ?, ?, ?, ?)",
                    (
                        key,
                        country_code,
                        party_id,
                        initiated_by,
                        token_in_hash,
                        kind.value,
                        versions_url,
                        now,
                        now,
                    ),
                )
        self._invalidate()
        partner = await self.partner_by_id(pid)
        assert partner is not None
        return partner

    async def complete_registration(
        self,
        partner_id: int,
        *,
        key: str | None = None,
        roles: Sequence[CredentialsRole],
        token_in_hash: str,
        token_in_kind: TokenKind,
        token_out: str,
        auth_encoding: str,
        versions_url: str,
        version: str,
        endpoints: Sequence[Endpoint],
    ) -> Partner:
        """Switch to registered with the new tokens in one write (old token dead at once).

        ``key`` re-keys a provisional row (we initiated and learnt their ids only from
        the answer); an older row with that key is merged into this one.
        """
        now = now_str()
        async with self.db.transaction() as tx:
            row = await tx.fetchone(
                "SELECT key, registered_at FROM ocpi_partners WHERE id = ?", (partner_id,)
            )
            if row is None:
                raise LookupError(f"partner id {partner_id} vanished during registration")
            target_id = partner_id
            if key is not None and key != row["key"]:
                other = await tx.fetchone("SELECT id FROM ocpi_partners WHERE key = ?", (key,))
                if other is not None:
                    # Keep the older row (its tokens point at it); drop the provisional one.
                    await tx.execute("DELETE FROM ocpi_partners WHERE id = ?", (partner_id,))
                    target_id = other["id"]
                cc, _, pid = key.partition("-")
                await tx.execute(
                    "UPDATE ocpi_partners SET key = ?, country_code = ?, party_id = ? WHERE id = ?",
                    (key, cc, pid, target_id),
                )
            await tx.execute(
                "UPDATE ocpi_partners SET status = 'registered', roles = ?, token_in_hash = ?, "
                "token_in_kind = ?, token_in_next_hash = NULL, token_out = ?, auth_encoding = ?, "
                "versions_url = ?, version = ?, endpoints = ?, updated_at = ?, "
                "registered_at = ? WHERE id = ?",
                (
                    orjson.dumps([r.to_json() for r in roles]).decode(),
                    token_in_hash,
                    token_in_kind.value,
                    token_out,
                    auth_encoding,
                    versions_url,
                    version,
                    orjson.dumps([e.to_json() for e in endpoints]).decode(),
                    now,
                    now,
                    target_id,
                ),
            )
        self._invalidate()
        partner = await self.partner_by_id(target_id)
        assert partner is not None
        return partner

    async def delete_partner_row(self, partner_id: int) -> None:
        """Drop a provisional row of a registration that never completed."""
        await self.db.execute(
            "DELETE FROM ocpi_partners WHERE id = ? AND status = 'invited'", (partner_id,)
        )
        self._invalidate()

    async def set_next_token(self, partner_id: int, token_hash: str | None) -> None:
        await self.db.execute(
            "UPDATE ocpi_partners SET token_in_next_hash = ?, updated_at = ? WHERE id = ?",
            (token_hash, now_str(), partner_id),
        )
        self._invalidate()

    async def set_auth_encoding(self, partner_id: int, encoding: str) -> None:
        await self.db.execute(
            "UPDATE ocpi_partners SET auth_encoding = ?, updated_at = ? WHERE id = ?",
            (encoding, now_str(), partner_id),
        )
        self._invalidate()

    async def unregister(self, partner_id: int) -> None:
        """Every token of this partner stops working now; its pushed tokens stay stored."""
        await self.db.execute(
            "UPDATE ocpi_partners SET status = 'unregistered', token_in_hash = NULL, "
            "token_in_next_hash = NULL, token_out = NULL, updated_at = ? WHERE id = ?",
            (now_str(), partner_id),
        )
        self._invalidate()

    # ------------------------------------------------------------------ tokens

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
        self._tokens_changed({norm(t.uid) for _, t in batch})

    async def upsert_tokens(
        self,
        partner_id: int,
        tokens: Sequence[Token],
        generation: int,
        tx: SqlExecutor | None = None,
    ) -> None:
        """Write one sync page in one statement batch."""
        now = now_str()
        rows = [_token_row(partner_id, t, generation, now) for t in tokens]
        if tx is not None:
            # The caller commits: it must call notify_tokens_changed() after its commit.
            await tx.executemany(_UPSERT_SYNC, rows)
            return
        async with self.db.transaction() as t:
            await t.executemany(_UPSERT_SYNC, rows)
        self._tokens_changed({r[2] for r in rows})

    def notify_tokens_changed(self, uids: Collection[str] | None) -> None:
        """For writers that commit a transaction of their own (``upsert_tokens(tx=...)``)."""
        self._tokens_changed(uids)

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
        return self._stored(row)

    @staticmethod
    def _stored(row: Any) -> StoredToken:
        return StoredToken(
            partner_key=row["partner_key"],
            token=_token_from_row(row),
            removed=bool(row["removed"]),
            received_at=row["received_at"],
        )

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
        return [self._stored(r) for r in rows]

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

    # ------------------------------------------------------------------ sync runs

    async def start_sync(
        self, partner_id: int, kind: str, date_from: str | None
    ) -> tuple[int, str]:
        started = now_str()
        run_id = await self.db.insert(
            "INSERT INTO ocpi_token_syncs (partner_id, kind, status, started_at, date_from) "
            "VALUES (?, ?, 'running', ?, ?)",
            (partner_id, kind, started, date_from),
        )
        return run_id, started

    async def sync_page(
        self, partner_id: int, run_id: int, tokens: Sequence[Token], invalid: int, generation: int
    ) -> None:
        """One page: tokens upserted and run progress bumped, atomically."""
        now = now_str()
        rows = [_token_row(partner_id, t, generation, now) for t in tokens]
        async with self.db.transaction() as tx:
            if rows:
                await tx.executemany(_UPSERT_SYNC, rows)
            await tx.execute(
                "UPDATE ocpi_token_syncs SET pages = pages + 1, tokens_seen = tokens_seen + ?, "
                "tokens_invalid = tokens_invalid + ? WHERE id = ?",
                (len(rows), invalid, run_id),
            )
        if rows:
            self._tokens_changed({r[2] for r in rows})

    async def finish_sync(
        self, partner_id: int, run_id: int, started_at: str, *, sweep: bool
    ) -> int:
        """Mark the run complete; after a full run, sweep tokens it did not see."""
        removed = 0
        async with self.db.transaction() as tx:
            if sweep:
                removed = await tx.execute(
                    "UPDATE ocpi_tokens SET removed = 1 WHERE partner_id = ? AND "
                    "sync_generation < ? AND removed = 0",
                    (partner_id, run_id),
                )
            await tx.execute(
                "UPDATE ocpi_token_syncs SET status = 'complete', finished_at = ?, "
                "tokens_removed = ? WHERE id = ?",
                (now_str(), removed, run_id),
            )
        if removed:
            self._tokens_changed(None)
        return removed

    async def note_sync(self, run_id: int, note: str) -> None:
        await self.db.execute(
            "UPDATE ocpi_token_syncs SET error = ? WHERE id = ?", (note[:500], run_id)
        )

    async def fail_sync(self, run_id: int, error: str) -> None:
        await self.db.execute(
            "UPDATE ocpi_token_syncs SET status = 'failed', finished_at = ?, error = ? WHERE id = ?",
            (now_str(), error[:500], run_id),
        )

    async def sync_runs(self, partner_id: int, limit: int = 10) -> list[SyncRun]:
        rows = await self.db.fetchall(
            "SELECT s.*, p.key AS key FROM ocpi_token_syncs s JOIN ocpi_partners p "
            "ON p.id = s.partner_id WHERE s.partner_id = ? ORDER BY s.id DESC LIMIT ?",
            (partner_id, limit),
        )
        return [_sync_from_row(r) for r in rows]

    async def last_complete_sync(self, partner_id: int) -> SyncRun | None:
        row = await self.db.fetchone(
            "SELECT s.*, p.key AS key FROM ocpi_token_syncs s JOIN ocpi_partners p "
            "ON p.id = s.partner_id WHERE s.partner_id = ? AND s.status = 'complete' "
            "ORDER BY s.id DESC LIMIT 1",
            (partner_id,),
        )
        return _sync_from_row(row) if row else None

    async def fail_stale_runs(self) -> None:
        """Runs left 'running' by a crash are failed at start-up (they removed nothing)."""
        await self.db.execute(
            "UPDATE ocpi_token_syncs SET status = 'failed', finished_at = ?, "
            "error = 'interrupted (process stopped)' WHERE status = 'running'",
            (now_str(),),
        )
