"""The charger registry (``chargers``) and per-connector current status (``connectors``,
``status_notifications``)."""

from __future__ import annotations

import re
from dataclasses import fields
from typing import Any

from csms.datetimes import now_millis
from csms.domain.chargers import Charger, ConnectorStatus, HandshakeFacts, StatusReport
from csms.store.db import Database, Executor
from csms.store.passwords import hash_password

REGISTRATION_STATUSES = ("Accepted", "Pending", "Rejected")
_ID_CHARS = re.compile(r"[A-Za-z0-9._:\-]+")


def charger_id_problem(charger_id: str, max_length: int = 48) -> str | None:
    """Why ``charger_id`` is not a usable charge point id, or None when it is.

    Allowed: 1..max_length characters from ``A-Z a-z 0-9 . _ : -`` (safe in URLs, logs
    and OCPI EVSE ids without escaping).
    """
    if not charger_id:
        return "charge point id is empty"
    if len(charger_id) > max_length:
        return f"charge point id is longer than {max_length} characters"
    if not _ID_CHARS.fullmatch(charger_id):
        return "charge point id may only contain letters, digits and . _ : -"
    return None


SECURITY_PROFILES = (0, 1, 2, 3)


def security_profile_problem(profile: int | None, has_password: bool) -> str | None:
    """Why ``profile`` cannot be registered for a charger (with or without a password).

    Profiles 1 and 2 authenticate with HTTP Basic, so they need a password; 0 and 3 do not.
    """
    if profile is None:
        return None
    if profile not in SECURITY_PROFILES:
        return "security profile must be 0, 1, 2 or 3"
    if profile in (1, 2) and not has_password:
        return f"security profile {profile} authenticates with HTTP Basic: a password is needed"
    return None


class ChargerExists(ValueError):
    def __init__(self, charger_id: str) -> None:
        super().__init__(f"charger {charger_id!r} already exists")
        self.charger_id = charger_id


# Every field of Charger but has_password is the column of the same name.
_COLUMNS = tuple(f.name for f in fields(Charger) if f.name != "has_password")


def _charger(row: Any) -> Charger:
    return Charger(has_password=row["password_hash"] is not None, **{k: row[k] for k in _COLUMNS})


class ChargerRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(
        self,
        charger_id: str,
        password: str | None = None,
        registration_status: str = "Accepted",
        security_profile: int | None = None,
    ) -> Charger:
        """Register a charger; ``password`` enables HTTP Basic auth for it,
        ``security_profile`` 2 demands TLS and 3 a client certificate. Raises ValueError
        for a bad id/status/profile and :class:`ChargerExists` for a duplicate."""
        problem = charger_id_problem(charger_id)
        if problem:
            raise ValueError(problem)
        if registration_status not in REGISTRATION_STATUSES:
            raise ValueError(f"registration status must be one of {REGISTRATION_STATUSES}")
        problem = security_profile_problem(security_profile, password is not None)
        if problem:
            raise ValueError(problem)
        pw_hash = hash_password(password) if password else None
        n = await self.db.execute(
            "INSERT INTO chargers (id, password_hash, registration_status, created_at,"
            " security_profile) VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
            (charger_id, pw_hash, registration_status, now_millis(), security_profile),
        )
        if n == 0:
            raise ChargerExists(charger_id)
        row = await self.get(charger_id)
        assert row is not None
        return row

    async def remove(self, charger_id: str) -> bool:
        return await self.db.execute("DELETE FROM chargers WHERE id = ?", (charger_id,)) > 0

    async def get(self, charger_id: str) -> Charger | None:
        row = await self.db.fetchone("SELECT * FROM chargers WHERE id = ?", (charger_id,))
        return _charger(row) if row else None

    async def list(self) -> list[Charger]:
        rows = await self.db.fetchall("SELECT * FROM chargers ORDER BY id")
        return [_charger(r) for r in rows]

    async def set_registration_status(self, charger_id: str, status: str) -> bool:
        if status not in REGISTRATION_STATUSES:
            raise ValueError(f"registration status must be one of {REGISTRATION_STATUSES}")
        n = await self.db.execute(
            "UPDATE chargers SET registration_status = ? WHERE id = ?", (status, charger_id)
        )
        return n > 0

    async def auth_facts(self, charger_id: str) -> HandshakeFacts | None:
        """What the handshake checks of ``charger_id``, or None if unknown."""
        row = await self.db.fetchone(
            "SELECT registration_status, password_hash, security_profile FROM chargers"
            " WHERE id = ?",
            (charger_id,),
        )
        return HandshakeFacts(row[0], row[1], row[2]) if row else None

    async def set_security_profile(self, charger_id: str, profile: int | None) -> bool:
        """Record the profile the charger now uses (after its ChangeConfiguration)."""
        return (
            await self.db.execute(
                "UPDATE chargers SET security_profile = ? WHERE id = ?", (profile, charger_id)
            )
            > 0
        )

    async def auto_register(self, charger_id: str, registration_status: str) -> None:
        await self.db.execute(
            "INSERT INTO chargers (id, registration_status, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT (id) DO NOTHING",
            (charger_id, registration_status, now_millis()),
        )

    async def registration_status(self, charger_id: str) -> str | None:
        row = await self.db.fetchone(
            "SELECT registration_status FROM chargers WHERE id = ?", (charger_id,)
        )
        return row[0] if row else None

    async def mark_disconnected(self, charger_id: str, at: str) -> None:
        await self.db.execute(
            "UPDATE chargers SET last_disconnected_at = ? WHERE id = ?", (at, charger_id)
        )

    @staticmethod
    async def set_firmware_status(ex: Executor, charger_id: str, status: str) -> None:
        await ex.execute(
            "UPDATE chargers SET firmware_status = ? WHERE id = ?", (status, charger_id)
        )

    @staticmethod
    async def set_diagnostics_status(ex: Executor, charger_id: str, status: str) -> None:
        await ex.execute(
            "UPDATE chargers SET diagnostics_status = ? WHERE id = ?", (status, charger_id)
        )


HISTORY_INSERT = (
    "INSERT INTO status_notifications (charger_id, connector_id, status, error_code, info, "
    "vendor_id, vendor_error_code, status_timestamp, received_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
UPSERT_CONNECTOR = (
    "INSERT INTO connectors (charger_id, connector_id, status, error_code, info, vendor_id, "
    "vendor_error_code, status_timestamp, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (charger_id, connector_id) DO UPDATE SET status = excluded.status, "
    "error_code = excluded.error_code, info = excluded.info, vendor_id = excluded.vendor_id, "
    "vendor_error_code = excluded.vendor_error_code, "
    "status_timestamp = excluded.status_timestamp, received_at = excluded.received_at"
)


def status_row(charger_id: str, report: StatusReport, at: str) -> tuple[object, ...]:
    """The parameters of :data:`HISTORY_INSERT` and :data:`UPSERT_CONNECTOR`."""
    return (
        charger_id,
        report.connector_id,
        report.status,
        report.error_code,
        report.info,
        report.vendor_id,
        report.vendor_error_code,
        report.status_timestamp,
        at,
    )


class ConnectorRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    async def current_status(ex: Executor, charger_id: str, connector_id: int) -> str | None:
        row = await ex.fetchone(
            "SELECT status FROM connectors WHERE charger_id = ? AND connector_id = ?",
            (charger_id, connector_id),
        )
        return row[0] if row else None

    @staticmethod
    async def record_status(ex: Executor, charger_id: str, report: StatusReport, at: str) -> None:
        """Upsert the current row and append the history row (charger timestamp as sent).
        Many at once: :mod:`csms.store.status_writes`."""
        params = status_row(charger_id, report, at)
        await ex.execute(HISTORY_INSERT, params)
        await ex.execute(UPSERT_CONNECTOR, params)

    @staticmethod
    async def status_history(
        ex: Executor, charger_id: str, connector_id: int, since_received_at: str, page: int = 256
    ) -> list[tuple[str, str]]:
        """``(timestamp, status)`` of the connector's reports received since
        ``since_received_at``, preceded by the last one before it (the status in effect
        then), in arrival order; ``timestamp`` is the charger's clock, else our receipt.

        Read newest first along the (charger_id, id) index, a page at a time, down to the
        report before ``since_received_at``: a stop costs its own charge's reports, not the
        charger's whole history."""
        found: list[tuple[str, str]] = []
        before = 2**63 - 1
        while True:
            rows = await ex.fetchall(
                "SELECT id, connector_id, status, received_at,"
                " coalesce(status_timestamp, received_at) AS at FROM status_notifications"
                " WHERE charger_id = ? AND id < ? ORDER BY id DESC LIMIT ?",
                (charger_id, before, page),
            )
            for r in rows:
                if r["connector_id"] != connector_id:
                    continue
                found.append((r["at"], r["status"]))
                if r["received_at"] < since_received_at:
                    return found[::-1]
            if len(rows) < page:
                return found[::-1]
            before = rows[-1]["id"]

    async def list(self, charger_id: str | None = None) -> list[ConnectorStatus]:
        if charger_id is None:
            rows = await self.db.fetchall(
                "SELECT * FROM connectors ORDER BY charger_id, connector_id"
            )
        else:
            rows = await self.db.fetchall(
                "SELECT * FROM connectors WHERE charger_id = ? ORDER BY connector_id",
                (charger_id,),
            )
        return [ConnectorStatus(**dict(r)) for r in rows]
