"""Core profile calls: remote start/stop, reset, configuration, availability, unlock.

Why some answers park a value for their ``@after`` hook (``_remote_start_target``,
``_pending_available``): the decision is made while answering, but acting on it sends
CALLs, which may only start once the answer is on the wire.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ocpp.routing import after, on
from ocpp.v16 import call_result

from simulator.connector import Status
from simulator.driver import Driver


class CoreCalls:
    def __init__(self, driver: Driver) -> None:
        self.driver = driver
        self.state = driver.state
        self._remote_start_target: int | None = None

    @on("RemoteStartTransaction")
    def _on_remote_start(self, id_tag: str, connector_id: int | None = None, **kwargs: Any) -> Any:
        state = self.state
        cid = connector_id if connector_id is not None else self._free_connector()
        ok = (
            cid is not None
            and cid in state.connectors
            and cid != 0
            and cid not in state.transactions
            and state.connectors[cid].status
            in (Status.AVAILABLE, Status.PREPARING, Status.FINISHING, Status.RESERVED)
        )
        self._remote_start_target = cid if ok else None
        return call_result.RemoteStartTransaction(status="Accepted" if ok else "Rejected")

    @after("RemoteStartTransaction")
    def _after_remote_start(self, id_tag: str, **kwargs: Any) -> None:
        cid = self._remote_start_target
        if cid is not None:
            self.driver.spawn(self._remote_start(cid, id_tag), "remote-start")

    async def _remote_start(self, connector: int, id_tag: str) -> None:
        statuses = self.driver.statuses
        conn = self.state.connector(connector)
        if conn.status in (Status.AVAILABLE, Status.FINISHING, Status.RESERVED):
            await statuses.move(connector, Status.PREPARING)
        if self.state.config.get_bool("AuthorizeRemoteTxRequests", True):
            answer = await self.driver.authorize(id_tag)
            if (answer.get("idTagInfo") or {}).get("status") != "Accepted":
                await statuses.move(connector, Status.AVAILABLE)
                return
        await self.driver.flow.start_transaction(connector, id_tag)

    def _free_connector(self) -> int | None:
        for cid, conn in self.state.connectors.items():
            if cid and cid not in self.state.transactions and conn.status == Status.AVAILABLE:
                return cid
        return None

    @on("RemoteStopTransaction")
    def _on_remote_stop(self, transaction_id: int, **kwargs: Any) -> Any:
        found = any(t.id == transaction_id for t in self.state.transactions.values())
        return call_result.RemoteStopTransaction(status="Accepted" if found else "Rejected")

    @after("RemoteStopTransaction")
    def _after_remote_stop(self, transaction_id: int, **kwargs: Any) -> None:
        for cid, tx in list(self.state.transactions.items()):
            if tx.id == transaction_id:
                stop = self.driver.flow.stop_transaction(cid, reason="Remote")
                self.driver.spawn(stop, "remote-stop")

    @on("Reset")
    def _on_reset(self, type: str, **kwargs: Any) -> Any:
        return call_result.Reset(status="Accepted")

    @after("Reset")
    def _after_reset(self, type: str, **kwargs: Any) -> None:
        self.driver.spawn(self._reset(type), "reset")

    async def _reset(self, kind: str) -> None:
        """Stop every transaction (reason HardReset/SoftReset), drop the socket, come back, boot."""
        delay = self.state.identity.step_delay_s
        for cid in list(self.state.transactions):
            await self.driver.flow.stop_transaction(cid, reason=f"{kind}Reset")
        await asyncio.sleep(delay)
        await self.driver.reconnect(replay=True)
        await self.driver.boot(retry=True, max_wait_s=delay * 5, announce=True)

    @on("ChangeConfiguration")
    def _on_change_configuration(self, key: str, value: str, **kwargs: Any) -> Any:
        return call_result.ChangeConfiguration(status=self.state.config.set(key, value))

    @after("ChangeConfiguration")
    def _after_change_configuration(self, key: str, **kwargs: Any) -> None:
        if key == "HeartbeatInterval" and self.state.registration == "Accepted":
            self.driver.session.start_heartbeat()
        elif key == "MeterValueSampleInterval":
            self.driver.flow.restart_meter_loops()

    @on("GetConfiguration")
    def _on_get_configuration(self, key: list[str] | None = None, **kwargs: Any) -> Any:
        known, unknown = self.state.config.describe(key)
        return call_result.GetConfiguration(configuration_key=known, unknown_key=unknown or None)

    @on("ChangeAvailability")
    def _on_change_availability(self, connector_id: int, type: str, **kwargs: Any) -> Any:
        connectors = self.state.connectors
        if connector_id not in connectors:
            return call_result.ChangeAvailability(status="Rejected")
        targets = [connector_id] if connector_id else list(connectors)
        scheduled = False
        for cid in targets:
            if type == "Inoperative" and cid in self.state.transactions:
                connectors[cid].unavailable_after_tx = True
                scheduled = True
        return call_result.ChangeAvailability(status="Scheduled" if scheduled else "Accepted")

    @after("ChangeAvailability")
    def _after_change_availability(self, connector_id: int, type: str, **kwargs: Any) -> None:
        connectors = self.state.connectors
        if connector_id not in connectors:
            return
        targets = [connector_id] if connector_id else list(connectors)
        target = Status.UNAVAILABLE if type == "Inoperative" else Status.AVAILABLE

        async def apply() -> None:
            for cid in targets:
                if cid in self.state.transactions:
                    continue
                conn = connectors[cid]
                if type == "Operative" and conn.status != Status.UNAVAILABLE:
                    continue
                conn.unavailable_after_tx = False
                if conn.status != target:
                    conn.move(target, force=True)
                    await self.driver.statuses.send(cid)

        self.driver.spawn(apply(), "change-availability")

    @on("UnlockConnector")
    def _on_unlock(self, connector_id: int, **kwargs: Any) -> Any:
        ok = connector_id in self.state.connectors and connector_id != 0
        return call_result.UnlockConnector(status="Unlocked" if ok else "NotSupported")

    @after("UnlockConnector")
    def _after_unlock(self, connector_id: int, **kwargs: Any) -> None:
        if connector_id in self.state.transactions:
            stop = self.driver.flow.stop_transaction(connector_id, reason="UnlockCommand")
            self.driver.spawn(stop, "unlock")

    @on("ClearCache")
    def _on_clear_cache(self, **kwargs: Any) -> Any:
        self.state.auth_cache.clear()
        return call_result.ClearCache(status="Accepted")

    @on("DataTransfer")
    def _on_data_transfer(
        self, vendor_id: str, message_id: str | None = None, data: str | None = None, **kw: Any
    ) -> Any:
        self.state.data_transfers.append(
            {"vendorId": vendor_id, "messageId": message_id, "data": data}
        )
        if vendor_id != self.state.identity.vendor:
            return call_result.DataTransfer(status="UnknownVendorId")
        return call_result.DataTransfer(status="Accepted", data=data)
