"""One subcommand per CSMS-initiated OCPP call, generated from :data:`COMMANDS`.

Why a table: each command is only "flags -> payload keys"; writing nineteen functions
would repeat the same three lines nineteen times and let them drift. A flag maps to one
camelCase payload key; ``kind`` says how its text becomes JSON. ``csms call CP ACTION
JSON`` covers anything the table does not (vendor keys, full profiles).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from csms.cli.client import (
    AdminClient,
    CliError,
    add_command,
    client_from_args,
    emit,
    print_json,
    quote,
)


@dataclass(frozen=True)
class Flag:
    flag: str  # "--id-tag"
    key: str  # payload key, camelCase as on the wire; "a.b" sets b inside object a
    # str | int | json | file (text of a file, e.g. a PEM) | list (repeatable str)
    # | tags (repeatable id tags)
    kind: str = "str"
    required: bool = False
    choices: tuple[str, ...] | None = None
    default: Any = None
    help: str = ""


@dataclass(frozen=True)
class CallCommand:
    name: str
    action: str
    help: str
    flags: tuple[Flag, ...] = ()
    build: Callable[[argparse.Namespace, dict[str, Any]], None] | None = None


CONNECTOR = Flag("--connector", "connectorId", "int", help="connector id (0: the whole charger)")
CONNECTOR_REQ = Flag("--connector", "connectorId", "int", True, help="connector id")
RETRIES = Flag("--retries", "retries", "int", help="how often the charger retries")
RETRY_INTERVAL = Flag("--retry-interval", "retryInterval", "int", help="seconds between retries")
MESSAGES = (
    "BootNotification",
    "DiagnosticsStatusNotification",
    "FirmwareStatusNotification",
    "Heartbeat",
    "MeterValues",
    "StatusNotification",
)
PURPOSES = ("ChargePointMaxProfile", "TxDefaultProfile", "TxProfile")


def _local_list(args: argparse.Namespace, payload: dict[str, Any]) -> None:
    entries = [{"idTag": t, "idTagInfo": {"status": "Accepted"}} for t in args.id_tag or []]
    entries += [{"idTag": t} for t in args.remove or []]
    if entries:
        payload["localAuthorizationList"] = entries


COMMANDS: tuple[CallCommand, ...] = (
    CallCommand(
        "remote-start",
        "RemoteStartTransaction",
        "ask the charger to start a transaction",
        (
            Flag("--id-tag", "idTag", required=True, help="id tag to start for"),
            CONNECTOR,
            Flag(
                "--profile-json", "chargingProfile", "json", help="chargingProfile (file or JSON)"
            ),
        ),
    ),
    CallCommand(
        "remote-stop",
        "RemoteStopTransaction",
        "ask the charger to stop a transaction",
        (Flag("--transaction", "transactionId", "int", True, help="transaction id"),),
    ),
    CallCommand(
        "reset",
        "Reset",
        "reboot the charger",
        (Flag("--type", "type", choices=("Soft", "Hard"), default="Soft", help="default: Soft"),),
    ),
    CallCommand(
        "change-configuration",
        "ChangeConfiguration",
        "set one configuration key",
        (Flag("--key", "key", required=True), Flag("--value", "value", required=True)),
    ),
    CallCommand(
        "get-configuration",
        "GetConfiguration",
        "read configuration keys (all when no --key)",
        (Flag("--key", "key", "list", help="key to read; repeat for several"),),
    ),
    CallCommand(
        "change-availability",
        "ChangeAvailability",
        "make a connector (0: the charger) Operative or Inoperative",
        (
            CONNECTOR_REQ,
            Flag("--type", "type", required=True, choices=("Inoperative", "Operative")),
        ),
    ),
    CallCommand(
        "unlock-connector", "UnlockConnector", "unlock a connector's cable", (CONNECTOR_REQ,)
    ),
    CallCommand("clear-cache", "ClearCache", "clear the charger's authorization cache"),
    CallCommand(
        "trigger-message",
        "TriggerMessage",
        "ask the charger to send a message now",
        (Flag("--message", "requestedMessage", required=True, choices=MESSAGES), CONNECTOR),
    ),
    CallCommand(
        "data-transfer",
        "DataTransfer",
        "vendor-specific data transfer",
        (
            Flag("--vendor", "vendorId", required=True),
            Flag("--message-id", "messageId"),
            Flag("--data", "data"),
        ),
    ),
    CallCommand(
        "send-local-list",
        "SendLocalList",
        "replace or update the charger's local authorization list",
        (
            Flag("--version", "listVersion", "int", True),
            Flag("--update-type", "updateType", required=True, choices=("Full", "Differential")),
            Flag("--id-tag", "", "tags", help="id tag to add as Accepted; repeatable"),
            Flag("--remove", "", "tags", help="id tag to remove (Differential); repeatable"),
        ),
        build=_local_list,
    ),
    CallCommand("get-local-list-version", "GetLocalListVersion", "read the local list version"),
    CallCommand(
        "reserve-now",
        "ReserveNow",
        "reserve a connector for an id tag",
        (
            CONNECTOR_REQ,
            Flag("--id-tag", "idTag", required=True),
            Flag(
                "--expiry", "expiryDate", required=True, help="ISO 8601, e.g. 2030-01-01T00:00:00Z"
            ),
            Flag("--reservation-id", "reservationId", "int", True),
            Flag("--parent-id-tag", "parentIdTag"),
        ),
    ),
    CallCommand(
        "cancel-reservation",
        "CancelReservation",
        "cancel a reservation",
        (Flag("--reservation-id", "reservationId", "int", True),),
    ),
    CallCommand(
        "set-charging-profile",
        "SetChargingProfile",
        "install a charging profile",
        (
            CONNECTOR_REQ,
            Flag("--profile-json", "csChargingProfiles", "json", True, help="file or JSON"),
        ),
    ),
    CallCommand(
        "clear-charging-profile",
        "ClearChargingProfile",
        "clear charging profiles matching the filters (all when none)",
        (
            Flag("--id", "id", "int", help="profile id"),
            CONNECTOR,
            Flag("--purpose", "chargingProfilePurpose", choices=PURPOSES),
            Flag("--stack-level", "stackLevel", "int"),
        ),
    ),
    CallCommand(
        "get-composite-schedule",
        "GetCompositeSchedule",
        "read the schedule a connector will follow",
        (
            CONNECTOR_REQ,
            Flag("--duration", "duration", "int", True, help="seconds"),
            Flag("--rate-unit", "chargingRateUnit", choices=("A", "W")),
        ),
    ),
    CallCommand(
        "update-firmware",
        "UpdateFirmware",
        "install firmware from a URL",
        (
            Flag("--location", "location", required=True, help="firmware URL"),
            Flag("--retrieve-date", "retrieveDate", required=True, help="ISO 8601 date-time"),
            RETRIES,
            RETRY_INTERVAL,
        ),
    ),
    CallCommand(
        "get-diagnostics",
        "GetDiagnostics",
        "upload diagnostics to a URL",
        (
            Flag("--location", "location", required=True, help="upload URL"),
            RETRIES,
            RETRY_INTERVAL,
            Flag("--start-time", "startTime", help="ISO 8601 date-time"),
            Flag("--stop-time", "stopTime", help="ISO 8601 date-time"),
        ),
    ),
)


def register(subparsers: Any) -> None:
    register_commands(subparsers, COMMANDS)
    p = add_command(subparsers, "call", _generic, "send any CSMS-initiated OCPP call")
    p.add_argument("charger", help="charge point id")
    p.add_argument("action", help="OCPP action, e.g. Reset")
    p.add_argument("payload", nargs="?", default="{}", help="JSON payload or a file holding it")
    _timeout_flag(p)


def register_commands(subparsers: Any, commands: tuple[CallCommand, ...]) -> None:
    """One subcommand per :class:`CallCommand` (other modules add their own tables)."""
    for cmd in commands:
        p = add_command(subparsers, cmd.name, _runner(cmd), f"{cmd.help} (OCPP {cmd.action})")
        p.add_argument("charger", help="charge point id")
        for f in cmd.flags:
            text = f.help or (f"the payload field {f.key}" if f.key else "")
            kwargs: dict[str, Any] = {"help": text or None, "dest": _dest(f)}
            if f.kind in ("list", "tags"):
                kwargs["action"] = "append"
            elif f.kind == "int":
                kwargs["type"] = int
            if f.choices:
                kwargs["choices"] = f.choices
            if f.default is not None:
                kwargs["default"] = f.default
            elif f.required:
                kwargs["required"] = True
            p.add_argument(f.flag, **kwargs)
        _timeout_flag(p)


def _timeout_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--timeout",
        type=float,
        help="seconds to wait for the charger (default: server.call_timeout_s)",
    )


def _dest(f: Flag) -> str:
    return f.flag.lstrip("-").replace("-", "_")


def build_payload(cmd: CallCommand, args: argparse.Namespace) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    for f in cmd.flags:
        if f.kind == "tags":
            continue  # consumed by cmd.build
        value = getattr(args, _dest(f))
        if value is None:
            continue
        if f.kind == "json":
            value = parse_json_arg(value, f.flag)
        elif f.kind == "file":
            value = read_text_arg(value, f.flag)
        target = payload
        *outer, key = f.key.split(".")
        for name in outer:
            target = target.setdefault(name, {})
        target[key] = value
    if cmd.build is not None:
        cmd.build(args, payload)
    return payload


def read_text_arg(path: str, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"{what}: cannot read {path}: {exc}", exit_code=2) from None


def parse_json_arg(text: str, what: str) -> Any:
    """JSON given inline (``{...}``/``[...]``) or as a path to a file holding it."""
    source = text
    if not text.lstrip().startswith(("{", "[")):
        path = Path(text)
        if not path.is_file():
            raise CliError(f"{what}: not JSON and no such file: {text}", exit_code=2)
        source = path.read_text(encoding="utf-8")
    try:
        return json.loads(source)
    except ValueError as exc:
        raise CliError(f"{what}: invalid JSON: {exc}", exit_code=2) from None


def send(
    client: AdminClient, charger: str, action: str, payload: Any, timeout: float | None
) -> Any:
    path = f"/api/chargers/{quote(charger)}/calls/{quote(action)}"
    if timeout is not None:
        path += f"?timeout={timeout:g}"
        client = AdminClient(client.base_url, client.token, max(client.timeout_s, timeout + 10))
    return client.post(path, payload)


def _show_result(action: str, charger: str) -> Callable[[Any], None]:
    def human(d: Any) -> None:
        if isinstance(d, dict) and set(d) == {"status"}:
            print(f"{charger} {action}: {d['status']}")
        else:
            print_json(d)

    return human


def _runner(cmd: CallCommand) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        payload = build_payload(cmd, args)
        data = send(client_from_args(args), args.charger, cmd.action, payload, args.timeout)
        return emit(args, data, _show_result(cmd.action, args.charger))

    return run


def _generic(args: argparse.Namespace) -> int:
    payload = parse_json_arg(args.payload, "payload")
    data = send(client_from_args(args), args.charger, args.action, payload, args.timeout)
    return emit(args, data, _show_result(args.action, args.charger))
