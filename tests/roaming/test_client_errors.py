"""Every error kind of the OCPI client, raised by real answers of a real server.

Both HTTP stacks are exercised (``lean``: the HTTP/1.1 pool that serves authorize;
otherwise aiohttp): the kind of an error must not depend on the stack that saw it.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp import web

from roaming import errors
from roaming.client import OcpiClient, Peer
from roaming.errors import ErrorKind, RoamingError
from roaming.transport import Call, failed
from tests.support.servers import serving
from tests.support.waiting import scaled

TARGET = Peer("NL-EMS", "secret")
STACKS = [pytest.param(True, id="lean"), pytest.param(False, id="aiohttp")]


def envelope(code: int, message: str = "") -> dict[str, object]:
    return {"status_code": code, "status_message": message, "timestamp": "2024-01-01T00:00:00Z"}


@dataclass
class Server:
    base: str
    release: asyncio.Event


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    release = asyncio.Event()

    async def handle(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name == "ok":
            return web.json_response({**envelope(1000), "data": {"x": 1}})
        if name == "hang":
            await release.wait()
            return web.json_response(envelope(1000))
        answers = {
            "s503": web.json_response(envelope(3000, "busy"), status=503),
            "hub4002": web.json_response(envelope(4002, "receiver timed out")),
            "hub4003": web.json_response(envelope(4003, "no connection")),
            "h401": web.json_response(envelope(2000, "who are you"), status=401),
            "h404": web.Response(status=404, text="nope"),
            "ocpi2002": web.json_response(envelope(2002, "not enough information")),
            "ocpi3001": web.json_response(envelope(3001)),
            "hub4001": web.json_response(envelope(4001, "unknown receiver")),
            "text": web.Response(text="<html>hello</html>"),
            "noenvelope": web.json_response({"data": []}),
        }
        return answers[name]

    app = web.Application()
    app.router.add_route("*", "/{name}", handle)
    async with serving(app) as port:
        try:
            yield Server(f"http://127.0.0.1:{port}", release)
        finally:
            release.set()


@pytest.fixture
async def client() -> AsyncIterator[OcpiClient]:
    c = OcpiClient(timeout_s=scaled(5.0), allow_private_urls=True)
    try:
        yield c
    finally:
        await c.close()


async def post(
    client: OcpiClient, url: str, lean: bool, timeout_s: float | None = None
) -> RoamingError:
    with pytest.raises(RoamingError) as caught:
        await client.request("POST", TARGET, url, json={"a": 1}, lean=lean, timeout_s=timeout_s)
    return caught.value


@pytest.mark.parametrize("lean", STACKS)
async def test_success_raises_nothing(client: OcpiClient, server: Server, lean: bool) -> None:
    resp = await client.request("POST", TARGET, server.base + "/ok", json={}, lean=lean)
    assert (resp.http_status, resp.status_code, resp.data) == (200, 1000, {"x": 1})
    # The lean stack lower-cases header names: proof of which stack served the call.
    assert ("content-type" in resp.headers) is lean


@pytest.mark.parametrize("lean", STACKS)
@pytest.mark.parametrize(
    ("name", "cls", "kind", "http_status", "status_code"),
    [
        ("s503", errors.PartnerUnreachable, ErrorKind.SERVER_ERROR, None, None),
        ("hub4002", errors.PartnerUnreachable, ErrorKind.SERVER_ERROR, None, None),
        ("hub4003", errors.PartnerUnreachable, ErrorKind.SERVER_ERROR, None, None),
        ("h401", errors.PartnerRejected, ErrorKind.REFUSED, 401, 2000),
        ("h404", errors.PartnerRejected, ErrorKind.REFUSED, 404, None),
        ("ocpi2002", errors.PartnerRejected, ErrorKind.REFUSED, 200, 2002),
        ("ocpi3001", errors.PartnerRejected, ErrorKind.REFUSED, 200, 3001),
        ("hub4001", errors.PartnerRejected, ErrorKind.REFUSED, 200, 4001),
        ("text", errors.InvalidResponse, ErrorKind.MALFORMED, None, None),
        ("noenvelope", errors.InvalidResponse, ErrorKind.MALFORMED, None, None),
    ],
)
async def test_answers_give_their_kind(
    client: OcpiClient,
    server: Server,
    lean: bool,
    name: str,
    cls: type[RoamingError],
    kind: ErrorKind,
    http_status: int | None,
    status_code: int | None,
) -> None:
    url = f"{server.base}/{name}"
    exc = await post(client, url, lean)
    assert type(exc) is cls
    assert exc.kind is kind
    assert (exc.partner, exc.url) == ("NL-EMS", url)
    if isinstance(exc, errors.PartnerRejected):
        assert (exc.http_status, exc.status_code) == (http_status, status_code)


@pytest.mark.parametrize("lean", STACKS)
async def test_no_answer_in_time_is_a_timeout(
    client: OcpiClient, server: Server, lean: bool
) -> None:
    exc = await post(client, server.base + "/hang", lean, timeout_s=0.2)
    assert type(exc) is errors.PartnerUnreachable
    assert exc.kind is ErrorKind.TIMEOUT


@pytest.mark.parametrize("lean", STACKS)
async def test_a_refused_connection_is_a_connection_error(client: OcpiClient, lean: bool) -> None:
    with socket.socket() as s:  # a port nobody listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exc = await post(client, f"http://127.0.0.1:{port}/x", lean)
    assert type(exc) is errors.PartnerUnreachable
    assert exc.kind is ErrorKind.CONNECTION


@pytest.mark.parametrize("lean", STACKS)
async def test_no_token_is_not_callable_before_any_request(client: OcpiClient, lean: bool) -> None:
    with pytest.raises(errors.PartnerNotCallable) as caught:
        await client.request("POST", Peer("NL-X", None), "http://127.0.0.1:9/x", lean=lean)
    exc = caught.value
    assert exc.kind is ErrorKind.NO_ENDPOINT
    assert isinstance(exc, errors.PartnerRejected) and exc.http_status == 0


def test_a_kernel_timeout_below_http_is_a_timeout() -> None:
    call = Call("POST", "NL-EMS", "http://x/", {})
    timed_out = OSError(errno.ETIMEDOUT, "Connection timed out")
    assert failed(call, timed_out, timed_out.errno).kind is ErrorKind.TIMEOUT
    refused = OSError(errno.ECONNREFUSED, "Connection refused")
    assert failed(call, refused, refused.errno).kind is ErrorKind.CONNECTION
    assert failed(call, ValueError("x"), None).kind is ErrorKind.CONNECTION
