"""``/metrics`` auth rules, ``/api/ready`` answers, one registry per system, and the
start-up warnings for listeners without TLS; each against a real CSMS."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from csms.config import Config, OcpiConfig, ServerConfig
from csms.observability.exposure import exposure_warnings
from simulator.chargepoint import SimulatedChargePoint
from tests.support.csms import ADMIN_TOKEN, admin_url, ocpp_url, running_csms

METRICS_TOKEN = "scrape-token-4c1e0b"


async def _get(url: str, token: str | None = None) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession(headers=headers) as http, http.get(url) as resp:
        return resp.status, await resp.text()


async def test_metrics_are_open_on_a_loopback_admin_api_without_a_metrics_token(
    tmp_path: Path,
) -> None:
    async with running_csms(tmp_path) as app:
        status, text = await _get(f"{admin_url(app)}/metrics")
        assert status == 200
        assert "# TYPE csms_chargers_connected gauge" in text
        assert 'csms_build_info{version="' in text


async def test_a_metrics_token_is_required_once_set(tmp_path: Path) -> None:
    async with running_csms(tmp_path, metrics={"token": METRICS_TOKEN}) as app:
        url = f"{admin_url(app)}/metrics"
        assert (await _get(url))[0] == 401
        assert (await _get(url, "wrong"))[0] == 401
        assert (await _get(url, METRICS_TOKEN))[0] == 200
        assert (await _get(url, ADMIN_TOKEN))[0] == 200
        # The scrape credential opens nothing else.
        assert (await _get(f"{admin_url(app)}/api/chargers", METRICS_TOKEN))[0] == 401


async def test_a_public_admin_address_never_serves_metrics_without_a_token(
    tmp_path: Path,
) -> None:
    async with running_csms(tmp_path, admin={"host": "0.0.0.0"}) as app:
        url = f"http://127.0.0.1:{app.admin_port}/metrics"
        assert (await _get(url))[0] == 401
        assert (await _get(url, ADMIN_TOKEN))[0] == 200


async def test_metrics_can_be_switched_off(tmp_path: Path) -> None:
    async with running_csms(tmp_path, metrics={"enabled": False}) as app:
        assert (await _get(f"{admin_url(app)}/metrics", ADMIN_TOKEN))[0] == 404


async def test_each_system_counts_only_its_own_traffic(tmp_path: Path) -> None:
    """Two systems in one process: a charger on the first shows only in its metrics."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    async with (
        running_csms(tmp_path / "a", server={"unknown_chargers": "accept"}) as a,
        running_csms(tmp_path / "b") as b,
        SimulatedChargePoint.connect(ocpp_url(a), "ISO-1", heartbeat=False) as cp,
    ):
        await cp.boot()
        _, text_a = await _get(f"{admin_url(a)}/metrics")
        _, text_b = await _get(f"{admin_url(b)}/metrics")
    line = 'csms_ocpp_messages_total{action="BootNotification",result="ok"} 1.0'
    assert line in text_a
    assert "BootNotification" not in text_b
    assert "csms_chargers_connected 1.0" in text_a and "csms_chargers_connected 0.0" in text_b


async def test_ready_reports_each_check_and_503_when_one_fails(tmp_path: Path) -> None:
    async with running_csms(tmp_path, ocpi={"enabled": True}) as app:
        url = f"{admin_url(app)}/api/ready"
        async with aiohttp.ClientSession() as http:  # no token: probes carry none
            async with http.get(url) as resp:
                assert resp.status == 200
                assert await resp.json() == {
                    "status": "ready",
                    "checks": {"store": True, "ocpp": True, "ocpi": True},
                }
            assert app.ocpp is not None
            app.ocpp._server.close()  # the OCPP listener goes away
            await app.ocpp._server.wait_closed()
            async with http.get(url) as resp:
                assert resp.status == 503
                doc = await resp.json()
                assert doc["status"] == "not_ready"
                assert doc["checks"] == {"store": True, "ocpp": False, "ocpi": True}


async def test_ready_without_ocpi_has_no_ocpi_check(tmp_path: Path) -> None:
    async with running_csms(tmp_path) as app:
        status, text = await _get(f"{admin_url(app)}/api/ready")
        assert status == 200 and '"ocpi"' not in text


def test_plain_listeners_on_public_addresses_are_warned_about() -> None:
    quiet = Config(
        server=ServerConfig(host="127.0.0.1"),
        ocpi=OcpiConfig(host="::1"),
    )
    assert exposure_warnings(quiet) == []
    loud = Config(server=ServerConfig(host="0.0.0.0"), ocpi=OcpiConfig(host="0.0.0.0"))
    assert [key for key, _ in exposure_warnings(loud)] == ["server.host", "ocpi.host"]
    tls = Config(
        server=ServerConfig(host="0.0.0.0", tls_cert="c.pem", tls_key="k.pem"),
        ocpi=OcpiConfig(host="0.0.0.0", public_base_url="https://cpo.example/ocpi"),
    )
    assert exposure_warnings(tls) == []
    off = Config(server=ServerConfig(host="localhost"), ocpi=OcpiConfig(enabled=False))
    assert exposure_warnings(off) == []


async def test_calls_the_csms_sends_are_counted_by_action_and_outcome(tmp_path: Path) -> None:
    async with (
        running_csms(tmp_path, server={"unknown_chargers": "accept"}) as app,
        SimulatedChargePoint.connect(ocpp_url(app), "CALLED-1", heartbeat=False) as cp,
    ):
        await cp.boot()
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        async with aiohttp.ClientSession(base_url=admin_url(app), headers=headers) as http:
            ok = await http.post("/api/chargers/CALLED-1/calls/ClearCache", json={})
            assert ok.status == 200
            await http.post("/api/chargers", json={"id": "OFFLINE-1"})
            gone = await http.post("/api/chargers/OFFLINE-1/calls/ClearCache", json={})
            assert gone.status == 409
        _, text = await _get(f"{admin_url(app)}/metrics")
    assert 'csms_ocpp_calls_sent_total{action="ClearCache",outcome="ok"} 1.0' in text
    assert 'csms_ocpp_calls_sent_total{action="ClearCache",outcome="not_connected"} 1.0' in text


async def test_made_up_actions_do_not_become_label_values(tmp_path: Path) -> None:
    """The action label comes from the charger: unknown names are counted as ``other``."""
    async with (
        running_csms(tmp_path, server={"unknown_chargers": "accept"}) as app,
        SimulatedChargePoint.connect(ocpp_url(app), "ODD-1", heartbeat=False) as cp,
    ):
        for n in range(3):
            reply = await cp.send_raw(f'[2,"odd-{n}","MadeUp{n}",{{}}]')
            assert reply is not None and "NotImplemented" in reply
        _, text = await _get(f"{admin_url(app)}/metrics")
    assert "MadeUp" not in text
    assert 'csms_ocpp_messages_total{action="other",result="callerror"} 3.0' in text
    assert 'csms_ocpp_callerrors_total{code="NotImplemented"} 3.0' in text
