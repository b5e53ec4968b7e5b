"""``csms-sim``: run scenarios, stay connected as a live charger, generate load, echo.

Exit codes: 0 success; 1 the CSMS refused (HTTP 401/404 at the handshake, Rejected
boot), ``--register`` failed, or a scenario expectation failed, with the reason on
stderr; 2 bad usage.

``--register`` (run, serve, load) first registers the ids through the CSMS's admin API
(:mod:`simulator.register`), so a fresh CSMS that rejects unknown ids accepts them.
``--ca-file`` trusts a private CA for a ``wss://`` URL. ``--url`` may be repeated (or
hold comma-separated URLs) for several CSMS nodes: a charger whose link is lost boots
again on the next one and replays the transaction messages left unanswered.

    csms-sim run --url ws://127.0.0.1:9000/ocpp --id CP1 --id-tag TAG1 --scenario basic
    csms-sim run ... --chargers 10 --id-pattern 'CP{n:04d}' --id-tags TAG1,TAG2 --seed 7
    csms-sim serve --url ws://127.0.0.1:9000/ocpp --id CP1
    csms-sim serve --url ws://node-a:9000/ocpp --url ws://node-b:9000/ocpp --chargers 50
    csms-sim scenarios
    csms-sim load --url ws://127.0.0.1:9000/ocpp --chargers 100 --calls 20000
    csms-sim echo-server --port 9900
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import random
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

import structlog

from simulator.chargepoint import (
    ConnectFailed,
    FailoverPolicy,
    SimulatedChargePoint,
    SimulatorError,
)
from simulator.cpconfig import DEFAULT_PROFILES
from simulator.failover import split_urls
from simulator.load import cli as load_cli
from simulator.load.cli import DEFAULT_URL
from simulator.load.echo import serve_echo
from simulator.register import (
    DEFAULT_ADMIN_URL,
    DEFAULT_TOKEN_FILE,
    RegisterFailed,
    admin_token,
    register_chargers,
)
from simulator.scenarios import ScenarioError, builtin_names, load_scenario, run_scenario
from simulator.usage import add_version, apply_formatter, pipe_safe


def _out(line: str) -> None:
    print(line, flush=True)


def _err(line: str) -> None:
    print(f"csms-sim: {line}", file=sys.stderr, flush=True)


def charger_ids(args: argparse.Namespace) -> list[str]:
    if args.chargers <= 1:
        return [args.id]
    return [args.id_pattern.format(n=n, id=args.id) for n in range(1, args.chargers + 1)]


def pick_tags(args: argparse.Namespace, count: int) -> list[str]:
    """Deterministic per ``--seed``: the same run picks the same tag for the same charger."""
    tags = [t for t in (args.id_tags or "").split(",") if t] or [args.id_tag]
    rng = random.Random(args.seed)
    return [tags[0] if len(tags) == 1 else rng.choice(tags) for _ in range(count)]


async def register_first(args: argparse.Namespace, ids: list[str]) -> None:
    """With ``--register``: make sure every id is in the CSMS's registry."""
    if not args.register:
        return
    token = admin_token(args.admin_token, args.admin_token_file)
    added, existed = await register_chargers(args.admin_url, token, ids, args.password)
    _err(f"registered {added} charger(s) at {args.admin_url} ({existed} already registered)")


async def cmd_run(args: argparse.Namespace) -> int:
    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as exc:
        _err(str(exc))
        return 2
    ids = charger_ids(args)
    tags = pick_tags(args, len(ids))
    await register_first(args, ids)
    overrides: dict[str, Any] = {"response_timeout": args.timeout, **tls_options(args)}
    if args.connectors is not None:
        overrides["connectors"] = args.connectors
    single = len(ids) == 1

    async def one(n: int, cp_id: str) -> tuple[str, bool, str | None]:
        say = _out if single or args.verbose else (lambda _line: None)
        if not single and args.verbose:
            say = lambda line, p=cp_id: _out(f"{p}: {line}")  # noqa: E731
        result = await run_scenario(
            scenario,
            url=args.url,
            cp_id=cp_id,
            id_tag=tags[n],
            password=args.password,
            say=say,
            seed=args.seed + n,
            **overrides,
        )
        return cp_id, result.ok, result.error

    if single:
        _out(f"scenario {scenario.name}: {scenario.description}")
    outcomes = await asyncio.gather(*(one(n, cp_id) for n, cp_id in enumerate(ids)))
    failed = [(cp_id, err) for cp_id, ok, err in outcomes if not ok]
    for cp_id, err in failed:
        _err(f"{cp_id}: {err}" if not single else str(err))
    if not single:
        _out(f"{len(ids) - len(failed)}/{len(ids)} chargers completed scenario {scenario.name}")
    if not failed and single:
        _out("ok")
    return 1 if failed else 0


def tls_options(args: argparse.Namespace) -> dict[str, Any]:
    """The simulator's TLS keyword arguments from ``--ca-file``/``--client-cert``/``--client-key``."""
    names = ("ca_file", "client_cert", "client_key")
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


def _call_printer(cp_id: str) -> Callable[[str, dict[str, Any]], None]:
    def show(action: str, payload: dict[str, Any]) -> None:
        _out(f"{cp_id} <- {action} {payload}")

    return show


async def cmd_serve(args: argparse.Namespace) -> int:
    """Connect, boot, report every connector, then answer CSMS calls until interrupted."""
    ids = charger_ids(args)
    await register_first(args, ids)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    chargers: list[SimulatedChargePoint] = []
    try:
        for cp_id in ids:
            cp = SimulatedChargePoint(
                args.url,
                cp_id,
                password=args.password,
                connectors=args.connectors or 2,
                response_timeout=args.timeout,
                meter_interval_s=args.meter_interval,
                on_call=_call_printer(cp_id),
                local_list_max_length=args.local_list_max,
                send_local_list_max_length=args.send_local_list_max,
                feature_profiles=args.feature_profiles,
                keep_unanswered=True,  # replayed by _reconnect
                **tls_options(args),
            )
            chargers.append(cp)
            await cp.open()
            resp = await cp.boot(retry=True, attempts=args.boot_attempts, announce=True)
            if resp.get("status") != "Accepted":
                _err(
                    f"{cp_id}: BootNotification {resp.get('status')} after {args.boot_attempts} attempts"
                )
                return 1
            _out(f"{cp_id} ready (heartbeat {resp.get('interval')} s)")
        _out(f"serving {len(chargers)} charger(s); Ctrl-C to stop")
        while not stop.is_set():
            done = await asyncio.wait(
                [asyncio.ensure_future(stop.wait())]
                + [asyncio.ensure_future(cp.wait_closed(timeout=1e9)) for cp in chargers],
                return_when=asyncio.FIRST_COMPLETED,
            )
            for fut in done[1]:
                fut.cancel()
            if stop.is_set():
                break
            lost = [cp for cp in chargers if not cp.connected and "reset" not in cp.follow_ups()]
            for cp in lost:
                _out(f"{cp.id} connection lost; reconnecting")
            await asyncio.gather(*(_reconnect(cp) for cp in lost))
        return 0
    finally:
        for cp in chargers:
            await cp.close()


RECONNECT = FailoverPolicy(initial_s=0.5, max_s=30.0)


async def _reconnect(cp: SimulatedChargePoint) -> None:
    """Boot again on the next URL (the same one when there is one), replay what was left."""
    replayed = await cp.failover(RECONNECT)
    _out(f"{cp.id} connected to {cp.url}; replayed {len(replayed)} message(s)")


async def cmd_load(args: argparse.Namespace) -> int:
    ids = [args.id_pattern.format(n=n) for n in range(1, args.chargers + 1)]
    await register_first(args, ids)
    return await load_cli.main(args)


async def cmd_echo(args: argparse.Namespace) -> int:
    return await serve_echo(args.host, args.port)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="csms-sim", description="OCPP 1.6J charge point simulator")
    add_version(p, "csms-sim")
    p.add_argument(
        "--log-level",
        default="warning",
        choices=["debug", "info", "warning", "error"],
        help="log level on stderr",
    )
    sub = p.add_subparsers(dest="command", required=True)

    def register_opts(sp: argparse.ArgumentParser) -> None:
        g = sp.add_argument_group("registering the ids first (--register)")
        g.add_argument(
            "--register",
            action="store_true",
            help="register the charger ids (and --password) through the CSMS admin API first",
        )
        g.add_argument(
            "--admin-url",
            default=DEFAULT_ADMIN_URL,
            help="CSMS admin API base URL ($CSMS_ADMIN_URL when set)",
        )
        g.add_argument(
            "--admin-token",
            default=None,
            help="admin bearer token (default: $CSMS_ADMIN_TOKEN, else --admin-token-file)",
        )
        g.add_argument(
            "--admin-token-file",
            default=DEFAULT_TOKEN_FILE,
            help="the token file csms serve generated",
        )

    def charger_opts(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--url",
            action="append",
            default=None,
            help=f"CSMS base URL; the id is appended (default {DEFAULT_URL}). Repeat it, or "
            "separate URLs with commas, for several nodes: a charger that loses its link "
            "moves to the next",
        )
        sp.add_argument("--id", default="CP1", help="charge point id (single charger)")
        sp.add_argument("--password", default=None, help="HTTP Basic password (security profile 1)")
        sp.add_argument("--connectors", type=int, default=None, help="connectors per charger")
        sp.add_argument("--chargers", type=int, default=1, help="how many chargers in this process")
        sp.add_argument("--id-pattern", default="CP{n:04d}", help="id pattern when --chargers > 1")
        sp.add_argument("--seed", type=int, default=0, help="seed for every random choice")
        sp.add_argument(
            "--timeout", type=float, default=30.0, help="seconds to wait for each answer"
        )
        tls = sp.add_argument_group("TLS (wss:// URLs)")
        tls.add_argument("--ca-file", help="PEM CA bundle the CSMS's certificate chains to")
        tls.add_argument(
            "--client-cert", help="PEM client certificate, CN = charge point id (profile 3)"
        )
        tls.add_argument("--client-key", help="PEM private key of --client-cert")
        register_opts(sp)

    run = sub.add_parser("run", help="run a scenario and print each step")
    charger_opts(run)
    run.add_argument("--id-tag", default="TAG1", help="idTag the scenario presents")
    run.add_argument(
        "--id-tags", default=None, help="comma-separated idTags, one picked per charger"
    )
    run.add_argument(
        "--scenario",
        default="basic",
        help=f"built-in ({', '.join(builtin_names())}) or a .toml path",
    )
    run.add_argument(
        "-v", "--verbose", action="store_true", help="print every step of every charger"
    )
    run.set_defaults(func=cmd_run)

    serve = sub.add_parser("serve", help="stay connected and answer CSMS calls until Ctrl-C")
    charger_opts(serve)
    serve.add_argument(
        "--meter-interval", type=int, default=60, help="MeterValueSampleInterval (s)"
    )
    serve.add_argument(
        "--boot-attempts", type=int, default=5, help="BootNotification tries before giving up"
    )
    serve.add_argument(
        "--local-list-max", type=int, default=1000, help="LocalAuthListMaxLength (entries held)"
    )
    serve.add_argument(
        "--send-local-list-max",
        type=int,
        default=100,
        help="SendLocalListMaxLength (entries per SendLocalList)",
    )
    serve.add_argument(
        "--feature-profiles",
        default=DEFAULT_PROFILES,
        help="SupportedFeatureProfiles; leave out LocalAuthListManagement for a charger "
        "without local lists",
    )
    serve.set_defaults(func=cmd_serve)

    sc = sub.add_parser("scenarios", help="list built-in scenarios")
    sc.set_defaults(func=None)

    ld = sub.add_parser("load", help="load generator (lean client, pre-encoded frames)")
    load_cli.add_arguments(ld)
    register_opts(ld)
    ld.set_defaults(func=cmd_load)

    echo = sub.add_parser(
        "echo-server", help="bare OCPP echo server to calibrate the load generator"
    )
    echo.add_argument("--host", default="127.0.0.1", help="listen address")
    echo.add_argument("--port", type=int, default=9900, help="listen port")
    echo.set_defaults(func=cmd_echo)
    apply_formatter(p)
    return p


def configure_logging(level: str) -> None:
    """Logs go to stderr so stdout stays the step log a person (or a test) reads."""
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    logging.getLogger("ocpp").setLevel(logging.CRITICAL if level != "debug" else logging.DEBUG)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if hasattr(args, "url"):  # every command taking --url sees one comma-separated string
        try:
            args.url = ",".join(split_urls(args.url or [DEFAULT_URL]))
        except ValueError as exc:
            _err(f"--url: {exc}")
            return 2
    configure_logging(args.log_level)
    return pipe_safe(lambda: _main(args))


def _main(args: argparse.Namespace) -> int:
    if args.command == "scenarios":
        for name in builtin_names():
            scenario = load_scenario(name)
            _out(f"{name:<22} {scenario.description}")
        return 0
    try:
        runner = asyncio.run
        if args.command in ("load", "echo-server"):
            with contextlib.suppress(ImportError):
                import uvloop

                runner = uvloop.run  # type: ignore[assignment]
        return runner(args.func(args))
    except ConnectFailed as exc:
        _err(str(exc))
        return 1
    except SimulatorError as exc:
        _err(str(exc))
        return 1
    except RegisterFailed as exc:
        _err(str(exc))
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
