"""What the two read memos in front of the roaming store share: a TTL and a size cap.

Why memos at all: the token cache and the location lookup are read on every Authorize,
and a SQLite round trip on the one store thread cost more than the rest of the decision
(measured at 1,000 Authorizes a second). Each memo is kept coherent by its own
invalidation (token listener, catalogue generation); the TTL is only a backstop for
writes made by another process on the same database file.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class TtlMemo:
    """A TTL in seconds (0 turns memoising off), an entry cap and the clock it reads."""

    def __init__(
        self,
        *,
        ttl_s: float,
        max_entries: int,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._now = monotonic

    def expires_at(self) -> float:
        """When an entry memoised now stops being served."""
        return self._now() + self.ttl_s
