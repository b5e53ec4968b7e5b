"""Security profiles and the OCPP 1.6 security extensions from the command line.

- ``csms security-events list [--charger CP] [--critical] [--limit N]``
- ``csms security show CP``: profile, CA install, signed certificates, calls, notifications
- ``csms security set-profile CP N [--registry-only]``: raise the profile over OCPP
  (the CA certificate must have been installed first) or record a local change
- one command per security call (``install-certificate``, ``get-log``...), built from
  :data:`COMMANDS` like the other call commands (:mod:`csms.cli.calls`); they go through
  ``/api/chargers/{id}/calls/{Action}``, which stores each outcome.
"""

from __future__ import annotations

import argparse
from typing import Any

from csms.cli.calls import CONNECTOR, RETRIES, RETRY_INTERVAL, CallCommand, Flag, register_commands
from csms.cli.client import add_command, client_from_args, emit, print_fields, print_table, quote

CERT_TYPES = ("CentralSystemRootCertificate", "ManufacturerRootCertificate")
EXTENDED_MESSAGES = (
    "BootNotification",
    "LogStatusNotification",
    "FirmwareStatusNotification",
    "Heartbeat",
    "MeterValues",
    "SignChargePointCertificate",
    "StatusNotification",
)
REQUEST_ID = Flag("--request-id", "requestId", "int", True, help="id the charger reports back")

COMMANDS: tuple[CallCommand, ...] = (
    CallCommand(
        "install-certificate",
        "InstallCertificate",
        "install a root certificate on the charger (first step of a profile upgrade)",
        (
            Flag("--type", "certificateType", required=True, choices=CERT_TYPES),
            Flag("--certificate", "certificate", "file", True, help="PEM file"),
        ),
    ),
    CallCommand(
        "get-installed-certificate-ids",
        "GetInstalledCertificateIds",
        "list the root certificates the charger holds (hash data)",
        (Flag("--type", "certificateType", required=True, choices=CERT_TYPES),),
    ),
    CallCommand(
        "delete-certificate",
        "DeleteCertificate",
        "delete a root certificate, named by its hash data",
        (
            Flag(
                "--hash-algorithm",
                "certificateHashData.hashAlgorithm",
                choices=("SHA256", "SHA384", "SHA512"),
                default="SHA256",
            ),
            Flag("--issuer-name-hash", "certificateHashData.issuerNameHash", required=True),
            Flag("--issuer-key-hash", "certificateHashData.issuerKeyHash", required=True),
            Flag("--serial", "certificateHashData.serialNumber", required=True),
        ),
    ),
    CallCommand(
        "extended-trigger-message",
        "ExtendedTriggerMessage",
        "ask the charger to send a message now (SignChargePointCertificate: a new CSR)",
        (
            Flag("--message", "requestedMessage", required=True, choices=EXTENDED_MESSAGES),
            CONNECTOR,
        ),
    ),
    CallCommand(
        "signed-update-firmware",
        "SignedUpdateFirmware",
        "install signed firmware from a URL",
        (
            REQUEST_ID,
            Flag("--location", "firmware.location", required=True, help="firmware URL"),
            Flag("--retrieve-date", "firmware.retrieveDateTime", required=True, help="ISO 8601"),
            Flag("--install-date", "firmware.installDateTime", help="ISO 8601"),
            Flag(
                "--signing-certificate",
                "firmware.signingCertificate",
                "file",
                True,
                help="PEM file of the firmware signing certificate",
            ),
            Flag("--signature", "firmware.signature", required=True, help="base64 signature"),
            RETRIES,
            RETRY_INTERVAL,
        ),
    ),
    CallCommand(
        "get-log",
        "GetLog",
        "upload the charger's diagnostics or security log to a URL",
        (
            REQUEST_ID,
            Flag(
                "--type",
                "logType",
                choices=("DiagnosticsLog", "SecurityLog"),
                default="DiagnosticsLog",
            ),
            Flag("--location", "log.remoteLocation", required=True, help="upload URL"),
            Flag("--oldest", "log.oldestTimestamp", help="ISO 8601"),
            Flag("--latest", "log.latestTimestamp", help="ISO 8601"),
            RETRIES,
            RETRY_INTERVAL,
        ),
    ),
)


def register(subparsers: Any) -> None:
    register_commands(subparsers, COMMANDS)
    group = subparsers.add_parser("security-events", help="security events chargers reported")
    sub = group.add_subparsers(dest="security_events_command", metavar="ACTION")
    sub.required = True
    p = add_command(sub, "list", _events, "list security events, newest first")
    p.add_argument("--charger", help="only this charge point")
    p.add_argument("--critical", action="store_true", help="only critical events")
    p.add_argument("--limit", type=int, default=100, help="at most this many (1..1000)")
    group = subparsers.add_parser("security", help="chargers' security profiles and certificates")
    sub = group.add_subparsers(dest="security_command", metavar="ACTION")
    sub.required = True
    p = add_command(sub, "show", _show, "a charger's profile, certificates and security calls")
    p.add_argument("id")
    p = add_command(
        sub,
        "set-profile",
        _set_profile,
        "raise a charger's security profile (ChangeConfiguration SecurityProfile; install "
        "the CA certificate first)",
    )
    p.add_argument("id")
    p.add_argument("profile", type=int, choices=(0, 1, 2, 3))
    p.add_argument(
        "--registry-only",
        action="store_true",
        help="only record a profile the charger was configured to locally",
    )


def _events(args: argparse.Namespace) -> int:
    query = f"?limit={args.limit}"
    if args.charger:
        query += f"&charger_id={quote(args.charger)}"
    if args.critical:
        query += "&critical=true"
    data = client_from_args(args).get(f"/api/security-events{query}")

    def human(d: Any) -> None:
        print_table(
            d["security_events"],
            ["id", "charger_id", "type", "timestamp", "critical", "tech_info"],
        )

    return emit(args, data, human)


def _show(args: argparse.Namespace) -> int:
    data = client_from_args(args).get(f"/api/chargers/{quote(args.id)}/security")

    def human(d: Any) -> None:
        print_fields({k: d[k] for k in ("id", "security_profile", "has_password", "ca_installed")})
        for title, rows, cols in (
            ("signed certificates", d["signed_certificates"], ["serial", "not_after", "issued_at"]),
            ("calls", d["calls"], ["id", "action", "created_at", "error"]),
            ("notifications", d["notifications"], ["action", "status", "request_id"]),
        ):
            if rows:
                print(f"\n{title}:")
                print_table(rows, cols)

    return emit(args, data, human)


def _set_profile(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"profile": args.profile}
    if args.registry_only:
        body["registry_only"] = True
    data = client_from_args(args).post(f"/api/chargers/{quote(args.id)}/security-profile", body)

    def human(d: Any) -> None:
        answer = f" (charger answered {d['status']})" if d.get("status") else ""
        print(f"{d['id']}: security profile {d['security_profile']}{answer}")

    return emit(args, data, human)
