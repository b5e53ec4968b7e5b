"""Refusals at the HTTP handshake, security profiles 1 (Basic) and 2 (TLS), replacement."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from csms.server import OcppServer
from csms.store.chargers import ChargerRepo
from csms.store.db import Database
from tests.csms.ocpp.conftest import Connect, StartServer
from tests.support.waiting import wait_until


async def refused(url: str, **kwargs: object) -> tuple[int, str, InvalidStatus]:
    with pytest.raises(InvalidStatus) as info:
        await connect(url, open_timeout=5, **kwargs)  # type: ignore[arg-type]
    response = info.value.response
    return response.status_code, response.body.decode(), info.value


def url(srv: OcppServer, path: str) -> str:
    return f"ws://127.0.0.1:{srv.port}{path}"


async def test_bad_path_and_bad_id_are_refused(start_server: StartServer):
    srv = await start_server()
    status, body, _ = await refused(url(srv, "/elsewhere/CP1"), subprotocols=["ocpp1.6"])
    assert status == 404 and "/ocpp/{charge_point_id}" in body
    status, body, _ = await refused(url(srv, "/ocpp/a/b"), subprotocols=["ocpp1.6"])
    assert status == 404
    status, body, _ = await refused(url(srv, "/ocpp/bad%20id"), subprotocols=["ocpp1.6"])
    assert status == 400 and "may only contain" in body
    status, body, _ = await refused(url(srv, "/ocpp/" + "X" * 49), subprotocols=["ocpp1.6"])
    assert status == 400 and "longer than 48" in body
    status, _, _ = await refused(url(srv, "/ocpp/"), subprotocols=["ocpp1.6"])
    assert status == 400


async def test_missing_subprotocol_is_refused(start_server: StartServer):
    srv = await start_server()
    status, body, _ = await refused(url(srv, "/ocpp/CP1"))
    assert status == 400 and "ocpp1.6" in body
    status, body, _ = await refused(url(srv, "/ocpp/CP1"), subprotocols=["ocpp2.0.1"])
    assert status == 400 and "subprotocol" in body


async def test_unknown_charger_policies(
    db: Database, start_server: StartServer, connect_cp: Connect
):
    rejecting = await start_server(unknown_chargers="reject")
    status, body, _ = await refused(url(rejecting, "/ocpp/STRANGER"), subprotocols=["ocpp1.6"])
    assert status == 404 and "unknown charge point" in body
    assert await ChargerRepo(db).get("STRANGER") is None

    accepting = await start_server(unknown_chargers="accept")
    cp = await connect_cp(accepting, "NEWCOMER")
    assert (await cp.boot())["status"] == "Accepted"
    assert (await ChargerRepo(db).get("NEWCOMER")).registration_status == "Accepted"  # type: ignore[union-attr]

    pending = await start_server(unknown_chargers="pending")
    cp2 = await connect_cp(pending, "WAITING")
    assert (await cp2.boot())["status"] == "Pending"
    # Known chargers connect under "reject" too.
    cp3 = await connect_cp(rejecting, "NEWCOMER")
    assert (await cp3.boot())["status"] == "Accepted"


async def test_basic_auth(db: Database, start_server: StartServer, connect_cp: Connect):
    await ChargerRepo(db).add("SECURE1", password="s3cret-pass")
    srv = await start_server(unknown_chargers="reject")
    for password in (None, "wrong"):
        headers = {}
        if password:
            import base64

            headers["Authorization"] = (
                "Basic " + base64.b64encode(b"SECURE1:" + password.encode()).decode()
            )
        status, body, exc = await refused(
            url(srv, "/ocpp/SECURE1"), subprotocols=["ocpp1.6"], additional_headers=headers
        )
        assert status == 401 and "Basic" in body
        assert exc.response.headers["WWW-Authenticate"].startswith("Basic")
    # Right password, but the user must be the charge point id.
    with pytest.raises(InvalidStatus):
        import base64

        await connect(
            url(srv, "/ocpp/SECURE1"),
            subprotocols=["ocpp1.6"],
            additional_headers={
                "Authorization": "Basic " + base64.b64encode(b"OTHER:s3cret-pass").decode()
            },
        )
    cp = await connect_cp(srv, "SECURE1", password="s3cret-pass")
    assert (await cp.boot())["status"] == "Accepted"
    cp.ws.close_timeout = 1
    await cp.ws.close()
    cp = await connect_cp(srv, "SECURE1", password="s3cret-pass")  # memoised check path
    assert (await cp.ok("Heartbeat", {}))["currentTime"]
    row = await db.fetchone("SELECT password_hash FROM chargers WHERE id = 'SECURE1'")
    assert row[0].startswith("scrypt$") and "s3cret" not in row[0]


async def test_second_connection_replaces_first(start_server: StartServer, connect_cp: Connect):
    srv = await start_server()
    first = await connect_cp(srv, "CP1")
    await first.boot()
    second = await connect_cp(srv, "CP1")
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(first.ws.recv(), 5)
    assert first.ws.close_reason and "replaced" in first.ws.close_reason
    assert (await second.boot())["status"] == "Accepted"
    assert srv.gateway.is_connected("CP1")
    assert list(srv.gateway.connections()) == ["CP1"]
    info = srv.gateway.connections()["CP1"]
    assert info.remote_address.split(":")[1] == str(second.ws.local_address[1])
    assert info.subprotocol == "ocpp1.6"


async def test_disconnect_is_recorded(db: Database, start_server: StartServer, connect_cp: Connect):
    srv = await start_server()
    cp = await connect_cp(srv, "CP1")
    await cp.boot()
    await cp.ws.close()
    await wait_until(lambda: not srv.gateway.is_connected("CP1"), what="the disconnect")

    async def disconnect_recorded() -> bool:
        row = await db.fetchone("SELECT last_disconnected_at FROM chargers WHERE id='CP1'")
        return row[0] is not None

    await wait_until(disconnect_recorded, what="last_disconnected_at")


@pytest.fixture
def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1 made with the openssl CLI."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl CLI")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


async def test_tls_security_profile_2(
    self_signed: tuple[Path, Path], start_server: StartServer, connect_cp: Connect
):
    cert, key = self_signed
    srv = await start_server(tls_cert=str(cert), tls_key=str(key))
    client_ctx = ssl.create_default_context(cafile=str(cert))
    cp = await connect_cp(srv, "TLS1", scheme="wss", ssl=client_ctx)
    assert (await cp.boot())["status"] == "Accepted"
    # A plain ws:// client cannot talk to the TLS port.
    with pytest.raises(Exception):  # noqa: B017 - any handshake failure will do
        await connect(url(srv, "/ocpp/TLS1"), subprotocols=["ocpp1.6"], open_timeout=2)
