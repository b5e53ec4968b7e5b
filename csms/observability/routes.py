"""``GET /metrics`` and ``GET /api/ready`` on the admin port.

Why ``/metrics`` checks its own token instead of the admin bearer: a Prometheus server
holds the scrape credential in its config, and that credential must not be able to
change anything. Rules (``[metrics]``):

- ``metrics.token`` set: ``Authorization: Bearer <metrics.token>`` (the admin token is
  accepted too, for an operator's curl);
- ``metrics.token`` empty and ``admin.host`` a loopback address: open (only this
  machine can reach it);
- ``metrics.token`` empty and the admin API on any other address: the admin token is
  required, so a public address never serves metrics to anyone.

Why ``/api/ready`` needs no token: orchestrators' readiness probes carry none, and the
answer holds only booleans. It is 200 when the store answers a query, the OCPP listener
is serving and (with OCPI enabled) the OCPI listener is serving; else 503, with the
failing checks named.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from csms.admin.http import ApiError, json_response
from csms.config import Config, is_loopback
from csms.observability.metrics import Metrics, ScrapeSources
from csms.store.db import Database

STORE_PROBE_TIMEOUT_S = 2.0


@dataclass
class Readiness:
    """The checks ``/api/ready`` runs; each listener check is read when asked."""

    db: Database
    ocpp_serving: Callable[[], bool]
    ocpi_serving: Callable[[], bool] | None = None
    # Several nodes: whether this node hears the others (its LISTEN connection is up).
    # Why it gates readiness: a node deaf to the bus cannot be asked to close a charger's
    # older socket or to answer a forwarded call, so it should not take new chargers.
    cluster_hearing: Callable[[], bool] | None = None

    async def check(self) -> dict[str, bool]:
        checks = {"store": await self._store(), "ocpp": self.ocpp_serving()}
        if self.ocpi_serving is not None:
            checks["ocpi"] = self.ocpi_serving()
        if self.cluster_hearing is not None:
            checks["cluster"] = self.cluster_hearing()
        return checks

    async def _store(self) -> bool:
        try:
            async with asyncio.timeout(STORE_PROBE_TIMEOUT_S):
                row = await self.db.fetchone("SELECT 1 AS ok")
        except Exception:
            return False
        return row is not None


def metrics_open(config: Config) -> bool:
    """Whether ``/metrics`` answers without a token under this config."""
    return not config.metrics.token and is_loopback(config.admin.host)


def observability_routes(
    config: Config, metrics: Metrics | None, sources: ScrapeSources, readiness: Readiness
) -> web.RouteTableDef:
    routes = web.RouteTableDef()
    accepted = [f"Bearer {config.admin.token}".encode()]
    if config.metrics.token:
        accepted.append(f"Bearer {config.metrics.token}".encode())
    open_ = metrics_open(config)

    @routes.get("/api/ready")
    async def ready(request: web.Request) -> web.Response:
        checks = await readiness.check()
        ok = all(checks.values())
        return json_response(
            {"status": "ready" if ok else "not_ready", "checks": checks}, status=200 if ok else 503
        )

    if metrics is None:
        return routes

    @routes.get("/metrics")
    async def scrape(request: web.Request) -> web.Response:
        if not open_:
            given = request.headers.get("Authorization", "").encode()
            # Every candidate is compared, so the time taken does not tell which matched.
            if not any([hmac.compare_digest(given, a) for a in accepted]):
                raise ApiError(
                    401,
                    "unauthorized",
                    "missing or wrong bearer token (Authorization: Bearer <metrics.token>)",
                )
        body = await metrics.exposition(sources)
        resp = web.Response(body=body)
        resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return resp

    return routes
