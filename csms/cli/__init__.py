"""The ``csms`` command line: ``serve`` runs the CSMS, every other command talks to it.

Why commands other than ``serve`` go through the admin HTTP API instead of opening the
SQLite file: the running server owns the charger connections and its in-memory state,
so only it can answer "is CP1 connected" or forward a Reset; one path for all commands
keeps the CLI and the API from drifting apart.

Extending: each module in :data:`COMMAND_MODULES` exposes ``register(subparsers) -> None``
and adds its parsers with :func:`csms.cli.client.add_command`, whose handler is
``(args) -> int`` (the exit code). Import a new module here and append it to the list.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from types import ModuleType

from csms.cli import (
    audit,
    authorizations,
    calls,
    chargers,
    db,
    local_lists,
    locations,
    nodes,
    partners,
    security,
    serve,
    tokens,
    transactions,
)
from csms.cli.client import AdminError, CliError
from csms.cli.usage import add_version, apply_formatter, pipe_safe

COMMAND_MODULES: tuple[ModuleType, ...] = (
    serve,
    chargers,
    tokens,
    partners,
    transactions,
    calls,
    authorizations,
    locations,
    audit,
    local_lists,
    security,
    nodes,
    db,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="csms",
        description="OCPP 1.6J central system: run the server or administer a running one.",
    )
    add_version(parser, "csms")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for module in COMMAND_MODULES:
        module.register(subparsers)
    apply_formatter(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``csms`` console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    return pipe_safe(lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args.func(args))
    except AdminError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


__all__ = ["COMMAND_MODULES", "build_parser", "main"]
