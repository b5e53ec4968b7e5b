"""Throttling of failed HTTP Basic authentication at the OCPP handshake (pure, no I/O).

Why: checking a password runs scrypt, deliberately slow and memory-hard (about 16 MB and
tens of milliseconds each). Unthrottled, 43 wrong-password handshakes a second pushed a
legitimate charger's connect from milliseconds to 363 ms and doubled the server's
memory. So failures are counted per charge point id and per source address within a
window; past either limit the password is not checked at all (the handshake is
answered 429 with ``Retry-After``) until the window has passed.

Both tables are bounded: the least recently failing entries are forgotten first, so a
flood of distinct ids or addresses costs a fixed amount of memory (at worst it lets
some of them try again sooner, which the other table still limits).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


class FailureWindow:
    """At most ``limit`` failures per key in a window of ``window_s`` seconds, starting at
    the key's first failure; at most ``max_entries`` keys remembered."""

    __slots__ = ("_entries", "limit", "max_entries", "window_s")

    def __init__(self, limit: int, window_s: float, max_entries: int) -> None:
        self.limit = limit
        self.window_s = window_s
        self.max_entries = max_entries
        self._entries: OrderedDict[str, list[float]] = OrderedDict()  # key -> [start, count]

    def __len__(self) -> int:
        return len(self._entries)

    def retry_after(self, key: str, now: float) -> float | None:
        """Seconds until ``key`` may be checked again; None when it may be now."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        start, count = entry
        if now - start >= self.window_s:
            del self._entries[key]
            return None
        return start + self.window_s - now if count >= self.limit else None

    def failed(self, key: str, now: float) -> None:
        entry = self._entries.get(key)
        if entry is None or now - entry[0] >= self.window_s:
            self._entries[key] = [now, 1.0]
        else:
            entry[1] += 1
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def forget(self, key: str) -> None:
        self._entries.pop(key, None)

    def retract(self, key: str) -> None:
        """Take back one failure counted ahead of a check that then succeeded."""
        entry = self._entries.get(key)
        if entry is not None and entry[1] > 0:
            entry[1] -= 1


@dataclass(frozen=True)
class ThrottleLimits:
    per_charger: int
    per_address: int
    window_s: float
    max_entries: int


class AuthThrottle:
    """The two windows (charge point id, source address) behind one decision."""

    def __init__(self, limits: ThrottleLimits, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.chargers = FailureWindow(limits.per_charger, limits.window_s, limits.max_entries)
        self.addresses = FailureWindow(limits.per_address, limits.window_s, limits.max_entries)

    def retry_after(self, charger_id: str, address: str) -> float | None:
        """Seconds to wait before this id from this address may be checked; None: now."""
        now = self.clock()
        waits = [
            w
            for w in (
                self.chargers.retry_after(charger_id, now),
                self.addresses.retry_after(address, now),
            )
            if w is not None
        ]
        return max(waits) if waits else None

    def failed(self, charger_id: str, address: str) -> None:
        now = self.clock()
        self.chargers.failed(charger_id, now)
        self.addresses.failed(address, now)

    def succeeded(self, charger_id: str) -> None:
        """The right password for this id: its earlier failures no longer count (the
        address's do: one address may try many ids)."""
        self.chargers.forget(charger_id)

    def retract(self, address: str) -> None:
        """A check counted as failed ahead (see :meth:`failed`) succeeded: the address
        gets that one back (the id's failures are forgotten by :meth:`succeeded`).

        Why count ahead: checks run one at a time in their own thread, so a burst of
        concurrent attempts would all pass :meth:`retry_after` before the first failure
        was counted, and each would still cost an scrypt."""
        self.addresses.retract(address)
