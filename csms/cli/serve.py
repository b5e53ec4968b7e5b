"""``csms serve``: run the CSMS until SIGINT/SIGTERM.

Why the signal handling lives here and not in :class:`csms.system.System`: the system is
also started inside tests and other programs that own their own loop and signals; only
the process entry point may decide that a signal means "stop everything".
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

from csms import logs
from csms.admin.token_file import TokenSource
from csms.cli.client import DEFAULT_CONFIG, add_command
from csms.config import Config, ConfigError, load


def register(subparsers: Any) -> None:
    p = add_command(
        subparsers, "serve", _serve, "run the OCPP server, admin API and OCPI", admin=False
    )
    p.add_argument(
        "--config",
        default=None,
        help="config file (default: ./config.toml when present, else built-in defaults)",
    )


def _serve(args: argparse.Namespace) -> int:
    path = args.config
    if path is None and Path(DEFAULT_CONFIG).exists():
        path = DEFAULT_CONFIG
    try:
        config = load(path, os.environ)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    return serve(config)


def serve(config: Config) -> int:
    """Configure logs, run the app until a signal; returns the exit code."""
    logs.configure(config.log.level, config.log.format)
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is absent on Windows only
        runner = asyncio.run
    try:
        return int(runner(run_until_signal(config)))
    except KeyboardInterrupt:  # a second Ctrl-C during shutdown
        return 130


async def run_until_signal(config: Config) -> int:
    from csms.system import compose

    log = logs.get("csms.serve")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except NotImplementedError:  # pragma: no cover - Windows
            pass
    from csms.store.schema import SchemaNewerThanCode

    try:
        app = await compose(config)
        await app.start()
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    except (OSError, SchemaNewerThanCode) as exc:
        log.error("startup_failed", error=str(exc))
        print(f"cannot start: {exc}", file=sys.stderr)
        return 1
    _tell_token(app.admin_token, app.admin_port)
    if app.admin_token.path is not None:
        log.info(
            "admin_token_file", path=str(app.admin_token.path), created=app.admin_token.created
        )
    from csms import collector

    collector.tune_for_serving()
    freezer = collector.start_freezer(
        config.server.gc_freeze_interval_s, config.server.gc_full_collect_interval_s
    )
    try:
        await stop.wait()
        log.info("shutdown_requested")
    finally:
        if freezer is not None:
            freezer.cancel()
        await app.stop()
    return 0


def _tell_token(source: TokenSource, admin_port: int) -> None:
    """Say where the admin token is (never the token itself: logs are often shipped)."""
    if source.kind != "file" or source.path is None:
        return
    verb = "generated a new admin token in" if source.created else "admin token is in"
    mode = source.path.stat().st_mode & 0o777
    if mode & 0o077:
        print(
            f"csms: warning: {source.path} is readable by others (mode {mode:04o}); "
            f"run: chmod 600 {source.path}",
            file=sys.stderr,
            flush=True,
        )
    print(
        f"csms: {verb} {source.path.resolve()} (mode 0600); the csms CLI reads it from there; "
        f"admin API on port {admin_port}",
        file=sys.stderr,
        flush=True,
    )
