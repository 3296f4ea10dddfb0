"""``clarity worker`` refuses to start, with one line and exit status 2, when it cannot
work: no broker configured, a handler hook that cannot be imported, a partition count
that differs from the one the lease table was made for, or a heartbeat too slow for its
lease."""

from __future__ import annotations

import asyncio
import os

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import create_async_engine
from typer.testing import CliRunner

from clarity.cli import app
from clarity.config import get_settings
from clarity.worker.models import EventPartitionLease
from tests.conftest import TEST_SECRET

DEAD_BROKER = "amqp://guest:guest@127.0.0.1:1/"  # refused at once


def _worker(database_url: str, **env: str) -> tuple[int, str]:
    full = {
        "CLARITY_DATABASE_URL": database_url,
        "CLARITY_SECRET_KEY": TEST_SECRET,
        "CLARITY_ENVIRONMENT": "test",
        "COLUMNS": "200",
        **env,
    }
    saved = {k: v for k, v in os.environ.items() if k.startswith("CLARITY_")}
    for key in saved:
        os.environ.pop(key)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["worker", "--id", "cli-test"], env=full)
    finally:
        get_settings.cache_clear()
        os.environ.update(saved)
    return result.exit_code, " ".join(result.output.split())


def test_without_a_broker_it_refuses(database_url: str) -> None:
    code, output = _worker(database_url)
    assert code == 2
    assert "needs CLARITY_BROKER_URL" in output


def test_a_handler_hook_that_cannot_be_imported_is_refused(database_url: str) -> None:
    code, output = _worker(
        database_url,
        CLARITY_BROKER_URL=DEAD_BROKER,
        CLARITY_WORKER_HANDLERS="clarity.no_such_module:register",
    )
    assert code == 2
    assert "'clarity.no_such_module:register' cannot be imported" in output


def test_a_different_partition_count_is_refused(database_url: str) -> None:
    async def leases(count: int | None) -> None:
        engine = create_async_engine(database_url)
        async with engine.begin() as conn:
            await conn.execute(delete(EventPartitionLease))
            if count:
                await conn.execute(
                    EventPartitionLease.__table__.insert(),  # type: ignore[attr-defined]
                    [{"partition": p} for p in range(count)],
                )
        await engine.dispose()

    asyncio.run(leases(8))
    try:
        code, output = _worker(
            database_url, CLARITY_BROKER_URL=DEAD_BROKER, CLARITY_EVENT_PARTITIONS="4"
        )
    finally:
        asyncio.run(leases(None))
    assert code == 2
    assert "the lease table has 8 partitions but CLARITY_EVENT_PARTITIONS is 4" in output


def test_a_heartbeat_slower_than_half_a_lease_is_refused(database_url: str) -> None:
    code, output = _worker(
        database_url,
        CLARITY_BROKER_URL=DEAD_BROKER,
        CLARITY_WORKER_LEASE_SECONDS="4",
        CLARITY_WORKER_HEARTBEAT_SECONDS="3",
    )
    assert code == 2
    assert "must be at most half of CLARITY_WORKER_LEASE_SECONDS" in output
