"""``csms-sim ... --register``: put the simulated ids in the CSMS's registry first.

Why through the admin HTTP API: a CSMS refuses unknown charge point ids at the handshake
(HTTP 404 under ``server.unknown_chargers = "reject"``), so a newcomer's first simulator
run would fail; registering over the same API the ``csms`` CLI uses keeps the simulator
to wire protocols. An id that is already registered is fine (HTTP 409 is not an error).

The token: ``--admin-token``, else ``$CSMS_ADMIN_TOKEN``, else the file ``csms serve``
generated (``--admin-token-file``, default ``var/admin-token`` as in the shipped config).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path

import aiohttp

DEFAULT_ADMIN_URL = os.environ.get("CSMS_ADMIN_URL") or "http://127.0.0.1:9100"
DEFAULT_TOKEN_FILE = "var/admin-token"


class RegisterFailed(Exception):
    """The admin API could not be reached or refused; the message says what to fix."""


def admin_token(explicit: str | None, token_file: str) -> str:
    token = explicit or os.environ.get("CSMS_ADMIN_TOKEN")
    if token:
        return token
    try:
        text = Path(token_file).read_text(encoding="utf-8").strip()
    except OSError:
        text = ""
    if not text:
        raise RegisterFailed(
            f"--register needs the admin token: pass --admin-token, set CSMS_ADMIN_TOKEN, "
            f"or run from the folder where `csms serve` wrote {token_file}"
        )
    return text


async def register_chargers(
    admin_url: str, token: str, ids: Sequence[str], password: str | None, concurrency: int = 16
) -> tuple[int, int]:
    """POST every id to ``/api/chargers``; returns (added, already registered)."""
    gate = asyncio.Semaphore(concurrency)
    url = admin_url.rstrip("/") + "/api/chargers"
    added = existed = 0
    headers = {"Authorization": f"Bearer {token}"}
    timeout = aiohttp.ClientTimeout(total=30)
    try:
        async with aiohttp.ClientSession(headers=headers, timeout=timeout) as http:

            async def one(cp_id: str) -> int:
                body: dict[str, str] = {"id": cp_id}
                if password is not None:
                    body["password"] = password
                async with gate, http.post(url, json=body) as resp:
                    if resp.status in (200, 201, 409):
                        return resp.status
                    detail = (await resp.text())[:300]
                    raise RegisterFailed(
                        f"registering {cp_id} at {url}: HTTP {resp.status} {detail}"
                    )

            for status in await asyncio.gather(*(one(i) for i in ids)):
                if status == 409:
                    existed += 1
                else:
                    added += 1
    except aiohttp.ClientError as exc:
        raise RegisterFailed(f"cannot reach the admin API at {admin_url}: {exc}") from None
    return added, existed
