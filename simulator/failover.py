"""Several CSMS addresses, and what a charger records about each link it opens.

Why the charger itself moves between addresses: an operator that runs several CSMS nodes
gives its chargers several URLs (or one load balancer name that resolves to any node),
and a charger whose node died must find a live one without a person. Real chargers wait
a random, growing time between attempts so that the thousands a dead node held do not
all knock at once on the same survivor; the backoff here is bounded (``max_s``) and
fully jittered for the same reason.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass


def split_urls(urls: str | Sequence[str]) -> list[str]:
    """One URL, a comma-separated list, or a sequence of either: every address, in order."""
    items = [urls] if isinstance(urls, str) else list(urls)
    out = [part.strip() for item in items for part in item.split(",") if part.strip()]
    if not out:
        raise ValueError("at least one CSMS URL is needed")
    return out


def jittered_backoff(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Full-jitter exponential backoff: spreads a reconnect storm instead of synchronising it."""
    return rng.uniform(0, min(cap, base * (2**attempt)))


@dataclass(frozen=True)
class FailoverPolicy:
    """How a charger whose socket was lost looks for a CSMS again.

    Each attempt takes the next URL (round robin) after a jittered wait that doubles up to
    ``max_s``; ``attempts`` bounds the search (None: until the charger is closed).
    """

    initial_s: float = 0.5
    max_s: float = 10.0
    attempts: int | None = None


@dataclass
class Link:
    """One socket the charger opened: where, and when it was usable again.

    Times are ``time.monotonic()``: ``booted_at`` when a BootNotification on this link was
    Accepted, ``served_at`` when the first other CALL after it was answered, ``lost_at``
    when the CSMS side closed it (not set when the charger closed it itself).
    """

    url: str
    opened_at: float
    booted_at: float | None = None
    served_at: float | None = None
    lost_at: float | None = None
