"""The durable outbox: pushes to partners that survive outages, in order, exactly once.

Why an outbox and not a direct call: the OCPP event that causes a push (a StartTransaction,
a StopTransaction) is committed by the CSMS inside one store transaction; writing the push
as a row in that SAME transaction (:func:`enqueue`) makes "stored but never announced"
impossible, and a worker delivers later with retries. OCPI itself says failed pushes are
not retried (receivers re-sync by GET); we retry anyway, bounded, because eMSPs that only
listen would otherwise lose Sessions and CDRs, and we also serve the Sender GET lists.

Ordering: messages are delivered in ``id`` order per ``(partner_key, object_key)`` (a
Session's PUT before its PATCHes); different objects are independent and go in parallel.
A message that exhausted its attempts becomes ``dead`` and keeps blocking its object (a
later PATCH must not overtake a lost PUT) until an operator retries or drops it
(``csms outbox``).

Outcomes (from :class:`Transport`): ``delivered`` · ``rejected`` (a definite refusal, e.g.
OCPI 2001: retrying cannot help, the next message of the object proceeds) · ``skipped``
(the partner has no RECEIVER endpoint for the module: it pulls instead) · retry with backoff
· ``wait`` (nothing sent yet, come back later; not an attempt).

Exactly once across crashes: before an attempt's request leaves, the message is marked
in flight in the store (committed); recording the outcome clears the mark. A message
still marked when it is read again had an attempt whose answer nobody recorded (the
process was killed, or stopped, while the request was out), so it counts as ambiguous,
exactly like an attempt that failed ambiguously in a live process.

Idempotency: a CDR POST is not idempotent. When an earlier attempt was ambiguous (timeout,
connection dropped, HTTP 5xx, or in flight at a crash: the eMSP may have stored it), the
next attempt first looks the CDR up at the eMSP: at the URL the eMSP returned for it if we
have one, else at the two URL shapes eMSPs use (``{cdrs_url}/{cc}/{party}/{cdr_id}`` and
``{cdrs_url}/{cdr_id}``). A CDR with our id there counts as delivered; a definite "not
here" (HTTP 4xx, or an answer without it) at every URL lets the POST go; no definite answer
(timeout, connection trouble, 5xx) sends nothing and tries again later, still ambiguous.
An answer to the POST saying the CDR already exists (HTTP 409, or a refusal mentioning
"exist") also counts as delivered.

The lookup of a CDR that was in flight at a crash waits until the request is as old as our
own timeout for its answer: an eMSP still working on the POST when we restarted would
answer "not here" too early, and a second POST would follow.

Several processes (nodes sharing one database) may run a worker each on one outbox: a
worker takes the messages it delivers by claiming them (:meth:`OutboxStore.claim`), so no
message is delivered by two at once and per-object order holds across them; a message
left in flight by a process that died is taken over by another and is ambiguous there
(looked up first). Releasing held pushes (``release_held``) runs on one process at a
time when a :class:`~roaming.ports.JobLock` is given: two releasing one Session at once
would fill and let go its pushes twice.

Sessions need no lookup: a PUT replaces the whole object and a PATCH sets fields, so
re-sending an in-flight one is harmless, and per-object order (the marked message stays
``pending``, first in line) keeps a PATCH from overtaking its PUT across a restart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import structlog

from roaming.client import OcpiClient, join_url
from roaming.errors import InvalidResponse, PartnerRejected, PartnerUnreachable
from roaming.models import InterfaceRole
from roaming.ports import JobLock, PartnerDirectory, SqlExecutor
from roaming.store.outbox import OutboxMessage, OutboxStore, Status, insert_message, parse_stamp

log = structlog.get_logger("roaming.outbox")

BROADCAST = "*"


def utcnow() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------- outcomes


@dataclass(frozen=True, slots=True)
class Delivered:
    location: str | None = None


@dataclass(frozen=True, slots=True)
class Rejected:
    error: str


@dataclass(frozen=True, slots=True)
class Skipped:
    reason: str


@dataclass(frozen=True, slots=True)
class Retry:
    error: str
    ambiguous: bool  # the partner may have acted on the request


@dataclass(frozen=True, slots=True)
class Wait:
    """Nothing sent yet: come back in ``delay_s`` (not an attempt; the message stays
    ambiguous)."""

    reason: str
    delay_s: float


Outcome = Delivered | Rejected | Skipped | Retry | Wait


def backoff(attempts: int, initial_s: float, max_s: float) -> float:
    """Exponential: initial, 2x, 4x, ... capped at ``max_s`` (attempts counts from 1)."""
    return float(min(max_s, initial_s * (2 ** max(0, attempts - 1))))


# --------------------------------------------------------------------------- enqueue


async def enqueue(
    tx: SqlExecutor,
    *,
    partner_key: str,
    module: str,
    method: str,
    path: Sequence[str],
    body: dict[str, Any],
    object_key: str,
    now: datetime | None = None,
    held_reason: str | None = None,
) -> int:
    """Write one push inside the caller's transaction; ``partner_key`` may be ``BROADCAST``.

    A push with a ``held_reason`` is kept but not delivered until released (see
    :mod:`roaming.store.outbox`, held pushes).
    """
    return await insert_message(
        tx,
        partner_key=partner_key,
        module=module,
        method=method,
        path="/".join(path),
        body=body,
        object_key=object_key,
        now=now or utcnow(),
        held_reason=held_reason,
    )


# --------------------------------------------------------------------------- transport


class Transport(Protocol):
    async def receivers(self, module: str) -> list[str]:
        """Keys of registered partners with a RECEIVER endpoint for ``module``."""
        ...

    async def deliver(self, msg: OutboxMessage) -> Outcome:
        """One attempt; never raises for partner trouble (that is an Outcome)."""
        ...


class OcpiTransport:
    """Delivers through :class:`~roaming.client.OcpiClient` to the partner's endpoint *now*
    (resolved at delivery time, so a credentials update redirects queued messages)."""

    def __init__(
        self,
        partners: PartnerDirectory,
        client: OcpiClient,
        timeout_s: float | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.partners = partners
        self.client = client
        self.timeout_s = timeout_s
        self.clock = clock

    async def receivers(self, module: str) -> list[str]:
        out = []
        for p in await self.partners.list_partners():
            if p.registered and p.endpoint(module, InterfaceRole.RECEIVER):
                out.append(p.key)
        return out

    def _routing(self, partner: Any) -> dict[str, str]:
        headers = {
            "OCPI-to-country-code": partner.country_code,
            "OCPI-to-party-id": partner.party_id,
        }
        if self.client.from_country_code and self.client.from_party_id:
            headers["OCPI-from-country-code"] = self.client.from_country_code
            headers["OCPI-from-party-id"] = self.client.from_party_id
        return headers

    async def deliver(self, msg: OutboxMessage) -> Outcome:
        partner = await self.partners.partner_by_key(msg.partner_key)
        if partner is None:
            return Skipped(f"partner {msg.partner_key} no longer exists")
        if not partner.registered:
            return Retry(f"partner {msg.partner_key} is {partner.status.value}", ambiguous=False)
        base = partner.endpoint(msg.module, InterfaceRole.RECEIVER)
        if base is None:
            return Skipped(f"partner has no {msg.module} RECEIVER endpoint (it pulls by GET)")
        segments = [s for s in msg.path.split("/") if s] if msg.path else []
        url = join_url(base, *segments)
        routing = self._routing(partner)
        is_cdr_post = msg.module == "cdrs" and msg.method == "POST"
        if is_cdr_post and msg.in_flight_at is not None:
            timeout = self.client.timeout_s if self.timeout_s is None else self.timeout_s
            age = (self.clock() - parse_stamp(msg.in_flight_at)).total_seconds()
            if age < timeout:
                return Wait(
                    "in flight when the process stopped: looked up once its answer is overdue",
                    timeout - age,
                )
        if is_cdr_post and msg.ambiguous:
            lookup = await self._cdr_already_there(partner, base, msg)
            if isinstance(lookup, Delivered):
                return lookup
            if lookup is not None:
                return Retry(
                    f"looking the CDR up before sending it again: {lookup}", ambiguous=True
                )
        try:
            resp = await self.client.request(
                msg.method, partner, url, json=msg.body, routing=routing, timeout_s=self.timeout_s
            )
        except PartnerUnreachable as exc:
            # A refused connection never reached the partner; anything else may have.
            sent = "ClientConnectorError" not in exc.message
            return Retry(exc.message, ambiguous=sent)
        except InvalidResponse as exc:
            return Retry(exc.message, ambiguous=True)
        except PartnerRejected as exc:
            if exc.http_status in (401, 403, 0):
                return Retry(exc.message, ambiguous=False)  # credentials trouble: fixable
            if is_cdr_post and (exc.http_status == 409 or "exist" in exc.message.lower()):
                return Delivered(None)
            return Rejected(exc.message)
        location = resp.headers.get("Location") if is_cdr_post else None
        return Delivered(location)

    async def _cdr_already_there(
        self, partner: Any, base: str, msg: OutboxMessage
    ) -> Delivered | str | None:
        """Look the CDR up at the eMSP before POSTing it again (see the module docstring).

        ``Delivered`` (with its URL) when the eMSP has it; None when every URL answered
        definitely without it (the POST may go); otherwise the error that left it open.
        """
        cdr_id = str(msg.body.get("id", ""))
        if not cdr_id:
            return None
        cc = str(msg.body.get("country_code") or self.client.from_country_code or "")
        pid = str(msg.body.get("party_id") or self.client.from_party_id or "")
        candidates = [msg.location] if msg.location else []
        if cc and pid:
            candidates.append(join_url(base, cc, pid, cdr_id))
        candidates.append(join_url(base, cdr_id))
        unknown: str | None = None
        for url in dict.fromkeys(candidates):
            try:
                resp = await self.client.request(
                    "GET", partner, url, routing=self._routing(partner), timeout_s=self.timeout_s
                )
            except PartnerUnreachable as exc:
                unknown = exc.message  # no answer: the CDR may be there
                continue
            except (PartnerRejected, InvalidResponse):
                continue  # a definite answer, and not our CDR
            data = resp.data
            if isinstance(data, dict) and str(data.get("id", "")).upper() == cdr_id.upper():
                return Delivered(url)
        return unknown


# --------------------------------------------------------------------------- worker


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    initial_s: float = 2.0
    max_s: float = 600.0
    max_attempts: int = 100


class OutboxWorker:
    """Delivers due messages; woken by :meth:`notify` after a commit or by its poll timer."""

    def __init__(
        self,
        store: OutboxStore,
        transport: Transport,
        *,
        policy: RetryPolicy | None = None,
        poll_interval_s: float = 5.0,
        concurrency: int = 16,
        batch: int = 100,
        clock: Callable[[], datetime] = utcnow,
        release_held: Callable[[datetime], Awaitable[int]] | None = None,
        jobs: JobLock | None = None,
    ) -> None:
        self.store = store
        # Run before every round: releases held pushes whose missing part has appeared
        # (e.g. a connector was mapped, by whatever means), so they go in the same round;
        # as job ``outbox_release`` of ``jobs`` when given (skipped while another runs it).
        self.release_held = release_held
        self.jobs = jobs
        self.transport = transport
        self.policy = policy or RetryPolicy()
        self.poll_interval_s = poll_interval_s
        self.batch = batch
        self.clock = clock
        self._sem = asyncio.Semaphore(concurrency)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # One round at a time: a round may take this process's own claims again (those
        # of a round that failed, or of an earlier life), never one still being handled.
        self._round = asyncio.Lock()

    def notify(self) -> None:
        self._wake.set()

    async def run_once(self) -> int:
        """Handle every message due now that this process could claim (heads only);
        returns how many were handled."""
        async with self._round:
            if self.release_held is not None:
                try:
                    await self._release(self.release_held)
                except Exception:
                    log.exception("outbox.release_failed")
            heads = await self.store.claim(self.clock(), self.batch)
            if not heads:
                return 0
            await asyncio.gather(*(self._handle(m) for m in heads))
            return len(heads)

    async def _release(self, release: Callable[[datetime], Awaitable[int]]) -> None:
        if self.jobs is None:
            await release(self.clock())
            return
        async with self.jobs.exclusive("outbox_release") as held:
            if held:
                await release(self.clock())

    async def _handle(self, msg: OutboxMessage) -> None:
        async with self._sem:
            try:
                if msg.partner_key == BROADCAST:
                    keys = await self.transport.receivers(msg.module)
                    await self.store.expand(msg, keys, self.clock())
                    return
                if msg.in_flight_at is not None:
                    # Its last attempt has no recorded outcome (this process's earlier
                    # life, or another that died): it may have reached the partner.
                    log.warning(
                        "outbox.in_flight_taken",
                        message_id=msg.id,
                        module=msg.module,
                        object=msg.object_key,
                        in_flight_at=msg.in_flight_at,
                    )
                # Committed before the request leaves: a crash from here on leaves the
                # message marked, and the next process treats it as ambiguous.
                if not await self.store.mark_in_flight(msg.id, self.clock()):
                    log.warning("outbox.claim_lost", message_id=msg.id, object=msg.object_key)
                    return
                outcome = await self.transport.deliver(msg)
                await self._record(msg, outcome)
            except Exception:
                # A bug or a store error: log it, leave the message pending for the next round.
                log.exception("outbox.handle_failed", message_id=msg.id)

    async def _record(self, msg: OutboxMessage, outcome: Outcome) -> None:
        now = self.clock()
        fields = {
            "message_id": msg.id,
            "partner": msg.partner_key,
            "module": msg.module,
            "method": msg.method,
            "object": msg.object_key,
        }
        if isinstance(outcome, Wait):
            await self.store.reschedule(
                msg.id,
                msg.attempts,
                now + timedelta(seconds=outcome.delay_s),
                outcome.reason,
                ambiguous=True,
                dead=False,
            )
            log.info("outbox.wait", reason=outcome.reason, wait_s=outcome.delay_s, **fields)
            return
        if isinstance(outcome, Retry):
            attempts = msg.attempts + 1
            dead = attempts >= self.policy.max_attempts
            delay = backoff(attempts, self.policy.initial_s, self.policy.max_s)
            await self.store.reschedule(
                msg.id,
                attempts,
                now + timedelta(seconds=delay),
                outcome.error,
                ambiguous=outcome.ambiguous or msg.ambiguous,
                dead=dead,
            )
            log.warning(
                "outbox.dead" if dead else "outbox.retry",
                attempts=attempts,
                retry_in_s=None if dead else delay,
                error=outcome.error,
                **fields,
            )
            return
        if isinstance(outcome, Delivered):
            await self.store.mark_delivered(msg, msg.attempts + 1, now, outcome.location)
            log.info("outbox.delivered", attempts=msg.attempts + 1, **fields)
        elif isinstance(outcome, Rejected):
            await self.store.mark_finished(
                msg.id, Status.REJECTED, msg.attempts + 1, now, outcome.error
            )
            log.warning("outbox.rejected", error=outcome.error, **fields)
        else:  # skipped: no attempt was made
            await self.store.mark_finished(
                msg.id, Status.SKIPPED, msg.attempts, now, outcome.reason
            )
            log.info("outbox.skipped", reason=outcome.reason, **fields)

    async def run(self) -> None:
        try:
            uncertain = await self.store.in_flight()
        except Exception:
            uncertain = 0
        if uncertain:
            # Left by a process that ended mid-request; each is looked up or re-sent.
            log.warning("outbox.in_flight_at_start", messages=uncertain)
        while True:
            try:
                handled = await self.run_once()
            except Exception:
                log.exception("outbox.round_failed")
                handled = 0
            if handled:
                continue
            self._wake.clear()
            timeout = self.poll_interval_s
            nxt = await self._seconds_to_next_due()
            if nxt is not None:
                timeout = max(0.0, min(timeout, nxt))
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                pass

    async def _seconds_to_next_due(self) -> float | None:
        try:
            nxt = await self.store.next_due()
        except Exception:
            return None
        if not nxt:
            return None
        return (parse_stamp(nxt) - self.clock()).total_seconds()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="ocpi-outbox")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
