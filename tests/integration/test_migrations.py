"""Alembic: upgrade head → downgrade base → upgrade head on a brand-new database of the
run's backend, and autogenerate finds no difference between the models and migrations."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from clarity import migrate
from clarity.database import Base
from clarity.migrate import render_item
from tests.conftest import BACKEND, POSTGRES_URL, _admin_execute, _postgres_url


@pytest.fixture
def empty_database(tmp_path: Path) -> Iterator[str]:
    if BACKEND == "postgres":
        name = f"clarity_migrations_{uuid.uuid4().hex[:10]}"
        asyncio.run(_admin_execute(POSTGRES_URL, f'CREATE DATABASE "{name}"'))
        yield _postgres_url(name)
        asyncio.run(_admin_execute(POSTGRES_URL, f'DROP DATABASE "{name}" WITH (FORCE)'))
    else:
        yield f"sqlite+aiosqlite:///{tmp_path / 'migrations.db'}"


def _run(url: str, work: Any) -> Any:
    async def main() -> Any:
        engine = create_async_engine(url)
        async with engine.connect() as conn:
            result = await conn.run_sync(work)
        await engine.dispose()
        return result

    return asyncio.run(main())


def _tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names()) - {"alembic_version"}


def _diff(conn: Connection) -> list[Any]:
    context = MigrationContext.configure(
        conn, opts={"compare_type": True, "render_item": render_item}
    )
    return list(compare_metadata(context, Base.metadata))


def test_upgrade_downgrade_upgrade_round_trip(empty_database: str) -> None:
    migrate.upgrade(empty_database)
    assert _run(empty_database, _tables) == set(Base.metadata.tables)
    migrate.downgrade(empty_database, "base")
    assert _run(empty_database, _tables) == set()
    migrate.upgrade(empty_database)
    assert _run(empty_database, _tables) == set(Base.metadata.tables)


def test_autogenerate_finds_no_difference(empty_database: str) -> None:
    migrate.upgrade(empty_database)
    assert _run(empty_database, _diff) == []
