"""Two nodes never run the same partner's token sync at once, and the scheduled full
syncs do not run twice.

Two real ``csms serve`` processes on one PostgreSQL database; the eMSP sandbox (paired
with node A) serves its token list in pages of 2, each page answered after a pause as a
busy eMSP would, so a run lasts about a second. The eMSP's request log tells the runs
apart: each starts at offset 0 and walks the offsets in order; two runs at once would
interleave their offsets.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

import simulator.emsp.app as emsp_app
from simulator.emsp import EmspSandbox
from tests.support.nodes import Node, csms_nodes
from tests.support.waiting import wait_until

TOKENS = 10
PAGE = 2
PAGE_PAUSE_S = 0.2

Handler = Callable[[web.Request], Coroutine[Any, Any, web.StreamResponse]]


@pytest.fixture
def slow_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    real: Handler = emsp_app.list_tokens

    async def paused(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(PAGE_PAUSE_S)
        return await real(request)

    monkeypatch.setattr(emsp_app, "list_tokens", paused)


def sandbox() -> Any:
    return EmspSandbox.start(control_port=None, page_limit=PAGE)


async def pair(node: Node, emsp: EmspSandbox) -> None:
    for n in range(TOKENS):
        emsp.add_token(f"04SYNC{n:04d}", whitelist="ALLOWED")
    invite = await node.admin(
        "POST", "/api/partners/invite", {"country_code": "NL", "party_id": "EMS"}
    )
    await emsp.register_with(invite["versions_url"], invite["token_a"])


def runs_at_the_emsp(emsp: EmspSandbox) -> list[list[int]]:
    """The token list GETs in arrival order, split into runs (a run starts at offset 0),
    asserting that no two runs interleave: within a run the offsets go 0, 2, 4, ..."""
    gets = sorted(emsp.requests_to("/tokens", "GET"), key=lambda r: r.received_at)
    runs: list[list[int]] = []
    for request in gets:
        offset = int(request.query.get("offset", "0"))
        if offset == 0:
            if runs:
                assert runs[-1][-1] == TOKENS - PAGE, f"a run began inside another: {runs}"
            runs.append([0])
            continue
        assert runs and runs[-1][-1] + PAGE == offset, f"runs interleaved: {runs} then {offset}"
        runs[-1].append(offset)
    return runs


async def complete_runs(node: Node) -> int:
    detail = await node.admin("GET", "/api/partners/NL-EMS")
    return sum(1 for run in detail["sync_runs"] if run["status"] == "complete")


async def test_a_sync_asked_of_both_nodes_at_once_runs_on_one(
    tmp_path: Path, postgres_url: str, slow_pages: None
):
    async with csms_nodes(tmp_path, postgres_url, 2, ocpi=True) as (a, b), sandbox() as emsp:
        await pair(a, emsp)
        await wait_until(lambda: _at_least(complete_runs(a), 1), timeout=15, what="first sync")
        await wait_until(lambda: len(runs_at_the_emsp(emsp)[-1]) == TOKENS // PAGE)

        asked = {"partner": "NL-EMS", "wait": True}
        answers = await asyncio.gather(
            a.admin("POST", "/api/tokens/sync", asked, ok=False),
            b.admin("POST", "/api/tokens/sync", asked, ok=False),
        )
        statuses = sorted(answer["runs"][0]["status"] for answer in answers)
        assert statuses == ["already_running", "complete"], answers
        runs = runs_at_the_emsp(emsp)
        assert len(runs) == 2  # the one after registration, then one of the two asked
        assert all(len(run) == TOKENS // PAGE for run in runs)


async def test_the_scheduled_full_syncs_run_once_per_interval(
    tmp_path: Path, postgres_url: str, slow_pages: None
):
    interval = 2.0  # each node looks for due partners every 0.2 s
    config = {"ocpi": {"token_sync_interval_s": interval, "token_sync_page_size": PAGE}}
    async with (
        csms_nodes(tmp_path, postgres_url, 2, ocpi=True, config=config) as (a, _b),
        sandbox() as emsp,
    ):
        await pair(a, emsp)
        await wait_until(lambda: len(runs_at_the_emsp(emsp)) >= 1, what="a first run")
        t0 = time.monotonic()
        await wait_until(lambda: len(runs_at_the_emsp(emsp)) >= 4, timeout=20, what="4 runs")
        watched = time.monotonic() - t0
        runs = runs_at_the_emsp(emsp)  # asserts no two runs overlapped
        # A run becomes due again `interval` after it started: one run per interval,
        # whichever node runs it (not one per node).
        assert len(runs) <= watched / interval + 2, (len(runs), watched)


async def _at_least(count: Coroutine[Any, Any, int], n: int) -> bool:
    return await count >= n
