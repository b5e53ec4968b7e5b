"""The ``[retention]`` section of the configuration (:mod:`csms.config`), on its own so
that the config module stays readable: how long the decision log keeps its rows and how
gently :mod:`csms.retention` deletes them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class RetentionConfig:
    """How long the decision log keeps its rows, and how gently the purge deletes them
    (csms/retention.py): small batches with a pause between them, so serving never
    waits on a long DELETE."""

    decisions_days: int = 90
    interval_s: float = 3600.0
    batch_rows: int = 500
    pause_s: float = 0.05
    max_rows_per_round: int = 100_000


def validate_retention(r: RetentionConfig, error: Callable[[str, str], Exception]) -> None:
    """Raise ``error(key, message)`` for the first bad ``[retention]`` key."""
    if r.decisions_days < 0:
        raise error(
            "retention.decisions_days", f"must be 0 (keep forever) or more, got {r.decisions_days}"
        )
    for key, value in (
        ("retention.interval_s", r.interval_s),
        ("retention.batch_rows", r.batch_rows),
        ("retention.max_rows_per_round", r.max_rows_per_round),
    ):
        if value <= 0:
            raise error(key, f"must be greater than 0, got {value}")
    if r.pause_s < 0:
        raise error("retention.pause_s", f"must be 0 or more, got {r.pause_s}")
