"""``csms authorizations list``: the latest authorization decisions of the running CSMS."""

from __future__ import annotations

import argparse
from typing import Any

from csms.cli.client import add_command, client_from_args, emit, print_table

COLUMNS = [
    "decided_at",
    "charger_id",
    "connector_id",
    "trigger",
    "uid",
    "partner_id",
    "source",
    "allowed",
    "status",
    "authorization_reference",
    "latency_ms",
    "reason",
]


def register(subparsers: Any) -> None:
    group = subparsers.add_parser("authorizations", help="authorization decisions")
    sub = group.add_subparsers(dest="authorizations_command", metavar="ACTION")
    sub.required = True
    p = add_command(sub, "list", _list, "latest decisions, newest first")
    p.add_argument("--charger", help="only this charger")
    p.add_argument("--uid", help="only this token uid (any case)")
    p.add_argument("--source", help="cache, remote, fallback, reused, command")
    p.add_argument("--status", help="Accepted, Blocked, Expired, Invalid, ConcurrentTx")
    p.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")


def _list(args: argparse.Namespace) -> int:
    query: dict[str, Any] = {
        "limit": args.limit,
        "charger_id": args.charger,
        "uid": args.uid,
        "source": args.source,
        "status": args.status,
    }
    data = client_from_args(args).get(
        "/api/authorizations", {k: v for k, v in query.items() if v is not None}
    )
    return emit(args, data, lambda d: print_table(d["authorizations"], COLUMNS))
