"""Built-in scenario files (``*.toml`` here) and the step interpreter that runs them."""

from simulator.scenarios.context import Scenario, ScenarioError, ScenarioFailed
from simulator.scenarios.runner import (
    ScenarioResult,
    builtin_names,
    load_scenario,
    parse_scenario,
    run_scenario,
)

__all__ = [
    "Scenario",
    "ScenarioError",
    "ScenarioFailed",
    "ScenarioResult",
    "builtin_names",
    "load_scenario",
    "parse_scenario",
    "run_scenario",
]
