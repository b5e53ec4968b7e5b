"""CSMS-initiated calls: the ONE wrapper every caller (admin API, OCPI commands) goes through.

Why one wrapper: validating our request, bounding the wait, validating the charger's
answer and turning every failure into a typed :mod:`csms.ocpp16.errors` exception happens
in one place, so no caller ever gets a silent ``None``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

import structlog

from csms.ocpp16 import errors, framing, schemas
from csms.ocpp16.actions import CSMS_INITIATED
from csms.ocpp16.connection import ChargerConnection, ConnectionInfo

log = structlog.get_logger("csms.ocpp")

# How a call ended, for the observer: "ok" or the failure's kind.
_OUTCOMES: dict[type[errors.GatewayError], str] = {
    errors.ChargerNotConnected: "not_connected",
    errors.CallTimeout: "timeout",
    errors.CallErrorReceived: "callerror",
    errors.InvalidCallPayload: "invalid_payload",
    errors.InvalidCallResult: "invalid_result",
}


class RemoteCalls(Protocol):
    """Calls to a charger whose socket another node holds (several nodes on one store).

    Why a seam here: callers keep asking this gateway only, validation and the observer
    stay on the node the caller asked, and a single node runs without it.
    """

    async def call(
        self, charger_id: str, action: str, payload: dict[str, Any], timeout: float
    ) -> dict[str, Any]:
        """The answer of the node holding ``charger_id``; the same typed errors as a local
        call (ChargerNotConnected when no live node holds it)."""
        ...

    async def reachable(self, charger_id: str) -> bool:
        """True when another live node holds ``charger_id``'s socket."""
        ...

    async def disconnect(self, charger_id: str, reason: str, *, if_accepted: bool) -> bool:
        """Close the session on the node holding it (:meth:`ChargerGateway.disconnect`)."""
        ...


class ChargerGateway:
    def __init__(self, call_timeout_s: float) -> None:
        self.call_timeout_s = call_timeout_s
        self._live: dict[str, ChargerConnection] = {}
        # Set when other nodes may hold chargers: a call for a charger not connected here
        # goes there. None on a single node.
        self.remote: RemoteCalls | None = None
        # Told (action, outcome) after every call (metrics); quick, never raising.
        self.observer: Callable[[str, str], None] | None = None
        # Told (charger_id, connected) when a charger's session starts or ends; must be
        # quick and must not raise (it runs on the connection's path).
        self._watchers: list[Callable[[str, bool], None]] = []

    def watch(self, watcher: Callable[[str, bool], None]) -> None:
        """Call ``watcher(charger_id, connected)`` as sessions start and end."""
        self._watchers.append(watcher)

    def _tell(self, charger_id: str, connected: bool) -> None:
        for watcher in self._watchers:
            try:
                watcher(charger_id, connected)
            except Exception:
                log.exception("ocpp.watcher_failed", charge_point_id=charger_id)

    def connections(self) -> dict[str, ConnectionInfo]:
        return {cid: conn.info for cid, conn in self._live.items()}

    def is_connected(self, charger_id: str) -> bool:
        return charger_id in self._live

    def connection(self, charger_id: str) -> ChargerConnection | None:
        return self._live.get(charger_id)

    async def reachable(self, charger_id: str) -> bool:
        """Whether :meth:`call` can reach ``charger_id``: connected here or on another node."""
        if charger_id in self._live:
            return True
        return self.remote is not None and await self.remote.reachable(charger_id)

    async def disconnect(self, charger_id: str, reason: str, *, if_accepted: bool = False) -> bool:
        """Close ``charger_id``'s session wherever it is (here or on another node); True
        when one was closed. ``if_accepted``: only a session whose charger was Accepted."""
        if charger_id in self._live or self.remote is None:
            return await self.disconnect_here(charger_id, reason, if_accepted=if_accepted)
        return await self.remote.disconnect(charger_id, reason, if_accepted=if_accepted)

    async def disconnect_here(
        self, charger_id: str, reason: str, *, if_accepted: bool = False
    ) -> bool:
        """:meth:`disconnect` of a session on this node only."""
        conn = self._live.get(charger_id)
        if conn is None or (if_accepted and conn.registration_status != "Accepted"):
            return False
        await conn.close(reason)
        return True

    async def call(
        self, charger_id: str, action: str, payload: dict[str, Any], timeout: float | None = None
    ) -> dict[str, Any]:
        """Send ``action`` with the camelCase ``payload`` and return the charger's camelCase answer.

        Raises ChargerNotConnected, CallTimeout, CallErrorReceived, InvalidCallPayload or
        InvalidCallResult (all :class:`csms.ocpp16.errors.GatewayError`).
        """
        if self.observer is None:
            return await self._call(charger_id, action, payload, timeout, self.remote)
        outcome = "ok"
        try:
            return await self._call(charger_id, action, payload, timeout, self.remote)
        except errors.GatewayError as exc:
            outcome = _OUTCOMES.get(type(exc), "error")
            raise
        finally:
            self.observer(action, outcome)

    async def call_here(
        self, charger_id: str, action: str, payload: dict[str, Any], timeout: float | None = None
    ) -> dict[str, Any]:
        """:meth:`call` on this node's socket only, unobserved: how a call forwarded by
        another node is run (that node counted it; it is never forwarded again)."""
        return await self._call(charger_id, action, payload, timeout, None)

    async def _call(
        self,
        charger_id: str,
        action: str,
        payload: dict[str, Any],
        timeout: float | None,
        remote: RemoteCalls | None,
    ) -> dict[str, Any]:
        if action not in CSMS_INITIATED:
            raise errors.InvalidCallPayload(action, "not an OCPP 1.6 central-system action")
        try:
            schemas.validate_request(action, payload)
        except schemas.SchemaViolation as exc:
            raise errors.InvalidCallPayload(action, exc.message) from None
        limit = self.call_timeout_s if timeout is None else timeout
        conn = self._live.get(charger_id)
        if conn is None:
            if remote is None:
                raise errors.ChargerNotConnected(charger_id)
            return await remote.call(charger_id, action, payload, limit)
        try:
            async with asyncio.timeout(limit):
                answer = await conn.call(action, payload)
        except TimeoutError:
            log.warning("ocpp.call_timeout", charge_point_id=charger_id, action=action)
            raise errors.CallTimeout(charger_id, action, limit) from None
        except errors.InvalidCallResult as exc:
            raise errors.InvalidCallResult(charger_id, action, exc.message) from None
        if isinstance(answer, framing.CallError):
            details = answer.details if isinstance(answer.details, dict) else {}
            raise errors.CallErrorReceived(
                charger_id, action, answer.code, answer.description, details
            )
        try:
            schemas.validate_response(action, answer.payload)
        except schemas.SchemaViolation as exc:
            raise errors.InvalidCallResult(charger_id, action, exc.message) from None
        result: dict[str, Any] = answer.payload
        return result

    def attach(self, conn: ChargerConnection) -> ChargerConnection | None:
        """Make ``conn`` THE session of its charger; returns the one it replaces, if any."""
        old = self._live.get(conn.charger_id)
        self._live[conn.charger_id] = conn
        if old is not None:
            old.replaced = True
        self._tell(conn.charger_id, True)
        return old

    def detach(self, conn: ChargerConnection) -> None:
        if self._live.get(conn.charger_id) is conn:
            del self._live[conn.charger_id]
            self._tell(conn.charger_id, False)

    def all(self) -> list[ChargerConnection]:
        return list(self._live.values())
