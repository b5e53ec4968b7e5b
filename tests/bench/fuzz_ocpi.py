"""OCPI fuzzing at volume: 10,000 fuzzed requests against a real CSMS, counted.

The requests are the property-based tests' (:mod:`tests.support.ocpi_fuzz`: tokens
PUT/PATCH, credentials, commands, Sender lists, raw bytes, hostile encodings), drawn by
hypothesis up front, then sent by 8 concurrent clients to a CSMS with OCPI enabled and a
registered eMSP sandbox, all in this process. Reported: answers by HTTP status class,
5xx count, answers that are not OCPI envelopes, dropped connections, error-level log
events of the server, and whether the server still answers afterwards.

Target: 0 HTTP 5xx, 0 non-envelopes, 0 dropped connections, 0 crashes.
Run: ``python -m tests.bench fuzz_ocpi`` (env ``FUZZ_OCPI_REQUESTS`` to change the count).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import os
import tempfile
import time
from pathlib import Path

import aiohttp
from hypothesis import HealthCheck, Phase, given, settings
from structlog.testing import capture_logs

from tests.e2e.roaming.conftest import world
from tests.support.ocpi_fuzz import FuzzRequest, ocpi_requests, problem, send

CLIENTS = 8


def draw_requests(n: int) -> list[FuzzRequest]:
    """``n`` fuzzed requests from the same strategy the property tests use."""
    out: list[FuzzRequest] = []

    @settings(
        max_examples=n,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(req=ocpi_requests())
    def collect(req: FuzzRequest) -> None:
        out.append(req)

    while len(out) < n:  # hypothesis may stop a little short of max_examples
        collect()
    return out[:n]


async def run(n: int) -> dict[str, object]:
    t0 = time.perf_counter()
    requests = draw_requests(n)
    drawn_s = time.perf_counter() - t0
    statuses: collections.Counter[int] = collections.Counter()
    problems: list[str] = []
    dropped = 0
    with tempfile.TemporaryDirectory() as d, capture_logs() as logs:
        async with world(Path(d)) as w, aiohttp.ClientSession() as http:
            token = w.emsp.peer.token_out
            assert token is not None
            auth = "Token " + base64.b64encode(token.encode()).decode()
            base = f"http://127.0.0.1:{w.app.ocpi_port}"
            queue = iter(requests)

            async def client() -> None:
                nonlocal dropped
                for req in queue:
                    try:
                        status, payload = await send(http, base, auth, req)
                    except aiohttp.ClientError as exc:
                        dropped += 1
                        problems.append(f"{req.method} {req.path[:80]}: {exc!r}")
                        continue
                    statuses[status] += 1
                    issue = problem(status, payload)
                    if issue is not None:
                        problems.append(f"{req.method} {req.path[:80]}: {issue}")

            t1 = time.perf_counter()
            await asyncio.gather(*(client() for _ in range(CLIENTS)))
            sent_s = time.perf_counter() - t1
            async with http.get(base + "/ocpi/versions", headers={"Authorization": auth}) as r:
                alive = r.status == 200
    errors = [e for e in logs if e.get("log_level") in ("error", "critical")]
    return {
        "requests": n,
        "distinct": len({(r.method, r.path, r.body) for r in requests}),
        "by_status": dict(sorted(statuses.items())),
        "http_5xx": sum(c for s, c in statuses.items() if s >= 500),
        "not_envelope_or_5xx": len(problems) - dropped,
        "dropped_connections": dropped,
        "server_error_logs": collections.Counter(str(e["event"]) for e in errors),
        "alive_after": alive,
        "draw_s": round(drawn_s, 1),
        "send_s": round(sent_s, 1),
        "examples_of_problems": problems[:5],
    }


def main() -> None:
    n = int(os.environ.get("FUZZ_OCPI_REQUESTS", "10000"))
    report = asyncio.run(run(n))
    for key, value in report.items():
        print(f"{key}: {value}", flush=True)
    if report["http_5xx"] or report["not_envelope_or_5xx"] or report["dropped_connections"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
