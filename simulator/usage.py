"""What the simulator's command lines (``csms-sim``, ``csms-emsp``) share: help with
defaults, ``--version``, and a quiet exit when the reader of stdout goes away
(``csms-sim scenarios | head``).

The simulator speaks only wire protocols and so keeps its own copy of these few
lines rather than importing the CSMS.

Why a formatter that fills in the missing defaults: ``--help`` must tell a newcomer what
happens when an option is left out. Options whose help already says (``default ...``)
keep their words; the others get ``(default: X)``, ``(default: not set)`` or, for
flags, ``(default: off)``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from importlib import metadata

BROKEN_PIPE_EXIT = 141  # 128 + SIGPIPE, what a shell reports for a writer cut off by head


class DefaultsHelpFormatter(argparse.HelpFormatter):
    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if (
            not action.option_strings
            or isinstance(action, argparse._HelpAction | argparse._VersionAction)
            or "default" in text.lower()
            or action.default is argparse.SUPPRESS
        ):
            return text
        if action.required:
            return f"{text} (required)".strip()
        if action.nargs == 0 and action.default is False:
            return f"{text} (default: off)".strip()
        if action.default is None:
            return f"{text} (default: not set)".strip()
        return f"{text} (default: %(default)s)".strip()


def apply_formatter(parser: argparse.ArgumentParser) -> None:
    """Give ``parser`` and every subcommand parser under it the defaults formatter."""
    parser.formatter_class = DefaultsHelpFormatter
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                apply_formatter(sub)


def version(dist: str = "csms") -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:  # running from a source tree without install
        return "unknown"


def add_version(parser: argparse.ArgumentParser, prog: str) -> None:
    parser.add_argument("--version", action="version", version=f"{prog} {version()}")


def pipe_safe(run: Callable[[], int]) -> int:
    """``run()``, flushing stdout inside; a closed pipe ends quietly with exit 141."""
    try:
        code = run()
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        # Point stdout at /dev/null so the interpreter's final flush does not complain.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return BROKEN_PIPE_EXIT
