"""What a scenario is and what its steps share: the parsed file, the context, the errors.

Why apart from the steps and the runner: every step reads the same context and raises the
same errors, and the printed step log is one format for all of them.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from simulator.chargepoint import SimulatedChargePoint, SimulatorError, Step


class ScenarioError(SimulatorError):
    """The scenario file itself is wrong (unknown step, bad key, not TOML)."""


class ScenarioFailed(SimulatorError):
    """A step's expectation did not hold; ``index`` is 1-based like the printed log."""

    def __init__(self, index: int, kind: str, reason: str) -> None:
        super().__init__(f"step {index} ({kind}) failed: {reason}")
        self.index = index
        self.kind = kind
        self.reason = reason


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    steps: tuple[dict[str, Any], ...]
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Context:
    """What steps share: the charge point(s), the tags, the printer."""

    url: str
    cp_id: str
    id_tag: str
    password: str | None
    cp_kwargs: dict[str, Any]
    say: Callable[[str], None]
    rng: random.Random
    cp: SimulatedChargePoint | None = None
    extra: list[SimulatedChargePoint] = field(default_factory=list)
    last_tx_request: tuple[str, dict[str, Any]] | None = None
    last_tx_response: dict[str, Any] | None = None

    @property
    def printer(self) -> Callable[[Step], None]:
        return print_step(self.say)

    def fmt(self, value: Any) -> Any:
        if isinstance(value, str):
            return value.format(id_tag=self.id_tag, cp_id=self.cp_id, other_tag="UNKNOWN-SIM-TAG")
        return value

    @property
    def charger(self) -> SimulatedChargePoint:
        assert self.cp is not None
        return self.cp


def expect(index: int, kind: str, expected: Any, actual: Any) -> None:
    if expected is not None and expected != actual:
        raise ScenarioFailed(index, kind, f"expected {expected!r}, got {actual!r}")


def tag_status(response: dict[str, Any]) -> str | None:
    return (response.get("idTagInfo") or {}).get("status")


def print_step(say: Callable[[str], None]) -> Callable[[Step], None]:
    """Render each CALL as ``-> Action  result  (latency)``."""

    def show(step: Step) -> None:
        if step.error:
            outcome = f"ERROR {step.error}"
        else:
            resp = step.response or {}
            outcome = (
                tag_status(resp)
                or resp.get("status")
                or (
                    "transactionId=" + str(resp["transactionId"]) if "transactionId" in resp else ""
                )
                or "ok"
            )
        tag = " (replayed)" if step.queued else ""
        say(f"      -> {step.action:<28} {outcome:<12} {step.latency_ms:7.1f} ms{tag}")

    return show
