"""Security profile 3 at the handshake: the client certificate must exist, verify and name
the charge point id; profile 2 chargers keep HTTP Basic over the same TLS listener."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from csms.system import System
from simulator.chargepoint import ConnectFailed, SimulatedChargePoint
from tests.e2e.security.conftest import register, wss_url
from tests.support.certs import Pki
from tests.support.csms import admin_session, ocpp_url, running_csms

PASSWORD = "pw-profile2-0123456789"


async def test_profile3_charger_with_matching_certificate_connects(
    csms_tls: System, http: aiohttp.ClientSession, pki: Pki
) -> None:
    await register(http, "CP3", 3)
    async with SimulatedChargePoint.connect(
        wss_url(csms_tls), "CP3", heartbeat=False, **pki.charger("CP3")
    ) as cp:
        assert (await cp.boot())["status"] == "Accepted"
        conn = csms_tls.gateway.connection("CP3")
        assert conn is not None
        peer = conn.ws.transport.get_extra_info("peercert")
        assert int(peer["serialNumber"], 16) == cp.certificates.client_serial()


async def test_profile3_charger_with_wrong_cn_is_refused(
    csms_tls: System, http: aiohttp.ClientSession, pki: Pki
) -> None:
    await register(http, "CP3", 3)
    await register(http, "CP4", 3)
    cp = SimulatedChargePoint(wss_url(csms_tls), "CP3", heartbeat=False, **pki.charger("CP4"))
    with pytest.raises(ConnectFailed) as info:
        await cp.open()
    assert info.value.status == 403
    assert not csms_tls.gateway.is_connected("CP3")


async def test_profile3_charger_without_certificate_is_refused(
    csms_tls: System, http: aiohttp.ClientSession, pki: Pki
) -> None:
    await register(http, "CP3", 3)
    cp = SimulatedChargePoint(
        wss_url(csms_tls), "CP3", heartbeat=False, ca_file=str(pki.root.cert_path)
    )
    with pytest.raises(ConnectFailed) as info:
        await cp.open()
    assert info.value.status == 403
    assert not csms_tls.gateway.is_connected("CP3")


async def test_certificate_from_an_untrusted_ca_fails_the_tls_handshake(
    csms_tls: System, http: aiohttp.ClientSession, pki: Pki
) -> None:
    await register(http, "CP3", 3)
    cp = SimulatedChargePoint(
        wss_url(csms_tls), "CP3", heartbeat=False, **pki.charger("CP3", foreign=True)
    )
    with pytest.raises(ConnectFailed):
        await cp.open()
    assert not csms_tls.gateway.is_connected("CP3")


async def test_profile2_charger_keeps_basic_auth_beside_profile3(
    csms_tls: System, http: aiohttp.ClientSession, pki: Pki
) -> None:
    await register(http, "CP2", 2, PASSWORD)
    await register(http, "CP3", 3)
    ca = str(pki.root.cert_path)
    async with (
        SimulatedChargePoint.connect(
            wss_url(csms_tls), "CP2", password=PASSWORD, heartbeat=False, ca_file=ca
        ) as cp2,
        SimulatedChargePoint.connect(
            wss_url(csms_tls), "CP3", heartbeat=False, **pki.charger("CP3")
        ) as cp3,
    ):
        assert (await cp2.boot())["status"] == "Accepted"
        assert (await cp3.boot())["status"] == "Accepted"
        assert csms_tls.gateway.is_connected("CP2") and csms_tls.gateway.is_connected("CP3")
    wrong = SimulatedChargePoint(
        wss_url(csms_tls), "CP2", password="wrong-password-123", heartbeat=False, ca_file=ca
    )
    with pytest.raises(ConnectFailed) as info:
        await wrong.open()
    assert info.value.status == 401


async def test_a_certificate_naming_another_charger_is_refused_for_profile2_too(
    csms_tls: System, http: aiohttp.ClientSession, pki: Pki
) -> None:
    await register(http, "CP2", 2, PASSWORD)
    cp = SimulatedChargePoint(
        wss_url(csms_tls), "CP2", password=PASSWORD, heartbeat=False, **pki.charger("CP9")
    )
    with pytest.raises(ConnectFailed) as info:
        await cp.open()
    assert info.value.status == 403


async def test_profile2_and_3_chargers_are_refused_without_tls(tmp_path: Path) -> None:
    async with running_csms(tmp_path) as app:
        async with admin_session(app) as http:
            await register(http, "CP2", 2, PASSWORD)
            await register(http, "CP3", 3)
        for cp_id, password in (("CP2", PASSWORD), ("CP3", None)):
            cp = SimulatedChargePoint(ocpp_url(app), cp_id, password=password, heartbeat=False)
            with pytest.raises(ConnectFailed) as info:
                await cp.open()
            assert info.value.status == 403
