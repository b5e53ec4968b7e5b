"""Property-based fuzzing of the OCPI endpoints of a real running CSMS.

Every fuzzed request (tokens PUT/PATCH, credentials, commands, Sender lists, raw bytes;
see :mod:`tests.support.ocpi_fuzz`) gets an answer that is not a 5xx and is an OCPI
envelope. The example count is bounded for ``make test``; ``OCPI_FUZZ_EXAMPLES`` raises
it (``OCPI_FUZZ_EXAMPLES=2000 pytest tests/e2e/roaming/test_ocpi_fuzz.py``), and the
bench ``python -m tests.bench.fuzz_ocpi`` sends 10,000.
"""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings

from tests.e2e.roaming.conftest import World
from tests.support.ocpi_fuzz import FuzzRequest, ocpi_requests, problem, send

EXAMPLES = int(os.environ.get("OCPI_FUZZ_EXAMPLES", "150"))


@pytest.fixture
async def fuzz_target(
    make_world: Callable[..., Any],
) -> AsyncIterator[tuple[World, aiohttp.ClientSession, str]]:
    async with make_world() as w, aiohttp.ClientSession() as http:
        token = w.emsp.peer.token_out
        assert token is not None
        yield w, http, "Token " + base64.b64encode(token.encode()).decode()
        await w.outbox_idle()  # no push cut off mid-exchange when the eMSP stops


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(req=ocpi_requests())
async def test_every_fuzzed_ocpi_request_gets_an_envelope_and_no_5xx(
    fuzz_target: tuple[World, aiohttp.ClientSession, str], req: FuzzRequest
) -> None:
    w, http, auth = fuzz_target
    status, payload = await send(http, f"http://127.0.0.1:{w.app.ocpi_port}", auth, req)
    assert problem(status, payload) is None, (req, status, payload[:300])


async def test_an_overlong_request_line_is_a_client_error(
    fuzz_target: tuple[World, aiohttp.ClientSession, str],
) -> None:
    """Beyond the HTTP parser's line limit the refusal is HTTP's own 400 (no OCPI code
    runs); never a 5xx, and the server goes on serving."""
    w, http, auth = fuzz_target
    base = f"http://127.0.0.1:{w.app.ocpi_port}"
    async with http.get(f"{base}/ocpi/cpo/2.2.1/cdrs?limit={'9' * 9000}") as resp:
        assert resp.status == 400
    status, payload = await send(http, base, auth, FuzzRequest("GET", "/ocpi/versions"))
    assert status == 200 and problem(status, payload) is None
