"""``csms chargers add|import|list|show|remove|accept|pending|reject``: the charger registry.

``import FILE.csv`` registers many chargers: a header row naming the columns ``id``
(required) and ``password`` (optional; empty means no password), then one charger per
line. Each becomes one ``POST /api/chargers``, so the rules (id syntax, password
hashing) are the API's; chargers already registered are reported and left as they are.
Passwords are never printed.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import Any

from csms.cli.client import (
    AdminError,
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
    p = add_command(sub, "import", _import, "register every charger of a CSV file (id,password)")
    p.add_argument("file", help="CSV with a header row: id[,password]; '-' reads stdin")
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


def _rows(path: str) -> list[tuple[int, str, str | None]]:
    """(line number, id, password or None) of every data line; a bad file is a clear error."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}", exit_code=2) from None
    reader = csv.DictReader(text.splitlines())
    fields = [f.strip().lower() for f in reader.fieldnames or []]
    if "id" not in fields:
        raise CliError(f"{path}: the first line must name the columns, with 'id'", exit_code=2)
    unknown = sorted(set(fields) - {"id", "password"})
    if unknown:
        raise CliError(f"{path}: unknown column(s): {', '.join(unknown)}", exit_code=2)
    reader.fieldnames = fields
    out = []
    for row in reader:
        charger_id = (row.get("id") or "").strip()
        if not charger_id and not any((v or "").strip() for v in row.values()):
            continue  # a blank line
        password = (row.get("password") or "").strip() or None
        out.append((reader.line_num, charger_id, password))
    return out


def _import(args: argparse.Namespace) -> int:
    rows = _rows(args.file)
    client = client_from_args(args)
    results: list[dict[str, Any]] = []
    for line, charger_id, password in rows:
        body: dict[str, Any] = {"id": charger_id}
        if password is not None:
            body["password"] = password
        try:
            client.post("/api/chargers", body)
            outcome, detail = "added", ""
        except AdminError as exc:
            outcome = "exists" if exc.status == 409 else "error"
            detail = "" if exc.status == 409 else exc.message
        results.append({"line": line, "id": charger_id, "result": outcome, "detail": detail})
    counts = {k: sum(1 for r in results if r["result"] == k) for k in ("added", "exists", "error")}
    summary = {"results": results, **counts}

    def human(d: Any) -> None:
        for r in d["results"]:
            if r["result"] != "added":
                print(
                    f"line {r['line']}: {r['id'] or '(no id)'}: {r['result']} {r['detail']}".rstrip()
                )
        print(f"{d['added']} added, {d['exists']} already registered, {d['error']} failed")

    emit(args, summary, human)
    return 1 if counts["error"] else 0
