"""``csms tokens add|list|show|block``: the local id_tags table."""

from __future__ import annotations

import argparse
from typing import Any

from csms.cli.client import add_command, client_from_args, emit, print_fields, print_table, quote

COLUMNS = ["id_tag", "status", "expiry_date", "parent_id_tag", "updated_at"]


def register(subparsers: Any) -> None:
    group = subparsers.add_parser("tokens", help="manage local id tags (RFID cards)")
    sub = group.add_subparsers(dest="tokens_command", metavar="ACTION")
    sub.required = True
    p = add_command(sub, "add", _add, "add or update an id tag")
    p.add_argument("id_tag")
    p.add_argument(
        "--status",
        default="Accepted",
        choices=["Accepted", "Blocked", "Expired", "Invalid"],
        help="default: Accepted",
    )
    p.add_argument(
        "--expiry", help="expiry date-time, ISO 8601 with zone, e.g. 2030-01-01T00:00:00Z"
    )
    p.add_argument("--parent", help="parent id tag (group)")
    add_command(sub, "list", _list, "list id tags")
    p = add_command(sub, "show", _show, "one id tag")
    p.add_argument("id_tag")
    p = add_command(sub, "block", _block, "block an id tag")
    p.add_argument("id_tag")


def _add(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"id_tag": args.id_tag, "status": args.status}
    if args.expiry:
        body["expiry_date"] = args.expiry
    if args.parent:
        body["parent_id_tag"] = args.parent
    data = client_from_args(args).post("/api/tokens", body)
    return emit(args, data, lambda d: print(f"id tag {d['id_tag']} saved ({d['status']})"))


def _list(args: argparse.Namespace) -> int:
    data = client_from_args(args).get("/api/tokens")
    return emit(args, data, lambda d: print_table(d["tokens"], COLUMNS))


def _show(args: argparse.Namespace) -> int:
    data = client_from_args(args).get(f"/api/tokens/{quote(args.id_tag)}")
    return emit(args, data, print_fields)


def _block(args: argparse.Namespace) -> int:
    data = client_from_args(args).post(f"/api/tokens/{quote(args.id_tag)}/block")
    return emit(args, data, lambda d: print(f"id tag {d['id_tag']} is now {d['status']}"))
