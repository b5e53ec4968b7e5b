"""Held pushes (a Session waiting for a location): listed with their reason, never sent,
not due (the worker does not spin on them), and once completed and released, delivered
in their order."""

from __future__ import annotations

from roaming import outbox
from roaming.store.outbox import held_messages, release_held, set_held_body
from tests.e2e.roaming.test_outbox import drain_until, put, rig  # noqa: F401

REASON = "waiting for location: CP9 connector 1 has no EVSE"


async def test_held_pushes_wait_listed_and_go_in_order_once_released(rig):  # noqa: F811
    emsp, db, store, worker = rig
    async with db.transaction() as tx:
        held = [
            await outbox.enqueue(
                tx,
                partner_key="NL-EMS",
                module="sessions",
                method=method,
                path=["NL", "CPO", "S1"],
                body={"n": n},
                object_key="session:S1",
                held_reason=REASON,
            )
            for method, n in (("PUT", 1), ("PATCH", 2))
        ]
    other = await put(db, "PATCH", ["NL", "CPO", "S2"], {"n": 3}, "session:S2", "sessions")
    assert [m.id for m in await store.heads(outbox.utcnow(), 10)] == [other]
    listed = {m["id"]: m for m in (msg.summary() for msg in await store.waiting())}
    assert [(listed[i]["status"], listed[i]["held_reason"]) for i in held] == [
        ("waiting", REASON),
        ("waiting", REASON),
    ]
    assert await store.counts() == {"waiting": 2, "pending": 1}

    async def other_delivered() -> bool:
        return (await store.counts()).get("delivered") == 1

    await drain_until(worker, other_delivered, "the push of the other object")
    assert emsp.accepted == [3]
    assert await store.next_due() is None  # held pushes are not due: no busy rounds
    await worker.run_once()
    assert emsp.accepted == [3]

    async with db.transaction() as tx:
        [put_msg, patch_msg] = await held_messages(tx, "NL-EMS", "session:S1")
        assert (put_msg.id, patch_msg.id) == tuple(held)
        await set_held_body(tx, put_msg.id, {"n": 10})
        assert await release_held(tx, "NL-EMS", "session:S1", outbox.utcnow()) == 2

    async def nothing_waiting() -> bool:
        return not await store.waiting()

    await drain_until(worker, nothing_waiting, "the released pushes")
    assert emsp.accepted == [3, 10, 2]  # completed body, in order
    assert await store.counts() == {"delivered": 3}
