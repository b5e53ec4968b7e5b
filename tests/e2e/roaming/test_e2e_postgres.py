"""A roaming charge end to end with the CSMS's store on PostgreSQL: the simulator boots,
authorizes, starts and stops; the sandbox eMSP receives the Session and exactly one CDR;
the rows are in the PostgreSQL database."""

from __future__ import annotations

from decimal import Decimal

from csms.store.db import Database


async def test_a_roaming_charge_on_postgresql_ends_as_one_cdr(make_world, postgres_url):
    async with make_world(store={"url": postgres_url}) as w:
        assert w.app.db.dialect == "postgresql"
        emsp = w.emsp
        emsp.add_token("04A1B2C3D4E5F6", whitelist="ALLOWED")
        await emsp.push_tokens()
        async with w.charger() as cp:
            auth = await cp.authorize("04a1b2c3d4e5f6")
            assert auth["idTagInfo"]["status"] == "Accepted"
            start = await cp.start_transaction(
                1, "04a1b2c3d4e5f6", meter_start=1000, meter_loop=False
            )
            assert start["idTagInfo"]["status"] == "Accepted"
            await cp.send_meter_values(1, energy_wh=6000)
            await cp.stop_transaction(1, meter_stop=11000, reason="Local")
            await emsp.wait_until(lambda: len(emsp.cdrs) == 1)
        await w.outbox_idle()
        [cdr] = emsp.cdrs.values()
        assert cdr["total_energy"] == 10.0 and emsp.cdr_duplicates == {}
        assert Decimal(str(cdr["total_energy_cost"]["excl_vat"])) == Decimal("4.00")
        assert emsp.sessions[cdr["session_id"]]["status"] == "COMPLETED"

    db = await Database.open(postgres_url)  # the node is gone: the rows stayed
    try:
        [txn] = await db.fetchall("SELECT id, meter_start, meter_stop FROM transactions")
        assert tuple(txn) == (start["transactionId"], 1000, 11000)
        [stored] = await db.fetchall("SELECT transaction_id FROM ocpi_cdrs")
        assert stored[0] == start["transactionId"]
    finally:
        await db.close()
