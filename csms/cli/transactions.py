"""``csms transactions list|show``: charging sessions."""

from __future__ import annotations

import argparse
from typing import Any

from csms.cli.client import add_command, client_from_args, emit, print_fields, print_table

COLUMNS = [
    "id",
    "charger_id",
    "connector_id",
    "id_tag",
    "start_timestamp",
    "stop_timestamp",
    "energy_wh",
    "stop_reason",
]


def register(subparsers: Any) -> None:
    group = subparsers.add_parser("transactions", help="list charging transactions")
    sub = group.add_subparsers(dest="transactions_command", metavar="ACTION")
    sub.required = True
    p = add_command(sub, "list", _list, "list transactions, newest first")
    p.add_argument("--charger", help="only this charger")
    p.add_argument("--active", action="store_true", help="only transactions still running")
    p.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    p = add_command(sub, "show", _show, "one transaction")
    p.add_argument("id", type=int)


def _list(args: argparse.Namespace) -> int:
    query: dict[str, Any] = {"limit": args.limit, "charger_id": args.charger}
    if args.active:
        query["active"] = "true"
    data = client_from_args(args).get("/api/transactions", query)
    return emit(args, data, lambda d: print_table(d["transactions"], COLUMNS))


def _show(args: argparse.Namespace) -> int:
    data = client_from_args(args).get(f"/api/transactions/{args.id}")
    return emit(args, data, print_fields)
