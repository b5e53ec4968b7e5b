"""The README stays true: quickstart, every config key, and every linked file."""

import re
from pathlib import Path

from csms import config as cfgmod

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_quickstart_is_the_two_make_commands():
    quick = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^make (\w+)", quick, re.M)
    assert commands == ["run", "test"]


def test_every_config_key_is_in_the_configuration_reference():
    reference = README.split("## Configuration reference", 1)[1].split("\n## ", 1)[0]
    for section, cls in cfgmod._SECTIONS.items():
        for f in cfgmod.dataclasses.fields(cls):
            assert f"`{section}.{f.name}`" in reference, f"{section}.{f.name}"
    for f in cfgmod.dataclasses.fields(cfgmod.PartnerOverride):
        assert f"`partners.<CC-PARTY>.{f.name}`" in reference, f.name


def test_every_relative_link_points_at_a_file():
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", README):
        assert (ROOT / target).exists(), target


def test_every_builtin_scenario_has_example_output_in_simulating():
    simulating = README.split("## Simulating", 1)[1].split("\n## ", 1)[0]
    for path in sorted((ROOT / "simulator" / "scenarios").glob("*.toml")):
        assert f"**{path.stem}**" in simulating, path.stem


# ---------------------------------------------------------------- README commands


def _sh_blocks(section: str) -> list[list[str]]:
    """The command lines of each ```sh block in a README section (comments stripped)."""
    text = README.split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    return [
        [line.split("  #", 1)[0].strip() for line in b.splitlines() if line.strip()] for b in blocks
    ]


def _all_sh_lines() -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", README, re.S)
    return [
        line.split("  #", 1)[0].strip()
        for b in blocks
        for line in b.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def test_every_cli_command_in_the_readme_parses() -> None:
    """Every ``csms``/``csms-sim``/``csms-emsp`` line of a ```sh block names real commands
    and options (the live run below executes the newcomer's path)."""
    import shlex

    from csms.cli import build_parser as csms_parser
    from simulator.cli import build_parser as sim_parser
    from simulator.emsp.cli import build_parser as emsp_parser

    parsers = {"csms": csms_parser, "csms-sim": sim_parser, "csms-emsp": emsp_parser}
    checked = 0
    for line in _all_sh_lines():
        argv = shlex.split(line, comments=True)
        if not argv or argv[0] not in parsers:
            continue
        try:
            parsers[argv[0]]().parse_args(argv[1:])
        except SystemExit as exc:
            raise AssertionError(f"README command does not parse: {line}") from exc
        checked += 1
    assert checked >= 10


def test_simulator_examples_register_their_ids_first() -> None:
    """A fresh CSMS rejects unknown ids (HTTP 404): every simulator example either uses an
    id the README registered just before (``csms chargers add``) or passes --register."""
    added = set(re.findall(r"csms chargers add (\S+)", README))
    for line in README.splitlines():
        m = re.match(r"^\$? ?csms-sim (run|serve|load)\b(.*)", line.strip())
        if not m or "..." in line or "[--" in line:
            continue  # usage synopses, not commands
        ids = re.findall(r"--id (\S+)", line)
        if "--register" in line:
            continue
        assert ids and set(ids) <= added, f"unregistered simulator example: {line}"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_fresh_serve_prints_its_token_and_the_readme_path_works(tmp_path: Path) -> None:
    """``make run`` in a fresh folder (the shipped config.toml, no --config): it generates
    the admin token, says where, and every command of "Add a charger and connect it"
    works as written with it (only the port numbers differ: ports are free ones here)."""
    import asyncio
    import json
    import os
    import shutil
    import signal
    import stat
    import sys

    from tests.support.waiting import wait_until

    shutil.copy(ROOT / "config.toml", tmp_path / "config.toml")
    ocpp, admin, ocpi = _free_port(), _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("CSMS")}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        CSMS__SERVER__HOST="127.0.0.1",
        CSMS__SERVER__PORT=str(ocpp),
        CSMS__ADMIN__PORT=str(admin),
        CSMS__OCPI__HOST="127.0.0.1",
        CSMS__OCPI__PORT=str(ocpi),
        CSMS__LOG__FORMAT="json",
        CSMS_ADMIN_URL=f"http://127.0.0.1:{admin}",  # for csms-sim --register
    )
    lines: list[str] = []

    async def start() -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "csms", "serve", cwd=tmp_path, env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert proc.stderr is not None
        async with asyncio.timeout(30):
            while True:
                raw = await proc.stderr.readline()
                assert raw, "csms serve ended: " + "".join(lines[-20:])
                lines.append(raw.decode())
                if '"event":"listening"' in raw.decode().replace(" ", ""):
                    return proc

    async def stop(proc: asyncio.subprocess.Process) -> None:
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(15):
            assert proc.stderr is not None
            rest = await proc.stderr.read()
            lines.extend(rest.decode().splitlines(keepends=True))
            assert await proc.wait() == 0

    async def sh(command: str) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            "bash", "-c", command, cwd=tmp_path, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(proc.communicate(), 90)
        assert proc.returncode is not None
        return proc.returncode, out.decode()

    server = await start()
    background: list[asyncio.subprocess.Process] = []
    try:
        told = [line for line in lines if "generated a new admin token in" in line]
        assert told, "".join(lines)
        token_file = tmp_path / "var" / "admin-token"
        assert str(token_file.resolve()) in told[0]
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        token = token_file.read_text().strip()
        assert len(token) >= 32 and token not in "".join(lines)

        for block in _sh_blocks("Add a charger and connect it"):
            for command in block:
                command = command.replace("127.0.0.1:9000", f"127.0.0.1:{ocpp}")
                if command.startswith("csms-sim serve"):  # stays connected: its own terminal
                    proc = await asyncio.create_subprocess_exec(
                        "bash", "-c", f"exec {command}", cwd=tmp_path, env=env,
                        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
                    )  # fmt: skip
                    background.append(proc)

                    async def connected() -> bool:
                        code, out = await sh("csms chargers list --json")
                        return code == 0 and any(
                            c["id"] == "CP1" and c["connected"] for c in json.loads(out)["chargers"]
                        )

                    await wait_until(connected, timeout=30, what="csms-sim serve connected")
                    continue
                code, out = await sh(command)
                assert code == 0, f"README command failed: {command}\n{out}"

        # The Simulating section's first example, as written (it registers its own id).
        [example] = re.findall(r"^\$ (csms-sim run --register .*--scenario basic)$", README, re.M)
        code, out = await sh(example.replace("127.0.0.1:9000", f"127.0.0.1:{ocpp}"))
        assert code == 0 and out.rstrip().endswith("ok"), out

        # The writes above are in the audit trail, with no secret in the log.
        code, out = await sh("csms audit list --json")
        assert code == 0, out
        actions = [e["action"] for e in json.loads(out)["entries"]]
        assert "POST /api/chargers" in actions and "POST /api/tokens" in actions
    finally:
        for proc in background:
            if proc.returncode is None:
                proc.terminate()
                await proc.wait()
        await stop(server)
    log = "".join(lines)
    assert "a-long-random-password" not in log and token not in log
    assert '"admin.audit"' in log

    # A second start keeps the same token, says where it is, and warns when the file
    # has become readable by others.
    token_file.chmod(0o644)
    server = await start()
    await stop(server)
    assert any("admin token is in" in line for line in lines)
    assert any("readable by others (mode 0644)" in line for line in lines)
    assert token_file.read_text().strip() == token
