"""Every command line says its defaults, tells its version, and stops quietly when the
reader of its output goes away."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator

import pytest

from csms.cli import build_parser as csms_parser
from simulator.cli import build_parser as sim_parser
from simulator.emsp.cli import build_parser as emsp_parser

PARSERS = {"csms": csms_parser, "csms-sim": sim_parser, "csms-emsp": emsp_parser}


def _walk(
    parser: argparse.ArgumentParser, path: str
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _walk(sub, f"{path} {name}")


@pytest.mark.parametrize("prog", sorted(PARSERS))
def test_every_option_has_help_that_names_its_default(prog: str) -> None:
    problems = []
    for path, parser in _walk(PARSERS[prog](), prog):
        formatter = parser._get_formatter()
        for action in parser._actions:
            if not action.option_strings or isinstance(
                action, argparse._HelpAction | argparse._VersionAction
            ):
                continue
            name = "/".join(action.option_strings)
            if not action.help:
                problems.append(f"{path} {name}: no help")
                continue
            text = formatter._get_help_string(action) or ""  # type: ignore[attr-defined]
            if "default" not in text.lower() and "(required)" not in text:
                problems.append(f"{path} {name}: help does not say the default")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("prog", "module"),
    [("csms", "csms"), ("csms-sim", "simulator.cli"), ("csms-emsp", "simulator.emsp.cli")],
)
def test_version(prog: str, module: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", module, "--version"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    name, version = out.stdout.split()
    assert name == prog and version[0].isdigit()


@pytest.mark.parametrize("module", ["csms.cli.usage", "simulator.usage"])
def test_a_closed_pipe_ends_quietly_with_141(module: str) -> None:
    """A command writing far more than the pipe holds, read by ``head -c 1``: no
    BrokenPipe traceback, exit 141 (the real ``csms ... | head`` is in test_cli_import)."""
    code = (
        f"import sys; from {module} import pipe_safe; "
        "sys.exit(pipe_safe(lambda: [print('x' * 99) for _ in range(20000)] and 0))"
    )
    script = f'{sys.executable} -c "{code}" | head -c 1 >/dev/null; echo ${{PIPESTATUS[0]}}'
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert out.stderr == "", out.stderr
    assert out.stdout.strip() == "141"
