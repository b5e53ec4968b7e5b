"""``csms locations ...``, ``csms tariffs`` and ``csms outbox ...``: the CPO's OCPI objects.

Why ``locations check`` works offline: an operator edits ``locations.toml`` before a
reload, and wants every mistake named (``locations[0].evses[1].standard``) without a
running server. Everything else goes through the admin API like the other commands.
"""

from __future__ import annotations

import argparse
from typing import Any

from csms.cli import location_edit
from csms.cli.client import (
    CliError,
    add_command,
    client_from_args,
    emit,
    load_config,
    print_fields,
    print_table,
    quote,
)

OUTBOX_COLUMNS = [
    "id",
    "partner",
    "module",
    "method",
    "object",
    "status",
    "attempts",
    "next_attempt_at",
    "last_error",
    "held_reason",
    "claimed_by",
]


def register(subparsers: Any) -> None:
    group = subparsers.add_parser("locations", help="OCPI locations and EVSEs we publish")
    sub = group.add_subparsers(dest="locations_command", metavar="ACTION")
    sub.required = True
    add_command(sub, "list", _list, "every location with its EVSEs and their status")
    p = add_command(sub, "show", _show, "one location as partners see it")
    p.add_argument("location_id")
    add_command(sub, "reload", _reload, "re-read ocpi_cpo.locations_file and push changes")
    p = add_command(sub, "check", _check, "validate a locations file offline", admin=False)
    p.add_argument("file")
    p.add_argument("--config", default=None, help="config file (for country_code/party_id)")
    location_edit.register_locations(sub)

    tariffs = subparsers.add_parser("tariffs", help="OCPI tariffs we publish")
    tsub = tariffs.add_subparsers(dest="tariffs_command", metavar="ACTION")
    tsub.required = True
    add_command(tsub, "list", _tariffs, "every tariff")
    location_edit.register_tariffs(tsub)

    outbox = subparsers.add_parser("outbox", help="OCPI pushes waiting for delivery, and why")
    osub = outbox.add_subparsers(dest="outbox_command", metavar="ACTION")
    osub.required = True
    p = add_command(osub, "list", _outbox, "pending and dead pushes (oldest first)")
    p.add_argument("--all", action="store_true", help="include delivered/rejected/skipped")
    p = add_command(osub, "retry", _retry, "put a dead or rejected push back in line")
    p.add_argument("message_id", type=int)
    p = add_command(osub, "drop", _drop, "give up on a pending or dead push (kept, marked)")
    p.add_argument("message_id", type=int)


def _list(args: argparse.Namespace) -> int:
    data = client_from_args(args).get("/api/locations")

    def human(d: Any) -> None:
        rows = [
            {
                "location": loc["id"],
                "evse_uid": e["uid"],
                "evse_id": e.get("evse_id"),
                "status": e["status"],
                "connector": e["connectors"][0]["standard"],
                "last_updated": e["last_updated"],
            }
            for loc in d["locations"]
            for e in loc["evses"]
        ]
        print_table(
            rows, ["location", "evse_uid", "evse_id", "status", "connector", "last_updated"]
        )

    return emit(args, data, human)


def _show(args: argparse.Namespace) -> int:
    data = client_from_args(args).get(f"/api/locations/{quote(args.location_id)}")

    def human(d: Any) -> None:
        print_fields({k: v for k, v in d.items() if k != "evses"})
        print()
        print_table(
            [
                {"uid": e["uid"], "evse_id": e.get("evse_id"), "status": e["status"]}
                for e in d["evses"]
            ],
            ["uid", "evse_id", "status"],
        )

    return emit(args, data, human)


def _reload(args: argparse.Namespace) -> int:
    data = client_from_args(args).post("/api/locations/reload")
    return emit(args, data, print_fields)


def _check(args: argparse.Namespace) -> int:
    from csms.config import ConfigError
    from csms.ocpi.locations import load_catalog

    cfg = load_config(args.config)
    try:
        catalog = load_catalog(
            args.file, country_code=cfg.ocpi.country_code, party_id=cfg.ocpi.party_id
        )
    except ConfigError as exc:
        raise CliError(str(exc), exit_code=1) from None
    evses = sum(len(loc.evses) for loc in catalog.locations)
    print(
        f"ok: {len(catalog.locations)} location(s), {evses} EVSE(s), {len(catalog.tariffs)} tariff(s)"
    )
    return 0


def _tariffs(args: argparse.Namespace) -> int:
    data = client_from_args(args).get("/api/tariffs")

    def human(d: Any) -> None:
        rows = [
            {
                "id": t["id"],
                "currency": t["currency"],
                "components": ", ".join(
                    f"{c['type']} {c['price']}" + (f" +{c['vat']}% VAT" if "vat" in c else "")
                    for e in t["elements"]
                    for c in e["price_components"]
                ),
                "last_updated": t["last_updated"],
            }
            for t in d["tariffs"]
        ]
        print_table(rows, ["id", "currency", "components", "last_updated"])

    return emit(args, data, human)


def _outbox(args: argparse.Namespace) -> int:
    data = client_from_args(args).get("/api/outbox", {"all": "true"} if args.all else None)

    def human(d: Any) -> None:
        counts = ", ".join(f"{k}={v}" for k, v in sorted(d["counts"].items())) or "empty"
        print(f"outbox: {counts}")
        print_table(d["messages"], OUTBOX_COLUMNS)

    return emit(args, data, human)


def _retry(args: argparse.Namespace) -> int:
    data = client_from_args(args).post(f"/api/outbox/{args.message_id}/retry")
    return emit(args, data, print_fields)


def _drop(args: argparse.Namespace) -> int:
    data = client_from_args(args).post(f"/api/outbox/{args.message_id}/drop")
    return emit(args, data, print_fields)
