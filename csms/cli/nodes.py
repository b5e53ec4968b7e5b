"""``csms nodes list``: the CSMS nodes sharing the store, their leases and chargers."""

from __future__ import annotations

import argparse
from typing import Any

from csms.cli.client import add_command, client_from_args, emit, print_table

COLUMNS = ["node_id", "state", "chargers", "version", "started_at", "lease_until"]


def register(subparsers: Any) -> None:
    group = subparsers.add_parser(
        "nodes",
        help="the CSMS nodes sharing this store",
        description="the CSMS nodes sharing this store (several on PostgreSQL)",
    )
    sub = group.add_subparsers(dest="nodes_command", metavar="ACTION")
    sub.required = True
    p = add_command(sub, "list", _list, "each node: alive or not, its lease and its chargers")
    p.add_argument(
        "--chargers", action="store_true", help="also list the charger ids each node holds"
    )


def _state(node: dict[str, Any]) -> str:
    if node.get("stopped_at"):
        return "stopped"
    state = "alive" if node["alive"] else "lease expired"
    return f"{state} (this)" if node.get("this") else state


def _list(args: argparse.Namespace) -> int:
    query = {"chargers": "true"} if args.chargers else {}
    data = client_from_args(args).get("/api/nodes", query)

    def human(d: dict[str, Any]) -> None:
        rows = [{**n, "state": _state(n)} for n in d["nodes"]]
        print_table(rows, COLUMNS)
        if args.chargers:
            for n in d["nodes"]:
                ids = n.get("charger_ids") or []
                print(f"{n['node_id']}: {', '.join(ids) if ids else '(none)'}")

    return emit(args, data, human)
