"""Keeps every connected charger's Local Authorization List in sync, in the background.

Why one worker per connected charger: a charger answers one call at a time and its list
version must move in order, so its syncs are serial; different chargers are independent
and share only a bound on how many sync at once (``local_lists.concurrency``). Nothing
here runs on a charger's message path: the gateway tells the manager when sessions start
and end, the token store and the own-card writes tell it something changed, and the
workers do the calls.

A worker, after ``connect_delay_s``: reads ``SupportedFeatureProfiles``,
``LocalAuthListMaxLength`` and ``SendLocalListMaxLength`` (GetConfiguration) and the
charger's version (GetLocalListVersion); sends a Full list when that version is not the
one we last had accepted, otherwise the differences; then waits for a change (and
``debounce_s`` more, so a burst of token pushes becomes one update), an operator request
or the renewal tick. A failed sync is retried with backoff. What the charger accepted is
stored per message (:class:`csms.store.local_lists.LocalListRepo`), so a reconnect or a
restart picks up where the last sync stopped. The rules are :mod:`csms.locallist.plan`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from csms import datetimes, logs
from csms.config import LocalListsConfig
from csms.domain.local_lists import Entry, ListState
from csms.domain.tokens import IdTag
from csms.locallist import plan
from csms.locallist.ports import RoamingCard, RoamingCards
from csms.ocpp16 import errors
from csms.ocpp16.gateway import ChargerGateway
from csms.store.local_lists import LocalListRepo

log = logs.get("csms.locallist")

_PROBE_KEYS = ["SupportedFeatureProfiles", "LocalAuthListMaxLength", "SendLocalListMaxLength"]


class OwnCardsHolder(Protocol):
    async def own_cards_changed(self) -> None: ...


class _Retry(Exception):
    """The sync failed in a way worth trying again later (recorded already)."""


class _Offline(Exception):
    """The charger is gone; its next session starts a new worker."""


@dataclass
class _Worker:
    charger_id: str
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    dirty: bool = True
    full: bool = False
    urgent: bool = True
    probed: bool = False
    accepted: int = 0  # messages accepted in the current sync
    held: dict[str, Entry] | None = None  # what the charger holds; read once per session
    task: asyncio.Task[None] | None = None


class LocalListManager:
    """The background side of local lists; :meth:`start` it, always :meth:`stop` it."""

    def __init__(
        self,
        config: LocalListsConfig,
        gateway: ChargerGateway,
        repo: LocalListRepo,
        roaming: RoamingCards | None,
        *,
        clock: Callable[[], datetime] = datetimes.utc_now,
    ) -> None:
        self.config = config
        self.gateway = gateway
        self.repo = repo
        self.roaming = roaming
        self.clock = clock
        self._workers: dict[str, _Worker] = {}
        self._gate = asyncio.Semaphore(config.concurrency)
        self._recent: dict[int, list[RoamingCard]] = {}  # limit -> cards, until a change
        self._generation = 0  # bumped by every change: a query that raced one is not kept
        self._own: tuple[int, list[IdTag]] | None = None  # (generation, Accepted own cards)
        self._unlisten: Callable[[], None] | None = None
        self._renewer: asyncio.Task[None] | None = None
        self._running = False

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._running or not self.config.enabled:
            return
        self._running = True
        self.gateway.watch(self._session)
        if self.roaming is not None:
            self._unlisten = self.roaming.listen(self.changed)
        self._renewer = asyncio.create_task(self._renew_loop(), name="local-lists-renew")
        for charger_id in list(self.gateway.connections()):
            self._session(charger_id, True)

    async def stop(self) -> None:
        self._running = False
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None
        tasks = [w.task for w in self._workers.values() if w.task is not None]
        if self._renewer is not None:
            tasks.append(self._renewer)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._workers.clear()

    # ------------------------------------------------------------------ signals

    def _session(self, charger_id: str, connected: bool) -> None:
        """The gateway's watcher: a session started (new worker) or ended (worker stops)."""
        if not self._running:
            return
        old = self._workers.pop(charger_id, None)
        if old is not None and old.task is not None:
            old.task.cancel()
        if connected:
            worker = _Worker(charger_id)
            worker.task = asyncio.create_task(self._run(worker), name=f"local-list {charger_id}")
            self._workers[charger_id] = worker

    def changed(self) -> None:
        """Tokens or own cards changed: every connected charger re-checks its list."""
        self._recent.clear()
        self._generation += 1
        for worker in self._workers.values():
            worker.dirty = True
            worker.wake.set()

    async def own_cards_changed(self) -> None:
        self.changed()

    def request_full(self, charger_id: str) -> bool:
        """Operator request: send the whole list now; False when the charger is offline."""
        worker = self._workers.get(charger_id)
        if worker is None:
            return False
        worker.full = worker.dirty = worker.urgent = True
        worker.wake.set()
        return True

    def request_check(self, charger_id: str) -> bool:
        """Re-read the charger's configuration and version, then sync (after a mode change)."""
        worker = self._workers.get(charger_id)
        if worker is None:
            return False
        worker.probed = False
        worker.dirty = worker.urgent = True
        worker.wake.set()
        return True

    def pending(self, charger_id: str) -> bool | None:
        """Whether a sync is due for a connected charger; None when it is not connected."""
        worker = self._workers.get(charger_id)
        return None if worker is None else worker.dirty or worker.full

    # ------------------------------------------------------------------ the worker

    async def _run(self, worker: _Worker) -> None:
        cfg = self.config
        await asyncio.sleep(cfg.connect_delay_s)
        retry = cfg.retry_initial_s
        while True:
            if not (worker.dirty or worker.full or not worker.probed):
                await worker.wake.wait()
                worker.wake.clear()
                if not worker.urgent:
                    await asyncio.sleep(cfg.debounce_s)
                continue
            full, worker.full, worker.dirty, worker.urgent = worker.full, False, False, False
            worker.accepted = 0
            try:
                async with self._gate:
                    await self._sync(worker, full=full)
                retry = cfg.retry_initial_s
            except _Offline:
                return
            except _Retry:
                worker.dirty = True
                # A Full list the charger took part of is consistent at the stored version:
                # the rest follows as a Differential, not a new Full from the start.
                worker.full = worker.full or (full and worker.accepted == 0)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._urgent(worker), retry)
                retry = min(retry * 2, cfg.retry_max_s)
            except Exception:
                log.exception("local_list.sync_crashed", charge_point_id=worker.charger_id)
                worker.dirty = True
                await asyncio.sleep(retry)
                retry = min(retry * 2, cfg.retry_max_s)

    async def _urgent(self, worker: _Worker) -> None:
        """Wait until an operator asks for a sync (a retry wait ends early then)."""
        while not worker.urgent:
            await worker.wake.wait()
            worker.wake.clear()

    async def _renew_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.renew_interval_s)
            for worker in self._workers.values():
                worker.dirty = True
                worker.wake.set()

    # ------------------------------------------------------------------ one sync

    async def _call(self, charger_id: str, action: str, payload: dict) -> dict:
        try:
            return await self.gateway.call(charger_id, action, payload)
        except errors.ChargerNotConnected:
            raise _Offline from None
        except errors.GatewayError as exc:
            await self.repo.record_result(charger_id, "failed", f"{action}: {exc}")
            log.warning("local_list.call_failed", action=action, error=str(exc))
            raise _Retry from None

    async def _probe(self, charger_id: str, state: ListState) -> tuple[ListState, bool]:
        """Read the charger's list facts; True when its version is not ours (send Full)."""
        answer = await self._call(charger_id, "GetConfiguration", {"key": _PROBE_KEYS})
        values = {k["key"]: k.get("value") for k in answer.get("configurationKey") or []}
        supported = plan.supports_lists(values.get("SupportedFeatureProfiles"))
        max_length = plan.parse_length(values.get("LocalAuthListMaxLength"), 0) or None
        send_max = plan.parse_length(values.get("SendLocalListMaxLength"), 0) or None
        version: int | None = None
        if supported or state.mode == "on":
            answer = await self._call(charger_id, "GetLocalListVersion", {})
            version = int(answer["listVersion"])
        await self.repo.record_probe(
            charger_id,
            supported=supported and version != -1,
            max_length=max_length,
            send_max_length=send_max,
            charger_version=version,
        )
        state = await self.repo.state(charger_id)
        # Full when the charger's version is not the one we last had accepted, and for a
        # charger that never accepted a list from us (version 0): one message states the
        # whole list rather than assuming the charger's is empty.
        return state, version is not None and (version != state.version or state.version == 0)

    async def _sync(self, worker: _Worker, *, full: bool) -> None:
        cp = worker.charger_id
        if not self.gateway.is_connected(cp):
            raise _Offline
        state = await self.repo.state(cp)
        probed_now = not worker.probed
        if probed_now:
            state, mismatch = await self._probe(cp, state)
            worker.probed = True
            full = full or mismatch
        if state.mode == "off":
            if probed_now:
                await self.repo.record_result(cp, "disabled", "turned off by the operator")
            return
        if state.mode == "auto" and not state.supported:
            if probed_now:
                await self.repo.record_result(
                    cp, "not_supported", "no LocalAuthListManagement in SupportedFeatureProfiles"
                )
            return
        max_length = state.max_length or self.config.default_max_length
        send_max = state.send_max_length or self.config.default_send_max_length
        wanted = await self._wanted(cp, max_length)
        if worker.held is None:
            worker.held = await self.repo.entries(cp)
        held = worker.held
        if full:
            base = max(state.version, state.charger_version or 0)
            sends = plan.plan_full(wanted, base, send_max)
        else:
            renew = plan.expiry_after(self.clock(), self.config.entry_expiry_s // 2)
            updates = plan.differences(held, wanted, renew)
            if not updates:
                if probed_now:
                    await self.repo.record_result(cp, "ok", f"in sync at version {state.version}")
                return
            sends = plan.plan_differential(updates, state.version, send_max)
        await self._send(worker, sends, held, full)

    async def _send(
        self, worker: _Worker, sends: list[plan.Send], held: dict[str, Entry], full: bool
    ) -> None:
        cp = worker.charger_id
        for send in sends:
            answer = await self._call(cp, "SendLocalList", send.payload())
            status = answer.get("status")
            if status == "Accepted":
                held = worker.held = plan.apply(held, send)
                is_full = send.update_type == plan.FULL
                changes: list[tuple[str, Entry | None]] = [
                    (u.id_tag.upper(), u.entry) for u in send.updates
                ]
                # Shielded: the charger holds this now; a disconnect cancelling the worker
                # must not lose the record (offline starts are attributed from it).
                await asyncio.shield(
                    self.repo.accepted(cp, send.version, changes, full=is_full, size=len(held))
                )
                worker.accepted += 1
                continue
            if status == "VersionMismatch" and not full:
                log.info("local_list.version_mismatch", version=send.version)
                worker.full = worker.dirty = True
                await self.repo.record_result(
                    cp, "version_mismatch", f"Differential {send.version} refused; sending Full"
                )
                return
            if status == "NotSupported":
                await self.repo.record_result(cp, "not_supported", "charger answered NotSupported")
                return
            await self.repo.record_result(
                cp, "failed", f"{send.update_type} {send.version} answered {status}"
            )
            raise _Retry
        last = sends[-1]
        kind = "Full" if full else "Differential"
        await self.repo.record_result(
            cp,
            "ok",
            f"{kind} in {len(sends)} message(s) to version {last.version}, {len(held)} entries",
        )
        log.info(
            "local_list.synced",
            kind=kind,
            version=last.version,
            size=len(held),
            messages=len(sends),
        )

    async def _wanted(self, charger_id: str, max_length: int) -> list[Entry]:
        now = self.clock()
        candidates: list[plan.Candidate] = []
        for card in await self._own_cards():
            expiry = datetimes.parse(card.expiry_date)
            if card.expiry_date and (expiry is None or expiry <= now):
                continue
            if not plan.fits(card.id_tag, card.parent_id_tag):
                continue
            own_expiry = datetimes.seconds(expiry) if expiry is not None else None
            candidates.append(
                plan.Candidate(
                    Entry(card.id_tag, "Accepted", own_expiry, card.parent_id_tag),
                    card.updated_at,
                )
            )
        if self.roaming is not None:
            uses = await self.repo.recent_uses(charger_id, max_length)
            cards = [*await self._recently_updated(max_length)]
            cards += await self.roaming.by_uids(list(uses))
            expiry_date = plan.expiry_after(now, self.config.entry_expiry_s)
            for c in cards:
                entry = Entry(
                    c.uid, "Accepted", expiry_date, plan.parent_of(c.group_id), c.partner_key
                )
                candidates.append(plan.Candidate(entry, c.last_updated, uses.get(c.uid.upper())))
        return plan.select(candidates, max_length)

    async def _own_cards(self) -> list[IdTag]:
        """Read once per change and shared by every charger's sync."""
        held = self._own
        if held is not None and held[0] == self._generation:
            return held[1]
        generation = self._generation
        cards = await self.repo.own_cards()
        self._own = (generation, cards)
        return cards

    async def _recently_updated(self, limit: int) -> list[RoamingCard]:
        """Shared by every charger syncing after the same change (one query, not one each)."""
        assert self.roaming is not None
        cards = self._recent.get(limit)
        if cards is None:
            generation = self._generation
            cards = list(await self.roaming.recently_updated(limit))
            if generation == self._generation:
                if len(self._recent) > 16:
                    self._recent.clear()
                self._recent[limit] = cards
        return cards


class FollowOwnCards:
    """Tells every holder after a write to ``id_tags`` (the admin API's own-card hook):
    the authorizer's in-memory cards and the lists both follow."""

    def __init__(self, *holders: OwnCardsHolder) -> None:
        self.holders = holders

    async def own_cards_changed(self) -> None:
        for holder in self.holders:
            await holder.own_cards_changed()
