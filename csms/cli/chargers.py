"""``csms chargers add|list|show|remove|accept|pending|reject``: the charger registry."""

from __future__ import annotations

import argparse
from typing import Any

from csms.cli.client import (
    CliError,
    add_command,
    client_from_args,
    emit,
    print_fields,
    print_table,
    quote,
)
from csms.cli.location_edit import CONNECTOR_OPTIONS, LOCATION_OPTIONS, add_options, collect

SITE_OPTIONS = (*LOCATION_OPTIONS, *CONNECTOR_OPTIONS)


def register(subparsers: Any) -> None:
    group = subparsers.add_parser("chargers", help="manage the charger registry")
    sub = group.add_subparsers(dest="chargers_command", metavar="ACTION")
    sub.required = True
    p = add_command(sub, "add", _add, "register a charger (it may then connect)")
    p.add_argument("id", help="charge point id, the last path segment of its OCPP URL")
    p.add_argument("--password", help="HTTP Basic password (security profile 1/2)")
    p.add_argument(
        "--security-profile",
        type=int,
        choices=(0, 1, 2, 3),
        help="OCPP security profile the charger uses: 2 = TLS + Basic (needs --password), "
        "3 = TLS client certificate with CN = id; enforced at every connection",
    )
    site = p.add_argument_group(
        "site (roaming)",
        "with --location: the charger's OCPI Location is created (unpublished unless "
        "--publish) or reused, and connectors 1..N get EVSEs <id>-<n> mapped to them",
    )
    site.add_argument("--location", help="location id of the charger's site")
    site.add_argument("--connectors", type=int, help="connectors with an EVSE (default 1)")
    add_options(site, SITE_OPTIONS)
    add_command(sub, "list", _list, "list chargers with connection and connector status")
    p = add_command(sub, "show", _show, "one charger in detail")
    p.add_argument("id")
    p = add_command(sub, "remove", _remove, "remove a charger from the registry")
    p.add_argument("id")
    for status, verb, text in (
        ("Accepted", "accept", "accept a Pending charger (takes effect at its next message)"),
        ("Pending", "pending", "put a charger back to Pending (closes its session)"),
        ("Rejected", "reject", "reject a charger (closes its session; Boot answers Rejected)"),
    ):
        p = add_command(sub, verb, _registration(status), text)
        p.add_argument("id")


def _connectors(doc: dict[str, Any]) -> str:
    return " ".join(f"{c['connector_id']}:{c['status']}" for c in doc.get("connectors", []))


def _list(args: argparse.Namespace) -> int:
    data = client_from_args(args).get("/api/chargers")

    def human(d: Any) -> None:
        rows = [
            {
                **c,
                "connectors": _connectors(c),
                "model": f"{c.get('vendor') or ''} {c.get('model') or ''}".strip(),
            }
            for c in d["chargers"]
        ]
        print_table(
            rows,
            ["id", "connected", "registration_status", "model", "last_heartbeat_at", "connectors"],
        )

    return emit(args, data, human)


def _add(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"id": args.id}
    if args.password is not None:
        body["password"] = args.password
    if args.security_profile is not None:
        body["security_profile"] = args.security_profile
    site = collect(args, SITE_OPTIONS)
    if args.connectors is not None:
        site["connectors"] = args.connectors
    if args.location is not None:
        body["site"] = {"location_id": args.location, **site}
    elif site:
        raise CliError("the site options need --location")
    data = client_from_args(args).post("/api/chargers", body)
    return emit(args, data, lambda d: print(f"charger {d['id']} added"))


def _show(args: argparse.Namespace) -> int:
    data = client_from_args(args).get(f"/api/chargers/{quote(args.id)}")

    def human(d: Any) -> None:
        print_fields({k: v for k, v in d.items() if k not in ("connectors", "active_transactions")})
        print()
        print_table(
            d.get("connectors", []),
            ["connector_id", "status", "error_code", "info", "status_timestamp"],
        )
        if d.get("active_transactions"):
            print()
            print_table(
                d["active_transactions"],
                ["id", "connector_id", "id_tag", "start_timestamp", "meter_start"],
            )

    return emit(args, data, human)


def _remove(args: argparse.Namespace) -> int:
    data = client_from_args(args).delete(f"/api/chargers/{quote(args.id)}")
    return emit(args, data, lambda d: print(f"charger {d['id']} removed"))


def _registration(status: str) -> Any:
    def handler(args: argparse.Namespace) -> int:
        data = client_from_args(args).post(
            f"/api/chargers/{quote(args.id)}/registration", {"status": status}
        )
        return emit(args, data, lambda d: print(f"charger {d['id']}: {d['registration_status']}"))

    return handler
