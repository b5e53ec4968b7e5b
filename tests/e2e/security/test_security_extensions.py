"""The OCPP 1.6 security extensions end to end: real CSMS over TLS, real simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from structlog.testing import capture_logs

from csms.config import ConfigError
from csms.system import System
from simulator.chargepoint import SimulatedChargePoint
from tests.e2e.security.conftest import register, wss_url
from tests.support.certs import Pki
from tests.support.csms import admin_session, running_csms
from tests.support.waiting import wait_until

FAST = {"heartbeat": False, "step_delay_s": 0.01}


@pytest.fixture
async def cp3(
    csms_tls: System, http: aiohttp.ClientSession, pki: Pki
) -> AsyncIterator[SimulatedChargePoint]:
    await register(http, "CP3", 3)
    async with SimulatedChargePoint.connect(
        wss_url(csms_tls), "CP3", **FAST, **pki.charger("CP3")
    ) as cp:
        await cp.boot()
        yield cp


async def call(http: aiohttp.ClientSession, action: str, payload: dict[str, Any]) -> Any:
    async with http.post(f"/api/chargers/CP3/calls/{action}", json=payload) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def security(http: aiohttp.ClientSession, charger_id: str = "CP3") -> Any:
    async with http.get(f"/api/chargers/{charger_id}/security") as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


def actions(doc: Any) -> list[tuple[str, Any, Any]]:
    """(action, request, response) of the stored calls, oldest first."""
    return [(c["action"], c["request"], c["response"]) for c in reversed(doc["calls"])]


async def test_sign_certificate_round_trip_and_reconnect_with_the_new_certificate(
    csms_tls: System, http: aiohttp.ClientSession, cp3: SimulatedChargePoint
) -> None:
    first_serial = cp3.certificates.client_serial()
    answer = await call(
        http, "ExtendedTriggerMessage", {"requestedMessage": "SignChargePointCertificate"}
    )
    assert answer == {"status": "Accepted"}

    def presented_serial() -> int | None:
        conn = csms_tls.gateway.connection("CP3")
        peer = conn.ws.transport.get_extra_info("peercert") if conn else None
        return int(peer["serialNumber"], 16) if peer else None

    await wait_until(
        lambda: presented_serial() not in (None, first_serial),
        what="CP3 reconnected with a new certificate",
    )
    doc = await security(http)
    [signed] = doc["signed_certificates"]
    assert int(signed["serial"], 16) == presented_serial() == cp3.certificates.client_serial()
    assert signed["subject"] == "CN=CP3"
    stored = actions(doc)
    assert [a for a, _, _ in stored] == [
        "ExtendedTriggerMessage",
        "SignCertificate",
        "CertificateSigned",
    ]
    assert stored[1][2] == {"status": "Accepted"}
    assert stored[2][2] == {"status": "Accepted"}
    assert "BEGIN CERTIFICATE" in stored[2][1]["certificateChain"]
    await wait_until(lambda: cp3.boot_count == 2, what="booted again on the new connection")


@pytest.mark.parametrize(
    ("cn", "key", "reason"),
    [("CP-OTHER", "ec", "is not the charge point id"), (None, "rsa:1024", "at least 2048")],
)
async def test_a_bad_csr_is_rejected_and_stored_with_its_reason(
    csms_tls: System,
    http: aiohttp.ClientSession,
    cp3: SimulatedChargePoint,
    cn: str | None,
    key: str,
    reason: str,
) -> None:
    cp3.certificates.key_spec = key
    assert await cp3.sign_certificate(cn) == {"status": "Rejected"}
    doc = await security(http)
    [stored] = doc["calls"]
    assert stored["action"] == "SignCertificate"
    assert stored["response"] == {"status": "Rejected"}
    assert reason in stored["error"]
    assert doc["signed_certificates"] == []
    assert "CertificateSigned" not in [a for a, _ in cp3.received_calls]


async def test_security_events_are_stored_listed_and_critical_ones_logged_at_warning(
    http: aiohttp.ClientSession, cp3: SimulatedChargePoint
) -> None:
    with capture_logs() as logs:
        await cp3.security_event("TamperDetectionActivated", "lid opened")
        await cp3.security_event("InvalidMessages")
    events = [e for e in logs if e["event"] == "ocpp.security_event"]
    assert [(e["type"], e["log_level"]) for e in events] == [
        ("TamperDetectionActivated", "warning"),
        ("InvalidMessages", "info"),
    ]
    async with http.get("/api/security-events", params={"charger_id": "CP3"}) as resp:
        listed = (await resp.json())["security_events"]
    assert [(e["type"], e["critical"], e["tech_info"]) for e in listed] == [
        ("InvalidMessages", False, None),
        ("TamperDetectionActivated", True, "lid opened"),
    ]
    async with http.get("/api/security-events", params={"critical": "true"}) as resp:
        critical = (await resp.json())["security_events"]
    assert [e["type"] for e in critical] == ["TamperDetectionActivated"]


async def test_signed_update_firmware_status_sequence_is_stored(
    http: aiohttp.ClientSession, cp3: SimulatedChargePoint, pki: Pki
) -> None:
    firmware = {
        "location": "https://firmware.example.com/fw-2.0.bin",
        "retrieveDateTime": "2030-01-01T00:00:00Z",
        "signingCertificate": pki.root.cert_path.read_text(),
        "signature": "c2lnbmF0dXJl",
    }
    answer = await call(http, "SignedUpdateFirmware", {"requestId": 42, "firmware": firmware})
    assert answer == {"status": "Accepted"}

    async def statuses() -> list[tuple[str, int]]:
        doc = await security(http)
        return [(n["status"], n["request_id"]) for n in doc["notifications"]]

    await wait_until(lambda: _len_is(statuses, 5), what="five firmware notifications")
    assert await statuses() == [
        ("Downloading", 42),
        ("Downloaded", 42),
        ("SignatureVerified", 42),
        ("Installing", 42),
        ("Installed", 42),
    ]
    async with http.get("/api/chargers/CP3") as resp:
        assert (await resp.json())["firmware_status"] == "Installed"
    bad = {**firmware, "signingCertificate": "not a certificate"}
    answer = await call(http, "SignedUpdateFirmware", {"requestId": 43, "firmware": bad})
    assert answer == {"status": "InvalidCertificate"}
    stored = actions(await security(http))
    assert [(a, r["requestId"], s) for a, r, s in stored] == [
        ("SignedUpdateFirmware", 42, {"status": "Accepted"}),
        ("SignedUpdateFirmware", 43, {"status": "InvalidCertificate"}),
    ]


async def _len_is(fetch: Any, n: int) -> bool:
    return len(await fetch()) >= n


async def test_install_list_and_delete_certificates(
    http: aiohttp.ClientSession, cp3: SimulatedChargePoint, pki: Pki
) -> None:
    kind = {"certificateType": "CentralSystemRootCertificate"}
    assert await call(http, "GetInstalledCertificateIds", kind) == {"status": "NotFound"}
    pem = pki.root.cert_path.read_text()
    assert await call(http, "InstallCertificate", {**kind, "certificate": pem}) == {
        "status": "Accepted"
    }
    assert await call(http, "InstallCertificate", {**kind, "certificate": "garbage"}) == {
        "status": "Rejected"
    }
    listed = await call(http, "GetInstalledCertificateIds", kind)
    assert listed["status"] == "Accepted"
    [hash_data] = listed["certificateHashData"]
    assert int(hash_data["serialNumber"], 16) == pki.root.cert.serial_number
    assert await call(http, "DeleteCertificate", {"certificateHashData": hash_data}) == {
        "status": "Accepted"
    }
    assert await call(http, "DeleteCertificate", {"certificateHashData": hash_data}) == {
        "status": "NotFound"
    }
    assert await call(http, "GetInstalledCertificateIds", kind) == {"status": "NotFound"}
    doc = await security(http)
    assert [a for a, _, _ in actions(doc)] == [
        "GetInstalledCertificateIds",
        "InstallCertificate",
        "InstallCertificate",
        "GetInstalledCertificateIds",
        "DeleteCertificate",
        "DeleteCertificate",
        "GetInstalledCertificateIds",
    ]
    assert doc["ca_installed"] is True


async def test_get_log_and_its_status_notifications_are_stored(
    http: aiohttp.ClientSession, cp3: SimulatedChargePoint
) -> None:
    payload = {
        "logType": "SecurityLog",
        "requestId": 7,
        "log": {"remoteLocation": "https://logs.example.com/upload"},
    }
    answer = await call(http, "GetLog", payload)
    assert answer["status"] == "Accepted" and answer["filename"].startswith("securitylog-CP3-")

    async def statuses() -> list[tuple[str, str, int]]:
        doc = await security(http)
        return [(n["action"], n["status"], n["request_id"]) for n in doc["notifications"]]

    await wait_until(lambda: _len_is(statuses, 2), what="two log notifications")
    assert await statuses() == [
        ("LogStatusNotification", "Uploading", 7),
        ("LogStatusNotification", "Uploaded", 7),
    ]
    [(action, request, response)] = actions(await security(http))
    assert (action, request, response) == ("GetLog", payload, answer)


async def test_a_call_the_charger_cannot_take_is_stored_with_its_error(
    csms_tls: System, http: aiohttp.ClientSession, pki: Pki
) -> None:
    await register(http, "CP3", 3)
    async with http.post(
        "/api/chargers/CP3/calls/GetLog",
        json={"logType": "DiagnosticsLog", "requestId": 1, "log": {"remoteLocation": "x"}},
    ) as resp:
        assert resp.status == 409
    [stored] = (await security(http))["calls"]
    assert stored["action"] == "GetLog" and "not connected" in stored["error"]


async def test_without_a_signing_ca_every_csr_is_rejected(tmp_path: Path, pki: Pki) -> None:
    sections = pki.csms_sections()
    sections["security_profile"] = {"client_ca_file": str(pki.root.cert_path)}
    async with running_csms(tmp_path, **sections) as app, admin_session(app) as http:  # type: ignore[arg-type]
        await register(http, "CP3", 3)
        async with SimulatedChargePoint.connect(
            wss_url(app), "CP3", **FAST, **pki.charger("CP3")
        ) as cp:
            assert await cp.sign_certificate() == {"status": "Rejected"}
        [stored] = (await security(http))["calls"]
        assert "no signing CA configured" in stored["error"]


async def test_a_signing_key_that_does_not_fit_its_certificate_stops_the_start(
    tmp_path: Path, pki: Pki
) -> None:
    sections = pki.csms_sections()
    sections["security_profile"]["signing_ca_key"] = str(pki.foreign.key_path)
    with pytest.raises(ConfigError) as info:
        async with running_csms(tmp_path, **sections):  # type: ignore[arg-type]
            pass
    assert info.value.key == "security_profile.signing_ca_cert"
    assert "does not belong" in str(info.value)


async def test_no_certificate_for_a_charger_that_did_not_authenticate(
    csms_tls: System, http: aiohttp.ClientSession, pki: Pki
) -> None:
    async with http.post("/api/chargers", json={"id": "CP0"}) as resp:
        assert resp.status == 201
    async with SimulatedChargePoint.connect(
        wss_url(csms_tls), "CP0", **FAST, ca_file=str(pki.root.cert_path)
    ) as cp:
        assert await cp.sign_certificate() == {"status": "Rejected"}
    [stored] = (await security(http, "CP0"))["calls"]
    assert "did not authenticate" in stored["error"]
    assert (await security(http, "CP0"))["signed_certificates"] == []
