"""``csms audit list``: the admin writes of the running CSMS, newest first."""

from __future__ import annotations

import argparse
from typing import Any

from csms.cli.client import add_command, client_from_args, emit, print_table

COLUMNS = ["id", "at", "actor", "action", "target", "status", "remote"]


def register(subparsers: Any) -> None:
    group = subparsers.add_parser(
        "audit", help="the audit trail of admin writes", description="the audit trail"
    )
    sub = group.add_subparsers(dest="audit_command", metavar="ACTION")
    sub.required = True
    p = add_command(sub, "list", _list, "admin writes (who, what, target, result), newest first")
    p.add_argument("--actor", default=None, help="only this actor (token:<id> or a session)")
    p.add_argument("--before", type=int, default=None, help="only entries older than this id")
    p.add_argument("--limit", type=int, default=100, help="at most this many (1..1000)")


def _list(args: argparse.Namespace) -> int:
    query = {"limit": args.limit, "actor": args.actor, "before": args.before}
    data = client_from_args(args).get("/api/audit", query)
    return emit(args, data, lambda d: print_table(d["entries"], COLUMNS))
