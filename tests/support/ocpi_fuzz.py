"""Fuzzed OCPI requests (hypothesis strategies) and the one property every answer has.

The property: whatever arrives at an OCPI endpoint, the answer is not a 5xx and is an
OCPI envelope (a JSON object with an integer ``status_code`` and a ``timestamp``).
Used by the property-based tests (tests/e2e/roaming/test_ocpi_fuzz.py) and by the bench
(``python -m tests.bench.fuzz_ocpi``) against a real running CSMS.

Request lines are kept under 4,000 characters: a longer one (over aiohttp's 8,190 byte
limit) is refused by the HTTP parser with a plain 400 before any OCPI code runs (see
docs/ocpi.md); ``test_an_overlong_request_line_is_a_client_error`` covers that case.

Requests are built around valid ones (a token, a command, a page query) with fields
replaced by hostile values, so they get past the first check and reach the deeper
ones, plus entirely random JSON and raw bytes. Nothing here resolves host names: URLs
in bodies use IP literals (a fuzzed credentials URL never makes the server wait on DNS).
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
import yarl
from hypothesis import strategies as st

TOKENS = "/ocpi/cpo/2.2.1/tokens"
COMMANDS = "/ocpi/cpo/2.2.1/commands"
LISTS = [
    "/ocpi/cpo/2.2.1/locations",
    "/ocpi/cpo/2.2.1/tariffs",
    "/ocpi/cpo/2.2.1/sessions",
    "/ocpi/cpo/2.2.1/cdrs",
    "/ocpi/cpo/2.2.1/locations/LOC-1",
    "/ocpi/cpo/2.2.1/locations/LOC-1/LOC-1-CP1-1",
]


MAX_TARGET = 4000


@dataclass(frozen=True)
class FuzzRequest:
    method: str
    path: str  # already percent-encoded
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None

    def __post_init__(self) -> None:
        if len(self.path) > MAX_TARGET:
            cut = self.path[:MAX_TARGET]
            if "%" in cut[-2:]:  # never end inside a %XX escape
                cut = cut[: cut.rindex("%")]
            object.__setattr__(self, "path", cut)


# ------------------------------------------------------------------ values

_edge_ints = st.sampled_from(
    [0, -1, 1, 2**31, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**30, 36, 37]
)
_edge_texts = st.sampled_from(
    [
        "",
        " ",
        "\u0000",
        "\n",
        "x" * 37,
        "x" * 5000,
        "Ω≈ç√",
        "\ud7ff",
        "NaN",
        "9999-12-31T23:59:59Z",
        "0001-01-01T00:00:00Z",
        "2024-02-30T10:00:00Z",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/x",
        "file:///etc/passwd",
    ]
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    _edge_ints,
    st.floats(allow_nan=False),
    st.text(max_size=60),
    _edge_texts,
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=12), children, max_size=4),
    ),
    max_leaves=12,
)


def _token(uid: str = "FUZZ0001") -> dict[str, Any]:
    return {
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


def _command_body(command: str) -> dict[str, Any]:
    url = "http://127.0.0.1:9/result"
    return {
        "START_SESSION": {"response_url": url, "token": _token(), "location_id": "LOC-1"},
        "STOP_SESSION": {"response_url": url, "session_id": "nope"},
        "RESERVE_NOW": {
            "response_url": url,
            "token": _token(),
            "expiry_date": "2099-01-01T00:00:00Z",
            "reservation_id": "r1",
            "location_id": "LOC-1",
            "evse_uid": "NOPE",
        },
        "CANCEL_RESERVATION": {"response_url": url, "reservation_id": "r1"},
        "UNLOCK_CONNECTOR": {
            "response_url": url,
            "location_id": "LOC-1",
            "evse_uid": "NOPE",
            "connector_id": "1",
        },
    }.get(command, {"response_url": url})


@st.composite
def _mutated(draw: st.DrawFn, base: dict[str, Any]) -> Any:
    """``base`` with some fields replaced, removed or added, or any JSON instead."""
    if draw(st.integers(0, 9)) == 0:
        return draw(json_values)
    out = dict(base)
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from([*base, "extra"]))
        action = draw(st.integers(0, 2))
        if action == 0:
            out.pop(key, None)
        else:
            out[key] = draw(json_values)
    if "token" in out and isinstance(out["token"], dict) and draw(st.booleans()):
        out["token"] = draw(_mutated(out["token"]))
    return out


_segment = st.one_of(st.text(max_size=40), _edge_texts, st.just("FUZZ0001"))


def _seg(text: str) -> str:
    return quote(text.encode("utf-8", "surrogatepass"), safe="") or "%20"


@st.composite
def _headers(draw: st.DrawFn, has_body: bool) -> dict[str, str]:
    h: dict[str, str] = {}
    if has_body:
        h["Content-Type"] = draw(
            st.sampled_from(["application/json", "text/plain", "application/x-www-form", ""])
        )
    if draw(st.integers(0, 4)) == 0:
        h["Content-Encoding"] = draw(
            st.sampled_from(["gzip", "deflate", "br", "zstd", "identity", "gzip, gzip", "x"])
        )
    if draw(st.integers(0, 5)) == 0:
        h["X-Request-ID"] = draw(
            st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=80)
        )
    return h


def _encode(body: Any, headers: dict[str, str], gzip_it: bool) -> bytes:
    raw = body if isinstance(body, bytes) else orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)
    if gzip_it and headers.get("Content-Encoding") == "gzip":
        return gzip.compress(raw)
    return raw


def _dumpable(value: Any) -> Any:
    """orjson refuses integers beyond 64 bits; send those as their decimal text in JSON."""
    try:
        orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
        return value
    except (TypeError, orjson.JSONEncodeError):
        return _raw_json(value)


def _raw_json(value: Any) -> bytes:
    import json

    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


@st.composite
def ocpi_requests(draw: st.DrawFn) -> FuzzRequest:
    """One fuzzed request to the OCPI endpoints a registered eMSP may call."""
    kind = draw(
        st.sampled_from(["token_put", "token_patch", "command", "list", "credentials", "raw"])
    )
    if kind == "list":
        path = draw(st.sampled_from(LISTS))
        params = draw(
            st.dictionaries(
                st.sampled_from(["offset", "limit", "date_from", "date_to", "type", "x"]),
                st.one_of(st.text(max_size=30), _edge_texts, _edge_ints.map(str)),
                max_size=4,
            )
        )
        query = "&".join(f"{_seg(k)}={_seg(v)}" for k, v in params.items())
        return FuzzRequest("GET", path + ("?" + query if query else ""), draw(_headers(False)))
    if kind in ("token_put", "token_patch"):
        uid = draw(_segment)
        body = draw(_mutated(_token(uid if draw(st.booleans()) else "FUZZ0001")))
        if kind == "token_patch" and isinstance(body, dict) and draw(st.booleans()):
            body = {k: v for k, v in body.items() if draw(st.booleans())}
        ttype = draw(st.one_of(st.sampled_from(["RFID", "APP_USER", "OTHER"]), st.text(max_size=8)))
        path = f"{TOKENS}/{_seg(draw(st.sampled_from(['NL', 'nl', 'DE', ''])) or 'NL')}"
        path += f"/{_seg(draw(st.sampled_from(['EMS', 'ems', 'XXX'])))}/{_seg(uid)}"
        path += f"?type={_seg(ttype)}" if draw(st.booleans()) else ""
        headers = draw(_headers(True))
        method = "PUT" if kind == "token_put" else "PATCH"
        return FuzzRequest(
            method, path, headers, _encode(_dumpable(body), headers, draw(st.booleans()))
        )
    if kind == "command":
        command = draw(
            st.one_of(
                st.sampled_from(
                    ["START_SESSION", "STOP_SESSION", "RESERVE_NOW", "CANCEL_RESERVATION",
                     "UNLOCK_CONNECTOR"]
                ),
                st.text(max_size=20),
            )
        )  # fmt: skip
        body = draw(_mutated(_command_body(command)))
        headers = draw(_headers(True))
        return FuzzRequest(
            "POST",
            f"{COMMANDS}/{_seg(command)}",
            headers,
            _encode(_dumpable(body), headers, draw(st.booleans())),
        )
    if kind == "credentials":
        base = {
            "token": "fuzz-token",
            "url": "http://169.254.169.254/ocpi/versions",
            "roles": [
                {
                    "role": "EMSP",
                    "party_id": "EMS",
                    "country_code": "NL",
                    "business_details": {"name": "x"},
                }
            ],
        }
        body = draw(_mutated(base))
        if isinstance(body, dict) and isinstance(body.get("url"), str):
            body["url"] = draw(
                st.sampled_from(
                    [
                        "http://169.254.169.254/v",
                        "http://[fe80::1]/v",
                        "ftp://1.2.3.4/v",
                        body["url"],
                    ]
                )
            )  # never a name to resolve, never a usable partner
            if not body["url"].startswith(("http://169.254", "http://[fe80", "ftp:")):
                body["url"] = "http://169.254.169.254/v"
        headers = draw(_headers(True))
        method = draw(st.sampled_from(["POST", "PUT", "GET"]))
        data = None if method == "GET" else _encode(_dumpable(body), headers, draw(st.booleans()))
        return FuzzRequest(method, "/ocpi/2.2.1/credentials", headers, data)
    # raw bytes to any endpoint
    path = draw(st.sampled_from([*LISTS, f"{TOKENS}/NL/EMS/FUZZ0001", f"{COMMANDS}/START_SESSION"]))
    headers = draw(_headers(True))
    return FuzzRequest(
        draw(st.sampled_from(["PUT", "PATCH", "POST", "DELETE", "GET"])),
        path,
        headers,
        draw(st.binary(max_size=200)),
    )


# ------------------------------------------------------------------ the property


def problem(status: int, payload: bytes) -> str | None:
    """What is wrong with one answer (None when it has the property)."""
    if status >= 500:
        return f"HTTP {status}: {payload[:200]!r}"
    try:
        env = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return f"HTTP {status}, not JSON: {payload[:200]!r}"
    if not isinstance(env, dict) or type(env.get("status_code")) is not int:
        return f"HTTP {status}, not an OCPI envelope: {payload[:200]!r}"
    if "timestamp" not in env:
        return f"HTTP {status}, envelope without timestamp: {payload[:200]!r}"
    return None


async def send(
    http: aiohttp.ClientSession, base: str, auth: str, req: FuzzRequest
) -> tuple[int, bytes]:
    """Send ``req`` as is (no client-side encoding or JSON); returns (status, body)."""
    headers = {"Authorization": auth, **req.headers}
    async with http.request(
        req.method,
        yarl.URL(base + req.path, encoded=True),
        data=req.body,
        headers=headers,
        skip_auto_headers=("Content-Type",),
        allow_redirects=False,
    ) as resp:
        return resp.status, await resp.read()
