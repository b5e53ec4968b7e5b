"""RemoteTrigger and FirmwareManagement calls: TriggerMessage, firmware, diagnostics.

Why firmware and diagnostics only walk through their status notifications: nothing is
downloaded or uploaded; the CSMS's side of those flows is what tests exercise.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from ocpp.routing import after, on
from ocpp.v16 import call_result

from simulator.driver import Driver
from simulator.wire import utc_now

TRIGGERABLE = frozenset(
    {
        "BootNotification",
        "DiagnosticsStatusNotification",
        "FirmwareStatusNotification",
        "Heartbeat",
        "MeterValues",
        "StatusNotification",
    }
)


def trigger_status(
    requested: str, connector_id: int | None, triggerable: frozenset[str], connectors: Any
) -> str:
    """The answer to a (Extended)TriggerMessage: both messages follow the same rule."""
    if requested not in triggerable:
        return "NotImplemented"
    if connector_id is not None and connector_id not in connectors:
        return "Rejected"
    return "Accepted"


class Maintenance:
    def __init__(self, driver: Driver) -> None:
        self.driver = driver
        self.state = driver.state

    @on("TriggerMessage")
    def _on_trigger(
        self, requested_message: str, connector_id: int | None = None, **kw: Any
    ) -> Any:
        return call_result.TriggerMessage(
            status=trigger_status(
                requested_message, connector_id, TRIGGERABLE, self.state.connectors
            )
        )

    @after("TriggerMessage")
    def _after_trigger(
        self, requested_message: str, connector_id: int | None = None, **kw: Any
    ) -> None:
        driver, connectors = self.driver, self.state.connectors
        if connector_id is not None and connector_id not in connectors:
            return
        targets = [connector_id] if connector_id is not None else list(connectors)
        senders: dict[str, Callable[[], Coroutine[Any, Any, Any]]] = {
            "BootNotification": lambda: driver.boot(),
            "Heartbeat": driver.session.heartbeat,
            "DiagnosticsStatusNotification": lambda: driver.session.request(
                "DiagnosticsStatusNotification", {"status": "Idle"}
            ),
            "FirmwareStatusNotification": lambda: driver.session.request(
                "FirmwareStatusNotification", {"status": "Idle"}
            ),
        }

        async def send() -> None:
            if requested_message in senders:
                await senders[requested_message]()
            elif requested_message == "StatusNotification":
                for cid in targets:
                    await driver.statuses.send(cid)
            elif requested_message == "MeterValues":
                for cid in targets:
                    if cid:
                        await driver.flow.send_meter_values(cid, context="Trigger")

        driver.spawn(send(), "trigger")

    @on("UpdateFirmware")
    def _on_update_firmware(self, location: str, retrieve_date: str, **kw: Any) -> Any:
        return call_result.UpdateFirmware()

    @after("UpdateFirmware")
    def _after_update_firmware(self, **kw: Any) -> None:
        self.driver.spawn(
            self._report(
                "FirmwareStatusNotification", "Downloading", "Downloaded", "Installing", "Installed"
            ),
            "firmware",
        )

    @on("GetDiagnostics")
    def _on_get_diagnostics(self, location: str, **kw: Any) -> Any:
        stamp = utc_now().strftime("%Y%m%dT%H%M%SZ")
        cp_id = self.state.identity.cp_id
        return call_result.GetDiagnostics(file_name=f"diagnostics-{cp_id}-{stamp}.log")

    @after("GetDiagnostics")
    def _after_get_diagnostics(self, **kw: Any) -> None:
        self.driver.spawn(
            self._report("DiagnosticsStatusNotification", "Uploading", "Uploaded"), "diagnostics"
        )

    async def _report(self, action: str, *statuses: str) -> None:
        """Walk through ``statuses``, one notification per step delay."""
        for status in statuses:
            await asyncio.sleep(self.state.identity.step_delay_s)
            await self.driver.session.request(action, {"status": status})
