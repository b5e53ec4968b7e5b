"""The dashboard's view of roaming: partners, outbox, EVSE mapping, Session/CDR delivery.

Why here: this is the csms package allowed to read roaming's stores; it turns them into
the plain records of :mod:`csms.admin.dashboard.ports`, and the composition root hands
the result to the admin app (which may not import roaming). Read-only: the dashboard
changes roaming state only through the admin API's existing routes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from csms.admin.dashboard.ports import (
    FINISHED_OUTBOX_STATUSES,
    Delivery,
    EvseMapping,
    OutboxItem,
    PartnerSummary,
    Unmapped,
)
from csms.ocpi.locations import unmapped_connectors
from csms.store.db import Database
from roaming.outbox import OutboxStore
from roaming.store import RoamingStore
from roaming.store.outbox import WAITING

_FINISHED = tuple(sorted(FINISHED_OUTBOX_STATUSES))
_NOT_FINISHED = f"status NOT IN ({', '.join('?' for _ in _FINISHED)})"
# A held push is ``pending`` in the table but not being tried: shown as "waiting", as
# ``csms outbox list`` shows it.
_SHOWN_STATUS = f"CASE WHEN held_reason IS NULL THEN status ELSE '{WAITING}' END"


class StoreRoamingView:
    """Implements :class:`csms.admin.dashboard.ports.RoamingView` over roaming's stores."""

    def __init__(self, db: Database, store: RoamingStore, outbox: OutboxStore) -> None:
        self.db = db
        self.store = store
        self.outbox = outbox

    async def partners(self) -> list[PartnerSummary]:
        per_partner: dict[str, dict[str, int]] = {}
        for r in await self.db.fetchall(
            f"SELECT partner_key, {_SHOWN_STATUS}, count(*) FROM ocpi_outbox GROUP BY 1, 2"
        ):
            per_partner.setdefault(r[0], {})[r[1]] = int(r[2])
        failing = {
            r[0]: int(r[1])
            for r in await self.db.fetchall(
                "SELECT partner_key, count(*) FROM ocpi_outbox WHERE last_error IS NOT NULL"
                f" AND {_NOT_FINISHED} GROUP BY partner_key",
                _FINISHED,
            )
        }
        out = []
        for p in await self.store.partners.list_partners():
            runs = await self.store.token_syncs.sync_runs(p.id, limit=1)
            last = runs[0] if runs else None
            out.append(
                PartnerSummary(
                    key=p.key,
                    country_code=p.country_code,
                    party_id=p.party_id,
                    status=p.status.value,
                    roles=tuple(r.role.value for r in p.roles),
                    versions_url=p.versions_url,
                    version=p.version,
                    registered_at=p.registered_at,
                    endpoints=tuple((e.identifier, e.role.value, e.url) for e in p.endpoints),
                    tokens=await self.store.tokens.count_tokens(p.id, removed=False),
                    last_sync_at=None if last is None else (last.finished_at or last.started_at),
                    last_sync_status=None if last is None else last.status,
                    outbox=per_partner.get(p.key, {}),
                    failing=failing.get(p.key, 0),
                )
            )
        return out

    async def outbox_counts(self) -> dict[str, int]:
        return await self.outbox.counts()

    async def outbox_open(self, limit: int = 200) -> list[OutboxItem]:
        rows = await self.db.fetchall(
            f"SELECT id, partner_key, module, method, object_key, {_SHOWN_STATUS}, attempts,"
            f" last_error, created_at, held_reason FROM ocpi_outbox WHERE {_NOT_FINISHED}"
            " ORDER BY id LIMIT ?",
            (*_FINISHED, limit),
        )
        return [
            OutboxItem(r[0], r[1], r[2], r[3], r[4], r[5], int(r[6]), r[7], r[8], r[9])
            for r in rows
        ]

    async def evses(self) -> list[EvseMapping]:
        rows = await self.db.fetchall(
            "SELECT l.id, json_extract(l.body, '$.name'), e.uid, json_extract(e.body, '$.evse_id'),"
            " e.charger_id, e.connector_id, e.status,"
            " coalesce(CAST(json_extract(l.body, '$.publish') AS INTEGER), 1) FROM ocpi_evses e"
            " JOIN ocpi_locations l ON l.id_norm = e.location_id_norm"
            " WHERE e.status != 'REMOVED' ORDER BY e.charger_id, e.connector_id"
        )
        return [
            EvseMapping(r[0], r[1], r[2], r[3], r[4], int(r[5]), r[6], bool(r[7])) for r in rows
        ]

    async def unmapped(self) -> list[Unmapped]:
        return [
            Unmapped(u.charger_id, u.connector_id, u.status, u.reported_at)
            for u in await unmapped_connectors(self.db)
        ]

    async def deliveries(self, transaction_ids: Sequence[int]) -> dict[int, Delivery]:
        if not transaction_ids:
            return {}
        marks = ", ".join("?" for _ in transaction_ids)
        # The newest outbox message of each Session / CDR object says how far it got.
        rows = await self.db.fetchall(
            "SELECT t.id, s.id, s.status, c.id,"
            f" (SELECT {_SHOWN_STATUS} FROM ocpi_outbox o WHERE o.object_key = 'session:' || s.id"
            "  AND o.module = 'sessions' ORDER BY o.id DESC LIMIT 1),"
            f" (SELECT {_SHOWN_STATUS} FROM ocpi_outbox o WHERE o.module = 'cdrs' AND"
            "  (o.object_key = 'cdr:' || c.id OR o.object_key = 'session:' || s.id)"
            "  ORDER BY o.id DESC LIMIT 1),"
            " s.waiting_for"
            " FROM transactions t LEFT JOIN ocpi_sessions s ON s.transaction_id = t.id"
            " LEFT JOIN ocpi_cdrs c ON c.transaction_id = t.id"
            f" WHERE t.id IN ({marks})",
            tuple(transaction_ids),
        )
        return {
            int(r[0]): Delivery(
                session_id=r[1],
                session_status=r[2],
                cdr_id=r[3],
                session_delivery=r[4],
                cdr_delivery=r[5],
                session_waiting_for=r[6],
            )
            for r in rows
            if r[1] is not None or r[3] is not None
        }

    async def fingerprint(self) -> tuple[Any, ...]:
        """Moves when a partner, a recent outbox message, an EVSE or a Session changes.

        Outbox changes are looked for among the newest 2,000 messages only (where they
        happen), so an outbox of millions of delivered rows costs no full scan per tick.
        """
        row = await self.db.fetchone(
            "SELECT (SELECT max(updated_at) || count(*) FROM ocpi_partners),"
            " (SELECT max(id) || '/' || sum(attempts) || '/' || max(coalesce(finished_at, ''))"
            "  || '/' || group_concat(status, ',') FROM (SELECT id, attempts, finished_at,"
            "  status FROM ocpi_outbox ORDER BY id DESC LIMIT 2000) AS recent),"
            " (SELECT max(last_updated) FROM ocpi_evses),"
            " (SELECT max(last_updated) FROM ocpi_sessions),"
            " (SELECT max(id) FROM ocpi_token_syncs)"
        )
        return tuple(row) if row else ()
