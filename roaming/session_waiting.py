"""Sessions waiting for a location: a roaming charge on a connector no EVSE maps.

Why they wait instead of being dropped or sent with made-up data: a Session must name
its Location and EVSE, and a CDR must carry the real ``cdr_location`` and be priced
from the connector's tariff; until an operator maps the connector, we know none of it.
So the Session row is kept with ``waiting_for`` (the reason), and its pushes (the PUT,
the ``kwh`` PATCHes, and after the stop a placeholder COMPLETED PATCH and CDR POST) are
written to the outbox *held*: listed with the reason (``csms outbox list``), never sent.

Release: before every outbox round, :meth:`WaitingSessions.release_waiting` looks for
waiting Sessions whose connector an EVSE maps now (whatever mapped it: a catalogue
reload, the management API), fills the held pushes from that EVSE (location fields,
currency; the priced COMPLETED PATCH and the CDR, built from the stop facts kept with
the Session), and lets them go in their order: the CDR shares the Session's ordering
unit, so the eMSP never gets a CDR before the Session it belongs to.

The same hold covers a stop with no tariff: a CDR must carry ``total_cost`` (OCPI) and 0
would say "free", so a roaming charge on a connector without a tariff keeps its COMPLETED
PATCH and CDR held (``waiting for tariff: ...``) until the operator attaches one to the
connector; the CDR is then priced from that tariff.

A mixin of :class:`roaming.sessions.SessionService`: it needs the service's completion
(pricing, CDR) and the service needs it at start and stop; as one class neither module
imports the other.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
import structlog

from roaming import outbox
from roaming.models import ModuleID, format_datetime
from roaming.ports import SqlExecutor
from roaming.store.locations import EvseRef, LocationStore
from roaming.store.outbox import held_messages, release_held, set_held_body, set_held_reason
from roaming.store.sessions import SessionStore

log = structlog.get_logger("roaming.sessions")

# Waiting Sessions looked at per store transaction by a release.
RELEASE_CHUNK = 50


def waiting_reason(charger_id: str, connector_id: int) -> str:
    """What the operator reads in ``csms outbox list``: what is missing and where."""
    return f"waiting for location: {charger_id} connector {connector_id} has no EVSE"


def tariff_reason(ref: EvseRef) -> str:
    """The reason a stopped charge's CDR waits when no tariff prices its connector."""
    return (
        f"waiting for tariff: EVSE {ref.evse_uid} connector {ref.connector['id']} "
        f"({ref.charger_id} connector {ref.connector_id}) has no tariff"
    )


class WaitingSessions:
    """Hold and release of the pushes of Sessions that have no location yet."""

    store: SessionStore
    locations: LocationStore
    # False once a release round found no waiting Session; set again when one starts
    # waiting. Saves the worker a store round trip per round in the common case (one
    # service per process writes every Session).
    _maybe_waiting: bool = True
    # True when other processes write Sessions to the same store (nodes sharing one
    # database): a Session waiting there never sets the flag above here, so every
    # release round asks the store (one lone read, outside any transaction).
    shared_store: bool = False

    # Provided by the service.
    async def _where(self, tx: SqlExecutor, ref: EvseRef) -> dict[str, Any]:
        raise NotImplementedError

    def _path(self, session_id: str) -> list[str]:
        raise NotImplementedError

    async def _currency_and_tariff(
        self, tx: SqlExecutor, ref: EvseRef
    ) -> tuple[str, dict[str, Any] | None]:
        raise NotImplementedError

    async def _queue_patch(
        self,
        tx: SqlExecutor,
        row: Any,
        patch: dict[str, Any],
        now: datetime,
        held_reason: str | None = None,
    ) -> int:
        raise NotImplementedError

    async def _complete_kept(
        self,
        tx: SqlExecutor,
        row: Any,
        body: dict[str, Any],
        meta: dict[str, Any],
        ref: EvseRef,
        stop: dict[str, Any],
        now: datetime,
        cdr_id: str,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        raise NotImplementedError

    # ------------------------------------------------------------------ hold

    async def _hold_stop(
        self,
        tx: SqlExecutor,
        row: Any,
        body: dict[str, Any],
        meta: dict[str, Any],
        stop: dict[str, Any],
        cdr_id: str,
        now: datetime,
        reason: str | None = None,
    ) -> None:
        """A stop without a location or a tariff: keep its facts; hold a COMPLETED PATCH
        and the CDR."""
        reason = (
            reason or row["waiting_for"] or waiting_reason(meta["charger_id"], meta["connector_id"])
        )
        # The bodies are written when the location is known; until then they say only
        # what the pushes are (they are never sent as they are).
        patch_id = await self._queue_patch(tx, row, {"status": "COMPLETED"}, now, reason)
        cdr_msg_id = await outbox.enqueue(
            tx,
            partner_key=row["partner_key"],
            module=ModuleID.CDRS.value,
            method="POST",
            path=[],
            body={"id": cdr_id, "session_id": row["id"]},
            object_key=f"session:{row['id']}",  # after the Session's own pushes
            now=now,
            held_reason=reason,
        )
        meta["kept_stop"] = {**stop, "cdr_id": cdr_id, "patch_msg": patch_id, "cdr_msg": cdr_msg_id}
        await self.store.save_waiting(tx, row["id"], {**body, "_meta": meta}, reason)
        self._maybe_waiting = True
        log.warning(
            "ocpi.cdr_waiting_for_tariff"
            if reason.startswith("waiting for tariff")
            else "ocpi.cdr_waiting_for_location",
            session_id=row["id"],
            cdr_id=cdr_id,
            transaction_id=row["transaction_id"],
            partner=row["partner_key"],
            reason=reason,
        )

    async def _tariff_now(
        self, tx: SqlExecutor, meta: dict[str, Any], ref: EvseRef
    ) -> dict[str, Any] | None:
        """The tariff a stopped charge is priced with: the one kept at its start, else one
        its connector names now (at start, as snapshot in ``ref``, or as mapped now)."""
        kept: dict[str, Any] | None = meta.get("tariff")
        if kept is not None:
            return kept
        _, tariff = await self._currency_and_tariff(tx, ref)
        if tariff is None:
            mapped = await self.locations.evse_for(tx, meta["charger_id"], meta["connector_id"])
            if mapped is not None:
                _, tariff = await self._currency_and_tariff(tx, mapped)
        return tariff

    # ------------------------------------------------------------------ release

    async def release_waiting(self, now: datetime) -> int:
        """Release every waiting Session whose connector is mapped now; returns how many."""
        if not self._maybe_waiting and not (
            self.shared_store and await self.store.any_waiting(self.store.db)
        ):
            return 0
        async with self.store.db.transaction() as tx:
            ids = [row["id"] for row in await self.store.releasable(tx)]
        released = 0
        # Released in chunks, one transaction each (a Session's release is its own): one
        # transaction over thousands of waiting Sessions held the store, and every OCPP
        # write behind it, for as long as the whole look took.
        for at in range(0, len(ids), RELEASE_CHUNK):
            async with self.store.db.transaction() as tx:
                for row in await self.store.waiting_rows(tx, ids[at : at + RELEASE_CHUNK]):
                    if await self._release(tx, row, now):
                        released += 1
        async with self.store.db.transaction() as tx:
            self._maybe_waiting = await self.store.any_waiting(tx)
        return released

    async def _release(self, tx: SqlExecutor, row: Any, now: datetime) -> bool:
        """Fill the held pushes of one Session from the EVSE mapped now and let them go."""
        body = orjson.loads(row["body"])
        meta = body.pop("_meta")
        ref = await self.locations.evse_for(tx, meta["charger_id"], meta["connector_id"])
        if ref is None:
            return False
        where = await self._where(tx, ref)
        if "location_id" not in body:
            body.update(where)
        if not meta.get("evse"):
            meta["evse"] = ref.snapshot()
        place = EvseRef.from_snapshot(meta["evse"])  # where it charged, as at the start
        object_key = f"session:{row['id']}"
        kept = meta.get("kept_stop")
        if kept is not None:
            tariff = await self._tariff_now(tx, meta, place)
            if tariff is None:
                await self._wait_for_tariff(tx, row, body, meta, place, object_key)
                return False
            meta["tariff"] = tariff
            body["currency"] = tariff["currency"]
        held = await held_messages(tx, row["partner_key"], object_key)
        for msg in held:
            if msg.module == ModuleID.SESSIONS.value and msg.method == "PUT":
                await set_held_body(tx, msg.id, {**msg.body, **where})
        meta.pop("kept_stop", None)
        # It changed (it has a place now): an eMSP pulling by date_from must see it. The
        # held pushes keep their own times, so what the eMSP gets stays in time order.
        body["last_updated"] = format_datetime(now)
        await self.store.save_waiting(tx, row["id"], {**body, "_meta": meta}, None)
        cdr_id = None
        if kept is not None:
            cdr_id = kept["cdr_id"]
            patch, cdr = await self._complete_kept(tx, row, body, meta, place, kept, now, cdr_id)
            await set_held_body(tx, kept["patch_msg"], patch)
            await set_held_body(tx, kept["cdr_msg"], cdr)
        await release_held(tx, row["partner_key"], object_key, now)
        log.info(
            "ocpi.session_released",
            session_id=row["id"],
            cdr_id=cdr_id,
            transaction_id=row["transaction_id"],
            partner=row["partner_key"],
            location_id=ref.location_id,
            evse_uid=ref.evse_uid,
            was=row["waiting_for"],
        )
        return True

    async def _wait_for_tariff(
        self,
        tx: SqlExecutor,
        row: Any,
        body: dict[str, Any],
        meta: dict[str, Any],
        place: EvseRef,
        object_key: str,
    ) -> None:
        """A stopped charge whose connector has a place but no tariff: its pushes stay held,
        now for the tariff (said once, when the reason changes)."""
        reason = tariff_reason(place)
        if row["waiting_for"] == reason:
            return
        await set_held_reason(tx, row["partner_key"], object_key, reason)
        await self.store.save_waiting(tx, row["id"], {**body, "_meta": meta}, reason)
        log.warning(
            "ocpi.cdr_waiting_for_tariff",
            session_id=row["id"],
            transaction_id=row["transaction_id"],
            partner=row["partner_key"],
            reason=reason,
        )
