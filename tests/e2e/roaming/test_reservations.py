"""Reservations end to end: RESERVE_NOW → Session RESERVATION → ACTIVE on start, or
COMPLETED on cancellation / expiry, with a CDR for the fee when the tariff prices it.

Real CSMS, real simulator (it answers ReserveNow/CancelReservation as a charger does),
real eMSP sandbox. The locations TOML cannot express reservation prices, so the tests
that need one write the tariff's OCPI elements into the store before reserving.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson

from csms.store.db import Database
from roaming.models import format_datetime
from tests.e2e.roaming.conftest import World
from tests.support.csms import running_csms
from tests.support.waiting import wait_until

UID = "C0FFEE03"
FAR = "2099-01-01T00:00:00Z"
RESERVATION_FEE_ELEMENTS = [
    {
        "price_components": [{"type": "FLAT", "price": 2.0, "vat": 21.0, "step_size": 1}],
        "restrictions": {"reservation": "RESERVATION"},
    },
    {
        "price_components": [{"type": "FLAT", "price": 3.5, "step_size": 1}],
        "restrictions": {"reservation": "RESERVATION_EXPIRES"},
    },
]


def sessions_of(w: World) -> list[dict[str, Any]]:
    return list(w.emsp.sessions.values())


async def reserve(w: World, cp: Any, reservation_id: str, expiry: str = FAR) -> int:
    """RESERVE_NOW accepted by the charger; returns our id the charger was given."""
    sent = await w.emsp.reserve_now(
        "LOC-1", reservation_id, expiry, uid=UID, evse_uid="LOC-1-CP1-1"
    )
    assert sent.result == "ACCEPTED"
    assert (await w.emsp.wait_command_result(sent.ref))["result"] == "ACCEPTED"
    calls = [p for a, p in cp.received_calls if a == "ReserveNow"]
    return int(calls[-1]["reservationId"])


async def price_reservations(w: World) -> None:
    """Give tariff AC-STD reservation elements (before its regular ones)."""
    db = w.app.db
    row = await db.fetchone("SELECT body FROM ocpi_tariffs WHERE id_norm = 'AC-STD'")
    body = orjson.loads(row["body"])
    body["elements"] = RESERVATION_FEE_ELEMENTS + body["elements"]
    await db.execute(
        "UPDATE ocpi_tariffs SET body = ? WHERE id_norm = 'AC-STD'", (orjson.dumps(body).decode(),)
    )


async def test_reservation_session_becomes_active_when_the_reserved_ev_starts(
    make_world: Callable[..., Any],
) -> None:
    async with make_world() as w, w.charger() as cp:
        emsp = w.emsp
        our_id = await reserve(w, cp, "emsp-res-1")
        await emsp.wait_until(lambda: len(emsp.sessions) == 1)
        [put] = [e[2] for e in emsp.session_events if e[0] == "PUT"]
        assert put["status"] == "RESERVATION" and put["auth_method"] == "COMMAND"
        assert put["cdr_token"]["uid"] == UID and put["kwh"] == 0.0
        assert (put["location_id"], put["evse_uid"], put["connector_id"]) == (
            "LOC-1",
            "LOC-1-CP1-1",
            "1",
        )
        assert "end_date_time" not in put

        start = await cp.start_transaction(
            1, UID, meter_start=0, reservation_id=our_id, meter_loop=False
        )
        assert start["idTagInfo"]["status"] == "Accepted"
        await emsp.wait_until(lambda: emsp.sessions[put["id"]]["status"] == "ACTIVE")
        await cp.send_meter_values(1, energy_wh=3000)
        await cp.stop_transaction(1, meter_stop=5000, reason="Local")
        await emsp.wait_until(lambda: len(emsp.cdrs) == 1)
        await emsp.wait_until(lambda: emsp.sessions[put["id"]]["status"] == "COMPLETED")

        assert len(emsp.sessions) == 1  # the one Session continued
        assert [e[0] for e in emsp.session_events].count("PUT") == 1
        activated = next(e[2] for e in emsp.session_events if e[2].get("status") == "ACTIVE")
        assert activated["start_date_time"] >= put["start_date_time"]
        [cdr] = list(emsp.cdrs.values())
        assert cdr["session_id"] == put["id"] and cdr["total_energy"] == 5.0
        assert "total_reservation_cost" not in cdr


async def test_same_token_on_the_reserved_connector_continues_the_reservation(
    make_world: Callable[..., Any],
) -> None:
    async with make_world() as w, w.charger() as cp:
        emsp = w.emsp
        await reserve(w, cp, "emsp-res-2")
        await emsp.wait_until(lambda: len(emsp.sessions) == 1)
        [sid] = list(emsp.sessions)
        # a charger that does not echo the reservation id, and spells the uid its own way
        start = await cp.start_transaction(1, UID.lower(), meter_start=0, meter_loop=False)
        assert start["idTagInfo"]["status"] == "Accepted"
        await emsp.wait_until(lambda: emsp.sessions[sid]["status"] == "ACTIVE")
        await cp.stop_transaction(1, meter_stop=1000, reason="Local")
        await emsp.wait_until(lambda: len(emsp.cdrs) == 1)
        assert list(emsp.sessions) == [sid]


async def test_cancel_reservation_closes_the_session_without_inventing_a_cdr(
    make_world: Callable[..., Any],
) -> None:
    async with make_world() as w, w.charger() as cp:
        emsp = w.emsp
        our_id = await reserve(w, cp, "emsp-res-3")
        await emsp.wait_until(lambda: len(emsp.sessions) == 1)
        [sid] = list(emsp.sessions)
        cancel = await emsp.cancel_reservation("emsp-res-3")
        assert cancel.result == "ACCEPTED"
        assert (await emsp.wait_command_result(cancel.ref))["result"] == "ACCEPTED"
        assert [p for a, p in cp.received_calls if a == "CancelReservation"] == [
            {"reservationId": our_id}
        ]
        await emsp.wait_until(lambda: emsp.sessions[sid]["status"] == "COMPLETED")
        final = emsp.sessions[sid]
        assert "end_date_time" in final and "total_cost" not in final  # no price: no claim
        await w.outbox_idle()
        assert len(emsp.cdrs) == 0
        again = await emsp.cancel_reservation("emsp-res-3")
        assert again.result == "REJECTED"
        # the token charging now is a new Session: the reservation is gone
        await cp.start_transaction(1, UID, meter_start=0, meter_loop=False)
        await emsp.wait_until(lambda: len(emsp.sessions) == 2)
        new = next(s for k, s in emsp.sessions.items() if k != sid)
        assert new["status"] == "ACTIVE"


async def test_cancelled_reservation_with_a_reservation_price_gets_its_fee_cdr(
    make_world: Callable[..., Any],
) -> None:
    async with make_world() as w, w.charger() as cp:
        emsp = w.emsp
        await price_reservations(w)
        await reserve(w, cp, "emsp-res-4")
        await emsp.wait_until(lambda: len(emsp.sessions) == 1)
        [sid] = list(emsp.sessions)
        cancel = await emsp.cancel_reservation("emsp-res-4")
        await emsp.wait_command_result(cancel.ref)
        await emsp.wait_until(lambda: len(emsp.cdrs) == 1)
        [cdr] = list(emsp.cdrs.values())
        fee = {"excl_vat": 2, "incl_vat": 2.42}  # RESERVATION FLAT 2.00 + 21 % VAT
        assert cdr["total_reservation_cost"] == fee and cdr["total_cost"] == fee
        assert cdr["session_id"] == sid and cdr["total_energy"] == 0.0
        [period] = cdr["charging_periods"]
        assert [d["type"] for d in period["dimensions"]] == ["RESERVATION_TIME"]
        assert cdr["tariffs"][0]["id"] == "AC-STD"
        await emsp.wait_until(lambda: emsp.sessions[sid].get("total_cost") == fee)


async def test_expired_reservation_ends_with_the_expiry_fee(
    make_world: Callable[..., Any],
) -> None:
    async with make_world(cpo={"reservation_check_interval_s": 0.1}) as w, w.charger() as cp:
        emsp = w.emsp
        await price_reservations(w)
        expiry = format_datetime(datetime.now(UTC) + timedelta(seconds=2))
        await reserve(w, cp, "emsp-res-5", expiry)
        await emsp.wait_until(lambda: len(emsp.sessions) == 1)
        [sid] = list(emsp.sessions)
        await emsp.wait_until(lambda: emsp.sessions[sid]["status"] == "COMPLETED", timeout=10)
        assert emsp.sessions[sid]["end_date_time"] == expiry
        await emsp.wait_until(lambda: len(emsp.cdrs) == 1)
        [cdr] = list(emsp.cdrs.values())
        # RESERVATION_EXPIRES FLAT 3.50 (no VAT) wins over RESERVATION for an expiry
        assert cdr["total_reservation_cost"] == {"excl_vat": 3.5, "incl_vat": 3.5}
        # a charge afterwards is priced without any reservation element
        start = await cp.start_transaction(1, UID, meter_start=0, meter_loop=False)
        assert start["idTagInfo"]["status"] == "Accepted"
        await cp.stop_transaction(1, meter_stop=1000, reason="Local")
        await emsp.wait_until(lambda: len(emsp.cdrs) == 2)
        charge = next(c for c in emsp.cdrs.values() if c["id"] != cdr["id"])
        assert charge["session_id"] != sid
        assert Decimal(str(charge["total_fixed_cost"]["excl_vat"])) == Decimal("1.00")


async def test_a_reservation_that_expired_while_down_is_closed_at_start(
    make_world: Callable[..., Any], tmp_path: Any
) -> None:
    expiry_at = datetime.now(UTC) + timedelta(seconds=1)
    async with make_world(cpo={"reservation_check_interval_s": 3600}) as w, w.charger() as cp:
        await reserve(w, cp, "emsp-res-6", format_datetime(expiry_at))
        await w.emsp.wait_until(lambda: len(w.emsp.sessions) == 1)
        [sid] = list(w.emsp.sessions)
        loc_file = str(w.tmp_path / "locations.toml")

    async def past_expiry() -> bool:
        return datetime.now(UTC) > expiry_at + timedelta(seconds=1)

    await wait_until(past_expiry, timeout=5, interval=0.1, what="the expiry to pass")
    async with running_csms(
        tmp_path,
        ocpi={"enabled": True, "country_code": "NL", "party_id": "CPO"},
        ocpi_cpo={"locations_file": loc_file, "reservation_check_interval_s": 3600},
    ) as app:
        db: Database = app.db

        async def closed() -> bool:
            row = await db.fetchone("SELECT status FROM ocpi_sessions WHERE id = ?", (sid,))
            return bool(row and row["status"] == "COMPLETED")

        await wait_until(closed, timeout=5, interval=0.05, what="the first expiry check")
        row = await db.fetchone(
            "SELECT body FROM ocpi_outbox WHERE object_key = ? ORDER BY id DESC LIMIT 1",
            (f"session:{sid}",),
        )
        assert orjson.loads(row["body"])["status"] == "COMPLETED"
