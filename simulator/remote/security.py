"""The OCPP 1.6 security extensions, charger side: certificates, extended triggers,
signed firmware updates and log uploads.

Why the follow-ups walk through status notifications only: nothing is downloaded or
uploaded (as for plain firmware and diagnostics); the CSMS's side of these flows is what
tests exercise. A signed firmware update is refused (``InvalidCertificate``) when its
signing certificate is not a PEM certificate, the one check a charger can make without
the firmware.
"""

from __future__ import annotations

import asyncio
from typing import Any

from cryptography import x509
from ocpp.routing import after, on
from ocpp.v16 import call_result

from simulator.certificates import CertificateStore
from simulator.driver import Driver
from simulator.remote.maintenance import trigger_status
from simulator.wire import now_iso, utc_now

FIRMWARE_STEPS = ("Downloading", "Downloaded", "SignatureVerified", "Installing", "Installed")
LOG_STEPS = ("Uploading", "Uploaded")
EXTENDED_TRIGGERABLE = frozenset(
    {
        "BootNotification",
        "FirmwareStatusNotification",
        "Heartbeat",
        "LogStatusNotification",
        "MeterValues",
        "SignChargePointCertificate",
        "StatusNotification",
    }
)


def _camel(snake: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in snake.items():
        head, *rest = key.split("_")
        out[head + "".join(p.title() for p in rest)] = value
    return out


class SecurityCalls:
    def __init__(
        self, driver: Driver, store: CertificateStore, *, reconnect_on_new_certificate: bool
    ) -> None:
        self.driver = driver
        self.state = driver.state
        self.store = store
        self.reconnect_on_new_certificate = reconnect_on_new_certificate
        self.firmware_status = "Idle"
        self.log_status = "Idle"
        self._accepted_new = False

    # ---------------------------------------------------------------- charger initiative

    async def sign_certificate(self, cn: str | None = None) -> dict[str, Any]:
        """Make a key and send its CSR (SignCertificate); the certificate comes back with
        CertificateSigned."""
        csr = self.store.new_csr(cn, self.state.config.get("CpoName"))
        return await self.driver.session.request("SignCertificate", {"csr": csr})

    async def security_event(self, type: str, tech_info: str | None = None) -> dict[str, Any]:
        payload: dict[str, Any] = {"type": type, "timestamp": now_iso()}
        if tech_info is not None:
            payload["techInfo"] = tech_info
        return await self.driver.session.request("SecurityEventNotification", payload)

    # ---------------------------------------------------------------- triggers

    @on("ExtendedTriggerMessage")
    def _on_trigger(
        self, requested_message: str, connector_id: int | None = None, **kw: Any
    ) -> Any:
        return call_result.ExtendedTriggerMessage(
            status=trigger_status(
                requested_message, connector_id, EXTENDED_TRIGGERABLE, self.state.connectors
            )
        )

    @after("ExtendedTriggerMessage")
    def _after_trigger(
        self, requested_message: str, connector_id: int | None = None, **kw: Any
    ) -> None:
        driver = self.driver
        if connector_id is not None and connector_id not in self.state.connectors:
            return
        targets = [connector_id] if connector_id is not None else list(self.state.connectors)

        async def send() -> None:
            if requested_message == "SignChargePointCertificate":
                await self.sign_certificate()
            elif requested_message == "BootNotification":
                await driver.boot()
            elif requested_message == "Heartbeat":
                await driver.session.heartbeat()
            elif requested_message == "FirmwareStatusNotification":
                await driver.session.request(
                    "SignedFirmwareStatusNotification", {"status": self.firmware_status}
                )
            elif requested_message == "LogStatusNotification":
                await driver.session.request("LogStatusNotification", {"status": self.log_status})
            elif requested_message == "StatusNotification":
                for cid in targets:
                    await driver.statuses.send(cid)
            elif requested_message == "MeterValues":
                for cid in targets:
                    if cid:
                        await driver.flow.send_meter_values(cid, context="Trigger")

        if requested_message in EXTENDED_TRIGGERABLE:
            driver.spawn(send(), "extended-trigger")

    # ---------------------------------------------------------------- certificates

    @on("CertificateSigned")
    def _on_certificate_signed(self, certificate_chain: str, **kw: Any) -> Any:
        self._accepted_new = self.store.accept_signed(certificate_chain)
        return call_result.CertificateSigned(
            status="Accepted" if self._accepted_new else "Rejected"
        )

    @after("CertificateSigned")
    def _after_certificate_signed(self, **kw: Any) -> None:
        session = self.driver.session
        if (
            self._accepted_new
            and self.reconnect_on_new_certificate
            and session.url.startswith("wss")
        ):
            self.driver.spawn(self._reconnect(), "new-certificate")

    async def _reconnect(self) -> None:
        """Use the new certificate at once: a new connection, booted."""
        await asyncio.sleep(self.state.identity.step_delay_s)
        await self.driver.reconnect(boot=True)

    @on("InstallCertificate")
    def _on_install(self, certificate_type: str, certificate: str, **kw: Any) -> Any:
        return call_result.InstallCertificate(
            status=self.store.install(certificate_type, certificate)
        )

    @on("GetInstalledCertificateIds")
    def _on_ids(self, certificate_type: str, **kw: Any) -> Any:
        ids = self.store.ids(certificate_type)
        if not ids:
            return call_result.GetInstalledCertificateIds(status="NotFound")
        return call_result.GetInstalledCertificateIds(status="Accepted", certificate_hash_data=ids)

    @on("DeleteCertificate")
    def _on_delete(self, certificate_hash_data: dict[str, Any], **kw: Any) -> Any:
        return call_result.DeleteCertificate(
            status=self.store.delete(_camel(certificate_hash_data))
        )

    # ---------------------------------------------------------------- firmware, logs

    @on("SignedUpdateFirmware")
    def _on_signed_update(self, request_id: int, firmware: dict[str, Any], **kw: Any) -> Any:
        try:
            x509.load_pem_x509_certificate(firmware["signing_certificate"].encode())
        except ValueError:
            return call_result.SignedUpdateFirmware(status="InvalidCertificate")
        return call_result.SignedUpdateFirmware(status="Accepted")

    @after("SignedUpdateFirmware")
    def _after_signed_update(self, request_id: int, firmware: dict[str, Any], **kw: Any) -> None:
        try:
            x509.load_pem_x509_certificate(firmware["signing_certificate"].encode())
        except ValueError:
            return
        self.driver.spawn(
            self._report("SignedFirmwareStatusNotification", request_id, FIRMWARE_STEPS),
            "signed-firmware",
        )

    @on("GetLog")
    def _on_get_log(self, log_type: str, request_id: int, log: dict[str, Any], **kw: Any) -> Any:
        stamp = utc_now().strftime("%Y%m%dT%H%M%SZ")
        name = f"{log_type.lower()}-{self.state.identity.cp_id}-{stamp}.log"
        return call_result.GetLog(status="Accepted", filename=name)

    @after("GetLog")
    def _after_get_log(self, request_id: int, **kw: Any) -> None:
        self.driver.spawn(self._report("LogStatusNotification", request_id, LOG_STEPS), "log")

    async def _report(self, action: str, request_id: int, steps: tuple[str, ...]) -> None:
        """Walk through ``steps``, one notification per step delay."""
        for status in steps:
            await asyncio.sleep(self.state.identity.step_delay_s)
            if action == "LogStatusNotification":
                self.log_status = status
            else:
                self.firmware_status = status
            await self.driver.session.request(action, {"status": status, "requestId": request_id})
