"""Two ``csms serve`` nodes on one PostgreSQL database drain one outbox: every Session
push and every CDR reaches the eMSP exactly once, in order per object.

The parts are real: two child processes (tests/support/nodes.py) sharing the store,
simulated chargers on both nodes running roaming transactions with eMSP tokens of
whitelist ALWAYS (decided locally, so charging goes on while the eMSP is away), and the
eMSP sandbox, which records every Session request and counts every CDR POST per id.

The eMSP is down (HTTP 503) while the chargers charge, so the outbox fills on both
nodes' behalf and every push fails at least once (a CDR then counts as ambiguous and is
looked up before its POST). Then the eMSP comes back and both nodes drain at once. The
store is the truth: each Session's pushes, in id order, are exactly the requests the
eMSP received for that Session, in arrival order; each CDR was POSTed once; and both
nodes delivered part of it (``claimed_by``).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from csms.store.db import Database
from simulator.chargepoint import SimulatedChargePoint
from simulator.emsp.sandbox import EmspSandbox
from tests.support.nodes import Node, csms_nodes
from tests.support.waiting import wait_until

CHARGERS = 3  # per node, two connectors each
CHARGES = 2  # per connector


def charger_id(node: Node, i: int) -> str:
    return f"{node.name.upper()}{i}"


def token_uid(cp: str, connector: int) -> str:
    return f"TWO{cp}{connector}"


def locations_toml(names: list[str]) -> str:
    out = [
        '[[tariffs]]\nid = "AC-STD"\ncurrency = "EUR"\nenergy_price = 0.40\nvat = 21.0\n',
        '[[locations]]\nid = "LOC-2N"\nname = "Two Nodes"\naddress = "Hafenstraat 1"\n'
        'city = "Amsterdam"\npostal_code = "1011AB"\ncountry = "NLD"\nlatitude = "52.37403"\n'
        'longitude = "4.88969"\ntime_zone = "Europe/Amsterdam"\n',
    ]
    for cp in names:
        for c in (1, 2):
            out.append(
                f'[[locations.evses]]\nuid = "{cp}-{c}"\nevse_id = "NL*CPO*E{cp}*{c}"\n'
                f'charger_id = "{cp}"\nconnector_id = {c}\nstandard = "IEC_62196_T2"\n'
                'format = "SOCKET"\npower_type = "AC_3_PHASE"\nmax_voltage = 230\n'
                'max_amperage = 32\ntariff_ids = ["AC-STD"]\n'
            )
    return "\n".join(out)


async def charge(node: Node, cp_id: str) -> int:
    """CHARGES roaming transactions on each connector of one charger; how many stopped."""
    stopped = 0
    async with SimulatedChargePoint.connect(
        node.ocpp_url,
        cp_id,
        heartbeat=False,
        step_delay_s=0,
        meter_interval_s=3600,
        response_timeout=10.0,
    ) as cp:
        assert (await cp.boot())["status"] == "Accepted"
        for n in range(CHARGES):
            for c in (1, 2):
                start = await cp.start_transaction(
                    c, token_uid(cp_id, c), meter_start=0, move_status=False, meter_loop=False
                )
                assert start["idTagInfo"]["status"] == "Accepted", start
                await cp.send_meter_values(c, energy_wh=500 + n)  # a kwh PATCH
                await cp.stop_transaction(c, meter_stop=1000 + n, move_status=False)
                stopped += 1
    return stopped


async def outbox_counts(node: Node) -> dict[str, int]:
    return dict((await node.admin("GET", "/api/outbox"))["counts"])


async def test_two_nodes_deliver_each_push_once_in_order_per_object(
    tmp_path: Path, postgres_url: str
) -> None:
    names = [f"{n}{i}" for n in "AB" for i in range(CHARGERS)]
    loc_file = tmp_path / "locations.toml"
    loc_file.write_text(locations_toml(names))
    config = {
        "ocpi_cpo": {
            "locations_file": str(loc_file),
            "outbox_retry_initial_s": 0.05,
            "outbox_retry_max_s": 0.3,
            "outbox_poll_interval_s": 0.1,
            "outbox_max_attempts": 10_000,
            "session_update_interval_s": 0.001,
        }
    }
    async with (
        EmspSandbox.start(country_code="NL", party_id="EMS", control_port=None) as emsp,
        csms_nodes(tmp_path, postgres_url, 2, ocpi=True, config=config) as (a, b),
    ):
        emsp.behaviour.cdr_delay_ms = 40  # deliveries take a while: both nodes get work
        for cp in names:
            for c in (1, 2):
                emsp.add_token(token_uid(cp, c), whitelist="ALWAYS")
        invite = await a.admin(
            "POST", "/api/partners/invite", {"country_code": "NL", "party_id": "EMS"}
        )
        await emsp.register_with(invite["versions_url"], invite["token_a"])
        assert all(r.status_code == 1000 for r in await emsp.push_tokens())
        # Node B reads the partner and the tokens fresh (both arrived through node A;
        # keeping the nodes' memos coherent is not what this test is about).
        await b.stop()
        await b.start()

        await emsp.set_down("503")
        stopped = await asyncio.gather(
            *(charge(node, charger_id(node, i)) for node in (a, b) for i in range(CHARGERS))
        )
        assert sum(stopped) == 2 * CHARGERS * 2 * CHARGES
        backlog = await outbox_counts(a)
        assert backlog.get("pending", 0) >= sum(stopped), backlog  # a CDR each, at least
        await emsp.set_down("up")

        async def drained() -> bool:
            counts = await outbox_counts(b)
            return not counts.get("pending") and not counts.get("dead")

        await wait_until(drained, timeout=60, interval=0.2, what="both nodes to drain")
        counts = await outbox_counts(a)
        listed = (await a.admin("GET", "/api/outbox?all=true"))["messages"]

    db = await Database.open(postgres_url)
    try:
        rows = await db.fetchall(
            "SELECT id, module, method, path, body, status, claimed_by FROM ocpi_outbox"
            " WHERE partner_key = 'NL-EMS' ORDER BY id"
        )
        cdr_ids = {r[0] for r in await db.fetchall("SELECT id FROM ocpi_cdrs")}
    finally:
        await db.close()

    assert "dead" not in counts and "rejected" not in counts, counts
    sessions: dict[str, list[tuple[str, Any]]] = {}
    cdr_session: dict[str, str] = {}
    for r in rows:
        body = orjson.loads(r["body"])
        assert r["status"] == "delivered", dict(r)
        if r["module"] == "sessions":
            sid = r["path"].rsplit("/", 1)[-1]
            sessions.setdefault(sid, []).append((r["method"], body))
        elif r["module"] == "cdrs":
            cdr_session[body["id"]] = body["session_id"]

    # Sessions: what each got, in arrival order, is its pushes in order, once each.
    received: dict[str, list[tuple[str, Any]]] = {}
    for method, sid, body in emsp.session_events:
        received.setdefault(sid, []).append((method, body))
    assert set(received) == set(sessions)
    for sid, pushes in sessions.items():
        assert pushes[0][0] == "PUT" and pushes[-1][1].get("status") == "COMPLETED", sid
        assert received[sid] == pushes, sid
    assert len(sessions) == sum(stopped)

    # CDRs (each its own object): each POSTed once.
    assert set(cdr_session) == cdr_ids and len(cdr_ids) == sum(stopped)
    assert dict(emsp.cdr_post_counts) == dict.fromkeys(cdr_ids, 1), emsp.cdr_post_counts
    assert not emsp.cdr_duplicates

    # Both nodes delivered part of it, and the operator's view names them.
    shares = Counter(r["claimed_by"] for r in rows if r["module"] in ("sessions", "cdrs"))
    assert set(shares) == {a.node_id, b.node_id}, shares
    assert {m["claimed_by"] for m in listed} <= {a.node_id, b.node_id, None}
    assert not emsp.violations, emsp.violations
    print(f"pushes={len(rows)} sessions={len(sessions)} cdrs={len(cdr_ids)} shares={dict(shares)}")
