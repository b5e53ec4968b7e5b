"""``csms db migrate`` / ``csms db status``: the store's schema, without a running server.

Why these open the store themselves (unlike the admin commands): migrating is what an
operator does before the first node of a new release starts, e.g. in a deploy step, and
it needs no server; ``serve`` applies the same migrations on start anyway. Both refuse a
database whose schema is newer than this release, naming the migrations they do not know.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from csms.cli.client import CliError, add_command, load_config


def register(subparsers: Any) -> None:
    group = subparsers.add_parser("db", help="the store's schema (migrations)")
    sub = group.add_subparsers(dest="db_command", metavar="ACTION")
    sub.required = True
    for name, handler, text in (
        ("migrate", _migrate, "apply every pending migration (both the CSMS's and OCPI's)"),
        ("status", _status, "list applied and pending migrations"),
    ):
        q = add_command(sub, name, handler, text, admin=False)
        q.add_argument(
            "--config", default=None, help="config file (default: config.toml if present)"
        )


def _run(coro: Any) -> Any:
    from csms.store.schema import SchemaNewerThanCode

    try:
        return asyncio.run(coro)
    except SchemaNewerThanCode as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"cannot open the store: {exc}") from None


def _migrate(args: argparse.Namespace) -> int:
    from csms.system import migrate_store

    config = load_config(args.config)
    csms_steps, roaming_steps = _run(migrate_store(config))
    applied = [*csms_steps, *roaming_steps]
    for name in applied:
        print(f"applied {name}")
    if not applied:
        print("up to date")
    return 0


def _status(args: argparse.Namespace) -> int:
    from csms.system import store_status

    applied, pending = _run(store_status(load_config(args.config)))
    for name in applied:
        print(f"applied  {name}")
    for name in pending:
        print(f"pending  {name}")
    return 0
