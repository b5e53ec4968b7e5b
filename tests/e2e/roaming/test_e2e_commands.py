"""OCPI commands from the eMSP sandbox reach the simulated charger and report back."""

from __future__ import annotations


async def test_start_session_command_carries_its_reference_without_authorize_call(make_world):
    async with make_world() as w:
        emsp = w.emsp
        emsp.add_token("C0FFEE01", whitelist="NEVER")  # would need real-time auth otherwise
        await emsp.push_tokens()
        async with w.charger() as cp:
            sent = await emsp.start_session(
                "loc-1", "LOC-1-CP1-2", uid="C0FFEE01", authorization_reference="Cmd-aBcD-9f"
            )
            assert sent.reply.status_code == 1000 and sent.result == "ACCEPTED"
            assert sent.reply.data["timeout"] == 5
            result = await emsp.wait_command_result(sent.ref)
            assert result["result"] == "ACCEPTED"
            await emsp.wait_until(lambda: len(emsp.sessions) == 1)
            [session] = list(emsp.sessions.values())
            assert session["authorization_reference"] == "Cmd-aBcD-9f"
            assert session["auth_method"] == "COMMAND"
            assert session["evse_uid"] == "LOC-1-CP1-2"
            assert emsp.authorizations == []  # no real-time authorize for the command token
            assert ("RemoteStartTransaction", {"connectorId": 2, "idTag": "C0FFEE01"}) in [
                (a, p) for a, p in cp.received_calls
            ]

            stop = await emsp.stop_session(session["id"])
            assert stop.result == "ACCEPTED"
            assert (await emsp.wait_command_result(stop.ref))["result"] == "ACCEPTED"
            await emsp.wait_until(lambda: len(emsp.cdrs) == 1)
        [cdr] = emsp.cdrs.values()
        assert cdr["authorization_reference"] == "Cmd-aBcD-9f" and cdr["auth_method"] == "COMMAND"


async def test_command_errors_unknown_location_session_and_other_party(make_world):
    async with make_world() as w:
        emsp = w.emsp
        async with w.charger():
            unknown = await emsp.start_session("NOPE", None, uid="C0FFEE02")
            assert unknown.reply.status_code == 2003 and unknown.result == "REJECTED"
            stop = await emsp.stop_session("no-such-session")
            assert stop.reply.status_code == 1000 and stop.result == "UNKNOWN_SESSION"
            bad_evse = await emsp.unlock_connector("LOC-1", "NOPE", "1")
            assert bad_evse.result == "REJECTED"
            bad = await emsp.send_command("START_SESSION", {"location_id": "LOC-1"})
            assert bad.reply.status_code == 2001 and "token" in bad.reply.body["status_message"]


async def test_unlock_reserve_and_cancel_map_to_ocpp(make_world):
    async with make_world() as w:
        emsp = w.emsp
        async with w.charger() as cp:
            unlock = await emsp.unlock_connector("LOC-1", "LOC-1-CP1-1", "1")
            assert unlock.result == "ACCEPTED"
            assert (await emsp.wait_command_result(unlock.ref))["result"] in (
                "ACCEPTED",
                "FAILED",
                "NOT_SUPPORTED",
            )
            reserve = await emsp.reserve_now(
                "LOC-1",
                "emsp-res-1",
                "2099-01-01T00:00:00Z",
                uid="C0FFEE03",
                evse_uid="LOC-1-CP1-1",
            )
            assert reserve.result == "ACCEPTED"
            res_result = await emsp.wait_command_result(reserve.ref)
            calls = [p for a, p in cp.received_calls if a == "ReserveNow"]
            assert len(calls) == 1
            our_id = calls[0]["reservationId"]
            assert isinstance(our_id, int)  # our own id, never the eMSP's string
            assert res_result["result"] in ("ACCEPTED", "REJECTED", "EVSE_OCCUPIED")
            cancel = await emsp.cancel_reservation("emsp-res-1")
            assert cancel.result == "ACCEPTED"
            await emsp.wait_command_result(cancel.ref)
            assert [p for a, p in cp.received_calls if a == "CancelReservation"] == [
                {"reservationId": our_id}
            ]
