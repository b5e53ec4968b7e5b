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
