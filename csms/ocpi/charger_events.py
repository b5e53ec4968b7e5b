"""OCPP transaction, meter and status events → OCPI Sessions, CDRs and EVSE status pushes.

Why this is a :class:`~csms.ocpp16.events.ChargerEvents`: the OCPP server calls it inside
the store transaction that persisted the OCPP fact, and everything here writes on that
transaction (session rows, CDR rows, outbox rows). Either the fact and its pushes are
committed together or neither is; the outbox worker delivers after the commit.

At the stop, the costing gets what the charger itself said about the charge: the start
instant with its fraction of a second, the energy register, power and current readings,
and its status history on that connector (SuspendedEV / SuspendedEVSE / Finishing while
the transaction ran is the EV connected and not drawing energy, i.e. parking).

Only transactions with a ``partner_id`` (a roaming token) become OCPI Sessions; local
id_tags charge without OCPI. The outbox worker is nudged after each event; it takes the
store lock to read, so it sees the rows only once the OCPP transaction has committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from csms import datetimes, logs
from csms.domain.chargers import StatusReport
from csms.domain.transactions import MeterReport, MeterSample, TransactionRecord
from csms.ocpi.locations import (
    push_statuses,
)
from csms.store.chargers import ConnectorRepo
from csms.store.db import Executor
from csms.store.meter_values import MeterValueRepo
from roaming.costing import Reading, Sample
from roaming.reservations import ReservationService
from roaming.sessions import CdrToken, SessionService, SessionStart, SessionStop
from roaming.store.locations import LocationStore

log = logs.get("csms.ocpi.sessions")

ENERGY = "Energy.Active.Import.Register"
POWER = "Power.Active.Import"
CURRENT = "Current.Import"
# OCPP 1.6 statuses in which the EV is connected but not drawing energy.
NOT_DRAWING = frozenset({"SuspendedEV", "SuspendedEVSE", "Finishing"})
_PHASES = {"L1": "L1", "L2": "L2", "L3": "L3", "L1-N": "L1", "L2-N": "L2", "L3-N": "L3"}


def charger_time(value: str | None, fallback: datetime) -> datetime:
    """A charger-reported timestamp as aware UTC (naive means UTC); fallback if unusable
    (see :func:`csms.datetimes.charger_time`: the calendar's edges count as unusable)."""
    return datetimes.charger_time(value) or fallback


def energy_wh(value: str, unit: str | None) -> float | None:
    try:
        v = float(value)
    except ValueError:
        return None
    return v * 1000 if (unit or "Wh") == "kWh" else v


def register_readings(samples: list[MeterSample], fallback: datetime) -> list[Reading]:
    """The samples of the total import register (no phase) as readings in Wh."""
    out = []
    for s in samples:
        if (s.measurand or ENERGY) != ENERGY or s.phase:
            continue
        wh = energy_wh(s.value, s.unit)
        if wh is not None:
            out.append(Reading(charger_time(s.timestamp, fallback), wh))
    return out


def instant_samples(samples: list[MeterSample], measurand: str, fallback: datetime) -> list[Sample]:
    """Power (W) or current (A) per reading: the all-phase value, else the sum of the
    L1-L3 values the charger reported at that time (OCPI restrictions are totals)."""
    total: dict[str, float] = {}
    phased: dict[str, dict[str, float]] = {}  # a reading repeated in transactionData counts once
    for s in samples:
        if s.measurand != measurand or (s.phase and s.phase not in _PHASES):
            continue
        try:
            v = float(s.value)
        except ValueError:
            continue
        if s.unit in ("kW", "kA"):
            v *= 1000
        if s.phase:
            phased.setdefault(s.timestamp, {})[_PHASES[s.phase]] = v
        else:
            total[s.timestamp] = v
    merged = {**{ts: sum(p.values()) for ts, p in phased.items()}, **total}
    return sorted(
        (Sample(charger_time(ts, fallback), v) for ts, v in merged.items()),
        key=lambda x: x.timestamp,
    )


def not_drawing(
    history: list[tuple[str, str]], start: datetime, end: datetime, fallback: datetime
) -> list[tuple[datetime, datetime]]:
    """Intervals in which the connector's status said the EV was not drawing energy
    (a Finishing left over from before the start is the previous charge's, not this one's)."""
    out: list[tuple[datetime, datetime]] = []
    since: datetime | None = None
    for at, status in sorted(
        ((charger_time(a, fallback), st) for a, st in history), key=lambda x: x[0]
    ):
        if status == "Finishing" and at < start:
            continue
        if status in NOT_DRAWING and since is None:
            since = at
        elif status not in NOT_DRAWING and since is not None:
            out.append((since, at))
            since = None
    if since is not None:
        out.append((since, end))
    return out


class OcpiChargerEvents:
    """Implements ``csms.ocpp16.events.ChargerEvents`` for the CPO's OCPI modules."""

    def __init__(
        self,
        locations: LocationStore,
        sessions: SessionService,
        *,
        notify: Callable[[], None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        reservations: ReservationService | None = None,
    ) -> None:
        self.locations = locations
        self.sessions = sessions
        self.reservations = reservations
        self.notify = notify
        self.clock = clock

    def _nudge(self) -> None:
        if self.notify is not None:
            asyncio.get_running_loop().call_soon(self.notify)

    async def transaction_started(self, tx: Executor, txn: TransactionRecord) -> None:
        if not txn.partner_id:
            return
        now = self.clock()
        auth_method = txn.auth_method or (
            "AUTH_REQUEST" if txn.authorization_reference else "WHITELIST"
        )
        country, party = _owner(txn)
        token = CdrToken(
            country_code=country,
            party_id=party,
            # The eMSP's spelling when the decision knew it; the charger's otherwise.
            uid=txn.token_uid or txn.id_tag,
            type=txn.token_type or "RFID",
            contract_id=txn.contract_id or txn.token_uid or txn.id_tag,
        )
        start = SessionStart(
            transaction_id=txn.id,
            partner_key=txn.partner_id,
            start=charger_time(txn.start_timestamp, now),
            meter_start_wh=float(txn.meter_start),
            token=token,
            auth_method=auth_method,
            authorization_reference=txn.authorization_reference,
            charger_id=txn.charger_id,
            connector_id=txn.connector_id,
        )
        sid = None
        if self.reservations is not None:
            # The reserved EV starting: its reservation's Session continues (no second one).
            sid = await self.reservations.use(tx, start, txn.reservation_id, now)
        if sid is None:
            sid = await self.sessions.start(tx, start, now)
        if sid:
            await self.sessions.keep_tariff(tx, txn.id)
            self._nudge()

    async def meter_values(self, tx: Executor, charger_id: str, report: MeterReport) -> None:
        transaction_id = report.transaction_id
        if transaction_id is None:
            return
        now = self.clock()
        readings = register_readings(report.samples, now)
        if not readings:
            return
        latest = max(r.energy_wh for r in readings)
        if await self.sessions.progress(tx, transaction_id, latest, now):
            self._nudge()

    async def transaction_stopped(self, tx: Executor, txn: TransactionRecord) -> None:
        now = self.clock()
        if not await self.sessions.store.exists_for_transaction(tx, txn.id):
            return
        samples = await MeterValueRepo.of_transaction(tx, txn.charger_id, txn.id)
        history = await ConnectorRepo.status_history(
            tx, txn.charger_id, txn.connector_id, txn.start_received_at
        )
        end = charger_time(txn.stop_timestamp, now)
        start = datetimes.parse(txn.start_timestamp)
        stop_wh = float(txn.meter_stop if txn.meter_stop is not None else txn.meter_start)
        cdr_id = await self.sessions.stop(
            tx,
            SessionStop(
                transaction_id=txn.id,
                end=end,
                meter_stop_wh=stop_wh,
                readings=register_readings(samples, now),
                start=start,
                power=instant_samples(samples, POWER, now),
                current=instant_samples(samples, CURRENT, now),
                suspended=not_drawing(history, start or end, end, now),
                status_reports=[charger_time(at, now) for at, _ in history],
            ),
            now,
        )
        if cdr_id:
            self._nudge()

    async def statuses_changed(
        self, tx: Executor, reports: Sequence[tuple[str, StatusReport]]
    ) -> None:
        changes = [(cid, r.connector_id, r.status) for cid, r in reports]
        if await push_statuses(tx, self.locations, changes, self.clock()):
            self._nudge()


def _owner(txn: TransactionRecord) -> tuple[str, str]:
    """The token owner's country/party: from the token, else from the partner key NL-EMS."""
    if txn.token_country_code and txn.token_party_id:
        return txn.token_country_code, txn.token_party_id
    key = txn.partner_id or ""
    if "-" in key:
        cc, _, pid = key.partition("-")
        return cc, pid
    return key[:2], key[2:5]
