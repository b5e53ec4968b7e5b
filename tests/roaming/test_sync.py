"""Token sync against the eMSP sandbox's paginated Sender list (page size 10)."""

from __future__ import annotations

from roaming.ports import SyncRun
from roaming.sync import SyncAlreadyRunning
from tests.support.waiting import wait_until


async def test_full_sync_across_pages_then_removals(registered):
    cpo, emsp = registered
    emsp.generate_tokens(25, seed=3)
    partner = await cpo.partner()
    outcome = await cpo.sync.run(partner)
    assert outcome.ok and outcome.run.status == "complete"
    assert outcome.run.pages == 3 and outcome.run.tokens_seen == 25
    list_calls = [r for r in emsp.requests if r.path.endswith("/tokens") and r.method == "GET"]
    assert len(list_calls) == 3
    assert {r.token for r in list_calls} == {emsp.peer.token_in}
    assert await cpo.store.tokens.count_tokens(partner.id, removed=False) == 25

    # The eMSP drops 7 tokens: the next full sync marks exactly those removed.
    keep = [r.token for r in emsp.tokens.records()][:18]
    gone = [r.token for r in emsp.tokens.records()][18:]
    emsp.tokens.clear()
    emsp.add_tokens(keep)
    outcome = await cpo.sync.run(partner)
    assert outcome.ok and outcome.run.tokens_removed == 7
    assert await cpo.store.tokens.count_tokens(partner.id, removed=True) == 7
    [stored] = await cpo.store.tokens.get_token(gone[0]["uid"], gone[0]["type"])
    assert stored.removed is True
    [stored] = await cpo.store.tokens.get_token(keep[0]["uid"], keep[0]["type"])
    assert stored.removed is False

    # A removed token that comes back (pushed again) is live again.
    emsp.add_tokens([gone[0]])
    await emsp.push_token(gone[0]["uid"], gone[0]["type"])
    [stored] = await cpo.store.tokens.get_token(gone[0]["uid"], gone[0]["type"])
    assert stored.removed is False


async def test_sync_failing_on_page_3_removes_nothing(registered):
    cpo, emsp = registered
    emsp.generate_tokens(30, seed=4)
    partner = await cpo.partner()
    assert (await cpo.sync.run(partner)).ok
    emsp.tokens.clear()
    emsp.generate_tokens(25, seed=5, uid_pattern="05{n:010X}")  # all different
    emsp.fail_tokens_page(3)
    outcome = await cpo.sync.run(partner)
    assert not outcome.ok and outcome.run.status == "failed"
    assert outcome.run.pages == 2
    assert "page 3" in (outcome.run.error or "") and "500" in (outcome.run.error or "")
    assert await cpo.store.tokens.count_tokens(partner.id, removed=True) == 0
    # Pages 1-2 were stored (upserts are safe), nothing old was lost.
    assert await cpo.store.tokens.count_tokens(partner.id) == 30 + 20


async def test_incremental_sync_uses_date_from_and_never_removes(registered):
    cpo, emsp = registered
    emsp.generate_tokens(12, seed=6)
    partner = await cpo.partner()
    assert (await cpo.sync.run(partner)).ok
    emsp.tokens.clear()  # would remove all 12 on a full sync
    emsp.add_token("NEW-1")
    outcome = await cpo.sync.run(partner, incremental=True)
    assert outcome.ok and outcome.run.kind == "incremental"
    assert outcome.run.date_from is not None
    last = [r for r in emsp.requests if r.path.endswith("/tokens")][-1]
    assert last.query.get("date_from") == outcome.run.date_from
    assert outcome.run.tokens_removed == 0
    assert await cpo.store.tokens.count_tokens(partner.id, removed=True) == 0


async def test_invalid_items_are_reported_and_block_removal(registered):
    cpo, emsp = registered
    emsp.generate_tokens(5, seed=7)
    partner = await cpo.partner()
    assert (await cpo.sync.run(partner)).ok
    emsp.tokens.clear()
    emsp.add_tokens([{"country_code": "NL", "party_id": "EMS", "uid": "BROKEN", "type": "RFID"}])
    emsp.add_token("GOOD-1")
    outcome = await cpo.sync.run(partner)
    assert outcome.ok
    assert outcome.run.tokens_seen == 1 and outcome.run.tokens_invalid == 1
    assert outcome.run.tokens_removed == 0
    assert "removal skipped" in (outcome.run.error or "")


async def test_sync_after_registration_and_one_run_at_a_time(cpo, emsp):
    emsp.generate_tokens(15, seed=8)
    cpo.ctx.on_registered.append(cpo.sync.schedule_now)
    await emsp.register_with(cpo.versions_url, await cpo.invite())
    partner = await cpo.partner()
    await emsp.wait_until(
        lambda: len([r for r in emsp.requests if r.path.endswith("/tokens")]) >= 2
    )

    async def completed_runs() -> list[SyncRun]:
        runs = await cpo.store.token_syncs.sync_runs(partner.id)
        return runs if runs and runs[0].status == "complete" else []

    runs = await wait_until(completed_runs, what="the sync run after registration to complete")
    assert runs[0].tokens_seen == 15
    # A second run while one is in progress is refused, not queued.
    lock = cpo.sync._locks[partner.id]
    async with lock:
        try:
            await cpo.sync.run(partner)
        except SyncAlreadyRunning:
            pass
        else:
            raise AssertionError("second concurrent run was not refused")
