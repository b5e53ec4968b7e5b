"""The operator documentation of location management stays true: every ``csms`` command in
docs/ocpi-modules.md's management and charger-site examples, and the README's
``chargers add --location`` line, runs as written against a real CSMS."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from tests.e2e.roaming.test_cli_catalog import cli
from tests.e2e.roaming.test_location_admin import cli_process
from tests.support.csms import running_csms

ROOT = Path(__file__).resolve().parents[3]


def commands(doc: str, heading: str) -> list[list[str]]:
    """The ``csms`` commands of the first code block after ``heading`` (continuations
    joined, comments and optional ``[...]`` parts dropped)."""
    section = doc.split(heading, 1)[1]
    block = section.split("```", 2)[1]
    text = block.replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = re.sub(r"\[[^\]]*\]", "", line)
        argv = shlex.split(line, comments=True)
        if argv and argv[0] == "csms":
            out.append(argv[1:])
    return out


async def test_documented_location_commands_run_as_written(tmp_path):
    doc = (ROOT / "docs" / "ocpi-modules.md").read_text()
    managing = commands(doc, "### Managing them through the API and the CLI")
    site = commands(doc, "### A charger with its site")
    readme = (ROOT / "README.md").read_text()
    [readme_add] = re.findall(r"`(csms chargers add CP1 --location[^`]*)`", readme)
    assert len(managing) >= 10 and len(site) == 1
    export_file = tmp_path / "locations.toml"
    ocpi = {"enabled": True, "country_code": "NL", "party_id": "CPO"}
    async with running_csms(tmp_path, ocpi=ocpi) as app:
        for argv in [
            *managing,
            *site,
            shlex.split(readme_add)[1:],
            ["locations", "publish", "LOC-1"],
        ]:
            if "export" in argv:
                argv = argv[: argv.index(">")] if ">" in argv else argv
                code, out, err = await cli_process(app, *argv)
                export_file.write_text(out)
            else:
                argv = [str(export_file) if a == "locations.toml" else a for a in argv]
                code, out, err = await cli(app, *argv)
            assert code == 0, (argv, err)
