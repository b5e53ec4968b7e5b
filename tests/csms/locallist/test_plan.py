"""The pure rules of local lists: selection, differences, chunks and versions."""

from __future__ import annotations

from datetime import UTC, datetime

from csms.locallist import plan
from csms.locallist.plan import Candidate, Entry, Update

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


def roaming(uid: str, updated: str, used: str | None = None, partner: str = "NL-EMS") -> Candidate:
    return Candidate(
        Entry(uid, partner_key=partner, expiry_date="2027-01-06T10:00:00Z"), updated, used
    )


def own(uid: str) -> Candidate:
    return Candidate(Entry(uid), "2020-01-01T00:00:00Z")


def test_selection_order_is_own_cards_then_used_here_then_recently_updated() -> None:
    cands = [
        roaming("R-OLD", "2026-01-01T00:00:00Z"),
        roaming("R-NEW", "2026-12-01T00:00:00Z"),
        roaming("R-USED", "2025-01-01T00:00:00Z", used="2026-12-06T08:00:00Z"),
        roaming("R-USED-EARLIER", "2025-01-01T00:00:00Z", used="2026-11-06T08:00:00Z"),
        own("OWN-B"),
        own("OWN-A"),
    ]
    chosen = [e.id_tag for e in plan.select(cands, 10)]
    assert chosen == ["OWN-A", "OWN-B", "R-USED", "R-USED-EARLIER", "R-NEW", "R-OLD"]
    assert [e.id_tag for e in plan.select(cands, 3)] == ["OWN-A", "OWN-B", "R-USED"]
    assert plan.select(cands, 0) == []


def test_a_uid_both_own_and_roaming_is_the_own_card_and_duplicates_keep_the_newest() -> None:
    cands = [
        roaming("TAG1", "2026-12-01T00:00:00Z"),
        own("tag1"),
        roaming("TAG2", "2026-01-01T00:00:00Z", partner="DE-OLD"),
        roaming("TAG2", "2026-06-01T00:00:00Z", partner="DE-NEW"),
    ]
    chosen = {e.norm: e for e in plan.select(cands, 10)}
    assert chosen["TAG1"].partner_key is None and chosen["TAG1"].id_tag == "tag1"
    assert chosen["TAG2"].partner_key == "DE-NEW"


def test_differences_add_change_remove_and_renew_before_expiry() -> None:
    held = {
        "KEEP": Entry("KEEP", partner_key="P", expiry_date="2027-01-06T10:00:00Z"),
        "STALE": Entry("STALE", partner_key="P", expiry_date="2026-12-10T00:00:00Z"),
        "GONE": Entry("GONE", partner_key="P", expiry_date="2027-01-06T10:00:00Z"),
        "MOVED": Entry("MOVED", parent_id_tag="G1"),
    }
    fresh = "2027-01-07T10:00:00Z"
    wanted = [
        Entry("KEEP", partner_key="P", expiry_date=fresh),
        Entry("STALE", partner_key="P", expiry_date=fresh),
        Entry("MOVED", parent_id_tag="G2"),
        Entry("NEW", partner_key="P", expiry_date=fresh),
    ]
    updates = plan.differences(held, wanted, renew_before="2026-12-22T10:00:00Z")
    assert [(u.id_tag, u.entry is not None) for u in updates] == [
        ("STALE", True),
        ("MOVED", True),
        ("NEW", True),
        ("GONE", False),
    ]
    assert plan.differences(held, list(held.values()), renew_before="2026-12-01T00:00:00Z") == []


def test_a_full_list_longer_than_a_message_is_full_then_differentials() -> None:
    entries = [Entry(f"T{i:03d}") for i in range(45)]
    sends = plan.plan_full(entries, version=7, chunk=20)
    assert [(s.update_type, s.version, len(s.updates)) for s in sends] == [
        ("Full", 8, 20),
        ("Differential", 9, 20),
        ("Differential", 10, 5),
    ]
    held: dict[str, Entry] = {"OLD": Entry("OLD")}
    for send in sends:
        held = plan.apply(held, send)
    assert set(held) == {e.norm for e in entries}  # the Full dropped OLD
    empty = plan.plan_full([], version=3, chunk=20)
    assert [(s.update_type, s.version, s.updates) for s in empty] == [("Full", 4, ())]


def test_differentials_are_chunked_with_increasing_versions_and_removals_have_no_info() -> None:
    updates = [Update(f"T{i}", None) for i in range(5)]
    sends = plan.plan_differential(updates, version=2, chunk=2)
    assert [(s.version, len(s.updates)) for s in sends] == [(3, 2), (4, 2), (5, 1)]
    assert sends[0].payload() == {
        "listVersion": 3,
        "updateType": "Differential",
        "localAuthorizationList": [{"idTag": "T0"}, {"idTag": "T1"}],
    }
    entry = Entry("A", expiry_date="2027-01-01T00:00:00Z", parent_id_tag="G")
    assert Update("A", entry).wire() == {
        "idTag": "A",
        "idTagInfo": {
            "status": "Accepted",
            "expiryDate": "2027-01-01T00:00:00Z",
            "parentIdTag": "G",
        },
    }


def test_charger_facts_and_ocpp_limits() -> None:
    assert plan.supports_lists("Core, LocalAuthListManagement,Reservation")
    assert not plan.supports_lists("Core,Reservation") and not plan.supports_lists(None)
    assert plan.parse_length("250", 100) == 250
    assert plan.parse_length("x", 100) == 100 and plan.parse_length("0", 100) == 100
    assert plan.fits("A" * 20, None) and not plan.fits("A" * 21, None)
    assert plan.parent_of("G" * 21) is None and plan.parent_of("GROUP") == "GROUP"
    assert plan.expiry_after(NOW, 3600) == "2026-12-07T11:00:00Z"
