"""The write side of the location store on a real SQLite file: what the locations file may
change (only what changed in it), connector swaps in one write, unmapped EVSEs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest

from csms.store.db import Database
from roaming.catalog import Catalog, parse_catalog, parse_evse
from roaming.models import ValidationError
from roaming.store import schema as roaming_schema
from roaming.store.location_writes import LocationWrites, SyncReport
from roaming.store.locations import LocationStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)

FILE = """
[[locations]]
id = "LOC-1"
address = "Hafenstraat 12"
city = "Amsterdam"
country = "NLD"
latitude = "52.37403"
longitude = "4.88969"
time_zone = "Europe/Amsterdam"

[[locations.evses]]
uid = "E1"
charger_id = "CP1"
connector_id = 1
standard = "IEC_62196_T2"
format = "SOCKET"
power_type = "AC_3_PHASE"
max_voltage = 230
max_amperage = 32

[[locations.evses]]
uid = "E2"
charger_id = "CP1"
connector_id = 2
standard = "IEC_62196_T2"
format = "SOCKET"
power_type = "AC_3_PHASE"
max_voltage = 230
max_amperage = 16
"""
EVSE = {
    "standard": "IEC_62196_T2",
    "format": "SOCKET",
    "power_type": "AC_3_PHASE",
    "max_voltage": 230,
    "max_amperage": 16,
}


def catalog(text: str) -> Catalog:
    return parse_catalog(text, country_code="NL", party_id="CPO")


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[LocationStore]:
    db = await Database.open(store_url)
    await roaming_schema.migrate(db)
    try:
        yield LocationStore(db, "NL", "CPO")
    finally:
        await db.close()


async def write(
    store: LocationStore, at: datetime, fn: Callable[[LocationWrites], Awaitable[object]]
) -> SyncReport:
    """One write in its own transaction (rolled back when ``fn`` raises)."""
    async with store.db.transaction() as tx:
        w = LocationWrites(tx, at)
        await fn(w)
        return w.report


async def statuses(store: LocationStore) -> dict[str, tuple[str, object, object]]:
    rows = await store.db.fetchall("SELECT uid, status, charger_id, connector_id FROM ocpi_evses")
    return {r["uid"]: (r["status"], r["charger_id"], r["connector_id"]) for r in rows}


async def test_the_file_applies_only_what_changed_in_it(store):
    first = await write(store, T0, lambda w: w.sync_file(catalog(FILE)))
    assert first.changed_locations == ["LOC-1"] and first.remapped[0] == ("E1", "CP1", 1)
    # An admin edit of E2, then the same file again: the edit stays, nothing changes.
    edited = parse_evse({"uid": "E2", "charger_id": "CP1", "connector_id": 2, **EVSE,
                         "max_amperage": 20}, "", set())  # fmt: skip
    await write(store, T0 + timedelta(seconds=1), lambda w: w.evses("LOC-1", [edited], path=""))
    same = await write(store, T0 + timedelta(seconds=2), lambda w: w.sync_file(catalog(FILE)))
    assert not same.changed and same.remapped == []
    e2 = await store.evse("LOC-1", "E2")
    assert e2 is not None and e2["connectors"][0]["max_amperage"] == 20
    # An API removal of E1 survives the unchanged file too.
    await write(store, T0 + timedelta(seconds=3), lambda w: w.remove_evse("E1"))
    again = await write(store, T0 + timedelta(seconds=4), lambda w: w.sync_file(catalog(FILE)))
    assert not again.changed and (await statuses(store))["E1"][0] == "REMOVED"
    # Leaving the file retires E2; coming back into it (unchanged) brings it back.
    without_e2 = FILE[: FILE.rindex("[[locations.evses]]")]
    gone = await write(store, T0 + timedelta(seconds=5), lambda w: w.sync_file(catalog(without_e2)))
    assert gone.removed_evses == ["E2"]
    back = await write(store, T0 + timedelta(seconds=6), lambda w: w.sync_file(catalog(FILE)))
    assert back.changed_locations == ["LOC-1"] and (await statuses(store))["E2"][0] == "UNKNOWN"


async def test_two_evses_swap_connectors_in_one_write_and_a_taken_connector_is_named(store):
    await write(store, T0, lambda w: w.sync_file(catalog(FILE)))
    swapped = (
        FILE.replace("connector_id = 1", "connector_id = X")
        .replace("connector_id = 2", "connector_id = 1")
        .replace("connector_id = X", "connector_id = 2")
    )
    report = await write(store, T0 + timedelta(seconds=1),
                         lambda w: w.import_catalog(catalog(swapped)))  # fmt: skip
    assert sorted(report.remapped) == [("E1", "CP1", 2), ("E2", "CP1", 1)]
    s = await statuses(store)
    assert (s["E1"][1:], s["E2"][1:]) == (("CP1", 2), ("CP1", 1))

    taken = parse_evse({"uid": "E3", "charger_id": "CP1", "connector_id": 1, **EVSE}, "", set())
    with pytest.raises(ValidationError) as err:
        await write(store, T0 + timedelta(seconds=2), lambda w: w.evses("LOC-1", [taken], path=""))
    assert err.value.field == "connector_id" and "'E2'" in err.value.message
    assert "E3" not in await statuses(store)  # rolled back with the transaction


async def test_unmapped_evses_stand_for_no_connector(store):
    await write(store, T0, lambda w: w.sync_file(catalog(FILE)))
    a = parse_evse({"uid": "U1", **EVSE}, "", set())
    b = parse_evse({"uid": "U2", **EVSE}, "", set())
    assert a.mapping is None
    await write(store, T0, lambda w: w.evses("LOC-1", [a, b], path=""))
    s = await statuses(store)
    assert s["U1"] == ("UNKNOWN", "", 0) and s["U2"] == ("UNKNOWN", "", 0)
    # Mapped later, one of them stands for a connector (the other stays free of it).
    mapped = parse_evse({"uid": "U1", "charger_id": "CP2", "connector_id": 1, **EVSE}, "", set())
    await write(store, T0, lambda w: w.evses("LOC-1", [mapped], path=""))
    assert await store.refs("CP2", 1) == ("LOC-1", ("U1",))
    with pytest.raises(ValidationError) as err:
        parse_evse({"uid": "U3", "connector_id": 1, **EVSE}, "", set())
    assert err.value.field == "charger_id"


async def test_a_batch_of_statuses_changes_each_mapped_evse_in_order(store):
    await write(store, T0, lambda w: w.sync_file(catalog(FILE)))
    batch = [
        ("CP1", 1, "AVAILABLE"),
        ("CP9", 1, "CHARGING"),  # no EVSE maps it
        ("CP1", 2, "UNKNOWN"),  # E2 is UNKNOWN already: no change
        ("CP1", 1, "CHARGING"),  # follows the first report of the same batch
        ("CP1", 1, "CHARGING"),  # no change
    ]
    async with store.db.transaction() as tx:
        changed = await store.set_statuses(tx, batch, T0 + timedelta(seconds=1))
    assert [(ref.evse_uid, ref.status) for ref, _ in changed] == [
        ("E1", "AVAILABLE"),
        ("E1", "CHARGING"),
    ]
    assert (await statuses(store))["E1"][0] == "CHARGING"
    assert (await statuses(store))["E2"][0] == "UNKNOWN"
