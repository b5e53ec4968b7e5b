"""What happened during one session, as functions of time: energy so far, parking or not,
power and current.

Why parking comes from the charger's own words and not from the energy register: a
register that reports whole kWh does not grow for many minutes while a car charges
slowly, so "the register did not move" is no evidence of "not charging". PARKING_TIME is
the time the EV is connected and not drawing energy, which the charger says in two ways:
its status (the caller turns SuspendedEV / SuspendedEVSE / Finishing into
:attr:`SessionFacts.suspended` intervals) and its power readings (Power.Active.Import at
or below :data:`IDLE_POWER_W`, held until the next power reading or status report).

Energy between two register readings is spread evenly over the charging part of that
stretch (none goes to parking); a reading equal to the previous one is no evidence of
when the energy flowed and is skipped, so whole-kWh steps are smoothed, not billed as
bursts.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

IDLE_POWER_W = 50.0  # at or below: the EV is not drawing energy
MIN_PARKING_S = 1.0  # shorter "not drawing" reports are message jitter, not parking


@dataclass(frozen=True, slots=True)
class Reading:
    """One energy register reading (Wh, cumulative) at a charger-reported time."""

    timestamp: datetime
    energy_wh: float


@dataclass(frozen=True, slots=True)
class Sample:
    """One instantaneous reading (power in W, or current in A) at a charger-reported time."""

    timestamp: datetime
    value: float


@dataclass(frozen=True, slots=True)
class SessionFacts:
    """Everything the charger told us about one session (aware UTC datetimes, sub-second
    precision kept). ``suspended``: intervals the charger's status said the EV was
    connected and not drawing energy."""

    start: datetime
    end: datetime
    meter_start_wh: float
    meter_stop_wh: float
    energy: Sequence[Reading] = ()
    power: Sequence[Sample] = ()
    current: Sequence[Sample] = ()
    suspended: Sequence[tuple[datetime, datetime]] = ()
    status_reports: Sequence[datetime] = ()  # when the charger reported any status


Interval = tuple[datetime, datetime]


def _merge(intervals: list[Interval]) -> list[Interval]:
    out: list[Interval] = []
    for a, b in sorted(intervals):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _overlap(a: datetime, b: datetime, parking: list[Interval]) -> float:
    return sum(max(0.0, (min(b, p1) - max(a, p0)).total_seconds()) for p0, p1 in parking if p0 < b)


class Timeline:
    """The facts of one session, clipped to [start, end] and queryable at any instant."""

    def __init__(self, facts: SessionFacts) -> None:
        self.start = facts.start
        self.end = max(facts.end, facts.start)
        self.total_wh = max(facts.meter_stop_wh - facts.meter_start_wh, 0.0)
        self.parking = self._parking(facts)
        self.power = sorted((s for s in facts.power if s.timestamp < self.end), key=_at)
        self.current = sorted((s for s in facts.current if s.timestamp < self.end), key=_at)
        self._power_times = [s.timestamp for s in self.power]
        self._current_times = [s.timestamp for s in self.current]
        self._times, self._wh = self._energy_curve(facts)

    def _parking(self, facts: SessionFacts) -> list[Interval]:
        spans = list(facts.suspended)
        power = sorted(facts.power, key=_at)
        reports = sorted(facts.status_reports)
        for i, s in enumerate(power):
            if s.value <= IDLE_POWER_W:
                # Held until the next power reading, or a newer status report (which, if
                # it says "not drawing", is in ``suspended`` already).
                until = power[i + 1].timestamp if i + 1 < len(power) else self.end
                j = bisect.bisect_right(reports, s.timestamp)
                if j < len(reports):
                    until = min(until, reports[j])
                spans.append((s.timestamp, until))
        clipped = [(max(a, self.start), min(b, self.end)) for a, b in spans]
        return [
            (a, b)
            for a, b in _merge([(a, b) for a, b in clipped if a < b])
            if (b - a).total_seconds() >= MIN_PARKING_S
        ]

    def _energy_curve(self, facts: SessionFacts) -> tuple[list[datetime], list[float]]:
        """Breakpoints of the cumulative energy (Wh since the start), linear in between."""
        points = [(self.start, 0.0)]
        last = 0.0
        for r in sorted(facts.energy, key=lambda r: r.timestamp):
            wh = r.energy_wh - facts.meter_start_wh
            if not self.start < r.timestamp < self.end or wh <= last or wh > self.total_wh:
                continue  # outside, unchanged, gone backwards or beyond the stop reading
            points.append((r.timestamp, wh))
            last = wh
        points.append((self.end, self.total_wh))
        times, whs = [self.start], [0.0]
        for (t0, e0), (t1, e1) in itertools.pairwise(points):
            cuts = sorted(
                {t0, t1} | {max(t0, min(t1, x)) for p in self.parking for x in p if t0 < x < t1}
            )
            pieces = list(itertools.pairwise(cuts))
            charging = [
                (a, b, (b - a).total_seconds() - _overlap(a, b, self.parking)) for a, b in pieces
            ]
            span = sum(c for _, _, c in charging)
            whole = (t1 - t0).total_seconds()
            acc = e0
            for a, b, c in charging:
                if span > 0:
                    acc += (e1 - e0) * c / span
                elif whole > 0:  # energy reported while parked: spread it, never drop it
                    acc += (e1 - e0) * (b - a).total_seconds() / whole
                times.append(b)
                whs.append(acc)
            if not pieces:  # zero-length stretch (start == end): the energy still counts
                times.append(t1)
                whs.append(e1)
            whs[-1] = e1
        return times, whs

    def energy_at(self, t: datetime) -> float:
        """Wh since the start at ``t`` (after any jump at exactly ``t``)."""
        i = bisect.bisect_right(self._times, t) - 1
        if i < 0:
            return 0.0
        if i + 1 >= len(self._times):
            return self._wh[-1]
        t0, t1 = self._times[i], self._times[i + 1]
        span = (t1 - t0).total_seconds()
        if span <= 0:
            return self._wh[i]
        return self._wh[i] + (self._wh[i + 1] - self._wh[i]) * (t - t0).total_seconds() / span

    def when_energy(self, wh: float) -> datetime | None:
        """The first instant the session's energy reaches ``wh`` (None if it never does)."""
        if wh <= 0 or wh > self._wh[-1]:
            return None
        for i in range(1, len(self._times)):
            e0, e1 = self._wh[i - 1], self._wh[i]
            if e0 < wh <= e1:
                t0, t1 = self._times[i - 1], self._times[i]
                return t0 + (t1 - t0) * ((wh - e0) / (e1 - e0))
        return None

    def is_parking(self, t: datetime) -> bool:
        return any(a <= t < b for a, b in self.parking)

    def held(self, samples: list[Sample], t: datetime) -> float | None:  # power or current
        """The last reading at or before ``t`` (readings hold until the next one)."""
        times = self._power_times if samples is self.power else self._current_times
        i = bisect.bisect_right(times, t) - 1
        return samples[i].value if i >= 0 else None

    def power_kw(self, t: datetime, a: datetime, b: datetime) -> float:
        """Charging power at ``t`` inside segment [a, b): the last power reading, else the
        segment's average (energy over charging time); 0 while parked."""
        if self.is_parking(t):
            return 0.0
        watts = self.held(self.power, t)
        if watts is not None:
            return watts / 1000
        hours = (b - a).total_seconds() / 3600
        return (self.energy_at(b) - self.energy_at(a)) / 1000 / hours if hours > 0 else 0.0

    def breakpoints(self) -> set[datetime]:
        """Every instant at which a fact changes (parking edges, energy rate, readings)."""
        points = {self.start, self.end, *self._times}
        points.update(x for p in self.parking for x in p)
        points.update(s.timestamp for s in (*self.power, *self.current))
        return {p for p in points if self.start <= p <= self.end}

    def duration_point(self, seconds: int) -> datetime:
        return self.start + timedelta(seconds=seconds)


def _at(s: Sample) -> datetime:
    return s.timestamp
