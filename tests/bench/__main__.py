"""``python -m tests.bench [NAME ...] [--baseline REV]``: run the benchmarks (all, or those
named: ``authorize``, ``ocpi_tokens``, ``fuzz_ocpi``, ``store``, ``retention``,
``status``, ``flood``, ``auth_storm``, ``ocpp_fuzz``, ``cluster_call``, ``failover``).

``--baseline REV`` measures the Authorize benchmark's CSMS steps for a checkout of REV
(set up under ``var/bench/baseline`` with its own venv) beside this checkout, in the same
run; see ``tests/bench/README.md``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable


def authorize(args: argparse.Namespace) -> None:
    from tests.bench import bench_authorize

    bench_authorize.main(baseline=args.baseline)


def cluster_call(args: argparse.Namespace) -> None:
    from tests.bench import bench_cluster_call

    bench_cluster_call.main()


def retention(args: argparse.Namespace) -> None:
    from tests.bench import bench_retention

    bench_retention.main()


def ocpi_tokens(args: argparse.Namespace) -> None:
    from tests.bench import bench_ocpi_tokens

    bench_ocpi_tokens.main()


def fuzz_ocpi(args: argparse.Namespace) -> None:
    from tests.bench import fuzz_ocpi

    fuzz_ocpi.main()


def store(args: argparse.Namespace) -> None:
    from tests.bench import bench_store

    bench_store.main()


def flood(args: argparse.Namespace) -> None:
    from tests.bench import bench_hostile

    bench_hostile.main("flood")


def auth_storm(args: argparse.Namespace) -> None:
    from tests.bench import bench_hostile

    bench_hostile.main("auth_storm")


def status(args: argparse.Namespace) -> None:
    from tests.bench import bench_status

    bench_status.main()


def ocpp_fuzz(args: argparse.Namespace) -> None:
    from tests.bench import bench_hostile

    bench_hostile.main("ocpp_fuzz")


def failover(args: argparse.Namespace) -> None:
    from tests.bench import bench_failover

    bench_failover.main()


# Every benchmark by name, in the order a full run takes them. Each imports its module
# when it runs, so that one benchmark's imports (the OCPI one uses the OCPI test
# fixtures) cannot stop another from running.
BENCHMARKS: dict[str, Callable[[argparse.Namespace], None]] = {
    "authorize": authorize,
    "ocpi_tokens": ocpi_tokens,
    "fuzz_ocpi": fuzz_ocpi,
    "store": store,
    "retention": retention,
    "status": status,
    "flood": flood,
    "auth_storm": auth_storm,
    "ocpp_fuzz": ocpp_fuzz,
    "cluster_call": cluster_call,
    "failover": failover,
}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__)
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=(
            "authorize, ocpi_tokens, fuzz_ocpi, store, retention, status, flood, auth_storm, "
            "ocpp_fuzz, cluster_call"
        ),
    )
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="also measure the CSMS of this git revision, side by side (authorize only)",
    )
    args = parser.parse_args(argv)
    wanted = [n.removeprefix("bench_") for n in args.names] or list(BENCHMARKS)
    unknown = [n for n in wanted if n not in BENCHMARKS]
    if unknown:
        known = ", ".join(BENCHMARKS)
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; known: {known}")
    failed = 0
    for name in wanted:
        print(f"== bench_{name}", flush=True)
        try:
            BENCHMARKS[name](args)
        except Exception as exc:  # keep running the other benchmarks
            failed += 1
            print(f"!! bench_{name} failed: {type(exc).__name__}: {exc}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
