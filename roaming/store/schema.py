"""Roaming's tables (``ocpi_*``), as an append-only list of named migrations.

Why roaming keeps its own list: roaming never imports the CSMS, yet it shares the CSMS's
database file. The composition root opens the database (which applies the CSMS's
migrations) and then calls :func:`migrate` here. The names are the ones these steps
always had (they were once part of the CSMS's list), so a database that applied them
there is recognised as up to date and nothing runs twice. Add new steps at the end with
new names, never change one that has shipped.

Conventions as in the CSMS schema: ``*_norm`` columns hold the upper-cased lookup key,
times are ISO-8601 UTC strings.

Two engines, as in the CSMS schema: each step is SQLite SQL with a PostgreSQL form
(:func:`sql_for`: PostgreSQL's column types, or a :class:`PerDialect` pair where the SQL
itself differs). On PostgreSQL the two SQLite functions the stores use,
``json_extract`` and ``julianday``, are defined as SQL functions (:data:`PG_FUNCTIONS`)
so that each store statement is the same on both engines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from roaming.ports import SqlDatabase, SqlExecutor


@dataclass(frozen=True)
class PerDialect:
    """A step whose SQL differs by engine beyond the column types."""

    sqlite: str
    postgresql: str


MIGRATIONS: list[tuple[str, str | PerDialect]] = [
    (
        "0003_ocpi_partners_tokens",
        """
        -- OCPI partners. token_in_hash: sha256 of the token they present to us (TOKEN_A
        -- while invited, then TOKEN_C we issued, or our TOKEN_B when we initiated);
        -- token_in_next_hash: a second accepted token during an outgoing credentials PUT.
        -- token_out: the token we send them (kept in clear: we must present it).
        CREATE TABLE ocpi_partners (
            id                  INTEGER PRIMARY KEY,
            key                 TEXT NOT NULL UNIQUE,
            country_code        TEXT NOT NULL,
            party_id            TEXT NOT NULL,
            status              TEXT NOT NULL CHECK (status IN ('invited', 'registered', 'unregistered')),
            initiated_by        TEXT NOT NULL,
            roles               TEXT NOT NULL DEFAULT '[]',
            token_in_hash       TEXT UNIQUE,
            token_in_kind       TEXT,
            token_in_next_hash  TEXT UNIQUE,
            token_out           TEXT,
            auth_encoding       TEXT NOT NULL DEFAULT 'base64',
            versions_url        TEXT,
            version             TEXT,
            endpoints           TEXT NOT NULL DEFAULT '[]',
            created_at          TEXT NOT NULL,
            updated_at          TEXT NOT NULL,
            registered_at       TEXT
        );

        -- Tokens pushed by eMSPs or fetched by token sync. Key: owner + upper-cased uid +
        -- type; the original spellings are kept and sent back. sync_generation is the id of
        -- the last full sync that saw the row (mark and sweep without loading ids).
        CREATE TABLE ocpi_tokens (
            country_code_norm   TEXT NOT NULL,
            party_id_norm       TEXT NOT NULL,
            uid_norm            TEXT NOT NULL,
            type                TEXT NOT NULL,
            partner_id          INTEGER NOT NULL,
            country_code        TEXT NOT NULL,
            party_id            TEXT NOT NULL,
            uid                 TEXT NOT NULL,
            contract_id         TEXT NOT NULL,
            visual_number       TEXT,
            issuer              TEXT NOT NULL,
            group_id            TEXT,
            valid               INTEGER NOT NULL,
            whitelist           TEXT NOT NULL,
            language            TEXT,
            default_profile_type TEXT,
            energy_contract     TEXT,
            last_updated        TEXT NOT NULL,
            removed             INTEGER NOT NULL DEFAULT 0,
            sync_generation     INTEGER NOT NULL DEFAULT 0,
            received_at         TEXT NOT NULL,
            PRIMARY KEY (country_code_norm, party_id_norm, uid_norm, type)
        ) WITHOUT ROWID;
        CREATE INDEX ocpi_tokens_uid ON ocpi_tokens (uid_norm, type);
        CREATE INDEX ocpi_tokens_sweep ON ocpi_tokens (partner_id, sync_generation);

        CREATE TABLE ocpi_token_syncs (
            id                  INTEGER PRIMARY KEY AUTOINCREMENT,
            partner_id          INTEGER NOT NULL,
            kind                TEXT NOT NULL CHECK (kind IN ('full', 'incremental')),
            status              TEXT NOT NULL CHECK (status IN ('running', 'complete', 'failed')),
            started_at          TEXT NOT NULL,
            finished_at         TEXT,
            date_from           TEXT,
            pages               INTEGER NOT NULL DEFAULT 0,
            tokens_seen         INTEGER NOT NULL DEFAULT 0,
            tokens_invalid      INTEGER NOT NULL DEFAULT 0,
            tokens_removed      INTEGER NOT NULL DEFAULT 0,
            error               TEXT
        );
        CREATE INDEX ocpi_token_syncs_partner ON ocpi_token_syncs (partner_id, id);
        """,
    ),
    (
        "0004_ocpi_cpo_modules",
        """
        -- Operator-defined OCPI objects (loaded from the locations file). body: the static
        -- JSON as configured; content_hash decides whether a reload bumps last_updated.
        CREATE TABLE ocpi_tariffs (
            id_norm             TEXT PRIMARY KEY,
            id                  TEXT NOT NULL,
            body                TEXT NOT NULL,
            content_hash        TEXT NOT NULL,
            last_updated        TEXT NOT NULL,
            seq                 INTEGER NOT NULL
        );
        CREATE TABLE ocpi_locations (
            id_norm             TEXT PRIMARY KEY,
            id                  TEXT NOT NULL,
            body                TEXT NOT NULL,
            content_hash        TEXT NOT NULL,
            last_updated        TEXT NOT NULL,
            seq                 INTEGER NOT NULL
        );
        CREATE INDEX ocpi_locations_updated ON ocpi_locations (last_updated);
        -- One EVSE per OCPP connector (OCA app note for OCPP 1.x).
        CREATE TABLE ocpi_evses (
            uid_norm            TEXT PRIMARY KEY,
            uid                 TEXT NOT NULL,
            location_id_norm    TEXT NOT NULL,
            charger_id          TEXT NOT NULL,
            connector_id        INTEGER NOT NULL,
            body                TEXT NOT NULL,
            content_hash        TEXT NOT NULL,
            status              TEXT NOT NULL DEFAULT 'UNKNOWN',
            last_updated        TEXT NOT NULL,
            seq                 INTEGER NOT NULL
        );
        CREATE UNIQUE INDEX ocpi_evses_connector ON ocpi_evses (charger_id, connector_id) WHERE status != 'REMOVED';
        CREATE INDEX ocpi_evses_location ON ocpi_evses (location_id_norm, seq);

        -- Sessions and CDRs we are Sender of; body is the current OCPI object.
        CREATE TABLE ocpi_sessions (
            id                  TEXT PRIMARY KEY,
            transaction_id      INTEGER NOT NULL UNIQUE,
            partner_key         TEXT NOT NULL,
            status              TEXT NOT NULL,
            body                TEXT NOT NULL,
            last_patch_at       TEXT,
            created_at          TEXT NOT NULL,
            last_updated        TEXT NOT NULL
        );
        CREATE INDEX ocpi_sessions_partner ON ocpi_sessions (partner_key, last_updated);
        CREATE TABLE ocpi_cdrs (
            id                  TEXT PRIMARY KEY,
            transaction_id      INTEGER NOT NULL UNIQUE,
            session_id          TEXT,
            partner_key         TEXT NOT NULL,
            body                TEXT NOT NULL,
            emsp_location       TEXT,
            created_at          TEXT NOT NULL,
            last_updated        TEXT NOT NULL
        );
        CREATE INDEX ocpi_cdrs_partner ON ocpi_cdrs (partner_key, last_updated);

        -- The durable outbox: written in the same transaction as the OCPP fact, delivered
        -- in id order per (partner_key, object_key). partner_key '*' = every partner with a
        -- RECEIVER endpoint for module (expanded by the worker).
        CREATE TABLE ocpi_outbox (
            id                  INTEGER PRIMARY KEY AUTOINCREMENT,
            partner_key         TEXT NOT NULL,
            module              TEXT NOT NULL,
            method              TEXT NOT NULL,
            path                TEXT NOT NULL,
            body                TEXT NOT NULL,
            object_key          TEXT NOT NULL,
            status              TEXT NOT NULL DEFAULT 'pending'
                                CHECK (status IN ('pending', 'delivered', 'rejected', 'skipped', 'dead', 'expanded', 'dropped')),
            attempts            INTEGER NOT NULL DEFAULT 0,
            ambiguous           INTEGER NOT NULL DEFAULT 0,
            next_attempt_at     TEXT NOT NULL,
            last_error          TEXT,
            location            TEXT,
            created_at          TEXT NOT NULL,
            finished_at         TEXT
        );
        CREATE INDEX ocpi_outbox_open ON ocpi_outbox (partner_key, object_key, id) WHERE status IN ('pending', 'dead');
        CREATE INDEX ocpi_outbox_due ON ocpi_outbox (next_attempt_at) WHERE status = 'pending';

        -- Commands received (we are Receiver) and eMSP reservation ids mapped to ours.
        CREATE TABLE ocpi_commands (
            id                  INTEGER PRIMARY KEY,
            partner_key         TEXT NOT NULL,
            command             TEXT NOT NULL,
            request             TEXT NOT NULL,
            response            TEXT NOT NULL,
            result              TEXT,
            result_delivered    INTEGER NOT NULL DEFAULT 0,
            error               TEXT,
            created_at          TEXT NOT NULL,
            finished_at         TEXT
        );
        CREATE TABLE ocpi_reservations (
            id                  INTEGER PRIMARY KEY AUTOINCREMENT,
            partner_key         TEXT NOT NULL,
            reservation_id      TEXT NOT NULL,
            reservation_id_norm TEXT NOT NULL,
            charger_id          TEXT NOT NULL,
            connector_id        INTEGER NOT NULL,
            location_id         TEXT NOT NULL,
            status              TEXT NOT NULL,
            created_at          TEXT NOT NULL,
            UNIQUE (partner_key, reservation_id_norm)
        );
        """,
    ),
    (
        "0007_ocpi_waiting_location",
        """
        -- A roaming charge on a connector no EVSE maps: its Session (waiting_for says why)
        -- and its pushes (held_reason) wait until an operator maps the connector; nothing
        -- held is delivered. Columns only: other steps add columns to these tables too.
        ALTER TABLE ocpi_sessions ADD COLUMN waiting_for TEXT;
        CREATE INDEX ocpi_sessions_waiting ON ocpi_sessions (id) WHERE waiting_for IS NOT NULL;
        ALTER TABLE ocpi_outbox ADD COLUMN held_reason TEXT;
        CREATE INDEX ocpi_outbox_held ON ocpi_outbox (partner_key, object_key, id) WHERE held_reason IS NOT NULL;
        """,
    ),
    (
        "0008_ocpi_outbox_in_flight",
        """
        -- Set (to the time) just before a delivery attempt leaves, cleared when its outcome
        -- is recorded. A message found set on start went out before a crash without a
        -- recorded answer: the partner may have it (a CDR is looked up before it is POSTed).
        ALTER TABLE ocpi_outbox ADD COLUMN in_flight_at TEXT;
        """,
    ),
    (
        "0006_ocpi_locations_managed",
        """
        -- Locations, EVSEs and tariffs are also written through the admin API. file_hash:
        -- the content the locations file last gave the object (NULL: never from the
        -- file); a file load applies only what changed in the file since, so an
        -- operator's API edits survive a restart with an unchanged file. Everything
        -- stored so far came from the file.
        ALTER TABLE ocpi_locations ADD COLUMN file_hash TEXT;
        ALTER TABLE ocpi_evses ADD COLUMN file_hash TEXT;
        ALTER TABLE ocpi_tariffs ADD COLUMN file_hash TEXT;
        UPDATE ocpi_locations SET file_hash = content_hash;
        UPDATE ocpi_evses SET file_hash = content_hash WHERE status != 'REMOVED';
        UPDATE ocpi_tariffs SET file_hash = content_hash;
        -- An EVSE may stand for no connector (charger_id ''): not part of the mapping.
        DROP INDEX ocpi_evses_connector;
        CREATE UNIQUE INDEX ocpi_evses_connector ON ocpi_evses (charger_id, connector_id)
            WHERE status != 'REMOVED' AND charger_id != '';
        """,
    ),
    (
        "0016_ocpi_tokens_listable",
        """
        -- The tokens that may go into chargers' Local Authorization Lists, newest first
        -- (roaming/store/whitelist.py): the most recently updated N are read by walking
        -- this index backwards, never by sorting the whole table.
        CREATE INDEX ocpi_tokens_listable ON ocpi_tokens (last_updated, uid_norm)
            WHERE removed = 0 AND valid = 1 AND type = 'RFID'
            AND whitelist IN ('ALWAYS', 'ALLOWED', 'ALLOWED_OFFLINE');
        """,
    ),
    (
        "0010_ocpi_reservation_sessions",
        """
        -- A reservation the charger accepted is a Session (status RESERVATION) until a
        -- charge uses it or it ends. status: requested (sent to the charger), reserved
        -- (accepted; session_id set), used (a charge continues its Session), cancelled,
        -- expired, rejected. token: the eMSP's Token (JSON) for the Session's cdr_token;
        -- expiry_date: the eMSP's, checked by a periodic job.
        ALTER TABLE ocpi_reservations ADD COLUMN expiry_date TEXT;
        ALTER TABLE ocpi_reservations ADD COLUMN token TEXT;
        ALTER TABLE ocpi_reservations ADD COLUMN authorization_reference TEXT;
        ALTER TABLE ocpi_reservations ADD COLUMN session_id TEXT;
        ALTER TABLE ocpi_reservations ADD COLUMN ended_at TEXT;
        CREATE INDEX ocpi_reservations_due ON ocpi_reservations (status, expiry_date);
        CREATE INDEX ocpi_reservations_connector ON ocpi_reservations (charger_id, connector_id, status);
        -- The reservation a Session began as (our id); its transaction_id is -id until a
        -- charge uses it (transaction_id is NOT NULL UNIQUE and transaction ids are > 0).
        ALTER TABLE ocpi_sessions ADD COLUMN reservation_id INTEGER;
        CREATE INDEX ocpi_sessions_reservation ON ocpi_sessions (reservation_id) WHERE reservation_id IS NOT NULL;
        """,
    ),
    (
        "0020_ocpi_outbox_claims",
        """
        -- Several processes may deliver one outbox: claimed_by names the one that took a
        -- message (set with claimed_at when taken; cleared when it goes back in line, kept
        -- on a finished message as the one that finished it). A message claimed by a live
        -- process is not taken by another; one claimed by a dead process is free again.
        ALTER TABLE ocpi_outbox ADD COLUMN claimed_by TEXT;
        ALTER TABLE ocpi_outbox ADD COLUMN claimed_at TEXT;
        """,
    ),
]

# SQLite's json_extract over a TEXT document and a '$.a.b' path: the scalar as text, JSON
# booleans as '1'/'0' and null as NULL, the way SQLite's answer reads after a CAST.
# SQLite's julianday: NULL for what is not a time (the token sync compares with it).
PG_FUNCTIONS = (
    """
    CREATE OR REPLACE FUNCTION json_extract(doc TEXT, path TEXT) RETURNS TEXT
    LANGUAGE sql IMMUTABLE AS $fn$
        SELECT CASE jsonb_typeof(v)
            WHEN 'boolean' THEN CASE WHEN v = 'true'::jsonb THEN '1' ELSE '0' END
            ELSE v #>> '{}' END
        FROM (SELECT doc::jsonb #> string_to_array(substr(path, 3), '.') AS v) AS found
    $fn$
    """,
    """
    CREATE OR REPLACE FUNCTION julianday(t TEXT) RETURNS DOUBLE PRECISION
    LANGUAGE plpgsql STABLE SET timezone = 'UTC' AS $fn$
    BEGIN
        RETURN extract(epoch FROM t::timestamptz) / 86400.0 + 2440587.5;
    EXCEPTION WHEN others THEN
        RETURN NULL;
    END
    $fn$
    """,
)

# The CSMS's schema takes the same transaction-scoped advisory lock (its value is the
# CSMS's MIGRATION_LOCK): nodes starting at once migrate one after the other.
MIGRATION_LOCK = 0x6373_6D73

# SQLite column types → PostgreSQL's (the same mapping as the CSMS schema's).
_PG_TYPES = (
    (re.compile(r"\bINTEGER\s+PRIMARY\s+KEY(\s+AUTOINCREMENT)?\b", re.IGNORECASE),
     "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    (re.compile(r"\bINTEGER\b", re.IGNORECASE), "BIGINT"),
    (re.compile(r"\bREAL\b", re.IGNORECASE), "DOUBLE PRECISION"),
    (re.compile(r"\bTEXT\b", re.IGNORECASE), 'TEXT COLLATE "C"'),
    (re.compile(r"\)\s*WITHOUT\s+ROWID", re.IGNORECASE), ")"),
)  # fmt: skip


def postgresql_form(sql: str) -> str:
    """A SQLite step as PostgreSQL runs it: the same statements, PostgreSQL's types."""
    for pattern, replacement in _PG_TYPES:
        sql = pattern.sub(replacement, sql)
    return sql


def sql_for(step: str | PerDialect, dialect: str) -> str:
    """The SQL of one step for ``dialect``."""
    if isinstance(step, PerDialect):
        return step.sqlite if dialect == "sqlite" else step.postgresql
    return step if dialect == "sqlite" else postgresql_form(step)


_COMMENT = re.compile(r"--[^\n]*")
_STATEMENT_END = re.compile(r";[ \t]*$", re.MULTILINE)


async def migrate(db: SqlDatabase) -> list[str]:
    """Apply, in one transaction, every step not yet recorded; returns the names applied."""
    async with db.transaction() as tx:
        return await _apply(tx)


# The CSMS creates this ledger too; whichever opens a database first makes it.
_LEDGER = (
    "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
)
_RECORD = "INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)"


async def _apply(tx: SqlExecutor) -> list[str]:
    if tx.dialect == "postgresql":
        await tx.fetchall("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))
        for function in PG_FUNCTIONS:
            await tx.execute(function)
    await tx.execute(_LEDGER)
    recorded = {row["name"] for row in await tx.fetchall("SELECT name FROM schema_migrations")}
    pending = [(name, step) for name, step in MIGRATIONS if name not in recorded]
    for name, step in pending:
        for statement in statements(sql_for(step, tx.dialect)):
            await tx.execute(statement)
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        await tx.execute(_RECORD, (name, stamp))
    return [name for name, _ in pending]


def statements(sql: str) -> list[str]:
    """The statements of one step: comments dropped, split on ``;`` ending a line."""
    text = _COMMENT.sub("", sql)
    return [part.strip() for part in _STATEMENT_END.split(text) if part.strip()]
