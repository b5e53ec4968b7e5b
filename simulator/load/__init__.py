"""The load generator (``csms-sim load``) and its yardstick (``csms-sim echo-server``).

``engine`` runs a load, ``charger`` is one lean charger, ``model`` holds the config and
the report, ``echo`` the echo server, ``cli`` the command. The names the benchmark
harness and the tests use are importable from here.
"""

from simulator.load.cli import add_arguments, config_from, main, render
from simulator.load.echo import EchoServer, echo_subprocess, serve_echo, start_echo_server
from simulator.load.engine import run_load
from simulator.load.model import STATELESS, ActionStats, LoadConfig, LoadReport, percentile

__all__ = [
    "STATELESS",
    "ActionStats",
    "EchoServer",
    "LoadConfig",
    "LoadReport",
    "add_arguments",
    "config_from",
    "echo_subprocess",
    "main",
    "percentile",
    "render",
    "run_load",
    "serve_echo",
    "start_echo_server",
]
