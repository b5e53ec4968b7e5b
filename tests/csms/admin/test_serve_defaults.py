"""Safe defaults of ``csms serve``: it reads ./config.toml without --config, and warns
about plain listeners on public addresses."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from tests.support.csms import running_csms


async def test_serve_reads_config_toml_in_the_current_folder(tmp_path: Path) -> None:
    """A key only ./config.toml holds decides the outcome: an unknown one stops start-up."""
    (tmp_path / "config.toml").write_text("[admin]\ncolour = 'red'\n")
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("CSMS__")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "csms", "serve", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert "config error: admin.colour: unknown key" in err.decode()


async def test_plain_listeners_on_all_addresses_are_warned_about_at_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with running_csms(tmp_path, server={"host": "0.0.0.0"}):
        pass
    out = capsys.readouterr().out
    warnings = [line for line in out.splitlines() if "listener_without_tls" in line]
    assert len(warnings) == 1 and "server.host" in warnings[0]
    capsys.readouterr()
    async with running_csms(tmp_path):  # 127.0.0.1: nothing to warn about
        pass
    assert "listener_without_tls" not in capsys.readouterr().out
