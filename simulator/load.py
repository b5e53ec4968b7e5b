"""Load generator (placeholder until the lean client lands)."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", default="ws://127.0.0.1:9000/ocpp")


async def main(args: argparse.Namespace) -> int:
    print("csms-sim load: not implemented yet")
    return 2


async def serve_echo(host: str, port: int) -> int:
    print("csms-sim echo-server: not implemented yet")
    return 2
