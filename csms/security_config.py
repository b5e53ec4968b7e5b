"""The ``[security]`` section of the configuration (:mod:`csms.config`), on its own so
that the config module stays readable: throttling of failed HTTP Basic authentication
at the OCPP handshake (:mod:`csms.ocpp16.throttle`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


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


def validate_security(s: SecurityConfig, error: Callable[[str, str], Exception]) -> None:
    """Raise ``error(key, message)`` for the first bad ``[security]`` key."""
    for key, value in (
        ("security.auth_failures_per_charger", s.auth_failures_per_charger),
        ("security.auth_failures_per_address", s.auth_failures_per_address),
        ("security.auth_failure_window_s", s.auth_failure_window_s),
        ("security.auth_throttle_entries", s.auth_throttle_entries),
    ):
        if value <= 0:
            raise error(key, f"must be greater than 0, got {value}")
