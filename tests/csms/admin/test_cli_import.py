"""``csms chargers import FILE.csv`` against a real CSMS, and ``csms ... | head`` ending
quietly: the CLI as an operator runs it, in subprocesses."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from csms.store.chargers import ChargerRepo
from simulator.chargepoint import ConnectFailed, SimulatedChargePoint
from tests.support.csms import ADMIN_TOKEN, admin_url, ocpp_url, running_csms

PASSWORD = "import-password-0123456789"


async def csms(*args: str, cwd: Path, timeout: float = 60) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "csms", *args, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_import_registers_every_line_and_reports_the_rest(tmp_path: Path) -> None:
    csv = tmp_path / "chargers.csv"
    csv.write_text(f"id,password\nCP-I1,{PASSWORD}\nCP-I2,\n\nbad id with spaces,\nCP-I1,\n")
    async with running_csms(tmp_path) as app:
        conn = ["--admin-url", admin_url(app), "--admin-token", ADMIN_TOKEN]
        code, out, err = await csms("chargers", "import", str(csv), *conn, cwd=tmp_path)
        assert code == 1, err  # one line failed
        assert "1 added" not in out and "2 added, 1 already registered, 1 failed" in out
        assert "line 5: bad id with spaces: error" in out
        assert "line 6: CP-I1: exists" in out
        assert PASSWORD not in out + err
        repo = ChargerRepo(app.db)
        assert await repo.get("CP-I1") is not None and await repo.get("CP-I2") is not None
        # The password from the file is the one the charger must present.
        async with SimulatedChargePoint.connect(
            ocpp_url(app), "CP-I1", password=PASSWORD, heartbeat=False
        ) as cp:
            assert (await cp.boot())["status"] == "Accepted"
        try:
            async with SimulatedChargePoint.connect(ocpp_url(app), "CP-I1", heartbeat=False):
                raise AssertionError("connected without the imported password")
        except ConnectFailed as exc:
            assert exc.status == 401

        bad = tmp_path / "bad.csv"
        bad.write_text("name,secret\nCP-Z,x\n")
        code, _, err = await csms("chargers", "import", str(bad), *conn, cwd=tmp_path)
        assert code == 2 and "the first line must name the columns" in err


async def test_a_long_listing_piped_to_head_ends_without_a_traceback(tmp_path: Path) -> None:
    csv = tmp_path / "many.csv"
    csv.write_text("id\n" + "".join(f"CP-PIPE-{n:04d}\n" for n in range(300)))
    async with running_csms(tmp_path) as app:
        conn = f"--admin-url {admin_url(app)} --admin-token {ADMIN_TOKEN}"
        code, out, err = await csms("chargers", "import", str(csv), *conn.split(), cwd=tmp_path)
        assert code == 0 and "300 added" in out, err
        listing = f"{sys.executable} -m csms chargers list --json {conn}"
        code, out, err = await csms("chargers", "list", "--json", *conn.split(), cwd=tmp_path)
        assert len(out) > 128 * 1024  # twice what a Linux pipe buffers (64 KiB)
        assert len(json.loads(out)["chargers"]) == 300
        proc = await asyncio.create_subprocess_exec(
            "bash", "-c", f"{listing} | head -c 100 >/dev/null; echo ${{PIPESTATUS[0]}}",
            cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        piped_out, piped_err = await asyncio.wait_for(proc.communicate(), 60)
        assert piped_err.decode() == ""
        assert piped_out.decode().strip() == "141"
