"""Answers to the charger-initiated messages of the OCPP 1.6 security extensions.

- ``SecurityEventNotification``: stored; the events the security whitepaper marks
  critical (:data:`CRITICAL_EVENTS`) are logged at warning, the rest at info.
- ``SignCertificate``: the connection must have authenticated (Basic or a client
  certificate), the CSR is checked (:func:`~csms.ocpp16.security_certs.check_csr`:
  CN = this charge point id, key strength) and, if it passes and a signing CA is
  configured, answered ``Accepted``; the certificate is then signed and sent with the
  CSMS-initiated ``CertificateSigned`` in its own task (after our answer is on its way).
  A refused CSR is answered ``Rejected``; either way the exchange is stored with its reason.
- ``SignedFirmwareStatusNotification`` / ``LogStatusNotification``: stored in order;
  the firmware status also becomes the charger's current ``firmware_status``.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
import structlog

from csms.config import Config, ConfigError
from csms.datetimes import now_millis
from csms.domain.security import (
    SecurityCall,
    SecurityEvent,
    SecurityNotification,
    SignedCertificate,
)
from csms.ocpp16 import errors
from csms.ocpp16.gateway import ChargerGateway
from csms.ocpp16.security_certs import (
    CsrRefused,
    SigningCa,
    check_csr,
    load_signing_ca,
    sign_csr,
)
from csms.store.chargers import ChargerRepo
from csms.store.db import Database
from csms.store.security import SecurityRepo

if TYPE_CHECKING:
    from csms.ocpp16.connection import ChargerConnection
    from csms.ocpp16.handlers import Handlers

log = structlog.get_logger("csms.ocpp.security")

# OCPP 1.6 security whitepaper, appendix 1: the security events marked critical.
CRITICAL_EVENTS = frozenset(
    {
        "FirmwareUpdated",
        "SettingSystemTime",
        "StartupOfTheDevice",
        "ResetOrReboot",
        "SecurityLogWasCleared",
        "MemoryExhaustion",
        "TamperDetectionActivated",
    }
)


def signing_ca_from(config: Config) -> SigningCa | None:
    """The configured signing CA, or None; :class:`ConfigError` names the key at fault."""
    sp = config.security_profile
    if not sp.signing_ca_cert:
        return None
    try:
        return load_signing_ca(sp.signing_ca_cert, sp.signing_ca_key, sp.signed_cert_validity_days)
    except (OSError, ValueError) as exc:
        raise ConfigError("security_profile.signing_ca_cert", str(exc)) from None


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


class SecurityHandlers:
    """The four handlers, sharing the store, the gateway (for CertificateSigned) and the
    signing CA (None: every CSR is refused, as no certificate can be issued)."""

    def __init__(
        self,
        db: Database,
        gateway: ChargerGateway,
        signing_ca: SigningCa | None,
        background: set[asyncio.Task[None]],
    ) -> None:
        self.db = db
        self.repo = SecurityRepo(db)
        self.chargers = ChargerRepo(db)
        self.gateway = gateway
        self.signing_ca = signing_ca
        self.background = background

    def install(self, handlers: Handlers) -> None:
        handlers.register("SecurityEventNotification", self.security_event)
        handlers.register("SignCertificate", self.sign_certificate)
        handlers.register("SignedFirmwareStatusNotification", self.signed_firmware_status)
        handlers.register("LogStatusNotification", self.log_status)

    async def security_event(self, conn: ChargerConnection, p: dict[str, Any]) -> dict[str, Any]:
        critical = p["type"] in CRITICAL_EVENTS
        event = SecurityEvent(
            conn.charger_id, p["type"], p["timestamp"], p.get("techInfo"), critical, now_millis()
        )
        async with self.db.transaction() as tx:
            await SecurityRepo.add_event(tx, event)
        (log.warning if critical else log.info)(
            "ocpp.security_event", type=event.type, timestamp=event.timestamp, critical=critical
        )
        return {}

    async def sign_certificate(self, conn: ChargerConnection, p: dict[str, Any]) -> dict[str, Any]:
        cid = conn.charger_id
        try:
            if self.signing_ca is None:
                raise CsrRefused("no signing CA configured (security_profile.signing_ca_cert)")
            await self._check_authenticated(cid)
            csr = check_csr(p["csr"], cid)
        except CsrRefused as exc:
            await self._record(cid, "SignCertificate", p, {"status": "Rejected"}, str(exc))
            log.warning("ocpp.csr_refused", reason=str(exc))
            return {"status": "Rejected"}
        await self._record(cid, "SignCertificate", p, {"status": "Accepted"}, None)
        issued = sign_csr(self.signing_ca, csr, datetime.now(UTC))
        await self.repo.add_signed(
            SignedCertificate(cid, issued.serial, issued.subject, issued.not_after, now_millis())
        )
        log.info("ocpp.certificate_signed", serial=issued.serial, not_after=issued.not_after)
        task = asyncio.create_task(self._send_signed(cid, issued.chain_pem))
        self.background.add(task)
        task.add_done_callback(self.background.discard)
        return {"status": "Accepted"}

    async def _check_authenticated(self, charger_id: str) -> None:
        """A certificate is only issued to a connection that proved who it is: one that
        passed HTTP Basic (a charger with a password, below profile 3) or presented a
        client certificate (profile 3). Otherwise anyone claiming the id could obtain a
        certificate that outlives a later upgrade to profile 3."""
        charger = await self.chargers.get(charger_id)
        if charger is None or not (charger.has_password or charger.security_profile == 3):
            raise CsrRefused(
                "the charger did not authenticate (no password, not profile 3): "
                "no certificate is issued to an unauthenticated connection"
            )

    async def _send_signed(self, charger_id: str, chain_pem: str) -> None:
        """CertificateSigned, after the SignCertificate answer left (one loop turn later)."""
        await asyncio.sleep(0)
        payload = {"certificateChain": chain_pem}
        try:
            answer = await self.gateway.call(charger_id, "CertificateSigned", payload)
        except errors.GatewayError as exc:
            await self._record(charger_id, "CertificateSigned", payload, None, str(exc))
            log.warning(
                "ocpp.certificate_signed_failed", charge_point_id=charger_id, error=str(exc)
            )
            return
        await self._record(charger_id, "CertificateSigned", payload, answer, None)
        log.info("ocpp.certificate_delivered", charge_point_id=charger_id, status=answer["status"])

    async def _record(
        self,
        charger_id: str,
        action: str,
        request: dict[str, Any],
        response: dict[str, Any] | None,
        error: str | None,
    ) -> None:
        await self.repo.add_call(
            SecurityCall(
                charger_id,
                action,
                _json(request),
                None if response is None else _json(response),
                error,
                now_millis(),
            )
        )

    async def signed_firmware_status(
        self, conn: ChargerConnection, p: dict[str, Any]
    ) -> dict[str, Any]:
        note = SecurityNotification(
            conn.charger_id,
            "SignedFirmwareStatusNotification",
            p["status"],
            p.get("requestId"),
            now_millis(),
        )
        async with self.db.transaction() as tx:
            await SecurityRepo.add_notification(tx, note)
            await ChargerRepo.set_firmware_status(tx, conn.charger_id, p["status"])
        return {}

    async def log_status(self, conn: ChargerConnection, p: dict[str, Any]) -> dict[str, Any]:
        note = SecurityNotification(
            conn.charger_id, "LogStatusNotification", p["status"], p.get("requestId"), now_millis()
        )
        async with self.db.transaction() as tx:
            await SecurityRepo.add_notification(tx, note)
        return {}
