"""The operator's view of several nodes: two real ``csms serve`` processes on one
PostgreSQL database, a real simulated charger on node b, and the CLI and admin API of
node a. After node b is killed, node a shows its lease expired and the charger
connected nowhere."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import aiohttp

from simulator.chargepoint import SimulatedChargePoint
from tests.support.csms import ADMIN_TOKEN
from tests.support.nodes import Node, csms_nodes
from tests.support.waiting import wait_until


async def cli(node: Node, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("CSMS__")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "csms", *args,
        "--admin-url", node.admin_url, "--admin-token", ADMIN_TOKEN,
        cwd=node.home, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def metrics_of(node: Node) -> str:
    async with aiohttp.ClientSession() as http, http.get(node.admin_url + "/metrics") as resp:
        assert resp.status == 200
        return await resp.text()


def by_id(nodes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {n["node_id"]: n for n in nodes}


async def test_nodes_and_their_chargers_are_listed_and_a_dead_node_shows(
    tmp_path: Path, postgres_url: str
):
    async with (
        csms_nodes(tmp_path, postgres_url, 2) as (a, b),
        SimulatedChargePoint.connect(b.ocpp_url, "CP-VIEW") as cp,
    ):
        await cp.boot()

        async def b_holds_it() -> bool:
            nodes = by_id((await a.admin("GET", "/api/nodes?chargers=true"))["nodes"])
            return nodes.get("node-b", {}).get("charger_ids") == ["CP-VIEW"]

        await wait_until(b_holds_it, what="node b listed with CP-VIEW")
        nodes = by_id((await a.admin("GET", "/api/nodes"))["nodes"])
        assert nodes["node-a"]["this"] and nodes["node-a"]["alive"]
        assert nodes["node-b"]["alive"] and not nodes["node-b"]["this"]
        assert (nodes["node-a"]["chargers"], nodes["node-b"]["chargers"]) == (0, 1)

        charger = await a.admin("GET", "/api/chargers/CP-VIEW")
        assert charger["connected"] is True and charger["node"] == "node-b"

        table = await cli(a, "nodes", "list", "--chargers")
        lines = table.splitlines()
        assert lines[0].split()[:3] == ["NODE_ID", "STATE", "CHARGERS"]
        row_a = next(line for line in lines if line.startswith("node-a "))
        row_b = next(line for line in lines if line.startswith("node-b "))
        assert "alive (this)" in row_a and "alive" in row_b and "(this)" not in row_b
        assert "node-b: CP-VIEW" in lines

        metrics = await metrics_of(a)
        assert 'csms_node{node_id="node-a"} 1.0' in metrics
        assert 'csms_cluster_nodes{state="alive"} 2.0' in metrics
        assert 'csms_cluster_node_chargers{node_id="node-b"} 1.0' in metrics

        await b.kill()

        async def b_dead() -> bool:
            nodes = by_id((await a.admin("GET", "/api/nodes"))["nodes"])
            return not nodes["node-b"]["alive"]

        # The harness's lease is 3 s: node b is dead for node a once it runs out.
        await wait_until(b_dead, timeout=15, what="node b's lease to run out")
        charger = await a.admin("GET", "/api/chargers/CP-VIEW")
        assert charger["connected"] is False and charger["node"] is None
        assert "lease expired" in next(
            line for line in (await cli(a, "nodes", "list")).splitlines()
            if line.startswith("node-b ")
        )  # fmt: skip
        metrics = await metrics_of(a)
        assert 'csms_cluster_nodes{state="expired"} 1.0' in metrics
        assert 'node_id="node-b"' not in metrics
