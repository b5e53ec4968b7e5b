"""Partner-supplied URLs are checked, on the resolved address, before any request.

Real servers on 127.0.0.1 count what reaches them: a refused URL must reach nothing.
``localhost`` is a host *name* resolving to loopback, so it exercises the check on the
resolved address (an IP literal is refused before resolution).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from roaming.client import OcpiClient, Peer
from roaming.errors import PartnerNotCallable, PartnerRejected
from roaming.partners import PartnerStatus
from roaming.urlcheck import UrlPolicy, address_refusal
from tests.roaming.conftest import start_cpo
from tests.roaming.test_credentials import emsp_credentials
from tests.support.servers import serving


class Counting:
    """A partner-like server answering OCPI envelopes and counting requests."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        self.hits.append(f"{request.method} {request.path}")
        if request.path == "/redirect":
            raise web.HTTPFound("http://169.254.169.254/latest/meta-data/")
        return web.json_response({"status_code": 1000, "timestamp": "2024-05-01T10:00:00Z"})


@pytest.fixture
async def partner_server() -> AsyncIterator[tuple[Counting, int]]:
    server = Counting()
    async with serving(server.app) as port:
        yield server, port


PEER = Peer("NL-EMS", "a-token")


@pytest.mark.parametrize("lean", [False, True])
async def test_a_name_resolving_to_loopback_is_refused_when_private_urls_are_off(
    partner_server: tuple[Counting, int], lean: bool
) -> None:
    server, port = partner_server
    client = OcpiClient(timeout_s=5.0, allow_private_urls=False)
    try:
        with pytest.raises(PartnerNotCallable, match=r"resolves to (127.0.0.1|::1) is a loopback"):
            await client.request("POST", PEER, f"http://localhost:{port}/x", json={}, lean=lean)
        with pytest.raises(PartnerNotCallable, match="loopback"):
            await client.request("POST", PEER, f"http://127.0.0.1:{port}/x", json={}, lean=lean)
    finally:
        await client.close()
    assert server.hits == []


@pytest.mark.parametrize("lean", [False, True])
async def test_with_private_urls_allowed_the_same_calls_go_through(
    partner_server: tuple[Counting, int], lean: bool
) -> None:
    server, port = partner_server
    client = OcpiClient(timeout_s=5.0, allow_private_urls=True)
    try:
        await client.request("POST", PEER, f"http://localhost:{port}/x", json={}, lean=lean)
        await client.request("POST", PEER, f"http://127.0.0.1:{port}/y", json={}, lean=lean)
    finally:
        await client.close()
    assert server.hits == ["POST /x", "POST /y"]


async def test_the_lean_path_checks_every_authority_not_only_the_first(
    partner_server: tuple[Counting, int],
) -> None:
    """The lean transport keeps the URL check's passes per scheme and authority: an
    authority that passed must not let a different one through, however alike, and a
    refusal is refused again, naming its own URL."""
    server, port = partner_server
    client = OcpiClient(timeout_s=5.0, allow_private_urls=True)
    try:
        for path in ("a", "b"):
            await client.request(
                "POST", PEER, f"http://127.0.0.1:{port}/{path}", json={}, lean=True
            )
        refused = [
            "http://169.254.169.254/one",
            "http://169.254.169.254/two",
            "http://169.254.169.254?x=/three",
            f"http://169.254.169.254:{port}/four",
            "https://169.254.169.254/five",
        ]
        for url in refused:
            with pytest.raises(PartnerNotCallable, match="refused partner") as caught:
                await client.request("POST", PEER, url, json={}, lean=True)
            assert url.rsplit("/", 1)[-1] in str(caught.value)
    finally:
        await client.close()
    assert server.hits == ["POST /a", "POST /b"]


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/x",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/x",
        "file:///etc/passwd",
        "ftp://example.com/x",
        "http:///nohost",
    ],
)
async def test_metadata_link_local_and_other_schemes_are_refused_even_when_private_is_allowed(
    url: str,
) -> None:
    client = OcpiClient(timeout_s=5.0, allow_private_urls=True)
    try:
        with pytest.raises(PartnerNotCallable, match="refused partner"):
            await client.request("GET", PEER, url)
    finally:
        await client.close()


def test_address_rule_table() -> None:
    cases: list[tuple[str, bool, bool]] = [
        # address, refused with private allowed, refused with private off
        ("169.254.169.254", True, True),
        ("169.254.0.1", True, True),
        ("fe80::abcd", True, True),
        ("fd00:ec2::254", True, True),
        ("::ffff:169.254.169.254", True, True),
        ("127.0.0.1", False, True),
        ("::1", False, True),
        ("10.1.2.3", False, True),
        ("192.168.0.1", False, True),
        ("172.16.5.4", False, True),
        ("100.64.0.1", False, True),
        ("fd12:3456::1", False, True),
        ("0.0.0.0", False, True),
        ("::ffff:10.0.0.1", False, True),
        ("93.184.216.34", False, False),
        ("2606:4700::1111", False, False),
    ]
    for address, refused_allowed, refused_off in cases:
        assert (address_refusal(address, allow_private=True) is not None) is refused_allowed, (
            address
        )
        assert (address_refusal(address, allow_private=False) is not None) is refused_off, address
    assert UrlPolicy(allow_private=False).addresses_refusal("h", ["93.184.216.34", "10.0.0.1"])


async def test_a_redirect_is_not_followed(partner_server: tuple[Counting, int]) -> None:
    server, port = partner_server
    client = OcpiClient(timeout_s=5.0, allow_private_urls=True)
    try:
        with pytest.raises(PartnerRejected) as err:
            await client.request("GET", PEER, f"http://127.0.0.1:{port}/redirect")
    finally:
        await client.close()
    assert err.value.http_status == 302
    assert server.hits == ["GET /redirect"]


async def test_credentials_naming_a_metadata_address_are_refused_without_a_request(
    tmp_path: Any,
) -> None:
    cpo = await start_cpo(tmp_path)
    try:
        token_a = await cpo.invite("NL", "EMS")
        body = emsp_credentials("http://169.254.169.254/latest/meta-data/ocpi/versions")
        status, env, _ = await cpo.call("POST", "/ocpi/2.2.1/credentials", token_a, body=body)
        assert status == 200 and env["status_code"] == 3001, env
        assert "169.254.169.254 is a link-local or cloud metadata address" in env["status_message"]
        assert (await cpo.partner()).status is PartnerStatus.INVITED
    finally:
        await cpo.close()
        await cpo.db.close()


async def test_credentials_naming_loopback_are_refused_when_private_urls_are_off(
    tmp_path: Any, partner_server: tuple[Counting, int]
) -> None:
    server, port = partner_server
    cpo = await start_cpo(tmp_path, allow_private_partner_urls=False)
    try:
        token_a = await cpo.invite("NL", "EMS")
        body = emsp_credentials(f"http://localhost:{port}/ocpi/versions")
        status, env, _ = await cpo.call("PUT", "/ocpi/2.2.1/credentials", token_a, body=body)
        assert status == 405  # PUT is for registered partners: the method is checked first
        status, env, _ = await cpo.call("POST", "/ocpi/2.2.1/credentials", token_a, body=body)
        assert status == 200 and env["status_code"] == 3001, env
        assert "loopback" in env["status_message"]
        assert (await cpo.partner()).status is PartnerStatus.INVITED
    finally:
        await cpo.close()
        await cpo.db.close()
    assert server.hits == []
