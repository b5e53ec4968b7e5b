"""``csms locations create|update|publish|add-evse|map|unmap|...`` and ``csms tariffs set``.

Why the flags are the locations file's keys (``--postal-code`` is ``postal_code``): the
admin API validates with the file's parser and names the offending key, so an error
message points at the flag to fix, and ``csms locations export`` shows the same names.
Only the flags given are sent, so an update changes exactly those fields.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from csms.cli.client import CliError, add_command, client_from_args, emit, print_fields, quote

# (flag, key, kind): kind is str, int, float, "list" (repeatable flag), "bool" (--x/--no-x)
Option = tuple[str, str, Any]
LOCATION_OPTIONS: tuple[Option, ...] = (
    ("--name", "name", str),
    ("--address", "address", str),
    ("--city", "city", str),
    ("--postal-code", "postal_code", str),
    ("--state", "state", str),
    ("--country", "country", str),
    ("--latitude", "latitude", str),
    ("--longitude", "longitude", str),
    ("--time-zone", "time_zone", str),
    ("--parking-type", "parking_type", str),
    ("--facility", "facilities", "list"),
    ("--charging-when-closed", "charging_when_closed", "bool"),
    ("--publish", "publish", "bool"),
)
CONNECTOR_OPTIONS: tuple[Option, ...] = (
    ("--standard", "standard", str),
    ("--format", "format", str),
    ("--power-type", "power_type", str),
    ("--max-voltage", "max_voltage", int),
    ("--max-amperage", "max_amperage", int),
    ("--max-electric-power", "max_electric_power", int),
    ("--tariff", "tariff_ids", "list"),
)
EVSE_OPTIONS: tuple[Option, ...] = (
    ("--evse-id", "evse_id", str),
    ("--charger", "charger_id", str),
    ("--connector", "connector_id", int),
    ("--ocpi-connector-id", "ocpi_connector_id", str),
    ("--capability", "capabilities", "list"),
    *CONNECTOR_OPTIONS,
    ("--floor-level", "floor_level", str),
    ("--physical-reference", "physical_reference", str),
    ("--terms-and-conditions", "terms_and_conditions", str),
)
TARIFF_OPTIONS: tuple[Option, ...] = (
    ("--currency", "currency", str),
    ("--energy-price", "energy_price", float),
    ("--time-price", "time_price", float),
    ("--parking-price", "parking_price", float),
    ("--flat-price", "flat_price", float),
    ("--vat", "vat", float),
)


def add_options(parser: Any, options: tuple[Option, ...]) -> None:
    """The flags of ``options`` on a parser or an argument group."""
    for flag, key, kind in options:
        dest, meta = f"f_{key}", key.upper()
        if kind == "list":
            parser.add_argument(
                flag, dest=dest, action="append", metavar=meta, help=f"{key} (repeatable)"
            )
        elif kind == "bool":
            parser.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction, help=key)
        else:
            parser.add_argument(flag, dest=dest, type=kind, metavar=meta, help=key)


def collect(args: argparse.Namespace, options: tuple[Option, ...]) -> dict[str, Any]:
    """The fields given on the command line (``--clear KEY`` sends ``null``: removed)."""
    out = {key: getattr(args, f"f_{key}") for _, key, _ in options}
    out = {k: v for k, v in out.items() if v is not None}
    for key in getattr(args, "clear", None) or []:
        out[key] = None
    return out


def register_locations(sub: Any) -> None:
    p = add_command(sub, "create", _create, "create a location (unpublished unless --publish)")
    p.add_argument("location_id")
    add_options(p, LOCATION_OPTIONS)
    p = add_command(sub, "update", _update, "change fields of a location")
    p.add_argument("location_id")
    add_options(p, LOCATION_OPTIONS)
    _clear(p)
    for verb, value in (("publish", True), ("unpublish", False)):
        p = add_command(sub, verb, _publish(value), f"{verb} a location to partners")
        p.add_argument("location_id")
    p = add_command(sub, "add-evse", _add_evse, "add an EVSE (one connector) to a location")
    p.add_argument("location_id")
    p.add_argument("uid")
    add_options(p, EVSE_OPTIONS)
    p = add_command(sub, "update-evse", _update_evse, "change fields of an EVSE")
    p.add_argument("location_id")
    p.add_argument("uid")
    add_options(p, EVSE_OPTIONS)
    _clear(p)
    p = add_command(sub, "map", _map, "let an EVSE stand for a charger's connector")
    p.add_argument("location_id")
    p.add_argument("uid")
    p.add_argument("charger_id")
    p.add_argument("connector_id", type=int)
    p = add_command(sub, "unmap", _unmap, "the EVSE stands for no connector any more")
    p.add_argument("location_id")
    p.add_argument("uid")
    p = add_command(sub, "remove-evse", _remove_evse, "mark an EVSE REMOVED (never deleted)")
    p.add_argument("location_id")
    p.add_argument("uid")
    p = add_command(sub, "import", _import, "upsert a locations file (nothing is retired)")
    p.add_argument("file")
    add_command(sub, "export", _export, "print every location and tariff as a locations file")
    add_command(sub, "unmapped", _unmapped, "connectors chargers reported that no EVSE maps")


def register_tariffs(sub: Any) -> None:
    p = add_command(sub, "set", _set_tariff, "create or replace a tariff (pushed to partners)")
    p.add_argument("tariff_id")
    add_options(p, TARIFF_OPTIONS)


def _clear(p: argparse.ArgumentParser) -> None:
    p.add_argument("--clear", action="append", metavar="KEY", help="remove an optional field")


def _location_result(args: argparse.Namespace, data: Any) -> int:
    def human(d: Any) -> None:
        print(f"location {d['id']} ({len(d['evses'])} EVSE(s)), last_updated {d['last_updated']}")

    return emit(args, data, human)


def _create(args: argparse.Namespace) -> int:
    body = {"id": args.location_id, "publish": False, **collect(args, LOCATION_OPTIONS)}
    return _location_result(args, client_from_args(args).post("/api/locations", body))


def _update(args: argparse.Namespace) -> int:
    body = collect(args, LOCATION_OPTIONS)
    path = f"/api/locations/{quote(args.location_id)}"
    return _location_result(args, client_from_args(args).request("PATCH", path, body))


def _publish(value: bool) -> Any:
    def handler(args: argparse.Namespace) -> int:
        path = f"/api/locations/{quote(args.location_id)}"
        data = client_from_args(args).request("PATCH", path, {"publish": value})
        return _location_result(args, data)

    return handler


def _evse_path(args: argparse.Namespace) -> str:
    return f"/api/locations/{quote(args.location_id)}/evses/{quote(args.uid)}"


def _add_evse(args: argparse.Namespace) -> int:
    body = {"uid": args.uid, **collect(args, EVSE_OPTIONS)}
    path = f"/api/locations/{quote(args.location_id)}/evses"
    return _location_result(args, client_from_args(args).post(path, body))


def _update_evse(args: argparse.Namespace) -> int:
    data = client_from_args(args).request("PATCH", _evse_path(args), collect(args, EVSE_OPTIONS))
    return _location_result(args, data)


def _map(args: argparse.Namespace) -> int:
    body = {"charger_id": args.charger_id, "connector_id": args.connector_id}
    return _location_result(args, client_from_args(args).request("PATCH", _evse_path(args), body))


def _unmap(args: argparse.Namespace) -> int:
    body = {"charger_id": None, "connector_id": None}
    return _location_result(args, client_from_args(args).request("PATCH", _evse_path(args), body))


def _remove_evse(args: argparse.Namespace) -> int:
    return _location_result(args, client_from_args(args).delete(_evse_path(args)))


def _import(args: argparse.Namespace) -> int:
    try:
        text = Path(args.file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {args.file}: {exc}") from None
    data = client_from_args(args).post("/api/locations/import", {"toml": text})
    return emit(args, data, print_fields)


def _export(args: argparse.Namespace) -> int:
    data = client_from_args(args).get("/api/locations/export")

    def human(d: Any) -> None:
        sys.stdout.write(d["toml"])

    return emit(args, data, human)


def _unmapped(args: argparse.Namespace) -> int:
    from csms.cli.client import print_table

    data = client_from_args(args).get("/api/locations/unmapped")
    columns = ["charger_id", "connector_id", "status", "reported_at"]
    return emit(args, data, lambda d: print_table(d["unmapped"], columns))


def _set_tariff(args: argparse.Namespace) -> int:
    body = collect(args, TARIFF_OPTIONS)
    data = client_from_args(args).request("PUT", f"/api/tariffs/{quote(args.tariff_id)}", body)

    def human(d: Any) -> None:
        print(f"tariff {d['id']}, last_updated {d['last_updated']}")

    return emit(args, data, human)
