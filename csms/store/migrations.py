"""The CSMS's migration steps: every table it keeps, in the order they were added.

Why a module of its own: the list only grows (a release adds steps at the end and never
changes one that shipped), while :mod:`csms.store.schema` holds the machinery that
applies it on either engine. A step is SQLite SQL that :func:`csms.store.schema.sql_for`
maps to PostgreSQL, or a :class:`PerDialect` pair when the mapping cannot say it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PerDialect:
    """A step whose SQL differs by engine beyond the column types."""

    sqlite: str
    postgresql: str


MIGRATIONS: list[tuple[str, str | PerDialect]] = [
    (
        "0001_ocpp_core",
        """
        CREATE TABLE chargers (
            id                  TEXT PRIMARY KEY,
            password_hash       TEXT,
            registration_status TEXT NOT NULL DEFAULT 'Accepted',
            vendor              TEXT,
            model               TEXT,
            serial_number       TEXT,
            charge_box_serial   TEXT,
            firmware_version    TEXT,
            iccid               TEXT,
            imsi                TEXT,
            meter_type          TEXT,
            meter_serial        TEXT,
            created_at          TEXT NOT NULL,
            last_boot_at        TEXT,
            last_heartbeat_at   TEXT,
            last_connected_at   TEXT,
            last_disconnected_at TEXT,
            firmware_status     TEXT,
            diagnostics_status  TEXT
        );

        CREATE TABLE connectors (
            charger_id          TEXT NOT NULL,
            connector_id        INTEGER NOT NULL,
            status              TEXT NOT NULL,
            error_code          TEXT NOT NULL,
            info                TEXT,
            vendor_id           TEXT,
            vendor_error_code   TEXT,
            status_timestamp    TEXT,
            received_at         TEXT NOT NULL,
            PRIMARY KEY (charger_id, connector_id)
        );

        CREATE TABLE status_notifications (
            id                  INTEGER PRIMARY KEY,
            charger_id          TEXT NOT NULL,
            connector_id        INTEGER NOT NULL,
            status              TEXT NOT NULL,
            error_code          TEXT NOT NULL,
            info                TEXT,
            vendor_id           TEXT,
            vendor_error_code   TEXT,
            status_timestamp    TEXT,
            received_at         TEXT NOT NULL
        );
        CREATE INDEX status_notifications_charger ON status_notifications (charger_id, id);

        -- Everything a charger sent that has no table of its own (Boot history,
        -- Firmware/Diagnostics status, DataTransfer), kept verbatim.
        CREATE TABLE charger_events (
            id                  INTEGER PRIMARY KEY,
            charger_id          TEXT NOT NULL,
            action              TEXT NOT NULL,
            payload             TEXT NOT NULL,
            received_at         TEXT NOT NULL
        );
        CREATE INDEX charger_events_charger ON charger_events (charger_id, id);

        -- The local token table serving the authorization seam without roaming.
        CREATE TABLE id_tags (
            id_tag_norm         TEXT PRIMARY KEY,
            id_tag              TEXT NOT NULL,
            status              TEXT NOT NULL,
            expiry_date         TEXT,
            parent_id_tag       TEXT,
            created_at          TEXT NOT NULL,
            updated_at          TEXT NOT NULL
        );

        -- AUTOINCREMENT: SQLite never hands out a rowid again, even after deletes or a
        -- restart, which is the durable never-reused sequence transaction ids need.
        CREATE TABLE transactions (
            id                  INTEGER PRIMARY KEY AUTOINCREMENT,
            charger_id          TEXT NOT NULL,
            connector_id        INTEGER NOT NULL,
            id_tag              TEXT NOT NULL,
            id_tag_norm         TEXT NOT NULL,
            meter_start         INTEGER NOT NULL,
            start_timestamp     TEXT NOT NULL,
            start_received_at   TEXT NOT NULL,
            reservation_id      INTEGER,
            start_status        TEXT NOT NULL,
            parent_id_tag       TEXT,
            authorization_reference TEXT,
            partner_id          TEXT,
            token_type          TEXT,
            token_country_code  TEXT,
            token_party_id      TEXT,
            contract_id         TEXT,
            auth_method         TEXT,
            meter_stop          INTEGER,
            stop_timestamp      TEXT,
            stop_received_at    TEXT,
            stop_reason         TEXT,
            stop_id_tag         TEXT,
            UNIQUE (charger_id, connector_id, id_tag_norm, start_timestamp, meter_start)
        );
        CREATE INDEX transactions_active ON transactions (id_tag_norm) WHERE stop_received_at IS NULL;
        CREATE INDEX transactions_charger ON transactions (charger_id, connector_id);

        -- StopTransaction messages that did not stop a live transaction: unknown ids,
        -- -1 (started offline and never numbered), and repeats of an earlier stop.
        CREATE TABLE stop_records (
            id                  INTEGER PRIMARY KEY,
            charger_id          TEXT NOT NULL,
            transaction_id      INTEGER NOT NULL,
            kind                TEXT NOT NULL CHECK (kind IN ('orphan', 'duplicate')),
            id_tag              TEXT,
            meter_stop          INTEGER NOT NULL,
            stop_timestamp      TEXT NOT NULL,
            reason              TEXT,
            transaction_data    TEXT,
            received_at         TEXT NOT NULL
        );

        CREATE TABLE meter_values (
            id                  INTEGER PRIMARY KEY,
            charger_id          TEXT NOT NULL,
            connector_id        INTEGER NOT NULL,
            transaction_id      INTEGER,
            source              TEXT NOT NULL,
            timestamp           TEXT NOT NULL,
            received_at         TEXT NOT NULL,
            value               TEXT NOT NULL,
            context             TEXT,
            format              TEXT,
            measurand           TEXT,
            phase               TEXT,
            location            TEXT,
            unit                TEXT
        );
        CREATE INDEX meter_values_tx ON meter_values (transaction_id, timestamp);
        """,
    ),
    (
        "0002_authorizations",
        """
        CREATE TABLE authorizations (
            id                  INTEGER PRIMARY KEY,
            decided_at          TEXT NOT NULL,
            charger_id          TEXT,
            connector_id        INTEGER,
            trigger             TEXT NOT NULL,
            uid                 TEXT NOT NULL,
            uid_norm            TEXT NOT NULL,
            partner_id          TEXT,
            token_type          TEXT,
            source              TEXT NOT NULL,
            allowed             TEXT,
            status              TEXT NOT NULL,
            authorization_reference TEXT,
            display_text        TEXT,
            latency_ms          REAL NOT NULL,
            reason              TEXT
        );
        CREATE INDEX authorizations_recent ON authorizations (charger_id, uid_norm, decided_at);
        """,
    ),
    # 0003 and 0004 create roaming's ``ocpi_*`` tables: they live in
    # ``roaming.store.schema`` under the same names, applied right after these.
    (
        # The decision log is append-only and written at up to thousands of rows a
        # second. This index put every row into a random page of a second B-tree:
        # measured at 200k rows, 19.7 µs of CPU per row with it, 5.8 without, and about
        # a tenth of the server's CPU per cache-hit Authorize under load. The one query
        # (newest first, optionally filtered) walks the primary key backwards and stops
        # at its LIMIT, so a busy charger's or card's latest decisions come back quickly
        # without it; a rarely seen one costs a scan.
        "0005_authorizations_append_only",
        """
        DROP INDEX IF EXISTS authorizations_recent;
        """,
    ),
    (
        # The token uid as the eMSP spells it: OCPI CdrToken.uid must be the eMSP's
        # spelling, while id_tag keeps the charger's (uids match case-insensitively).
        "0010_token_spelling",
        """
        ALTER TABLE transactions ADD COLUMN token_uid TEXT;
        """,
    ),
    (
        # Integers beyond the signed 64 bits SQLite stores, in a StopTransaction (the
        # 1.6 schemas bound none): the stop is kept all the same, the out-of-range
        # values as their exact decimal text. ``stop_records.raw_integers`` is a JSON
        # object {field: "digits"} (its integer columns then hold 0: the NOT NULL
        # columns cannot hold the value); ``transactions.meter_stop_raw`` is the
        # meterStop of a stop whose meter_stop is NULL for that reason.
        "0011_ocpp_edges",
        """
        ALTER TABLE stop_records ADD COLUMN raw_integers TEXT;
        ALTER TABLE transactions ADD COLUMN meter_stop_raw TEXT;
        """,
    ),
    (
        # Dashboard logins: kept server-side so logout and expiry take effect at once and
        # a stolen store file holds no usable cookie (only the cookie's SHA-256 is kept).
        "0012_admin_sessions",
        """
        CREATE TABLE admin_sessions (
            id_hash             TEXT PRIMARY KEY,
            csrf_token          TEXT NOT NULL,
            created_at          TEXT NOT NULL,
            expires_at          TEXT NOT NULL,
            remote_address      TEXT
        );
        CREATE INDEX admin_sessions_expiry ON admin_sessions (expires_at);
        """,
    ),
    (
        # The admin audit trail: one row per admin write (POST/PUT/PATCH/DELETE), who did
        # it, what, to which target and with which result. Never a request body.
        "0013_audit_log",
        """
        CREATE TABLE audit_log (
            id          INTEGER PRIMARY KEY AUTOINCREMENT,
            at          TEXT NOT NULL,
            actor       TEXT NOT NULL,
            method      TEXT NOT NULL,
            action      TEXT NOT NULL,
            path        TEXT NOT NULL,
            target      TEXT,
            status      INTEGER NOT NULL,
            remote      TEXT
        );
        CREATE INDEX audit_log_actor ON audit_log (actor, id);
        """,
    ),
    (
        # Local Authorization Lists (docs/local-lists.md): per charger what we know of its
        # list (version it accepted from us, limits it reported, last result) and the
        # entries it holds as far as we know, so a differential is computed from the
        # store and a restart or reconnect picks up where the last sync left off.
        "0015_local_auth_lists",
        """
        CREATE TABLE local_list_chargers (
            charger_id          TEXT PRIMARY KEY,
            mode                TEXT NOT NULL DEFAULT 'auto',
            supported           INTEGER,
            max_length          INTEGER,
            send_max_length     INTEGER,
            version             INTEGER NOT NULL DEFAULT 0,
            charger_version     INTEGER,
            size                INTEGER NOT NULL DEFAULT 0,
            last_sync_at        TEXT,
            last_result         TEXT,
            last_detail         TEXT,
            updated_at          TEXT NOT NULL
        );
        CREATE TABLE local_list_entries (
            charger_id          TEXT NOT NULL,
            id_tag_norm         TEXT NOT NULL,
            id_tag              TEXT NOT NULL,
            status              TEXT NOT NULL,
            expiry_date         TEXT,
            parent_id_tag       TEXT,
            partner_key         TEXT,
            PRIMARY KEY (charger_id, id_tag_norm)
        ) WITHOUT ROWID;
        """,
    ),
    (
        # Security profiles and the OCPP 1.6 security extensions. ``security_profile`` is
        # what the operator registered (NULL: not declared, judged by the password as
        # before); the handshake enforces 2 (TLS + Basic) and 3 (TLS client certificate).
        # ``security_calls`` keeps every CSMS-initiated security call with its outcome
        # (the profile upgrade reads its CA installs back), ``security_notifications``
        # the charger's status reports of signed firmware updates and log uploads.
        "0017_security_extensions",
        """
        ALTER TABLE chargers ADD COLUMN security_profile INTEGER;
        CREATE TABLE security_events (
            id          INTEGER PRIMARY KEY,
            charger_id  TEXT NOT NULL,
            type        TEXT NOT NULL,
            timestamp   TEXT NOT NULL,
            tech_info   TEXT,
            critical    INTEGER NOT NULL,
            received_at TEXT NOT NULL
        );
        CREATE INDEX security_events_charger ON security_events (charger_id, id);
        CREATE TABLE security_calls (
            id          INTEGER PRIMARY KEY,
            charger_id  TEXT NOT NULL,
            action      TEXT NOT NULL,
            request     TEXT NOT NULL,
            response    TEXT,
            error       TEXT,
            created_at  TEXT NOT NULL
        );
        CREATE INDEX security_calls_charger ON security_calls (charger_id, action, id);
        CREATE TABLE security_notifications (
            id          INTEGER PRIMARY KEY,
            charger_id  TEXT NOT NULL,
            action      TEXT NOT NULL,
            status      TEXT NOT NULL,
            request_id  INTEGER,
            received_at TEXT NOT NULL
        );
        CREATE INDEX security_notifications_charger ON security_notifications (charger_id, id);
        CREATE TABLE signed_certificates (
            id          INTEGER PRIMARY KEY,
            charger_id  TEXT NOT NULL,
            serial      TEXT NOT NULL,
            subject     TEXT NOT NULL,
            not_after   TEXT NOT NULL,
            issued_at   TEXT NOT NULL
        );
        CREATE INDEX signed_certificates_charger ON signed_certificates (charger_id, id);
        """,
    ),
    (
        # Several nodes on one database (csms/cluster/). ``cluster_nodes``: every node that
        # ran, its lease (alive while ``lease_until`` is ahead and ``stopped_at`` unset).
        # ``charger_presence``: which node holds each charger's socket (PostgreSQL only;
        # the one SQLite node knows it in memory). Times are the nodes' ISO-8601 UTC text.
        "0018_cluster",
        """
        CREATE TABLE cluster_nodes (
            node_id      TEXT PRIMARY KEY,
            version      TEXT NOT NULL,
            started_at   TEXT NOT NULL,
            heartbeat_at TEXT NOT NULL,
            lease_until  TEXT NOT NULL,
            stopped_at   TEXT
        );
        CREATE TABLE charger_presence (
            charger_id      TEXT PRIMARY KEY,
            node_id         TEXT NOT NULL,
            connected_since TEXT NOT NULL,
            remote_address  TEXT NOT NULL
        );
        CREATE INDEX charger_presence_node ON charger_presence (node_id);
        """,
    ),
    (
        # Calls forwarded between nodes whose message is too large for a notification
        # (csms.cluster.forwarding): the notification names the row, its reader deletes
        # it, and rows nobody read are swept by age.
        "0019_cluster_calls",
        """
        CREATE TABLE cluster_calls (
            id          INTEGER PRIMARY KEY,
            body        TEXT NOT NULL,
            created_at  TEXT NOT NULL
        );
        CREATE INDEX cluster_calls_created ON cluster_calls (created_at);
        """,
    ),
]
