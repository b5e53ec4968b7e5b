"""A roaming charge end to end: Session PUT/PATCH and CDR POST reach the eMSP sandbox."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal


async def test_realtime_authorized_charge_reaches_emsp_with_its_reference(make_world):
    async with make_world() as w:
        emsp = w.emsp
        emsp.add_token("04A1B2C3D4E5F6", whitelist="NEVER")  # real-time authorization only
        await emsp.push_tokens()
        async with w.charger() as cp:
            auth = await cp.authorize("04a1b2c3d4e5f6")
            assert auth["idTagInfo"]["status"] == "Accepted"
            [issued] = emsp.references_for("04A1B2C3D4E5F6")
            assert issued != issued.upper() and issued != issued.lower()  # mixed case
            start = await cp.start_transaction(
                1, "04a1b2c3d4e5f6", meter_start=1000, meter_loop=False
            )
            assert start["idTagInfo"]["status"] == "Accepted"
            await cp.send_meter_values(1, energy_wh=4000)
            await cp.send_meter_values(1, energy_wh=9000)
            await emsp.wait_until(lambda: len(emsp.sessions) == 1)
            [session] = list(emsp.sessions.values())
            await cp.stop_transaction(1, meter_stop=11000, reason="Local")
            await emsp.wait_until(lambda: len(emsp.cdrs) == 1)
            await emsp.wait_until(lambda: emsp.sessions[session["id"]]["status"] == "COMPLETED")

        puts = [e for e in emsp.session_events if e[0] == "PUT"]
        assert len(puts) == 1
        put = puts[0][2]
        assert put["authorization_reference"] == issued  # exactly, original case
        assert put["status"] == "ACTIVE" and put["auth_method"] == "AUTH_REQUEST"
        assert put["location_id"] == "LOC-1" and put["evse_uid"] == "LOC-1-CP1-1"
        assert put["connector_id"] == "1"
        assert put["cdr_token"]["uid"] == "04A1B2C3D4E5F6"  # the eMSP's spelling, not the charger's
        assert put["cdr_token"]["party_id"] == "EMS" and put["cdr_token"]["type"] == "RFID"
        patches = [e[2] for e in emsp.session_events if e[0] == "PATCH"]
        kwh = [p["kwh"] for p in patches if "status" not in p]
        assert kwh[:2] == [3.0, 8.0] and kwh == sorted(kwh)  # then the stop's transactionData
        assert all("last_updated" in p for p in patches)
        final = emsp.sessions[session["id"]]
        assert final["kwh"] == 10.0 and "end_date_time" in final

        [cdr] = list(emsp.cdrs.values())
        assert cdr["authorization_reference"] == issued
        assert cdr["session_id"] == session["id"]
        assert cdr["total_energy"] == 10.0
        assert cdr["cdr_location"]["evse_id"] == "NL*CPO*E1*1"
        assert cdr["cdr_location"]["connector_standard"] == "IEC_62196_T2"
        assert cdr["tariffs"][0]["id"] == "AC-STD"
        assert emsp.cdr_duplicates == {}
        # The cost follows the tariff (0.40/kWh, 1.00 flat, 6.00/h parking, 21 % VAT),
        # recomputed from the CDR's own dimensions.
        parking_h = sum(
            Decimal(str(d["volume"]))
            for p in cdr["charging_periods"]
            for d in p["dimensions"]
            if d["type"] == "PARKING_TIME"
        )
        assert Decimal(str(cdr["total_parking_time"])) == parking_h
        parking = (Decimal("6.00") * parking_h).quantize(Decimal("0.01"), ROUND_HALF_UP)
        excl = Decimal("4.00") + Decimal("1.00") + parking
        assert Decimal(str(cdr["total_energy_cost"]["excl_vat"])) == Decimal("4.00")
        assert Decimal(str(cdr["total_fixed_cost"]["incl_vat"])) == Decimal("1.21")
        assert Decimal(str(cdr["total_cost"]["excl_vat"])) == excl
        assert final["total_cost"] == cdr["total_cost"]
        # Location header of the eMSP is kept.
        stored = await w.cpo.cdrs.by_transaction(start["transactionId"])
        assert stored["emsp_location"].endswith("/" + cdr["id"])
