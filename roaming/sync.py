"""Token sync: pull an eMSP's whole token list (or the changes since the last run).

Why page-at-a-time: a list can hold a million tokens; each page is parsed, upserted in
one transaction and dropped before the next is fetched, so memory stays flat whatever
the list size.

Reconciling (mark and sweep): a full run stamps every token it sees with its run id;
only when the crawl reached the last page with every item valid does one UPDATE mark the
partner's other tokens removed (they no longer authorize). A failed run, an incremental
(``date_from``) run, or a run with unparseable items removes nothing: a token we could
not see is not proof that it is gone.

Scheduling: every registered partner with a tokens SENDER interface gets a full run
when its last complete run is older than ``token_sync_interval_s``, right after
registration, and on demand (admin API / ``csms tokens sync``). One run per partner at a
time, across every process on the database: a run holds the partner's job lock
(:class:`~roaming.ports.JobLock`; an advisory lock on PostgreSQL), a process that does
not get it skips, and a scheduled run checks again under the lock that no other process
completed one meanwhile, so the full syncs do not run twice.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog

from roaming.context import RoamingContext
from roaming.errors import RoamingError
from roaming.models import norm, parse_datetime
from roaming.partners import Partner
from roaming.ports import JobLock, LocalJobLock, SyncRun

log = structlog.get_logger("roaming.sync")


def job_name(partner: Partner) -> str:
    """The job lock a partner's runs hold."""
    return f"token_sync:{partner.key}"


class SyncAlreadyRunning(Exception):
    """A run for this partner is in progress; the caller should look at its progress."""


@dataclass(frozen=True, slots=True)
class SyncOutcome:
    run: SyncRun
    ok: bool


class TokenSync:
    def __init__(
        self,
        ctx: RoamingContext,
        *,
        after_registration_delay_s: float = 0.2,
        check_every_s: float | None = None,
        jobs: JobLock | None = None,
    ) -> None:
        self.ctx = ctx
        self.jobs: JobLock = jobs or LocalJobLock()
        self.delay = after_registration_delay_s
        interval = ctx.settings.token_sync_interval_s
        self.check_every_s = check_every_s or max(0.05, min(interval / 10, 60.0))
        self._locks: dict[int, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[object]] = set()
        self._loop_task: asyncio.Task[None] | None = None

    def running(self, partner: Partner) -> bool:
        """Whether a sync for ``partner`` holds its lock now (a new run would be refused)."""
        lock = self._locks.get(partner.id)
        return lock is not None and lock.locked()

    # ------------------------------------------------------------------ one run

    async def run(self, partner: Partner, *, incremental: bool = False) -> SyncOutcome:
        outcome = await self._exclusive(partner, incremental, None)
        assert outcome is not None  # without done_since a run is never skipped as done
        return outcome

    async def run_unless_done(self, partner: Partner, done_since: datetime) -> SyncOutcome | None:
        """A full run, unless a run that started at or after ``done_since`` completed
        (another process did it while this one waited to decide): then None."""
        return await self._exclusive(partner, False, done_since)

    async def _exclusive(
        self, partner: Partner, incremental: bool, done_since: datetime | None
    ) -> SyncOutcome | None:
        lock = self._locks.setdefault(partner.id, asyncio.Lock())
        if lock.locked():
            raise SyncAlreadyRunning(f"a token sync for {partner.key} is already running")
        async with lock, self.jobs.exclusive(job_name(partner)) as mine:
            if not mine:
                raise SyncAlreadyRunning(
                    f"a token sync for {partner.key} is already running on another node"
                )
            if done_since is not None:
                last = await self.ctx.store.token_syncs.last_complete_sync(partner.id)
                if last is not None and parse_datetime(last.started_at) >= done_since:
                    return None
            return await self._run(partner, incremental)

    async def fail_interrupted(self) -> None:
        """Runs left 'running' by a process that stopped mid-run are failed (they removed
        nothing); a run another live process holds the lock of is left alone."""
        for partner in await self.ctx.store.partners.list_partners():
            async with self.jobs.exclusive(job_name(partner)) as mine:
                if mine:
                    await self.ctx.store.token_syncs.fail_stale_runs(partner.id)

    async def _run(self, partner: Partner, incremental: bool) -> SyncOutcome:
        store = self.ctx.store
        date_from = None
        if incremental:
            last = await store.token_syncs.last_complete_sync(partner.id)
            date_from = last.started_at if last else None
        kind = "incremental" if date_from is not None else "full"
        run_id, started_at = await store.token_syncs.start_sync(partner.id, kind, date_from)
        generation = run_id if kind == "full" else 0
        owned = partner.owned_parties()
        pages = seen = invalid = 0
        bound = log.bind(partner=partner.key, run=run_id, kind=kind)
        bound.info("token_sync.started", date_from=date_from)
        try:
            async for page in self.ctx.client.iter_token_pages(
                partner, date_from, self.ctx.settings.token_sync_page_size
            ):
                mine = [t for t in page.tokens if (norm(t.country_code), norm(t.party_id)) in owned]
                foreign = len(page.tokens) - len(mine)
                bad = len(page.invalid) + foreign
                for err in page.invalid[:3]:
                    bound.warning("token_sync.invalid_token", page=pages + 1, error=str(err))
                if foreign:
                    bound.warning("token_sync.foreign_tokens", page=pages + 1, count=foreign)
                await store.token_syncs.sync_page(partner.id, run_id, mine, bad, generation)
                pages += 1
                seen += len(mine)
                invalid += bad
                if pages % 100 == 0:
                    bound.info(
                        "token_sync.progress", pages=pages, tokens=seen, total=page.total_count
                    )
        except (RoamingError, Exception) as exc:
            message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            await store.token_syncs.fail_sync(run_id, f"page {pages + 1}: {message}")
            if isinstance(exc, RoamingError):
                bound.warning("token_sync.failed", pages=pages, tokens=seen, error=message)
            else:
                bound.exception("token_sync.crashed", pages=pages, tokens=seen)
            return SyncOutcome(await self._load(partner.id, run_id), ok=False)
        sweep = kind == "full" and invalid == 0
        removed = await store.token_syncs.finish_sync(partner.id, run_id, started_at, sweep=sweep)
        if kind == "full" and not sweep:
            await store.token_syncs.note_sync(
                run_id, f"{invalid} invalid/foreign tokens: removal skipped"
            )
        bound.info(
            "token_sync.complete", pages=pages, tokens=seen, invalid=invalid, removed=removed
        )
        return SyncOutcome(await self._load(partner.id, run_id), ok=True)

    async def _load(self, partner_id: int, run_id: int) -> SyncRun:
        for run in await self.ctx.store.token_syncs.sync_runs(partner_id, limit=5):
            if run.id == run_id:
                return run
        raise LookupError(f"sync run {run_id} not found")  # pragma: no cover

    # ------------------------------------------------------------------ scheduling

    def schedule_now(self, partner: Partner) -> None:
        """Start a full run in the background (after registration); errors are logged."""

        asked = datetime.now(UTC)

        async def later() -> None:
            await asyncio.sleep(self.delay)
            fresh = await self.ctx.store.partners.partner_by_key(partner.key)
            if fresh is None or fresh.registered is False:
                return
            with contextlib.suppress(SyncAlreadyRunning):
                await self.run_unless_done(fresh, asked)

        task = asyncio.get_running_loop().create_task(later())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def due_partners(self) -> list[Partner]:
        """Partners whose last complete run is missing or older than the interval."""
        out = []
        now = datetime.now(UTC)
        for p in await self.ctx.store.partners.registered_partners_with_tokens_sender():
            last = await self.ctx.store.token_syncs.last_complete_sync(p.id)
            if last is None:
                out.append(p)
                continue
            age = (now - parse_datetime(last.started_at)).total_seconds()
            if age >= self.ctx.settings.token_sync_interval_s:
                out.append(p)
        return out

    async def _loop(self) -> None:
        while True:
            try:
                for partner in await self.due_partners():
                    if self._locks.get(partner.id) and self._locks[partner.id].locked():
                        continue
                    horizon = datetime.now(UTC) - timedelta(
                        seconds=self.ctx.settings.token_sync_interval_s
                    )
                    with contextlib.suppress(SyncAlreadyRunning):
                        await self.run_unless_done(partner, horizon)
            except Exception:
                log.exception("token_sync.scheduler_error")
            await asyncio.sleep(self.check_every_s)

    def start(self) -> None:
        if self._loop_task is None:
            self._loop_task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        tasks = list(self._tasks)
        if self._loop_task is not None:
            tasks.append(self._loop_task)
            self._loop_task = None
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
