"""Roaming applies its own migrations after the CSMS's, and recognises old databases.

The ``ocpi_*`` steps once sat in the CSMS's list (0003, 0004, between the CSMS's 0002 and
0005); a database created then records them under the same names and must open with
nothing re-applied, while a fresh file must get every table of both lists.
"""

from __future__ import annotations

from pathlib import Path

from csms.store import schema as csms_schema
from csms.store.db import Database
from csms.store.sqlite import SqliteExecutor
from roaming.store import schema as roaming_schema

OLD_ORDER = ["0001_ocpp_core", "0002_authorizations", "0003_ocpi_partners_tokens",
             "0004_ocpi_cpo_modules", "0005_authorizations_append_only"]  # fmt: skip
# Roaming steps added since the lists were split: an old database gets exactly these.
NEWER = [name for name, _ in roaming_schema.MIGRATIONS if name not in OLD_ORDER]
# CSMS steps added after the split: opening an old file applies them (and only them).
CSMS_LATER = [name for name, _ in csms_schema.MIGRATIONS if name not in OLD_ORDER]


async def tables(db: Database) -> set[str]:
    rows = await db.fetchall("SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")
    return {r["name"] for r in rows}


async def applied(db: Database) -> list[str]:
    rows = await db.fetchall("SELECT name FROM schema_migrations ORDER BY name")
    return [r["name"] for r in rows]


async def make_old_layout_file(path: Path) -> None:
    """What a database looked like with the single combined list (applied in its order)."""
    import aiosqlite

    steps = dict(csms_schema.MIGRATIONS) | dict(roaming_schema.MIGRATIONS)
    async with aiosqlite.connect(path, isolation_level=None) as conn:
        conn.row_factory = aiosqlite.Row
        ex = SqliteExecutor(conn)
        await ex.execute(
            "CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        for name in OLD_ORDER:
            for statement in roaming_schema.statements(
                roaming_schema.sql_for(steps[name], "sqlite")
            ):
                await ex.execute(statement)
            await ex.execute(
                "INSERT INTO schema_migrations (name, applied_at) VALUES (?, 'then')", (name,)
            )


async def test_an_old_layout_database_opens_without_re_applying_anything(tmp_path):
    path = tmp_path / "old.sqlite3"
    await make_old_layout_file(path)
    db = await Database.open(str(path))
    try:
        before = await tables(db)
        assert await roaming_schema.migrate(db) == NEWER
        assert before <= await tables(db)
        assert await applied(db) == sorted(OLD_ORDER + CSMS_LATER + NEWER)
        rows = await db.fetchall("SELECT name, applied_at FROM schema_migrations")
        assert {r["name"] for r in rows if r["applied_at"] == "then"} == set(OLD_ORDER)
    finally:
        await db.close()


async def test_a_fresh_file_gets_every_table_of_both_lists(tmp_path):
    old = tmp_path / "old.sqlite3"
    await make_old_layout_file(old)
    reference = await Database.open(str(old))
    fresh = await Database.open(str(tmp_path / "fresh.sqlite3"))
    try:
        assert "ocpi_partners" not in await tables(fresh)  # roaming's steps are roaming's
        assert await roaming_schema.migrate(fresh) == [n for n, _ in roaming_schema.MIGRATIONS]
        assert await roaming_schema.migrate(reference) == NEWER
        assert await tables(fresh) == await tables(reference)
        assert sorted(await applied(fresh)) == sorted(OLD_ORDER + CSMS_LATER + NEWER)
        assert await roaming_schema.migrate(fresh) == []
    finally:
        await fresh.close()
        await reference.close()
