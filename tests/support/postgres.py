"""A real PostgreSQL for the tests: the one named by ``CSMS_TEST_POSTGRES_URL``, else the
local server on 127.0.0.1:5432 (trust auth, database ``test``), else a throwaway server
started from the PostgreSQL binaries on this machine (``/usr/lib/postgresql/*/bin``).

Why never a skip: the PostgreSQL store must not drift from the SQLite one, so every run
of the suite exercises it. Each test session creates its own database (random name,
dropped at the end); each test gets its own schema in it (``?search_path=`` in the URL),
so tests never see each other's rows and need no cleanup.

``CSMS_TEST_POSTGRES=throwaway`` forces the throwaway server (to check that path on a
machine that has a server).
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit, urlunsplit

import asyncpg

T = TypeVar("T")

LOCAL_URL = "postgresql://127.0.0.1:5432/test"


def with_database(url: str, name: str, **settings: str) -> str:
    """``url`` naming database ``name``, with session ``settings`` as query parameters."""
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode(settings)) if q)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", query, ""))


async def reachable(url: str) -> bool:
    try:
        conn = await asyncpg.connect(url, timeout=3)
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


def server_binaries() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` that has initdb."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    return Path(found[-1]).parent if found else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ThrowawayPostgres:
    """A private server: initdb into a temporary folder, pg_ctl start on a free port."""

    bin: Path
    datadir: Path
    port: int
    user: str | None  # run as this OS user (PostgreSQL refuses to run as root)

    @classmethod
    def start(cls) -> ThrowawayPostgres:
        bin_dir = server_binaries()
        if bin_dir is None:
            raise RuntimeError(
                "no PostgreSQL for the tests: set CSMS_TEST_POSTGRES_URL, run a server on "
                "127.0.0.1:5432, or install Debian's postgresql package (.ci/run does)"
            )
        user = "postgres" if os.geteuid() == 0 else None
        root = Path(tempfile.mkdtemp(prefix="csms-pg-"))
        datadir = root / "data"
        if user is not None:
            shutil.chown(root, user)
        server = cls(bin_dir, datadir, free_port(), user)
        server._run("initdb", "-D", str(datadir), "-A", "trust", "-U", "postgres",
                    "-E", "UTF8", "--locale=C", "--no-sync")  # fmt: skip
        server._run(
            "pg_ctl", "-D", str(datadir), "-w", "-l", str(root / "server.log"), "-o",
            f"-p {server.port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
            "start",
        )  # fmt: skip
        return server

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run("pg_ctl", "-D", str(self.datadir), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.datadir.parent, ignore_errors=True)

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [str(self.bin / tool), *args],
            check=True,
            capture_output=True,
            timeout=120,
            user=self.user,
            cwd="/",
        )


@dataclass
class TestServer:
    """The server of one test session and the database created for it."""

    __test__ = False  # not a test class

    admin_url: str  # a database to run CREATE/DROP DATABASE from
    database_url: str
    database: str
    throwaway: ThrowawayPostgres | None

    @classmethod
    def open(cls) -> TestServer:
        throwaway = None
        admin_url = os.environ.get("CSMS_TEST_POSTGRES_URL", "")
        forced = os.environ.get("CSMS_TEST_POSTGRES") == "throwaway"
        if forced or not admin_url:
            if not forced and _run(reachable(LOCAL_URL)):
                admin_url = LOCAL_URL
            else:
                throwaway = ThrowawayPostgres.start()
                admin_url = throwaway.url
        name = f"csms_test_{uuid.uuid4().hex[:12]}"
        try:
            _run(
                _admin(
                    admin_url,
                    f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' "
                    "LC_COLLATE 'C' LC_CTYPE 'C'",
                )
            )
        except BaseException:
            if throwaway is not None:
                throwaway.stop()
            raise
        return cls(admin_url, with_database(admin_url, name), name, throwaway)

    def close(self) -> None:
        try:
            _run(_admin(self.admin_url, f"DROP DATABASE IF EXISTS {self.database} WITH (FORCE)"))
        finally:
            if self.throwaway is not None:
                self.throwaway.stop()

    async def fresh_schema_url(self) -> str:
        """A URL whose connections see only a new, empty schema (one per test)."""
        schema = f"t_{uuid.uuid4().hex[:12]}"
        await _admin(self.database_url, f"CREATE SCHEMA {schema}")
        return with_database(self.database_url, self.database, search_path=schema)


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to the end on a loop of its own (session setup may happen while a
    test's loop is running, e.g. first asked for inside an async fixture)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()
