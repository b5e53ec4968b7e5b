"""Scenario files: a small TOML step language run against a real CSMS.

Why TOML steps instead of Python scripts: operators and reviewers can read and edit a
scenario without knowing the simulator's API, and every step prints one line, so a run
is its own report. Steps are interpreted by :func:`run_scenario` in order; the first
failed expectation stops the run with :class:`ScenarioFailed` naming the step.

A file looks like::

    name = "basic"
    description = "Boot, authorize, charge, stop."
    [options]            # SimulatedChargePoint keyword arguments (connectors, heartbeat, ...)
    meter_interval_s = 0
    [[steps]]
    do = "boot"
    [[steps]]
    do = "authorize"
    expect = "Accepted"

String values may use ``{id_tag}``, ``{cp_id}`` and ``{other_tag}`` (an idTag the
CSMS does not know). The step kinds are listed in
:data:`simulator.scenarios.steps.STEP_KINDS`; see docs/simulator.md for each one's keys.
"""

from __future__ import annotations

import random
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from simulator.chargepoint import CallFailed, SimulatedChargePoint, SimulatorError
from simulator.scenarios.context import Context, Scenario, ScenarioError, ScenarioFailed
from simulator.scenarios.steps import STEP_KINDS

BUILTIN_DIR = "simulator.scenarios"


def builtin_names() -> list[str]:
    return sorted(
        p.name[: -len(".toml")]
        for p in resources.files(BUILTIN_DIR).iterdir()
        if p.name.endswith(".toml")
    )


def load_scenario(name_or_path: str) -> Scenario:
    """A built-in name (``basic``) or a path to a TOML file."""
    path = Path(name_or_path)
    if path.suffix == ".toml" and path.exists():
        text = path.read_text(encoding="utf-8")
    else:
        res = resources.files(BUILTIN_DIR) / f"{name_or_path}.toml"
        if not res.is_file():
            raise ScenarioError(
                f"unknown scenario {name_or_path!r}; built-ins: {', '.join(builtin_names())}"
            )
        text = res.read_text(encoding="utf-8")
    return parse_scenario(text, default_name=path.stem)


def parse_scenario(text: str, default_name: str = "scenario") -> Scenario:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"not valid TOML: {exc}") from None
    steps = raw.get("steps", [])
    if not isinstance(steps, list) or not steps:
        raise ScenarioError("a scenario needs at least one [[steps]] table")
    for i, step in enumerate(steps, 1):
        kind = step.get("do")
        if kind not in STEP_KINDS:
            raise ScenarioError(f"step {i}: unknown do = {kind!r}; known: {', '.join(STEP_KINDS)}")
        unknown = set(step) - {"do", "note"} - STEP_KINDS[kind][1]
        if unknown:
            raise ScenarioError(f"step {i} ({kind}): unknown keys {sorted(unknown)}")
    options = raw.get("options", {})
    if not isinstance(options, dict):
        raise ScenarioError("[options] must be a table")
    return Scenario(
        name=str(raw.get("name", default_name)),
        description=str(raw.get("description", "")),
        steps=tuple(steps),
        options=options,
    )


def _describe(step: dict[str, Any]) -> str:
    rest = " ".join(f"{k}={v}" for k, v in step.items() if k not in ("do", "note"))
    note = f"  # {step['note']}" if "note" in step else ""
    return f"{step['do']} {rest}".rstrip() + note


@dataclass
class ScenarioResult:
    ok: bool
    error: str | None
    charger: SimulatedChargePoint | None
    steps_run: int
    extra: list[SimulatedChargePoint] = field(default_factory=list)


async def run_scenario(
    scenario: Scenario,
    *,
    url: str,
    cp_id: str,
    id_tag: str,
    password: str | None = None,
    say: Callable[[str], None] = print,
    seed: int = 0,
    keep_open: bool = False,
    **cp_kwargs: Any,
) -> ScenarioResult:
    """Run every step in order; returns instead of raising so the CLI can pick an exit code.

    ``cp_kwargs`` override the scenario's ``[options]``. With ``keep_open`` the charge
    point(s) are left connected for the caller (tests), who must close them.
    """
    options = {**scenario.options, **cp_kwargs}
    ctx = Context(url, cp_id, id_tag, password, options, say, random.Random(seed))
    ctx.cp = SimulatedChargePoint(url, cp_id, password=password, on_step=ctx.printer, **options)
    done = 0
    error: str | None = None
    try:
        await ctx.cp.open()
        say(f"connected {ctx.cp.url} as {cp_id} (scenario {scenario.name})")
        for i, step in enumerate(scenario.steps, 1):
            say(f"[{i}] {_describe(step)}")
            await STEP_KINDS[step["do"]][0](ctx, i, step)
            done = i
    except ScenarioFailed as exc:
        error = str(exc)
    except CallFailed as exc:
        error = f"step {done + 1}: {exc}"
    except SimulatorError as exc:
        error = f"step {done + 1}: {exc}" if done else str(exc)
    except TimeoutError:
        error = f"step {done + 1}: timed out"
    finally:
        if not keep_open:
            for cp in [ctx.cp, *ctx.extra]:
                if cp is not None:
                    await cp.close()
    return ScenarioResult(error is None, error, ctx.cp, done, ctx.extra)
