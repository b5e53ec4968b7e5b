"""What every admin-API command shares: common flags, a tiny HTTP client, output helpers.

Why a blocking ``urllib`` client and not aiohttp: a CLI command makes one or two
requests and exits, so an event loop buys nothing, and a synchronous client keeps each
command a plain function that is trivial to test (run it in a thread next to the
server under test).

Where the API is found, first match wins: ``--admin-url``, ``$CSMS_ADMIN_URL``, then
``admin.host``/``admin.port`` of the config (``--config``, default ``config.toml`` when
present, with ``CSMS__`` overrides). The bearer token: ``--admin-token``,
``$CSMS_ADMIN_TOKEN``, then ``admin.token`` of the config (``CSMS__ADMIN__TOKEN``), then
the token file ``csms serve`` generated (``admin.token_file``, default ``admin-token``
beside the SQLite store).

Errors: :class:`AdminError` (the API answered with an error, carries ``status``,
``code`` and ``message``) and :class:`CliError` (anything else the user must fix, e.g.
the server is not running); :func:`csms.cli.main` prints both without a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from csms.config import Config, ConfigError, load

Handler = Callable[[argparse.Namespace], int]
DEFAULT_CONFIG = "config.toml"


class CliError(Exception):
    """A problem the user must fix; printed as ``error: <message>``."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class AdminError(Exception):
    """The admin API answered with an error status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{message} (HTTP {status}, {code})")
        self.status = status
        self.code = code
        self.message = message


def common_options() -> argparse.ArgumentParser:
    """Flags every admin command accepts, placed after the command name."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("connection")
    g.add_argument("--config", default=None, help="config file (default: ./config.toml if present)")
    g.add_argument(
        "--admin-url",
        default=None,
        help="admin API base URL, e.g. http://127.0.0.1:9100 "
        "(default: $CSMS_ADMIN_URL, else admin.host:admin.port of the config)",
    )
    g.add_argument(
        "--admin-token",
        default=None,
        help="admin bearer token (default: $CSMS_ADMIN_TOKEN, else admin.token of the "
        "config, else the token file csms serve generated)",
    )
    g.add_argument("--json", action="store_true", help="print the raw JSON answer")
    return p


def add_command(
    subparsers: Any, name: str, handler: Handler, help: str, *, admin: bool = True
) -> argparse.ArgumentParser:
    """Add one subcommand; ``admin=True`` gives it the connection flags and ``--json``."""
    parents = [common_options()] if admin else []
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name, help=help, description=help, parents=parents
    )
    parser.set_defaults(func=handler)
    return parser


def load_config(path: str | None) -> Config:
    """The config the CLI reads its defaults from; a bad file is a clear error, exit 2."""
    if path is None and Path(DEFAULT_CONFIG).exists():
        path = DEFAULT_CONFIG
    try:
        return load(path, os.environ)
    except ConfigError as exc:
        raise CliError(f"config error: {exc}", exit_code=2) from None


@dataclass(frozen=True)
class AdminClient:
    """JSON over HTTP to the admin API of a running ``csms serve``."""

    base_url: str
    token: str
    timeout_s: float = 60.0

    def get(self, path: str, query: Mapping[str, Any] | None = None) -> Any:
        return self.request("GET", path, query=query)

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, body=body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: Mapping[str, Any] | None = None,
    ) -> Any:
        url = self.base_url.rstrip("/") + path
        if query:
            clean = {k: str(v) for k, v in query.items() if v is not None}
            if clean:
                url += "?" + urllib.parse.urlencode(clean)
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raise _error_from(exc) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise CliError(
                f"cannot reach the admin API at {self.base_url}: {reason} (is `csms serve` running?)"
            ) from None
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise CliError(f"the admin API at {self.base_url} answered with non-JSON") from None


def _error_from(exc: urllib.error.HTTPError) -> AdminError:
    raw = exc.read()
    try:
        doc = json.loads(raw)
        return AdminError(exc.code, str(doc.get("error", "error")), str(doc.get("message", "")))
    except (ValueError, AttributeError):
        return AdminError(exc.code, "http_error", raw.decode(errors="replace")[:200] or exc.reason)


def client_from_args(args: argparse.Namespace) -> AdminClient:
    url = getattr(args, "admin_url", None) or os.environ.get("CSMS_ADMIN_URL")
    token = getattr(args, "admin_token", None) or os.environ.get("CSMS_ADMIN_TOKEN")
    if not url or not token:
        cfg = load_config(getattr(args, "config", None))
        if not url:
            host = cfg.admin.host
            if host in ("0.0.0.0", "::", ""):
                host = "127.0.0.1"
            if ":" in host:
                host = f"[{host}]"
            url = f"http://{host}:{cfg.admin.port}"
        token = token or cfg.admin.token or _token_from_file(cfg)
    return AdminClient(url, token)


def _token_from_file(cfg: Config) -> str:
    from csms.admin.token_file import read_token, token_path

    path = token_path(cfg)
    try:
        token = read_token(path)
    except ConfigError as exc:
        raise CliError(f"config error: {exc}", exit_code=2) from None
    if token is None:
        raise CliError(
            f"no admin token: admin.token is not set and {path} does not exist "
            "(start `csms serve` once to generate it, or pass --admin-token)"
        )
    return token


def quote(segment: str) -> str:
    """One URL path segment (charger ids may hold characters that need escaping)."""
    return urllib.parse.quote(segment, safe="")


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True))


def print_table(rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> None:
    """A plain aligned table; empty values print as ``-``."""
    rows = list(rows)
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    out = sys.stdout
    out.write("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    out.write("\n")
    for row in cells:
        out.write("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() + "\n")
    if not rows:
        out.write("(none)\n")


def print_fields(data: Mapping[str, Any]) -> None:
    """``key: value`` lines; nested values as compact JSON."""
    width = max((len(k) for k in data), default=0)
    for key, value in data.items():
        print(f"{key.ljust(width)}  {_cell(value)}")


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def emit(args: argparse.Namespace, data: Any, human: Callable[[Any], None]) -> int:
    """Print ``data`` as JSON with ``--json``, else with ``human``; returns exit code 0."""
    if getattr(args, "json", False):
        print_json(data)
    else:
        human(data)
    return 0
