"""Everything the simulator raises on purpose, under one base class.

Why a hierarchy of its own: the CLI and the scenario runner turn any
:class:`SimulatorError` into an exit code or a failed step, while a bug (any other
exception) still surfaces as a traceback.
"""

from __future__ import annotations

from typing import Any


class SimulatorError(Exception):
    """Base of everything the simulator raises on purpose."""


class ConnectFailed(SimulatorError):
    def __init__(self, url: str, status: int | None, reason: str) -> None:
        where = f"HTTP {status}" if status is not None else reason
        super().__init__(f"could not connect to {url}: {where}")
        self.url = url
        self.status = status
        self.reason = reason


class NotConnected(SimulatorError):
    def __init__(self, action: str) -> None:
        super().__init__(f"{action}: charge point is not connected")
        self.action = action


class CallFailed(SimulatorError):
    """The CSMS answered our CALL with a CALLERROR."""

    def __init__(self, action: str, code: str, description: str, details: Any) -> None:
        super().__init__(f"{action}: CSMS answered CallError {code}: {description}")
        self.action = action
        self.code = code
        self.description = description
        self.details = details


class CallTimeout(SimulatorError):
    def __init__(self, action: str, timeout: float) -> None:
        super().__init__(f"{action}: no answer within {timeout:g} s")
        self.action = action
        self.timeout = timeout
