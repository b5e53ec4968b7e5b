"""Start the real CSMS for a test: ``async with running_csms(tmp_path) as app: ...``.

Why a TOML file instead of building ``Config`` directly: the test then goes through the
same loader and validation as production, so a config the tests use is one an operator
could write.

Defaults for tests: every server on 127.0.0.1 port 0 (read the bound ports back from
``app.ocpp_port`` / ``app.admin_port`` / ``app.ocpi_port``), the store in ``tmp_path``,
OCPI disabled (pass ``ocpi={"enabled": True}`` to get it), admin token :data:`ADMIN_TOKEN`.

Overrides are per section: ``running_csms(tmp_path, server={"call_timeout_s": 0.5})``.
``authorizer`` and ``extra_admin_routes`` go to :func:`csms.system.compose`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from csms.authz.ports import Authorizer
from csms.config import Config, load
from csms.ocpi.runtime import RoamingRuntime
from csms.system import System, running

ADMIN_TOKEN = "test-admin-token"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def config_sections(tmp_path: Path, **sections: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The section tables a test CSMS uses: safe defaults merged with ``sections``."""
    base: dict[str, dict[str, Any]] = {
        # No linger for lone status reports: a test's chargers send them one at a time,
        # so each would wait for company that never comes (csms/store/status_writes.py
        # has its own tests with the linger).
        "server": {"host": "127.0.0.1", "port": 0, "call_timeout_s": 5.0, "status_linger_s": 0},
        "store": {"path": str(tmp_path / "csms.sqlite3")},
        "admin": {"host": "127.0.0.1", "port": 0, "token": ADMIN_TOKEN},
        # Partners in tests listen on 127.0.0.1: private partner URLs allowed by default.
        "ocpi": {
            "enabled": False,
            "host": "127.0.0.1",
            "port": 0,
            "allow_private_partner_urls": True,
        },
        # Background list syncs add calls every charger sees; on only in tests about them.
        "local_lists": {"enabled": False},
    }
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    if "url" in base["store"]:
        base["store"].pop("path", None)  # store.url names the store instead
    return base


def write_config(path: Path, sections: Mapping[str, Mapping[str, Any]]) -> Path:
    lines: list[str] = []
    for name, values in sections.items():
        if name == "partners":
            for partner, table in values.items():
                lines.append(f"[partners.{partner}]")
                lines += [f"{k} = {_toml_value(v)}" for k, v in table.items()]
            continue
        lines.append(f"[{name}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in values.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def make_config(tmp_path: Path, **sections: Mapping[str, Any]) -> Config:
    path = write_config(tmp_path / "csms-test.toml", config_sections(tmp_path, **sections))
    return load(path, environ={})


@asynccontextmanager
async def running_csms(
    tmp_path: Path,
    *,
    authorizer: Authorizer | None = None,
    extra_admin_routes: Sequence[web.AbstractRouteDef] = (),
    **sections: Mapping[str, Any],
) -> AsyncIterator[System]:
    """A started :class:`System` on ephemeral ports, stopped on exit."""
    config = make_config(tmp_path, **sections)
    async with running(
        config, authorizer=authorizer, extra_admin_routes=extra_admin_routes
    ) as system:
        yield system


def ocpp_url(app: System) -> str:
    """Base OCPP URL; a charger appends ``/<charge point id>``."""
    return f"ws://127.0.0.1:{app.ocpp_port}{app.config.server.path_prefix}"


def admin_url(app: System) -> str:
    return f"http://127.0.0.1:{app.admin_port}"


@asynccontextmanager
async def admin_session(
    app: System, token: str | None = ADMIN_TOKEN
) -> AsyncIterator[aiohttp.ClientSession]:
    """An aiohttp session on the admin API (relative URLs, bearer token set)."""
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with aiohttp.ClientSession(base_url=admin_url(app), headers=headers) as session:
        yield session


def runtime_of(system: System) -> RoamingRuntime:
    """The roaming runtime of a CSMS started with ``ocpi={"enabled": True}``."""
    assert system.roaming is not None, "OCPI is not enabled in this CSMS"
    return system.roaming.runtime
