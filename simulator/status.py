"""StatusNotification: moving connectors along the status diagram and telling the CSMS.

Why a part of its own: every flow (transactions, remote start, reservations,
availability, reset) moves connectors, and each must report only real changes, never an
illegal edge, and remember what the CSMS last heard so a charger back online reports what
changed while it was away.
"""

from __future__ import annotations

from typing import Any

from simulator.connector import Status
from simulator.errors import NotConnected
from simulator.session import Session
from simulator.state import ChargerState
from simulator.wire import now_iso


class StatusReporter:
    def __init__(self, state: ChargerState, session: Session) -> None:
        self.state = state
        self.session = session
        self.reported: dict[int, Status] = {}  # what the CSMS last heard, per connector
        self.tolerate_loss = False  # a failing-over charger reports it again once back

    async def status(
        self,
        connector: int,
        status: str | Status,
        *,
        error_code: str = "NoError",
        info: str | None = None,
        force: bool = False,
        timestamp: str | None = None,
    ) -> dict[str, Any]:
        """Move ``connector`` to ``status`` (checked unless ``force``) and report it."""
        conn = self.state.connector(connector)
        conn.move(Status(status), force=force)
        return await self.send(connector, error_code=error_code, info=info, ts=timestamp)

    async def send(
        self,
        connector: int,
        *,
        error_code: str = "NoError",
        info: str | None = None,
        ts: str | None = None,
    ) -> dict[str, Any]:
        """Report the connector's current status; offline (or, with ``tolerate_loss``, lost
        on the way), it is reported on reconnect."""
        conn = self.state.connector(connector)
        if not self.session.connected:
            return {}
        payload: dict[str, Any] = {
            "connectorId": connector,
            "errorCode": error_code,
            "status": str(conn.status),
            "timestamp": ts or now_iso(),
        }
        if info:
            payload["info"] = info
        try:
            response = await self.session.request("StatusNotification", payload)
        except NotConnected:
            if not self.tolerate_loss:
                raise
            return {}  # the link died on the way: reported again once back
        self.reported[connector] = conn.status
        return response

    async def move(self, connector: int, status: Status) -> None:
        """Automatic flows: report only real changes, never an illegal edge."""
        conn = self.state.connector(connector)
        if conn.status != status:
            conn.move(status)
            await self.send(connector)

    async def send_changed(self) -> None:
        """Report the connectors whose status changed since the CSMS last heard it."""
        for cid, conn in self.state.connectors.items():
            if self.reported.get(cid) not in (None, conn.status):
                await self.send(cid)
