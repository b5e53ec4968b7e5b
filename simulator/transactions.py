"""Transactions as the charger runs them: start, meter samples, stop, and offline replay.

Why the offline queue lives with the transactions: only transaction messages
(StartTransaction, MeterValues, StopTransaction) are kept while the socket is down, and
replaying them must fill in the ``transactionId`` the CSMS hands out for the queued start,
so the queue and the transactions it refers to belong together.

A transaction message must reach the CSMS (OCPP 1.6, "Transaction-related messages"):
with ``keep_unanswered`` (a charger that fails over), one sent but unanswered when the
socket died joins the queue too, and is sent again on the next link with a new message id
and the same content; while the queue holds older messages, a new one waits behind them,
so the CSMS sees them in the charger's order. Without it the caller gets
:class:`NotConnected`, as fault tests that count only answered calls expect.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog

from simulator.connector import Connector, Status
from simulator.errors import NotConnected, SimulatorError
from simulator.session import Session, Step
from simulator.state import ChargerState, QueuedMessage, Tx
from simulator.status import StatusReporter
from simulator.wire import now_iso

log = structlog.get_logger("simulator")


class TransactionFlow:
    def __init__(self, state: ChargerState, session: Session, statuses: StatusReporter) -> None:
        self.state = state
        self.session = session
        self.statuses = statuses
        self.meter_tasks: dict[int, asyncio.Task[None]] = {}
        self.keep_unanswered = False
        self._log = log.bind(cp_id=state.identity.cp_id)

    async def start_transaction(
        self,
        connector: int,
        id_tag: str,
        meter_start: int | None = None,
        *,
        timestamp: str | None = None,
        reservation_id: int | None = None,
        move_status: bool = True,
        meter_loop: bool = True,
    ) -> dict[str, Any]:
        """StartTransaction; on Accepted the connector goes Charging and sampling starts.

        While offline the message is queued (returns ``{}``) and replayed on reconnect.
        Whatever the answer, the Tx is kept in ``transactions`` with ``auth_status``:
        what a charger does with a rejected start is the caller's (scenario's) choice.
        """
        conn = self.state.connector(connector)
        if meter_start is not None:
            conn.meter_wh = meter_start
        tx = Tx(
            connector_id=connector,
            id_tag=id_tag,
            meter_start=int(conn.meter_wh),
            started_at=timestamp or now_iso(),
            reservation_id=reservation_id,
        )
        payload: dict[str, Any] = {
            "connectorId": connector,
            "idTag": id_tag,
            "meterStart": tx.meter_start,
            "timestamp": tx.started_at,
        }
        if reservation_id is not None:
            payload["reservationId"] = reservation_id
        tx.samples.append(self._sample(conn, "Transaction.Begin", tx.started_at))
        self.state.transactions[connector] = tx
        if move_status and conn.status in (Status.AVAILABLE, Status.RESERVED):
            conn.move(Status.PREPARING)
            await self.statuses.send(connector)
        response = await self._deliver("StartTransaction", payload, tx)
        if response is None:
            conn.move(Status.CHARGING)
            return {}
        tx.id = response.get("transactionId")
        tx.auth_status = (response.get("idTagInfo") or {}).get("status")
        if reservation_id is not None:
            self.state.reservations.pop(reservation_id, None)
        if tx.auth_status == "Accepted":
            if move_status:
                await self.statuses.move(connector, Status.CHARGING)
            if meter_loop:
                self.start_meter_loop(connector)
        self.session.notify()
        return response

    async def send_meter_values(
        self,
        connector: int,
        *,
        energy_wh: float | None = None,
        power_w: float | None = None,
        timestamp: str | None = None,
        context: str = "Sample.Periodic",
        transaction_id: int | None = None,
    ) -> dict[str, Any]:
        """MeterValues with Energy.Active.Import.Register (Wh) and Power.Active.Import (W)."""
        conn = self.state.connector(connector)
        if energy_wh is not None:
            conn.meter_wh = energy_wh
        ts = timestamp or now_iso()
        sample = self._sample(conn, context, ts, power_w)
        tx = self.state.transactions.get(connector)
        if tx is not None:
            tx.samples.append(self._sample(conn, context, ts))
        payload: dict[str, Any] = {"connectorId": connector, "meterValue": [sample]}
        tid = transaction_id if transaction_id is not None else (tx.id if tx else None)
        if tid is not None:
            payload["transactionId"] = tid
        if tx is None:  # not about a transaction: not kept for later
            if not self.session.connected:
                raise NotConnected("MeterValues")
            return await self.session.request("MeterValues", payload)
        return await self._deliver("MeterValues", payload, tx) or {}

    async def _deliver(
        self, action: str, payload: dict[str, Any], tx: Tx | None
    ) -> dict[str, Any] | None:
        """Send a transaction message now, or keep it for the replay (None): when offline,
        and with ``keep_unanswered`` when older messages still wait or when the link died
        before the answer came."""
        queue = self.state.offline_queue
        keep = self.keep_unanswered
        if self.session.connected and not (keep and queue):
            try:
                return await self.session.request(action, payload)
            except NotConnected:
                if not keep:
                    raise
                self._log.debug("sim.unanswered_kept_for_replay", action=action)
        queue.append(QueuedMessage(action, payload, tx))
        self.session.notify()
        return None

    def _sample(
        self, conn: Connector, context: str, ts: str, power_w: float | None = None
    ) -> dict[str, Any]:
        values = [
            {
                "value": str(int(conn.meter_wh)),
                "context": context,
                "measurand": "Energy.Active.Import.Register",
                "location": "Outlet",
                "unit": "Wh",
            }
        ]
        if context not in ("Transaction.Begin", "Transaction.End"):
            charging = conn.status == Status.CHARGING
            rated = self.state.identity.power_w
            power = power_w if power_w is not None else (rated if charging else 0.0)
            values.append(
                {
                    "value": f"{power:.1f}",
                    "context": context,
                    "measurand": "Power.Active.Import",
                    "location": "Outlet",
                    "unit": "W",
                }
            )
        return {"timestamp": ts, "sampledValue": values}

    async def stop_transaction(
        self,
        connector: int | None = None,
        *,
        transaction_id: int | None = None,
        reason: str = "Local",
        meter_stop: int | None = None,
        id_tag: str | None = None,
        timestamp: str | None = None,
        transaction_data: bool = True,
        move_status: bool = True,
    ) -> dict[str, Any]:
        """StopTransaction with reason and transactionData (Begin, periodic, End samples).

        Pass ``transaction_id`` alone to stop a transaction the charger does not know
        (fault tests). Offline, it is queued and its id filled in at replay.
        """
        transactions = self.state.transactions
        tx = None
        if connector is None and transaction_id is not None:
            connector = next((c for c, t in transactions.items() if t.id == transaction_id), None)
        if connector is not None:
            tx = transactions.get(connector)
        conn = self.state.connector(connector) if connector is not None else None
        meter_task = self.meter_tasks.pop(connector, None) if connector is not None else None
        if meter_task is not None:
            meter_task.cancel()
        if conn is not None and meter_stop is not None:
            conn.meter_wh = meter_stop
        ts = timestamp or now_iso()
        stop_meter = int(conn.meter_wh) if conn is not None else int(meter_stop or 0)
        tid = transaction_id if transaction_id is not None else (tx.id if tx else None)
        payload: dict[str, Any] = {
            "transactionId": tid if tid is not None else -1,
            "meterStop": stop_meter,
            "timestamp": ts,
            "reason": reason,
        }
        if id_tag is not None:
            payload["idTag"] = id_tag
        if transaction_data and tx is not None and conn is not None:
            payload["transactionData"] = [*tx.samples, self._sample(conn, "Transaction.End", ts)]
        if connector is not None:
            transactions.pop(connector, None)
        if (
            move_status
            and conn is not None
            and conn.status not in (Status.AVAILABLE, Status.FINISHING)
        ):
            conn.move(Status.FINISHING)
            await self.statuses.send(conn.id)
        response = await self._deliver("StopTransaction", payload, tx) or {}
        if move_status and conn is not None:
            target = Status.UNAVAILABLE if conn.unavailable_after_tx else Status.AVAILABLE
            conn.unavailable_after_tx = False
            if conn.status != target:
                conn.move(target)
                await self.statuses.send(conn.id)
        self.session.notify()
        return response

    async def replay_queue(self, *, drop_starts: bool = False) -> list[Step]:
        """Send queued transaction messages in order, filling in ids learnt on the way.

        ``drop_starts`` simulates a charger that lost its queued StartTransaction: the
        later messages then carry ``transactionId`` -1 (Stop) or none (MeterValues).
        """
        done: list[Step] = []
        self.session.replaying = True
        try:
            await self._replay(done, drop_starts)
        finally:
            self.session.replaying = False
        return done

    async def _replay(self, done: list[Step], drop_starts: bool) -> None:
        queue = self.state.offline_queue
        while queue:
            item = queue[0]
            if drop_starts and item.action == "StartTransaction":
                queue.pop(0)
                continue
            payload = dict(item.payload)
            if item.action != "StartTransaction" and item.tx is not None:
                if item.tx.id is not None:
                    payload["transactionId"] = item.tx.id
                elif item.action == "StopTransaction":
                    payload["transactionId"] = -1
                else:
                    payload.pop("transactionId", None)
            response = await self.session.request(item.action, payload)
            queue.pop(0)
            if item.action == "StartTransaction" and item.tx is not None:
                item.tx.id = response.get("transactionId")
                item.tx.auth_status = (response.get("idTagInfo") or {}).get("status")
            done.append(self.session.steps[-1])

    # ----------------------------------------------------------------- sampling

    def start_meter_loop(self, connector: int) -> None:
        old = self.meter_tasks.pop(connector, None)
        if old is not None:
            old.cancel()
        if self.state.config.get_int("MeterValueSampleInterval", 60) > 0:
            self.meter_tasks[connector] = asyncio.create_task(self._meter_loop(connector))

    def restart_meter_loops(self) -> None:
        """A new MeterValueSampleInterval applies to the transactions already running."""
        for cid in list(self.meter_tasks):
            self.start_meter_loop(cid)

    def stop_meter_loops(self) -> None:
        for task in self.meter_tasks.values():
            if task is not asyncio.current_task():
                task.cancel()
        self.meter_tasks.clear()

    async def _meter_loop(self, connector: int) -> None:
        """Advance the energy register at ``power_w`` and report every sample interval."""
        conn = self.state.connector(connector)
        identity = self.state.identity
        last = time.monotonic()
        while connector in self.state.transactions:
            interval = self.state.config.get_int("MeterValueSampleInterval", 60)
            if interval <= 0:
                return
            await asyncio.sleep(interval)
            at = time.monotonic()
            if conn.status == Status.CHARGING:
                conn.meter_wh += identity.power_w * (at - last) * identity.time_scale / 3600.0
            last = at
            try:
                await self.send_meter_values(connector)
            except SimulatorError as exc:
                self._log.warning("sim.meter_values_failed", error=str(exc))
