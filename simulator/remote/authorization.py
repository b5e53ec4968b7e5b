"""LocalAuthListManagement and Reservation profile calls: the local list and reservations.

Why together: both decide who may start at this charger without asking the CSMS at that
moment (a listed card, the card a connector is held for).
"""

from __future__ import annotations

from typing import Any

from ocpp.routing import after, on
from ocpp.v16 import call_result

from simulator.connector import Status
from simulator.driver import Driver


class LocalAuthorization:
    def __init__(self, driver: Driver) -> None:
        self.driver = driver
        self.state = driver.state
        self._pending_available: int | None = None

    @on("SendLocalList")
    def _on_send_local_list(
        self,
        list_version: int,
        update_type: str,
        local_authorization_list: list[dict[str, Any]] | None = None,
        **kw: Any,
    ) -> Any:
        """OCPP 1.6 §5.15: a Full list replaces ours, a Differential updates it and must
        carry a newer version; more entries than SendLocalListMaxLength in one message,
        or a result longer than LocalAuthListMaxLength, is Failed and changes nothing."""
        state, config = self.state, self.state.config
        if not config.supports("LocalAuthListManagement") or not config.get_bool(
            "LocalAuthListEnabled", True
        ):
            return call_result.SendLocalList(status="NotSupported")
        entries = local_authorization_list or []
        if update_type == "Differential" and list_version <= state.local_list_version:
            return call_result.SendLocalList(status="VersionMismatch")
        if len(entries) > config.get_int("SendLocalListMaxLength", 100):
            return call_result.SendLocalList(status="Failed")
        updated = {} if update_type == "Full" else dict(state.local_list)
        for entry in entries:
            tag = entry["id_tag"]
            info = entry.get("id_tag_info")
            if info is None:
                updated.pop(tag, None)
            else:
                updated[tag] = info
        if len(updated) > config.get_int("LocalAuthListMaxLength", 1000):
            return call_result.SendLocalList(status="Failed")
        state.local_list = updated
        state.local_list_version = list_version
        return call_result.SendLocalList(status="Accepted")

    @on("GetLocalListVersion")
    def _on_get_local_list_version(self, **kw: Any) -> Any:
        """-1 when the charger has no local list support (OCPP 1.6 §5.10), else the version."""
        if not self.state.config.supports("LocalAuthListManagement"):
            return call_result.GetLocalListVersion(list_version=-1)
        return call_result.GetLocalListVersion(list_version=self.state.local_list_version)

    @on("ReserveNow")
    def _on_reserve_now(
        self,
        connector_id: int,
        expiry_date: str,
        id_tag: str,
        reservation_id: int,
        parent_id_tag: str | None = None,
        **kw: Any,
    ) -> Any:
        state = self.state
        conn = state.connectors.get(connector_id)
        if conn is None or connector_id == 0:
            return call_result.ReserveNow(status="Rejected")
        existing = state.reservations.get(reservation_id)
        if existing is None:
            if connector_id in state.transactions or conn.status not in (
                Status.AVAILABLE,
                Status.RESERVED,
            ):
                status = {
                    Status.FAULTED: "Faulted",
                    Status.UNAVAILABLE: "Unavailable",
                }.get(conn.status, "Occupied")
                return call_result.ReserveNow(status=status)
            if conn.reservation_id is not None:
                return call_result.ReserveNow(status="Occupied")
        state.reservations[reservation_id] = {
            "connectorId": connector_id,
            "idTag": id_tag,
            "expiryDate": expiry_date,
            "parentIdTag": parent_id_tag,
        }
        conn.reservation_id = reservation_id
        return call_result.ReserveNow(status="Accepted")

    @after("ReserveNow")
    def _after_reserve_now(self, connector_id: int, reservation_id: int, **kw: Any) -> None:
        if self.state.reservations.get(reservation_id, {}).get("connectorId") == connector_id:
            self.driver.spawn(self.driver.statuses.move(connector_id, Status.RESERVED), "reserve")

    @on("CancelReservation")
    def _on_cancel_reservation(self, reservation_id: int, **kw: Any) -> Any:
        res = self.state.reservations.pop(reservation_id, None)
        if res is None:
            return call_result.CancelReservation(status="Rejected")
        conn = self.state.connectors[res["connectorId"]]
        conn.reservation_id = None
        if conn.status == Status.RESERVED:
            self._pending_available = conn.id
        return call_result.CancelReservation(status="Accepted")

    @after("CancelReservation")
    def _after_cancel_reservation(self, **kw: Any) -> None:
        cid = self._pending_available
        self._pending_available = None
        if cid is not None:
            move = self.driver.statuses.move(cid, Status.AVAILABLE)
            self.driver.spawn(move, "cancel-reservation")
