"""Raising a charger's security profile over OCPP, in the documented order: the CA
certificate first, then ChangeConfiguration SecurityProfile; never downwards."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from csms.system import System
from simulator.chargepoint import ConnectFailed, SimulatedChargePoint
from tests.e2e.security.conftest import register, wss_url
from tests.support.certs import Pki
from tests.support.csms import admin_session, running_csms

PASSWORD = "pw-profile2-0123456789"


async def _set(http: aiohttp.ClientSession, body: dict[str, object]) -> tuple[int, dict]:  # type: ignore[type-arg]
    async with http.post("/api/chargers/CP2/security-profile", json=body) as resp:
        return resp.status, await resp.json()


async def test_profile_3_only_after_the_ca_certificate_is_installed(
    csms_tls: System, http: aiohttp.ClientSession, pki: Pki
) -> None:
    await register(http, "CP2", 2, PASSWORD)
    ca = str(pki.root.cert_path)
    async with SimulatedChargePoint.connect(
        wss_url(csms_tls), "CP2", password=PASSWORD, heartbeat=False, ca_file=ca
    ) as cp:
        await cp.boot()
        status, body = await _set(http, {"profile": 3})
        assert status == 409 and body["error"] == "profile_refused"
        assert "install the CA certificate first" in body["message"]
        assert "ChangeConfiguration" not in [a for a, _ in cp.received_calls]

        async with http.post(
            "/api/chargers/CP2/calls/InstallCertificate",
            json={
                "certificateType": "CentralSystemRootCertificate",
                "certificate": pki.root.cert_path.read_text(),
            },
        ) as resp:
            assert (await resp.json()) == {"status": "Accepted"}

        status, body = await _set(http, {"profile": 3})
        assert status == 200, body
        assert body == {"id": "CP2", "security_profile": 3, "status": "Accepted"}
        assert cp.config.get("SecurityProfile") == "3"

        status, body = await _set(http, {"profile": 2})
        assert status == 409 and "only ever raised" in body["message"]

    async with http.get("/api/chargers/CP2") as resp:
        assert (await resp.json())["security_profile"] == 3
    without_cert = SimulatedChargePoint(
        wss_url(csms_tls), "CP2", password=PASSWORD, heartbeat=False, ca_file=ca
    )
    with pytest.raises(ConnectFailed) as info:
        await without_cert.open()
    assert info.value.status == 403
    async with SimulatedChargePoint.connect(
        wss_url(csms_tls), "CP2", heartbeat=False, **pki.charger("CP2")
    ) as cp:
        assert (await cp.boot())["status"] == "Accepted"

    # A profile set on the charger itself is only recorded (the one way down).
    status, body = await _set(http, {"profile": 2, "registry_only": True})
    assert status == 200 and body["security_profile"] == 2


async def test_a_profile_the_charger_rejects_leaves_the_registry_alone(
    csms_tls: System, http: aiohttp.ClientSession, pki: Pki
) -> None:
    await register(http, "CP2", 2, PASSWORD)
    ca = str(pki.root.cert_path)
    async with SimulatedChargePoint.connect(
        wss_url(csms_tls), "CP2", password=PASSWORD, heartbeat=False, ca_file=ca
    ) as cp:
        await cp.boot()
        cp.config.keys["SecurityProfile"].value = "3"  # already there: 3 is no raise for it
        async with http.post(
            "/api/chargers/CP2/calls/InstallCertificate",
            json={
                "certificateType": "CentralSystemRootCertificate",
                "certificate": pki.root.cert_path.read_text(),
            },
        ) as resp:
            assert resp.status == 200
        status, body = await _set(http, {"profile": 3})
        assert status == 200 and body == {"id": "CP2", "security_profile": 2, "status": "Rejected"}
    async with http.get("/api/chargers/CP2") as resp:
        assert (await resp.json())["security_profile"] == 2


async def test_the_generic_call_cannot_change_the_profile_behind_the_registry(
    csms_tls: System, http: aiohttp.ClientSession, pki: Pki
) -> None:
    await register(http, "CP2", 2, PASSWORD)
    async with SimulatedChargePoint.connect(
        wss_url(csms_tls),
        "CP2",
        password=PASSWORD,
        heartbeat=False,
        ca_file=str(pki.root.cert_path),
    ) as cp:
        await cp.boot()
        async with http.post(
            "/api/chargers/CP2/calls/ChangeConfiguration",
            json={"key": "SecurityProfile", "value": "3"},
        ) as resp:
            assert resp.status == 409
            assert "security-profile" in (await resp.json())["message"]
        assert "ChangeConfiguration" not in [a for a, _ in cp.received_calls]


async def test_client_cert_required_refuses_every_connection_without_one(
    tmp_path: Path, pki: Pki
) -> None:
    sections = pki.csms_sections()
    sections["security_profile"]["client_cert_required"] = True
    async with running_csms(tmp_path, **sections) as app, admin_session(app) as http:  # type: ignore[arg-type]
        await register(http, "CP2", 2, PASSWORD)
        await register(http, "CP3", 3)
        cp2 = SimulatedChargePoint(
            wss_url(app), "CP2", password=PASSWORD, heartbeat=False, ca_file=str(pki.root.cert_path)
        )
        with pytest.raises(ConnectFailed) as info:
            await cp2.open()
        assert info.value.status is None  # the TLS handshake itself failed
        async with SimulatedChargePoint.connect(
            wss_url(app), "CP3", heartbeat=False, **pki.charger("CP3")
        ) as cp3:
            assert (await cp3.boot())["status"] == "Accepted"
