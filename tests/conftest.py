"""Shared fixtures. The API and integration tests run against one backend per pytest run:

- ``CLARITY_TEST_BACKEND=sqlite`` (default): a fresh SQLite file, in-process cache and events;
- ``CLARITY_TEST_BACKEND=postgres``: a freshly created PostgreSQL database and real Redis
  (``CLARITY_TEST_POSTGRES_URL``, ``CLARITY_TEST_REDIS_URL`` override the local defaults).

Each run creates its database from scratch with the Alembic migrations; each test starts
from empty tables and its own cache key prefix.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from clarity import migrate
from clarity.app import create_app
from clarity.audit.chain import GENESIS_HASH
from clarity.auth.models import Role
from clarity.config import Settings
from clarity.database import Base
from clarity.migrations import metadata  # noqa: F401 - all tables
from clarity.organizations.service import get_or_create
from clarity.runtime import Runtime
from clarity.users.service import create_user

BACKEND = os.environ.get("CLARITY_TEST_BACKEND", "sqlite")
POSTGRES_URL = os.environ.get(
    "CLARITY_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("CLARITY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"
PASSWORD = "Correct-Horse-Battery-9"


def pytest_report_header() -> str:
    return f"clarity backend: {BACKEND}"


async def _admin_execute(url: str, statement: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(statement))
    await engine.dispose()


def _postgres_url(database: str) -> str:
    return POSTGRES_URL.rsplit("/", 1)[0] + "/" + database


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh database, migrated to head, for this test run."""
    if BACKEND == "postgres":
        name = f"clarity_test_{uuid.uuid4().hex[:12]}"
        asyncio.run(_admin_execute(POSTGRES_URL, f'CREATE DATABASE "{name}"'))
        url = _postgres_url(name)
        migrate.upgrade(url)
        yield url
        asyncio.run(_admin_execute(POSTGRES_URL, f'DROP DATABASE "{name}" WITH (FORCE)'))
    else:
        path = Path(tmp_path_factory.mktemp("db")) / "clarity-test.db"
        url = f"sqlite+aiosqlite:///{path}"
        migrate.upgrade(url)
        yield url


def make_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "environment": "test",
        "database_url": database_url,
        "secret_key": TEST_SECRET,
        "redis_url": REDIS_URL if BACKEND == "postgres" else None,
        "cache_prefix": f"clarity-test:{uuid.uuid4().hex}:",
        "rate_limit_per_ip": 10_000,
        "rate_limit_per_user": 10_000,
        "rate_limit_login": 10_000,
        "log_level": "INFO",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


async def _reset(runtime: Runtime) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    async with runtime.db.engine.begin() as conn:
        for name in tables:
            if name == "audit_chain_head":
                await conn.execute(
                    text("UPDATE audit_chain_head SET last_event_id = NULL, hash = :h"),
                    {"h": GENESIS_HASH},
                )
            else:
                await conn.execute(text(f"DELETE FROM {name}"))  # noqa: S608 - table names


@dataclass
class Harness:
    """A running app with a client, plus shortcuts to make users and log in."""

    app: FastAPI
    client: httpx.AsyncClient
    runtime: Runtime

    async def org(self, name: str = "Test clinic") -> uuid.UUID:
        async with self.runtime.db.session(system=True) as session:
            org = await get_or_create(session, name)
            await session.commit()
            return org.id

    async def user(
        self,
        role: Role = Role.clinician,
        *,
        email: str | None = None,
        password: str = PASSWORD,
        org: str = "Test clinic",
    ) -> tuple[str, uuid.UUID]:
        email = email or f"{role.value}-{uuid.uuid4().hex[:8]}@clinic.example.org"
        org_id = await self.org(org)
        async with self.runtime.db.session(org_id) as session:
            user = await create_user(
                self.runtime, session, email=email, password=password, role=role
            )
            await session.commit()
            return email, user.id

    async def login(self, email: str, password: str = PASSWORD, **extra: str) -> dict[str, str]:
        response = await self.client.post(
            "/api/v1/auth/login", json={"email": email, "password": password, **extra}
        )
        assert response.status_code == 200, response.text
        body: dict[str, str] = response.json()
        return body

    async def drain_events(self) -> int:
        """Publish what the outbox holds now (the relay would within a second or so)."""
        return await self.runtime.outbox.publish_pending()

    async def token_for(self, role: Role = Role.clinician, org: str = "Test clinic") -> str:
        email, _ = await self.user(role, org=org)
        return (await self.login(email))["access_token"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def harness_factory(
    database_url: str,
) -> AsyncIterator[object]:
    """Start an app with settings overrides; everything is torn down after the test."""
    stack: list[tuple[LifespanManager, httpx.AsyncClient, Runtime]] = []

    async def start(**overrides: object) -> Harness:
        app = create_app(make_settings(database_url, **overrides))
        manager = LifespanManager(app)
        await manager.__aenter__()
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=("127.0.0.1", 50000)),
            base_url="http://testserver",
        )
        runtime: Runtime = app.state.runtime
        stack.append((manager, client, runtime))
        return Harness(app, client, runtime)

    yield start
    for manager, client, runtime in reversed(stack):
        await _reset(runtime)
        await _flush_cache(runtime)
        await client.aclose()
        await manager.__aexit__(None, None, None)


async def _flush_cache(runtime: Runtime) -> None:
    redis = runtime.cache._redis
    if redis is None or runtime.cache.degraded:
        return
    try:
        keys = [k async for k in redis.scan_iter(match=runtime.cache.prefix + "*")]
        if keys:
            await redis.delete(*keys)
    except RedisError:
        pass  # a test's private Redis may already be gone


@pytest.fixture
async def h(harness_factory: object) -> Harness:
    """The default harness: test settings, no overrides."""
    return await harness_factory()  # type: ignore[operator, no-any-return]
