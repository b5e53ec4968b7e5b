"""Hostile and odd OCPI requests against the real CSMS: always an OCPI envelope, never a 500.

Raw HTTP/1.1 over one socket where the connection itself is under test (a request that
once broke the parser dropped the kept-alive connection).
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import zlib
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from tests.e2e.roaming.conftest import World

TOKENS = "/ocpi/cpo/2.2.1/tokens"
SENDER_LISTS = [
    "/ocpi/cpo/2.2.1/locations",
    "/ocpi/cpo/2.2.1/tariffs",
    "/ocpi/cpo/2.2.1/sessions?date_from=2020-01-01T00:00:00Z",
    "/ocpi/cpo/2.2.1/cdrs",
]


def token_body(uid: str, /, **over: Any) -> dict[str, Any]:
    body = {
        "country_code": "NL",
        "party_id": "EMS",
        "uid": uid,
        "type": "RFID",
        "contract_id": "NL-EMS-C00012345-7",
        "issuer": "Example Mobility BV",
        "valid": True,
        "whitelist": "ALLOWED",
        "last_updated": "2024-05-01T09:30:00Z",
    }
    body.update(over)
    return body


def auth_of(w: World) -> str:
    token = w.emsp.peer.token_out
    assert token is not None
    return "Token " + base64.b64encode(token.encode()).decode()


class RawHttp:
    """One kept-alive HTTP/1.1 connection; every request and answer in full."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> RawHttp:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def send(
        self, method: str, path: str, headers: dict[str, str], body: bytes = b""
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        head += f"Content-Length: {len(body)}\r\n\r\n"
        self.writer.write(head.encode() + body)
        await self.writer.drain()
        async with asyncio.timeout(10):
            status_line = await self.reader.readuntil(b"\r\n")
            got: dict[str, str] = {}
            while (line := await self.reader.readuntil(b"\r\n")) != b"\r\n":
                k, _, v = line.decode().partition(":")
                got[k.strip().lower()] = v.strip()
            payload = await self.reader.readexactly(int(got["content-length"]))
        return int(status_line.split()[1]), got, orjson.loads(payload)

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


BAD_PAGE_QUERIES = [
    ("offset=18446744073709551616", "offset"),
    ("offset=9223372036854775808", "offset"),
    ("offset=-1", "offset"),
    ("offset=abc", "offset"),
    ("offset=%EF%BC%93", "offset"),  # a full-width digit: int() would take it
    ("offset=+3", "offset"),
    ("limit=99999999999999999999999999", "limit"),
    ("limit=-5", "limit"),
    ("limit=1e3", "limit"),
    ("offset=" + "9" * 5000, "offset"),
]


async def test_out_of_range_page_parameters_are_2001_naming_the_parameter(
    make_world: Callable[..., Any],
) -> None:
    async with make_world() as w:
        conn = await RawHttp.open(w.app.ocpi_port)
        auth = {"Authorization": auth_of(w)}
        try:
            for path in SENDER_LISTS:
                sep = "&" if "?" in path else "?"
                for query, named in BAD_PAGE_QUERIES:
                    status, _, env = await conn.send("GET", path + sep + query, auth)
                    assert status == 200, (path, query, env)
                    assert env["status_code"] == 2001, (path, query, env)
                    assert env["status_message"].startswith(named + ":"), (path, query, env)
                # same socket still serves; the largest offset SQLite holds is an empty page
                status, _, env = await conn.send(
                    "GET", path + sep + "offset=9223372036854775807", auth
                )
                assert (status, env["status_code"], env["data"]) == (200, 1000, []), path
        finally:
            await conn.close()
            # The registration's Location/Tariff pushes are done before the eMSP stops,
            # so no push is cut off mid-exchange at the end of the test.
            await w.outbox_idle()


async def test_plain_body_claiming_gzip_is_refused_and_the_connection_kept(
    make_world: Callable[..., Any],
) -> None:
    async with make_world() as w:
        conn = await RawHttp.open(w.app.ocpi_port)
        auth = {"Authorization": auth_of(w), "Content-Type": "application/json"}
        try:
            plain = orjson.dumps(token_body("GZ1"))
            status, _, env = await conn.send(
                "PUT", f"{TOKENS}/NL/EMS/GZ1", {**auth, "Content-Encoding": "gzip"}, plain
            )
            assert status == 400 and env["status_code"] == 2001, env
            assert "gzip" in env["status_message"]
            # same socket: a real gzip body is decoded and stored
            status, _, env = await conn.send(
                "PUT",
                f"{TOKENS}/NL/EMS/GZ1",
                {**auth, "Content-Encoding": "gzip"},
                gzip.compress(plain),
            )
            assert (status, env["status_code"]) == (201, 1000), env
            deflated = orjson.dumps(token_body("GZ2"))
            for i, coded in enumerate((zlib.compress(deflated), zlib.compress(deflated)[2:-4])):
                status, _, env = await conn.send(
                    "PUT", f"{TOKENS}/NL/EMS/GZ2", {**auth, "Content-Encoding": "deflate"}, coded
                )
                assert env["status_code"] == 1000 and status == (201 if i == 0 else 200), env
            status, _, env = await conn.send(
                "PUT", f"{TOKENS}/NL/EMS/GZ3", {**auth, "Content-Encoding": "br"}, plain
            )
            assert status == 415 and env["status_code"] == 2001, env
            assert "'br'" in env["status_message"]
            status, _, env = await conn.send(
                "GET", f"{TOKENS}/NL/EMS/GZ1?type=RFID", {"Authorization": auth_of(w)}
            )
            assert status == 200 and env["data"]["uid"] == "GZ1"
        finally:
            await conn.close()
            # The registration's Location/Tariff pushes are done before the eMSP stops,
            # so no push is cut off mid-exchange at the end of the test.
            await w.outbox_idle()
        tokens = runtime_of_tokens(w)
        assert [t.uid for t in await tokens.get_token("GZ3", None)] == []
        assert [t.uid for t in await tokens.get_token("GZ2", None)] == ["GZ2"]


def runtime_of_tokens(w: World) -> Any:
    assert w.app.roaming is not None
    return w.app.roaming.runtime.tokens


async def test_a_gzip_bomb_is_refused_not_inflated(make_world: Callable[..., Any]) -> None:
    async with make_world() as w:
        conn = await RawHttp.open(w.app.ocpi_port)
        try:
            bomb = gzip.compress(b" " * (64 * 1024 * 1024))  # 64 MB of spaces, ~64 kB coded
            status, _, env = await conn.send(
                "PUT",
                f"{TOKENS}/NL/EMS/BOMB",
                {"Authorization": auth_of(w), "Content-Encoding": "gzip"},
                bomb,
            )
            assert status == 413 and env["status_code"] == 2001, env
        finally:
            await conn.close()
            # The registration's Location/Tariff pushes are done before the eMSP stops,
            # so no push is cut off mid-exchange at the end of the test.
            await w.outbox_idle()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("contract_id", ""),
        ("uid", ""),
        ("issuer", ""),
        ("issuer", "   "),
        ("contract_id", " "),
    ],
)
async def test_required_token_field_present_but_empty_is_2001_and_not_stored(
    make_world: Callable[..., Any], field: str, value: str
) -> None:
    async with make_world() as w:
        conn = await RawHttp.open(w.app.ocpi_port)
        try:
            body = orjson.dumps(token_body("EMPTY1", **{field: value}))
            status, _, env = await conn.send(
                "PUT",
                f"{TOKENS}/NL/EMS/EMPTY1",
                {"Authorization": auth_of(w), "Content-Type": "application/json"},
                body,
            )
        finally:
            await conn.close()
            # The registration's Location/Tariff pushes are done before the eMSP stops,
            # so no push is cut off mid-exchange at the end of the test.
            await w.outbox_idle()
        assert status == 200 and env["status_code"] == 2001, env
        assert env["status_message"].startswith(f"{field}:"), env
        assert await runtime_of_tokens(w).get_token("EMPTY1", None) == []


@pytest.mark.parametrize(
    ("command", "body", "field"),
    [
        ("STOP_SESSION", {"session_id": ""}, "session_id"),
        ("CANCEL_RESERVATION", {"reservation_id": " "}, "reservation_id"),
        (
            "UNLOCK_CONNECTOR",
            {"location_id": "LOC-1", "evse_uid": "", "connector_id": "1"},
            "evse_uid",
        ),
    ],
)
async def test_required_command_field_present_but_empty_is_2001(
    make_world: Callable[..., Any], command: str, body: dict[str, Any], field: str
) -> None:
    async with make_world() as w:
        conn = await RawHttp.open(w.app.ocpi_port)
        try:
            full = {"response_url": "http://127.0.0.1:9/result", **body}
            status, _, env = await conn.send(
                "POST",
                f"/ocpi/cpo/2.2.1/commands/{command}",
                {"Authorization": auth_of(w), "Content-Type": "application/json"},
                orjson.dumps(full),
            )
        finally:
            await conn.close()
            # The registration's Location/Tariff pushes are done before the eMSP stops,
            # so no push is cut off mid-exchange at the end of the test.
            await w.outbox_idle()
        assert status == 200 and env["status_code"] == 2001, env
        assert env["status_message"].startswith(f"{field}:"), env
