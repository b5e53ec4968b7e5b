"""What a node announces of its writes: the keys, in notifications PostgreSQL accepts
(under 8000 bytes), or "all" when they would take too many; and what a receiver makes
of them."""

from __future__ import annotations

import pytest

from csms.cluster.bus import MAX_PAYLOAD_BYTES
from csms.cluster.coherence import MAX_NOTIFICATIONS, parse, payloads


def test_a_few_keys_go_in_one_notification():
    [one] = payloads("node-a", {"04AA", "04BB"})
    assert parse(one) == ("node-a", ["04AA", "04BB"])


def test_a_sync_page_of_keys_is_split_into_notifications_postgresql_accepts():
    keys = {f"04{n:018X}" for n in range(1000)}  # a page of 1,000 twenty-character uids
    sent = payloads("node-a", keys)
    assert 1 < len(sent) <= MAX_NOTIFICATIONS
    assert all(len(p.encode()) < MAX_PAYLOAD_BYTES for p in sent)
    told: set[str] = set()
    for p in sent:
        sender, got = parse(p)
        assert sender == "node-a" and got is not None
        told.update(got)
    assert told == keys


def test_too_many_keys_are_announced_as_all():
    keys = {f"04{n:018X}" for n in range(10_000)}
    [everything] = payloads("node-a", keys)
    assert parse(everything) == ("node-a", None)
    assert parse(payloads("node-a", None)[0]) == ("node-a", None)


@pytest.mark.parametrize("bad", ["", "[]", '{"k": ["x"]}', '{"n": "a", "k": "x"}', '{"n": 1}'])
def test_a_payload_no_node_sends_is_refused(bad: str):
    with pytest.raises(ValueError):
        parse(bad)
