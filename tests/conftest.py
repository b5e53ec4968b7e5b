"""Fixtures every test package may use: the store backends (SQLite and PostgreSQL).

``store_url`` is a fresh store of each backend in turn (tests using it run twice), so
the repositories cannot drift between the engines; ``postgres_url`` is a fresh
PostgreSQL store only. See :mod:`tests.support.postgres` for where the server comes from.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.postgres import TestServer

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[TestServer]:
    server = TestServer.open()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
async def postgres_url(postgres_server: TestServer) -> str:
    return await postgres_server.fresh_schema_url()


@pytest.fixture(params=BACKENDS)
def store_backend(request: pytest.FixtureRequest) -> str:
    """The backend of this run of the test: "sqlite" or "postgresql"."""
    return str(request.param)


@pytest.fixture
async def store_url(store_backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A fresh, empty store of ``store_backend``, as a ``store.url``."""
    if store_backend == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite3'}"
    server: TestServer = request.getfixturevalue("postgres_server")
    return await server.fresh_schema_url()
