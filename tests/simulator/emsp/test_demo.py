"""``make demo`` runs in CI: its entry point, as a process, shows every expected outcome."""

from __future__ import annotations

import asyncio
import os
import re
import sys

import pytest

EXIT_MISSING_FEATURE = 3


async def test_make_demo_entry_point_shows_all_four_decisions_and_the_reference():
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("CSMS")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulator.demo",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env,
    )  # fmt: skip
    out_b, _ = await asyncio.wait_for(proc.communicate(), 90)
    out = out_b.decode()
    if proc.returncode == EXIT_MISSING_FEATURE:
        reason = next(line for line in out.splitlines() if "MISSING CSMS FEATURE" in line)
        pytest.skip(reason)
    assert proc.returncode == 0, out
    assert "demo OK: every expected outcome seen" in out
    assert "[MISSING]" not in out
    # One table of decisions with the four outcomes, oldest first.
    table = out[out.index("decisions recorded by the CSMS") :]
    rows = [line.split() for line in table.splitlines()[2:6]]
    assert [(r[0], r[1], r[3]) for r in rows] == [
        ("CACHE-1", "cache", "Accepted"),
        ("RT-1", "remote", "Accepted"),
        ("OFF-1", "fallback", "Accepted"),
        ("BLK-1", "remote", "Blocked"),
    ]
    # The sandbox's reference reaches the decision log, the Session and the CDR unchanged.
    ref = re.search(r"sandbox issued authorization_reference (Ref-\w+)", out).group(1)
    assert rows[1][4] == ref
    assert re.search(rf"Session at the sandbox: \S+ status=COMPLETED reference={ref}\b", out)
    assert re.search(rf"CDR at the sandbox: +\S+ kWh=\S+ reference={ref}\b", out)
