"""Alembic: upgrade head → downgrade base → upgrade head on a brand-new database of the
run's backend, and autogenerate finds no difference between the models and migrations."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from clarity import migrate
from clarity.config import Settings
from clarity.crypto.fields import Keyring
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


def test_totp_secrets_are_encrypted_by_migration_0004(empty_database: str) -> None:
    migrate.upgrade(empty_database, "0003")
    org, user = uuid.uuid4(), uuid.uuid4()
    seed = "JBSWY3DPEHPK3PXP"

    def insert(conn: Connection) -> None:
        now = datetime(2026, 1, 1, tzinfo=UTC)
        conn.execute(
            text(
                "INSERT INTO organizations (id, name, kind, created_at, updated_at) "
                "VALUES (:id, 'M', 'clinic', :now, :now)"
            ),
            {"id": _uuid(conn, org), "now": now},
        )
        conn.execute(
            text(
                "INSERT INTO users (id, organization_id, email, password_hash, role, is_active,"
                " password_changed_at, mfa_secret, mfa_enabled, mfa_recovery_hashes,"
                " created_at, updated_at) VALUES (:id, :org, 'm@x.example.org', 'h', 'admin',"
                " true, :now, :seed, true, '[]', :now, :now)"
            ),
            {"id": _uuid(conn, user), "org": _uuid(conn, org), "now": now, "seed": seed},
        )

    def secret(conn: Connection) -> str:
        return str(conn.execute(text("SELECT mfa_secret FROM users")).scalar_one())

    _run_write(empty_database, insert)
    migrate.upgrade(empty_database)
    stored = _run(empty_database, secret)
    assert stored.startswith("v1:")
    assert seed not in stored
    keyring = Keyring.from_setting(Settings().encryption_keys.get_secret_value())
    assert keyring.decrypt(stored, "users.mfa_secret") == seed
    migrate.downgrade(empty_database, "0003")
    assert _run(empty_database, secret) == seed


def _uuid(conn: Connection, value: uuid.UUID) -> object:
    # SQLite stores Uuid() as 32 hex characters, PostgreSQL as a native uuid.
    return value.hex if conn.dialect.name == "sqlite" else value


def _run_write(url: str, work: Any) -> None:
    async def main() -> None:
        engine = create_async_engine(url)
        async with engine.begin() as conn:
            await conn.run_sync(work)
        await engine.dispose()

    asyncio.run(main())
