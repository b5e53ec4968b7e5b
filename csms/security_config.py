"""The hostile-input limits of the configuration (:mod:`csms.config`), on their own so
that the config module stays readable: the ``[security]`` section (throttling of failed
HTTP Basic authentication at the OCPP handshake, :mod:`csms.ocpp16.throttle`) and the
per-connection limits of ``[server]`` (:class:`ConnectionLimits`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class ConnectionLimits:
    """``[server]`` keys (ServerConfig inherits them): a charger's CALLs waiting on I/O
    at once, beyond which its socket is not read until one is answered; the bytes of
    its frames handled per turn of the event loop, then the other chargers' turn
    (csms/ocpp16/connection.py, wire.py); and how long a StatusNotification waits for
    others to share its commit when few are waiting (csms/store/status_writes.py)."""

    max_calls_in_flight: int = 4
    read_budget_bytes: int = 4096
    status_linger_s: float = 0.02


class _ServerChecked(Protocol):
    @property
    def max_calls_in_flight(self) -> int: ...
    @property
    def read_budget_bytes(self) -> int: ...
    @property
    def gc_freeze_interval_s(self) -> float: ...
    @property
    def status_linger_s(self) -> float: ...


@dataclass(frozen=True)
class SecurityConfig:
    """After ``auth_failures_per_charger`` failures for one charge point id, or
    ``auth_failures_per_address`` from one source address, within
    ``auth_failure_window_s``, further attempts are answered 429 without checking the
    password (no scrypt run) until the window has passed; a password already verified
    on this server is still accepted. ``auth_throttle_entries`` bounds each table of
    ids and addresses tracked (the least recently failing are forgotten first)."""

    auth_failures_per_charger: int = 5
    auth_failures_per_address: int = 20
    auth_failure_window_s: float = 60.0
    auth_throttle_entries: int = 10000


def validate_limits(
    server: _ServerChecked, s: SecurityConfig, error: Callable[[str, str], Exception]
) -> None:
    """Raise ``error(key, message)`` for the first bad ``[security]`` key or ``[server]``
    limit (the collector's freeze interval too, checked here to keep config.py short)."""
    for key, value in (
        ("server.gc_freeze_interval_s", server.gc_freeze_interval_s),
        ("server.status_linger_s", server.status_linger_s),
    ):
        if value < 0:
            raise error(key, f"must be 0 (off) or more, got {value}")
    for key, value in (
        ("server.max_calls_in_flight", server.max_calls_in_flight),
        ("server.read_budget_bytes", server.read_budget_bytes),
        ("security.auth_failures_per_charger", s.auth_failures_per_charger),
        ("security.auth_failures_per_address", s.auth_failures_per_address),
        ("security.auth_failure_window_s", s.auth_failure_window_s),
        ("security.auth_throttle_entries", s.auth_throttle_entries),
    ):
        if value <= 0:
            raise error(key, f"must be greater than 0, got {value}")
