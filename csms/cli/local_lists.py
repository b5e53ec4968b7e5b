"""``csms local-list status|show|sync|mode``: chargers' Local Authorization Lists."""

from __future__ import annotations

import argparse
from typing import Any

from csms.cli.client import add_command, client_from_args, emit, print_fields, print_table, quote

COLUMNS = [
    "charger_id",
    "connected",
    "mode",
    "supported",
    "version",
    "size",
    "max_length",
    "last_sync_at",
    "last_result",
]


def register(subparsers: Any) -> None:
    group = subparsers.add_parser(
        "local-list", help="chargers' Local Authorization Lists (offline authorization)"
    )
    sub = group.add_subparsers(dest="local_list_command", metavar="ACTION")
    sub.required = True
    p = add_command(sub, "status", _status, "list version, size and last sync per charger")
    p.add_argument("charger_id", nargs="?", help="one charger (default: all)")
    p = add_command(sub, "show", _show, "one charger's list state and entries")
    p.add_argument("charger_id")
    p = add_command(sub, "sync", _sync, "send the whole list to a connected charger now")
    p.add_argument("charger_id")
    p = add_command(sub, "mode", _mode, "auto (when supported), on or off for one charger")
    p.add_argument("charger_id")
    p.add_argument("mode", choices=["auto", "on", "off"])


def _status(args: argparse.Namespace) -> int:
    client = client_from_args(args)
    if args.charger_id:
        data = client.get(f"/api/local-lists/{quote(args.charger_id)}")
        data.pop("entries", None)
        return emit(args, data, print_fields)
    data = client.get("/api/local-lists")
    return emit(args, data, lambda d: print_table(d["chargers"], COLUMNS))


def _show(args: argparse.Namespace) -> int:
    data = client_from_args(args).get(f"/api/local-lists/{quote(args.charger_id)}")

    def human(d: dict[str, Any]) -> None:
        print_fields({k: v for k, v in d.items() if k != "entries"})
        print()
        print_table(d["entries"], ["id_tag", "status", "expiry_date", "parent_id_tag", "partner"])

    return emit(args, data, human)


def _sync(args: argparse.Namespace) -> int:
    data = client_from_args(args).post(f"/api/local-lists/{quote(args.charger_id)}/sync")
    return emit(args, data, lambda d: print(f"full list queued for {d['charger_id']}"))


def _mode(args: argparse.Namespace) -> int:
    path = f"/api/local-lists/{quote(args.charger_id)}/mode"
    data = client_from_args(args).post(path, {"mode": args.mode})
    return emit(args, data, lambda d: print(f"local list mode of {d['charger_id']}: {d['mode']}"))
