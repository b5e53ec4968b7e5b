"""Routing headers on our answers: every response of a functional module (locations,
sessions, cdrs, tariffs, tokens, commands), error envelopes included, carries the four
``OCPI-from-*`` / ``OCPI-to-*`` headers, swapped relative to the request; versions and
credentials answers carry none.

The real CSMS serves every module (the roaming world: CSMS + eMSP sandbox); the calls are
made with the credentials token the sandbox registered with, as a hub or the eMSP would.
"""

from __future__ import annotations

import base64
from typing import Any

import aiohttp

from roaming.cdrs import CDRS_PATH
from roaming.commands import COMMANDS_PATH
from roaming.locations import LOCATIONS_PATH
from roaming.sessions import SESSIONS_PATH
from roaming.settings import CREDENTIALS_PATH, DETAILS_PATH, TOKENS_PATH, VERSIONS_PATH
from roaming.tariffs import TARIFFS_PATH

ROUTING = ("OCPI-from-country-code", "OCPI-from-party-id", "OCPI-to-country-code",
           "OCPI-to-party-id")  # fmt: skip

# (method, path, body, expected OCPI status): successes and error envelopes of each module.
CALLS: list[tuple[str, str, Any, int]] = [
    ("GET", LOCATIONS_PATH, None, 1000),
    ("GET", LOCATIONS_PATH + "/LOC-1", None, 1000),
    ("GET", LOCATIONS_PATH + "/NOPE", None, 2003),
    ("GET", SESSIONS_PATH + "?date_from=2020-01-01T00:00:00Z", None, 1000),
    ("GET", SESSIONS_PATH, None, 2001),  # date_from is required
    ("GET", CDRS_PATH, None, 1000),
    ("GET", TARIFFS_PATH, None, 1000),
    ("GET", TARIFFS_PATH + "/AC-STD", None, 1000),
    ("GET", TOKENS_PATH + "/NL/EMS/NO-SUCH-UID", None, 2004),
    ("PUT", TOKENS_PATH + "/NL/EMS/BAD", {"uid": "OTHER"}, 2001),
    ("POST", COMMANDS_PATH + "/START_SESSION", {"location_id": "LOC-1"}, 2001),
    ("POST", COMMANDS_PATH + "/NO_SUCH_COMMAND", {}, 2001),
]


def auth(token: str) -> dict[str, str]:
    return {"Authorization": "Token " + base64.b64encode(token.encode()).decode()}


async def call(
    http: aiohttp.ClientSession, base: str, method: str, path: str, body: Any, headers: dict
) -> tuple[int, int, dict[str, str]]:
    async with http.request(method, base + path, json=body, headers=headers) as resp:
        doc = await resp.json(content_type=None)
        return resp.status, int(doc.get("status_code", 0)), dict(resp.headers)


def routing_of(headers: dict[str, str]) -> dict[str, str]:
    lower = {k.lower(): v for k, v in headers.items()}
    return {h: lower[h.lower()] for h in ROUTING if h.lower() in lower}


async def test_every_functional_answer_carries_the_routing_headers_swapped(make_world):
    async with make_world() as w:
        token = w.emsp.peer.token_out
        assert token
        base = f"http://127.0.0.1:{w.app.ocpi_port}"
        via_hub = {
            "OCPI-from-country-code": "BE",
            "OCPI-from-party-id": "XYZ",
            "OCPI-to-country-code": "NL",
            "OCPI-to-party-id": "CP2",
        }
        async with aiohttp.ClientSession() as http:
            for method, path, body, expected in CALLS:
                # Peer to peer (no routing headers): FROM us, TO the authenticated partner.
                _, code, headers = await call(http, base, method, path, body, auth(token))
                assert code == expected, (method, path, code)
                assert routing_of(headers) == {
                    "OCPI-from-country-code": "NL",
                    "OCPI-from-party-id": "CPO",
                    "OCPI-to-country-code": "NL",
                    "OCPI-to-party-id": "EMS",
                }, (method, path, headers)
                # Routed: the request's FROM and TO come back swapped.
                _, code, headers = await call(
                    http, base, method, path, body, {**auth(token), **via_hub}
                )
                assert code == expected, (method, path, code)
                assert routing_of(headers) == {
                    "OCPI-from-country-code": "NL",
                    "OCPI-from-party-id": "CP2",
                    "OCPI-to-country-code": "BE",
                    "OCPI-to-party-id": "XYZ",
                }, (method, path, headers)

            # Refused before we know the caller: FROM us; TO only when the request said.
            status, _, headers = await call(http, base, "GET", CDRS_PATH, None, {})
            assert status == 401
            assert routing_of(headers) == {
                "OCPI-from-country-code": "NL",
                "OCPI-from-party-id": "CPO",
            }
            status, _, headers = await call(
                http, base, "GET", CDRS_PATH, None, {"Authorization": "Token bm9wZQ==", **via_hub}
            )
            assert status == 401
            assert routing_of(headers) == {
                "OCPI-from-country-code": "NL",
                "OCPI-from-party-id": "CP2",
                "OCPI-to-country-code": "BE",
                "OCPI-to-party-id": "XYZ",
            }

            # Configuration modules carry none (the spec forbids them there).
            for path in (VERSIONS_PATH, DETAILS_PATH, CREDENTIALS_PATH):
                status, code, headers = await call(http, base, "GET", path, None, auth(token))
                assert code == 1000, (path, code)
                assert routing_of(headers) == {}, (path, headers)
