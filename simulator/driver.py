"""The charger's own initiative: boot, authorize, data transfer, going offline and back.

Why follow-up tasks are run from here: the answers to the CSMS's calls never await a CALL
of their own (the library's receive loop is serial per socket: that would deadlock until
the timeout), so the work they trigger is spawned here, kept referenced, and its failures
recorded, and closing the charger cancels it.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

import structlog

from simulator.errors import SimulatorError
from simulator.failover import FailoverPolicy, jittered_backoff
from simulator.session import Session, Step
from simulator.state import ChargerState
from simulator.status import StatusReporter
from simulator.transactions import TransactionFlow
from simulator.wire import utc_now

log = structlog.get_logger("simulator")


class Driver:
    """Everything the charger starts by itself; the parts it drives are public."""

    def __init__(
        self,
        state: ChargerState,
        session: Session,
        statuses: StatusReporter,
        flow: TransactionFlow,
    ) -> None:
        self.state = state
        self.session = session
        self.statuses = statuses
        self.flow = flow
        self._tasks: set[asyncio.Task[Any]] = set()
        self._log = log.bind(cp_id=state.identity.cp_id)
        self.policy: FailoverPolicy | None = None
        self._closing = False
        self._rng = random.Random()

    def fail_over_on_loss(self, policy: FailoverPolicy, seed: int | None = None) -> None:
        """From now on a socket the CSMS side loses makes the charger look for the next URL
        by itself (:meth:`failover`), as a charger in the field does."""
        self.policy = policy
        if seed is not None:
            self._rng = random.Random(seed)
        self.session.on_lost = self._lost

    def _lost(self) -> None:
        if self._closing or self.policy is None or "failover" in self.follow_ups():
            return
        self.spawn(self.failover(), "failover")

    async def boot(
        self,
        *,
        retry: bool = False,
        attempts: int = 5,
        max_wait_s: float | None = None,
        announce: bool = False,
    ) -> dict[str, Any]:
        """BootNotification; with ``retry`` resend after the CSMS's interval while not Accepted.

        ``max_wait_s`` caps the wait between attempts (tests). ``announce`` sends
        StatusNotification for connector 0 and every connector once Accepted. Returns the
        last response; the heartbeat loop starts on Accepted.
        """
        state, identity = self.state, self.state.identity
        payload = {
            "chargePointVendor": identity.vendor,
            "chargePointModel": identity.model,
            "chargePointSerialNumber": identity.serial,
            "firmwareVersion": identity.firmware,
        }
        response: dict[str, Any] = {}
        for attempt in range(max(1, attempts if retry else 1)):
            response = await self.session.request("BootNotification", payload)
            state.registration = response.get("status")
            interval = int(response.get("interval") or 0)
            if state.registration == "Accepted":
                state.boot_count += 1
                if interval > 0:
                    state.heartbeat_interval = interval
                    state.config.set("HeartbeatInterval", str(interval))
                self.session.start_heartbeat()
                if announce:
                    for cid in state.connectors:
                        await self.statuses.send(cid)
                self.session.notify()
                return response
            if not retry or attempt == attempts - 1:
                break
            wait = interval if interval > 0 else 10
            await asyncio.sleep(min(wait, max_wait_s) if max_wait_s is not None else wait)
        self.session.notify()
        return response

    async def authorize(self, id_tag: str) -> dict[str, Any]:
        """Authorize; while offline the charger decides itself (:meth:`local_decision`)."""
        if not self.session.connected:
            return {"idTagInfo": self.local_decision(id_tag)}
        response = await self.session.request("Authorize", {"idTag": id_tag})
        info = response.get("idTagInfo")
        if isinstance(info, dict):
            self.state.auth_cache[id_tag] = info
        return response

    def local_decision(self, id_tag: str) -> dict[str, Any]:
        """What an offline charger decides (OCPP 1.6 §3.4/§3.5): its Local Authorization
        List first (LocalAuthorizeOffline), then its cache (AuthorizationCacheEnabled),
        an expired entry counting as Expired; an unknown idTag is Accepted only with
        AllowOfflineTxForUnknownId. The list is matched case-insensitively (CiString)."""
        state, config = self.state, self.state.config
        sources: list[dict[str, dict[str, Any]]] = []
        if config.get_bool("LocalAuthorizeOffline", True) and config.get_bool(
            "LocalAuthListEnabled", True
        ):
            sources.append(state.local_list)
        if config.get_bool("AuthorizationCacheEnabled", True):
            sources.append(state.auth_cache)
        for table in sources:
            info = _lookup(table, id_tag)
            if info is None:
                continue
            expiry = info.get("expiry_date") or info.get("expiryDate")
            if info.get("status") == "Accepted" and expiry and _passed(expiry):
                return {"status": "Expired"}
            return {"status": info.get("status", "Invalid")}
        if config.get_bool("AllowOfflineTxForUnknownId", False):
            return {"status": "Accepted"}
        return {"status": "Invalid"}

    async def data_transfer(
        self, vendor_id: str, message_id: str | None = None, data: str | None = None
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {"vendorId": vendor_id}
        if message_id is not None:
            payload["messageId"] = message_id
        if data is not None:
            payload["data"] = data
        return await self.session.request("DataTransfer", payload)

    # ----------------------------------------------------------------- online, offline

    async def close(self) -> None:
        """Stop every background task and close the socket; safe to call twice."""
        self._closing = True
        for task in list(self._tasks):
            if task is not asyncio.current_task():
                task.cancel()
        self.flow.stop_meter_loops()
        self.session.stop_heartbeat()
        await self.session.drop()

    async def disconnect(self) -> None:
        """Go offline on purpose: transaction messages are queued until :meth:`reconnect`."""
        self.session.stop_heartbeat()
        await self.session.drop()

    async def reconnect(self, *, boot: bool = False, replay: bool = True) -> list[Step]:
        """Open a new socket; optionally boot; replay the offline queue in order.

        Returns the replay steps. Connector statuses that changed while offline are
        reported after the replay, as a real charger does once it is back.
        """
        await self.session.drop()
        await self.session.open()
        if boot:
            await self.boot()
        elif self.state.registration == "Accepted":
            self.session.start_heartbeat()
        steps = await self.flow.replay_queue() if replay else []
        await self.statuses.send_changed()
        return steps

    async def failover(self, policy: FailoverPolicy | None = None) -> list[Step]:
        """Reconnect to the next URL (round robin) until one boots us, then replay.

        Each attempt waits a jittered, doubling time first (bounded by ``policy.max_s``),
        opens the next URL, sends BootNotification as a charger back from a lost link
        does, replays the messages that were queued or unanswered when the link died
        (new message ids, same content), and reports changed statuses. Raises the last
        error once ``policy.attempts`` attempts failed.
        """
        policy = policy or self.policy or FailoverPolicy()
        attempt = 0
        while True:
            await asyncio.sleep(
                jittered_backoff(attempt, policy.initial_s, policy.max_s, self._rng)
            )
            url = self.session.next_url()
            try:
                steps = await self.reconnect(boot=True)
            except SimulatorError as exc:
                attempt += 1
                self._log.debug("sim.failover_attempt_failed", url=url, error=str(exc))
                if policy.attempts is not None and attempt >= policy.attempts:
                    raise
                continue
            self._log.debug("sim.failed_over", url=url, replayed=len(steps), attempts=attempt + 1)
            return steps

    # ----------------------------------------------------------------- follow-ups

    def follow_ups(self) -> list[str]:
        """Names of follow-up tasks still running (``remote-start``, ``reset``, ``firmware``...)."""
        return [t.get_name() for t in self._tasks if not t.done()]

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str = "") -> asyncio.Task[Any]:
        """Run follow-up work off the receive loop, keep a reference, record failures."""
        task = asyncio.create_task(coro, name=name or None)
        self._tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                exc = t.exception()
                assert exc is not None
                self.session.errors.append(exc)
                self._log.warning("sim.follow_up_failed", task=name, error=str(exc))

        task.add_done_callback(done)
        return task


def _lookup(table: dict[str, dict[str, Any]], id_tag: str) -> dict[str, Any] | None:
    found = table.get(id_tag)
    if found is not None:
        return found
    wanted = id_tag.upper()
    return next((v for k, v in table.items() if k.upper() == wanted), None)


def _passed(expiry: str) -> bool:
    try:
        moment = datetime.fromisoformat(expiry.replace("Z", "+00:00"))
    except ValueError:
        return True  # an unreadable expiry is not trusted
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment <= utc_now()
