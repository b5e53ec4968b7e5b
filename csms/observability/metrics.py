"""The Prometheus series of one CSMS, in a registry of its own.

Why a registry per :class:`Metrics` and not prometheus-client's global default: tests
start many systems in one process, and a global registry would add their counts
together (or refuse the second registration). The composition root builds one
:class:`Metrics` per system and hands its observer methods to the parts that count:

- the OCPP connection (:class:`csms.ocpp16.observer.MessageObserver`): messages by
  action and result, CALLERRORs by code; the gateway (``ChargerGateway.observer``): the
  calls we send, by action and outcome;
- the decision log (``AuthorizationLog.observers``): decisions by source and status,
  decision latency;
- the OCPI client (:class:`roaming.observer.CallObserver`): eMSP call latency and
  outcome per partner;
- the store (``Database.write_observer``): write latency.

What is better read than counted is read at scrape time by :class:`ScrapeSources`
(connected chargers from the gateway, outbox depth and age and token sync runs from
the store), so the hot paths carry no bookkeeping for it.

Names follow the Prometheus conventions: ``csms_`` prefix, ``_total`` for counters,
``_seconds`` for durations, base units throughout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from typing import Any, Protocol

from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from csms.authz.model import DecisionRecord
from csms.ocpp16.actions import ALL_OCPP16

# Decisions are answered from memory in microseconds or wait for an eMSP for seconds.
DECISION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
EMSP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
STORE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)


class Metrics:
    """Every counted series; the methods are the observers handed out at composition."""

    def __init__(self, *, process: bool = True) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.ocpp_messages = Counter(
            "csms_ocpp_messages_total",
            "Charger-initiated OCPP CALLs answered, by action (other: not an OCPP 1.6 name) "
            "and result (ok or callerror)",
            ["action", "result"],
            registry=r,
        )
        self.ocpp_callerrors = Counter(
            "csms_ocpp_callerrors_total",
            "CALLERRORs sent to chargers in answer to their CALLs, by OCPP-J error code",
            ["code"],
            registry=r,
        )
        self.ocpp_calls_sent = Counter(
            "csms_ocpp_calls_sent_total",
            "CSMS-initiated OCPP calls (remote start, reset, ...), by action and outcome "
            "(ok, callerror, timeout, not_connected, invalid_payload, invalid_result)",
            ["action", "outcome"],
            registry=r,
        )
        self.decisions = Counter(
            "csms_authorization_decisions_total",
            "Authorization decisions, by source (local, cache, remote, fallback, reused, "
            "command) and idTagInfo status",
            ["source", "status"],
            registry=r,
        )
        self.decision_seconds = Histogram(
            "csms_authorization_decision_seconds",
            "Time from the charger's request arriving to the decision, by source",
            ["source"],
            buckets=DECISION_BUCKETS,
            registry=r,
        )
        self.emsp_requests = Counter(
            "csms_emsp_requests_total",
            "OCPI calls to partners, by partner, HTTP method and outcome (ok or the error kind)",
            ["partner", "method", "outcome"],
            registry=r,
        )
        self.emsp_seconds = Histogram(
            "csms_emsp_request_seconds",
            "Duration of OCPI calls to partners, by partner and outcome",
            ["partner", "outcome"],
            buckets=EMSP_BUCKETS,
            registry=r,
        )
        self.store_write_seconds = Histogram(
            "csms_store_write_seconds",
            "Duration of one store write (a transaction or a lone statement), lock wait excluded",
            buckets=STORE_BUCKETS,
            registry=r,
        )
        Info("csms_build", "The running CSMS's version", registry=r).info({"version": _version()})
        if process:
            ProcessCollector(registry=r)
            PlatformCollector(registry=r)
            GCCollector(registry=r)
        self.scraped = _Snapshot()
        r.register(self.scraped)
        # Label children by key: the hot observers skip ``labels()`` after the first time.
        self._answered: dict[tuple[str, str | None], Callable[[], None]] = {}
        self._decided: dict[
            tuple[Any, Any], tuple[Callable[[], None], Callable[[float], None]]
        ] = {}
        self._called: dict[
            tuple[str, str, str], tuple[Callable[[], None], Callable[[float], None]]
        ] = {}

    # ---------------------------------------------------------------- observers

    def answered(self, action: str, error_code: str | None) -> None:
        """:class:`csms.ocpp16.observer.MessageObserver`."""
        key = (action, error_code)
        count = self._answered.get(key)
        if count is None:
            count = self._answered[key] = self._answered_counter(action, error_code)
        count()

    def _answered_counter(self, action: str, error_code: str | None) -> Callable[[], None]:
        # The action comes from the charger: only OCPP 1.6 names become label values, so
        # a charger sending made-up actions cannot grow the series without bound.
        name = action if action in ALL_OCPP16 else "other"
        if error_code is None:
            return self.ocpp_messages.labels(name, "ok").inc
        message = self.ocpp_messages.labels(name, "callerror")
        code = self.ocpp_callerrors.labels(error_code)

        def both() -> None:
            message.inc()
            code.inc()

        return both

    def call_sent(self, action: str, outcome: str) -> None:
        """``ChargerGateway.observer``."""
        self.ocpp_calls_sent.labels(action if action in ALL_OCPP16 else "other", outcome).inc()

    def decided(self, entry: DecisionRecord) -> None:
        """An ``AuthorizationLog`` observer; the label children are kept, as this runs once
        per decision on the Authorize hot path (``labels()`` costs more than ``inc()``)."""
        d = entry.decision
        key = (d.source, d.status)
        children = self._decided.get(key)
        if children is None:
            source = d.source.value
            children = self._decided[key] = (
                self.decisions.labels(source, d.status.value).inc,
                self.decision_seconds.labels(source).observe,
            )
        children[0]()
        children[1](entry.latency_ms / 1000.0)

    def call_finished(self, partner: str, method: str, outcome: str, seconds: float) -> None:
        """:class:`roaming.observer.CallObserver`; once per real-time authorize, so the
        label children are kept as in :meth:`decided`. Partner keys, methods and outcomes
        are few and all come from our own code and store, never from the wire."""
        key = (partner, method, outcome)
        children = self._called.get(key)
        if children is None:
            children = self._called[key] = (
                self.emsp_requests.labels(partner, method, outcome).inc,
                self.emsp_seconds.labels(partner, outcome).observe,
            )
        children[0]()
        children[1](seconds)

    def store_wrote(self, seconds: float) -> None:
        """``Database.write_observer``."""
        self.store_write_seconds.observe(seconds)

    # ---------------------------------------------------------------- scraping

    async def exposition(self, sources: ScrapeSources) -> bytes:
        """The text exposition, with the scrape-time series read just now."""
        async with self.scraped.lock:
            self.scraped.families = await sources.read()
            return generate_latest(self.registry)


class _Snapshot(Collector):
    """Hands the registry the families :class:`ScrapeSources` read for this scrape."""

    def __init__(self) -> None:
        self.families: list[Metric] = []
        self.lock = asyncio.Lock()

    def collect(self) -> Iterable[Metric]:
        return list(self.families)


class OutboxBacklog(Protocol):
    """``roaming.store.outbox.OutboxStore.backlog``: (partner, status, count, oldest)."""

    async def backlog(self) -> list[tuple[str, str, int, str]]: ...


class SyncRuns(Protocol):
    """``roaming.store.token_syncs.TokenSyncStore.run_counts``: (partner, kind, status, n)."""

    async def run_counts(self) -> list[tuple[str, str, str, int]]: ...


@dataclass
class ScrapeSources:
    """What is read, not counted: each source is optional (no OCPI, no outbox)."""

    connected: Callable[[], int]
    outbox: OutboxBacklog | None = None
    syncs: SyncRuns | None = None
    # Connectors chargers report that no EVSE maps: roaming charges there wait (held).
    unmapped: Callable[[], Awaitable[int]] | None = None
    # This node's id, and the nodes sharing the store: (node id, alive, chargers held).
    node_id: str = ""
    nodes: Callable[[], Awaitable[list[tuple[str, bool, int]]]] | None = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    async def read(self) -> list[Metric]:
        out: list[Metric] = []
        out.append(
            GaugeMetricFamily(
                "csms_chargers_connected",
                "Chargers with an open OCPP connection",
                value=self.connected(),
            )
        )
        if self.node_id:
            node = GaugeMetricFamily(
                "csms_node", "This CSMS node (1), named by cluster.node_id", labels=["node_id"]
            )
            node.add_metric([self.node_id], 1)
            out.append(node)
        if self.nodes is not None:
            out += _node_families(await self.nodes())
        if self.outbox is not None:
            out += _outbox_families(await self.outbox.backlog(), self.clock())
        if self.unmapped is not None:
            out.append(
                GaugeMetricFamily(
                    "csms_ocpi_unmapped_connectors",
                    "Connectors chargers reported that no EVSE maps (roaming charges there "
                    "wait for a location)",
                    value=await self.unmapped(),
                )
            )
        if self.syncs is not None:
            runs = CounterMetricFamily(
                "csms_ocpi_token_sync_runs",
                "Finished token sync runs, by partner, kind (full, incremental) and result",
                labels=["partner", "kind", "result"],
            )
            for partner, kind, status, n in await self.syncs.run_counts():
                runs.add_metric([partner, kind, status], n)
            out.append(runs)
        return out


def _outbox_families(rows: Sequence[tuple[str, str, int, str]], now: datetime) -> list[Metric]:
    depth = GaugeMetricFamily(
        "csms_ocpi_outbox_messages",
        "Undelivered OCPI pushes, by partner (* = not yet fanned out) and status "
        "(pending: will be (re)tried; held: waits for a missing part such as a location; "
        "dead: out of attempts, blocks its object)",
        labels=["partner", "status"],
    )
    age = GaugeMetricFamily(
        "csms_ocpi_outbox_oldest_age_seconds",
        "Age of the oldest undelivered OCPI push, by partner",
        labels=["partner"],
    )
    oldest: dict[str, float] = {}
    for partner, status, n, created in rows:
        depth.add_metric([partner, status], n)
        seconds = max(0.0, (now - _parse(created)).total_seconds())
        oldest[partner] = max(oldest.get(partner, 0.0), seconds)
    for partner, seconds in sorted(oldest.items()):
        age.add_metric([partner], seconds)
    return [depth, age]


def _version() -> str:
    try:
        return metadata.version("csms")
    except metadata.PackageNotFoundError:  # a source tree that was never installed
        return "unknown"


def _parse(stamp: str) -> datetime:
    value = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _node_families(nodes: list[tuple[str, bool, int]]) -> list[Metric]:
    """Why from every node: any node's scrape tells how many of the others are alive and
    which holds how many chargers, so a dead node shows even where nobody scrapes it."""
    alive = GaugeMetricFamily(
        "csms_cluster_nodes", "Nodes sharing the store, by lease state", labels=["state"]
    )
    alive.add_metric(["alive"], sum(1 for _, up, _ in nodes if up))
    alive.add_metric(["expired"], sum(1 for _, up, _ in nodes if not up))
    held = GaugeMetricFamily(
        "csms_cluster_node_chargers",
        "Chargers whose socket each live node holds (from the presence table)",
        labels=["node_id"],
    )
    for node_id, up, chargers in nodes:
        if up:
            held.add_metric([node_id], chargers)
    return [alive, held]
