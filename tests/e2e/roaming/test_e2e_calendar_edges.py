"""A roaming charge whose charger reports timestamps at the edges of the calendar.

``9999-12-31T23:59:59-14:00`` and ``0001-01-01T00:00:00+14:00`` are valid RFC 3339
date-times that no UTC datetime can hold. The transaction must still start, take meter
values, stop, and end as one Session and one CDR at the eMSP; the raw text is kept.
"""

from __future__ import annotations

import pytest

LATE = "9999-12-31T23:59:59-14:00"
EARLY = "0001-01-01T00:00:00+14:00"
LATEST_UTC = "9999-12-31T23:59:59+14:00"  # representable, but nothing can follow it
YEAR_ONE = "0001-01-01T00:00:00-14:00"  # representable: 0001-01-01T14:00:00Z


@pytest.mark.parametrize(
    ("start_ts", "meter_ts", "stop_ts"),
    [
        (LATE, LATE, EARLY),
        (EARLY, EARLY, LATE),
        (LATEST_UTC, LATE, LATEST_UTC),
        (EARLY, LATEST_UTC, "0001-01-01T00:00:00Z"),
        (YEAR_ONE, LATE, "0001-01-01T00:00:00Z"),
        ("0001-01-01T00:00:00Z", EARLY, LATE),
    ],
)
async def test_a_roaming_charge_with_edge_timestamps_ends_in_one_cdr(
    make_world, start_ts, meter_ts, stop_ts
):
    async with make_world() as w:
        emsp = w.emsp
        emsp.add_token("04EDGE000001", whitelist="ALWAYS")
        await emsp.push_tokens()
        async with w.charger() as cp:
            start = await cp.start_transaction(
                1, "04EDGE000001", meter_start=1000, timestamp=start_ts, meter_loop=False
            )
            assert start["idTagInfo"]["status"] == "Accepted"
            tid = start["transactionId"]
            assert await cp.send_meter_values(1, energy_wh=4000, timestamp=meter_ts) == {}
            await emsp.wait_until(lambda: len(emsp.sessions) == 1)
            assert await cp.stop_transaction(1, meter_stop=9000, timestamp=stop_ts) == {}
            await emsp.wait_until(lambda: len(emsp.cdrs) == 1)
        [cdr] = list(emsp.cdrs.values())
        assert cdr["total_energy"] == 8.0
        assert emsp.cdr_duplicates == {}
        stored = await w.app.db.fetchone(
            "SELECT start_timestamp, stop_timestamp, stop_received_at FROM transactions "
            "WHERE id = ?",
            (tid,),
        )
        assert stored["start_timestamp"] == start_ts  # kept as the charger sent it
        assert stored["stop_timestamp"] == stop_ts
        assert stored["stop_received_at"] is not None
