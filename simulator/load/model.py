"""What a load run is asked to do and what it found: config, per-action figures, report.

Why latencies are kept in plain lists until the end: an append is the cheapest thing the
generator can do per call, and percentiles are only needed once, for the report.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

STATELESS = ("Authorize", "Heartbeat", "MeterValues", "StatusNotification")


@dataclass
class LoadConfig:
    url: str
    chargers: int = 10
    calls: int = 1000
    rate: float = 0.0  # total calls/s; 0 = closed loop
    mix: str = "session"
    meter_per_session: int = 2
    id_pattern: str = "LOAD{n:05d}"
    id_tags: tuple[str, ...] = ("LOADTAG",)
    # Charger n takes id_tags[n-1] (cycling) instead of a random one: a token a command
    # pre-authorized at one charger, or a tag that must not charge at two at once.
    tags_in_order: bool = False
    password: str | None = None
    seed: int = 0
    timeout: float = 10.0
    connect_concurrency: int = 200
    boot: bool = True
    ca_file: str | None = None  # trusted CA for a wss:// url
    failover_initial_s: float = 0.2  # several urls: first jittered wait before moving on
    failover_max_s: float = 5.0  # the backoff's bound
    failover_attempts: int = 20  # sockets tried before a charger gives up its quota


@dataclass
class ActionStats:
    count: int = 0
    errors: int = 0
    rejected: int = 0  # answered, but idTagInfo.status was not Accepted
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0


@dataclass
class LoadReport:
    url: str
    mode: str
    chargers: int
    calls_planned: int
    calls_done: int
    errors: int
    duration_s: float
    throughput: float
    actions: dict[str, ActionStats]
    error_kinds: dict[str, int] = field(default_factory=dict)
    connect_failures: int = 0
    behind_schedule: int = 0
    generator_cpu_s: float = 0.0  # CPU this process spent in the measured phase
    generator_capacity: float = 0.0  # calls per CPU-second: our one-core ceiling
    calibration: dict[str, Any] | None = None
    failovers: int = 0  # chargers that moved to another URL after losing their socket
    # ms from the new socket to its BootNotification answered ("boot_*") and to its first
    # other call answered ("served_*"), and from the lost socket to that call answered
    # ("outage_*", the backoff included): p50, p99, max
    failover_ms: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Recorder:
    """Latencies per action in plain lists: appends are the cheapest thing we can do per call."""

    def __init__(self) -> None:
        self.lat: dict[str, list[float]] = {}
        self.err: dict[str, int] = {}
        self.rejected: dict[str, int] = {}
        self.kinds: dict[str, int] = {}
        self.done = 0
        self.behind = 0
        self.failovers = 0
        self.moved_boot: list[float] = []
        self.moved_served: list[float] = []
        self.moved_outage: list[float] = []

    def moved(self, boot_ms: float, served_ms: float, outage_ms: float) -> None:
        self.moved_boot.append(boot_ms)
        self.moved_served.append(served_ms)
        self.moved_outage.append(outage_ms)

    def failover_ms(self) -> dict[str, float]:
        out: dict[str, float] = {}
        series = (
            ("boot", self.moved_boot),
            ("served", self.moved_served),
            ("outage", self.moved_outage),
        )
        for name, values in series:
            ordered = sorted(values)
            if ordered:
                out[f"{name}_p50"] = round(percentile(ordered, 50), 1)
                out[f"{name}_p99"] = round(percentile(ordered, 99), 1)
                out[f"{name}_max"] = round(ordered[-1], 1)
        return out

    def ok(self, action: str, ms: float) -> None:
        lst = self.lat.get(action)
        if lst is None:
            lst = self.lat[action] = []
        lst.append(ms)
        self.done += 1

    def error(self, action: str, kind: str) -> None:
        self.err[action] = self.err.get(action, 0) + 1
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        self.done += 1

    def reject(self, action: str) -> None:
        self.rejected[action] = self.rejected.get(action, 0) + 1

    def stats(self) -> dict[str, ActionStats]:
        out: dict[str, ActionStats] = {}
        for action in sorted(set(self.lat) | set(self.err)):
            values = sorted(self.lat.get(action, []))
            s = ActionStats(
                count=len(values) + self.err.get(action, 0),
                errors=self.err.get(action, 0),
                rejected=self.rejected.get(action, 0),
            )
            if values:
                s.p50_ms = round(percentile(values, 50), 3)
                s.p95_ms = round(percentile(values, 95), 3)
                s.p99_ms = round(percentile(values, 99), 3)
                s.max_ms = round(values[-1], 3)
            out[action] = s
        return out


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return 0.0
    rank = max(1, -(-len(sorted_values) * pct // 100))
    return sorted_values[int(rank) - 1]
