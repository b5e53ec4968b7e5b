"""The connector transition table and its warning on a real socket."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from csms.lifecycle import CONNECTOR_STATUSES, transition_problem
from simulator.connector import Connector, IllegalTransition, Status
from tests.csms.ocpp.conftest import Connect, StartServer


@pytest.mark.parametrize(
    ("previous", "new", "connector", "ok"),
    [
        (None, "Charging", 1, True),
        ("Available", "Available", 1, True),
        ("Available", "Preparing", 1, True),
        ("Preparing", "Charging", 1, True),
        ("Charging", "Finishing", 1, True),
        ("Finishing", "Available", 1, True),
        ("Finishing", "Charging", 1, False),
        ("Reserved", "Charging", 1, False),
        ("Available", "Finishing", 1, False),
        (None, "Charging", 0, False),
        ("Available", "Faulted", 0, True),
    ],
)
def test_transition_table(previous: str | None, new: str, connector: int, ok: bool):
    assert (transition_problem(previous, new, connector) is None) is ok


@pytest.mark.parametrize("previous", sorted(CONNECTOR_STATUSES))
@pytest.mark.parametrize("new", sorted(CONNECTOR_STATUSES))
def test_the_simulator_moves_exactly_where_the_csms_expects(previous: str, new: str):
    """Both ends read one table: the simulator's connector refuses what the CSMS warns about."""
    assert {s.value for s in Status} == CONNECTOR_STATUSES
    conn = Connector(1, status=Status(previous))
    legal = transition_problem(previous, new, 1) is None
    try:
        conn.move(Status(new))
    except IllegalTransition:
        assert not legal
    else:
        assert legal and conn.status is Status(new)


async def test_illegal_transition_is_stored_and_logged(
    db, start_server: StartServer, connect_cp: Connect
):
    srv = await start_server()
    cp = await connect_cp(srv, "CP1")
    await cp.ok(
        "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
    )
    with capture_logs() as logs:
        await cp.ok(
            "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Finishing"}
        )
    assert any(e["event"] == "ocpp.unexpected_status" for e in logs)
    row = await db.fetchone("SELECT status FROM connectors WHERE connector_id = 1")
    assert row[0] == "Finishing"
