"""``csms-emsp serve`` as a process, steered by ``csms-emsp control``."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys

import pytest

from tests.simulator.emsp.conftest import call


async def _run(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulator.emsp.cli", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_serve_then_control_from_another_process(tmp_path, http):
    tokens = tmp_path / "tokens.csv"
    tokens.write_text("uid,whitelist,allowed\nCARD1,NEVER,NO_CREDIT\n")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulator.emsp.cli", "serve", "--port", "0", "--control-port", "0",
        "--tokens", str(tokens), "--issue-token-a",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        lines: list[str] = []
        assert proc.stdout is not None
        while not any(line.startswith("TOKEN_A:") for line in lines):
            line = await asyncio.wait_for(proc.stdout.readline(), 10)
            assert line, "serve exited early"
            lines.append(line.decode().strip())
        text = "\n".join(lines)
        versions_url = re.search(r"versions URL: (\S+)", text).group(1)
        control = re.search(r"control API: (http://[^/]+)", text).group(1)
        token_a = re.search(r"TOKEN_A: (\S+)", text).group(1)
        status, body, _ = await call(http, "GET", versions_url, token_a)
        assert status == 200 and body["data"][0]["version"] == "2.2.1"

        rc, out, _ = await _run(
            "control", "--url", control, "behaviour", "delay", "--delay-ms", "5"
        )
        assert rc == 0 and json.loads(out)["authorize"] == {"mode": "delay", "delay_ms": 5}
        rc, out, _ = await _run("control", "--url", control, "show", "tokens")
        assert rc == 0 and json.loads(out)[0]["_allowed"] == "NO_CREDIT"
        rc, out, _ = await _run("control", "--url", control, "allowed", "NOPE", "BLOCKED")
        assert rc == 1 and "unknown token" in out
        line = await asyncio.wait_for(proc.stdout.readline(), 10)
        assert "behaviour authorize=delay" in line.decode()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 10)
    assert proc.returncode == 0


async def test_bad_token_file_exits_2(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    rc, _, err = await _run("serve", "--port", "0", "--tokens", str(bad))
    assert rc == 2 and "not valid JSON" in err


@pytest.mark.parametrize("argv", [["control", "--url", "http://127.0.0.1:9", "state"]])
async def test_control_unreachable_exits_1(argv):
    rc, _, err = await _run(*argv)
    assert rc == 1 and "cannot reach" in err
