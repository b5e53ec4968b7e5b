"""When to look for held Session pushes that can go now: after a change that could free
them, not before every outbox round.

Why: a Session waits for a location (its connector has no EVSE) or for a tariff (its
connector has none); only a write to the catalogue (a mapping, an EVSE, a tariff: every
writer goes through ``write_locations``, which moves the catalogue generation) can end
either wait. Looking before every round cost a query and several store round trips per
waiting Session: with 5,000 CDRs waiting for a tariff, the outbox worker's rounds (back
to back while Session pushes were due) took ~1 ms of the event loop per OCPP message of
a charging load, and StartTransaction's p99 reached 1 s (``python -m tests.bench
authorize``, reuse-window and own-card sessions). A write this process did not see (another
node, another process on the same file) is caught by a look at least every
``recheck_s``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import datetime

from csms.ocpi.locations import catalog_generation


class ReleaseGate:
    """Wraps the release of waiting Sessions: runs it on the first call, after every
    catalogue write, and at least every ``recheck_s``; otherwise answers 0 at once."""

    def __init__(
        self,
        release: Callable[[datetime], Awaitable[int]],
        *,
        recheck_s: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.release = release
        self.recheck_s = recheck_s
        self._monotonic = monotonic
        self._seen: int | None = None
        self._due = 0.0
        self.passes = 0  # looks taken (observability, tests)

    async def __call__(self, now: datetime) -> int:
        generation, at = catalog_generation(), self._monotonic()
        if generation == self._seen and at < self._due:
            return 0
        # Taken before the look: a write during it moves the generation again, and the
        # next round looks once more.
        self._seen, self._due = generation, at + self.recheck_s
        self.passes += 1
        try:
            return await self.release(now)
        except BaseException:
            self._seen = None  # a failed look is taken again next round
            raise
