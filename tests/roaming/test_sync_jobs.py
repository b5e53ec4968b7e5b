"""A partner's token sync is one job: a second process holding the same job lock skips,
a scheduled run finds another process's fresh run and does not repeat it, and a run
left 'running' is failed at start-up only when nobody holds its lock.

Two :class:`TokenSync` objects over one store and one job lock stand for two processes
(the PostgreSQL advisory lock itself is tested with the cluster core; the end-to-end
test with two ``csms serve`` nodes is ``tests/e2e/cluster/test_token_sync_once.py``).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from roaming.ports import LocalJobLock
from roaming.sync import SyncAlreadyRunning, TokenSync, job_name


def token_gets(emsp) -> int:
    return len([r for r in emsp.requests if r.path.endswith("/tokens") and r.method == "GET"])


async def test_a_run_is_refused_while_another_process_holds_the_partners_job(registered):
    cpo, emsp = registered
    emsp.generate_tokens(5, seed=11)
    partner = await cpo.partner()
    jobs = LocalJobLock()
    other = TokenSync(cpo.ctx, jobs=jobs)
    mine = TokenSync(cpo.ctx, jobs=jobs)
    gets = token_gets(emsp)
    async with jobs.exclusive(job_name(partner)) as held:
        assert held
        with pytest.raises(SyncAlreadyRunning, match="another node"):
            await mine.run(partner)
        with pytest.raises(SyncAlreadyRunning):
            await mine.run_unless_done(partner, datetime.now(UTC))
    assert token_gets(emsp) == gets  # the eMSP was not asked
    assert (await other.run(partner)).ok  # released: the next run goes ahead


async def test_a_scheduled_run_skips_what_another_process_completed_meanwhile(registered):
    cpo, emsp = registered
    emsp.generate_tokens(5, seed=12)
    partner = await cpo.partner()
    jobs = LocalJobLock()
    # This process found the partner due here (runs are stamped to the second)...
    due_since = datetime.now(UTC).replace(microsecond=0)
    assert (await TokenSync(cpo.ctx, jobs=jobs).run(partner)).ok  # ...another ran it
    gets = token_gets(emsp)
    assert await TokenSync(cpo.ctx, jobs=jobs).run_unless_done(partner, due_since) is None
    assert token_gets(emsp) == gets
    # A run completed before the horizon does not count: the run goes ahead.
    outcome = await TokenSync(cpo.ctx, jobs=jobs).run_unless_done(partner, datetime.now(UTC))
    assert outcome is not None and outcome.ok


async def test_only_runs_nobody_holds_are_failed_at_start_up(registered):
    cpo, _emsp = registered
    partner = await cpo.partner()
    jobs = LocalJobLock()
    run_id, _ = await cpo.store.token_syncs.start_sync(partner.id, "full", None)
    async with jobs.exclusive(job_name(partner)):  # a live process runs it
        await TokenSync(cpo.ctx, jobs=jobs).fail_interrupted()
        [run] = [r for r in await cpo.store.token_syncs.sync_runs(partner.id) if r.id == run_id]
        assert run.status == "running"
    await TokenSync(cpo.ctx, jobs=jobs).fail_interrupted()  # its process is gone
    [run] = [r for r in await cpo.store.token_syncs.sync_runs(partner.id) if r.id == run_id]
    assert run.status == "failed" and "interrupted" in (run.error or "")
