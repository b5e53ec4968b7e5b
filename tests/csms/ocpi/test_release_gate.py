"""Held Session pushes are looked at after a catalogue write, at least every
``recheck_s``, and not before every outbox round."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from csms.ocpi.locations import invalidate_lookups
from csms.ocpi.release_gate import ReleaseGate

NOW = datetime(2026, 12, 7, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


async def test_looks_first_then_only_after_a_catalogue_write_or_the_recheck() -> None:
    looks: list[datetime] = []

    async def release(now: datetime) -> int:
        looks.append(now)
        return 2

    clock = Clock()
    gate = ReleaseGate(release, recheck_s=60.0, monotonic=clock)
    assert await gate(NOW) == 2  # the first round looks
    assert await gate(NOW) == 0 and await gate(NOW) == 0  # nothing changed: no look
    invalidate_lookups()  # what every write to locations does
    assert await gate(NOW) == 2
    assert await gate(NOW) == 0
    clock.t += 59.0
    assert await gate(NOW) == 0
    clock.t += 1.0  # a write elsewhere is caught by the periodic look
    assert await gate(NOW) == 2
    assert len(looks) == gate.passes == 3


async def test_a_failed_look_is_taken_again_next_round() -> None:
    calls = 0

    async def release(now: datetime) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("store gone")
        return 1

    gate = ReleaseGate(release, recheck_s=60.0, monotonic=Clock())
    with pytest.raises(RuntimeError):
        await gate(NOW)
    assert await gate(NOW) == 1
    assert await gate(NOW) == 0
