"""Partition maintenance on PostgreSQL: months ahead are created, and months stranded in the
default partition (an old recording imported today) move into partitions of their own
without losing or duplicating a row; the server runs it from start-up, daily, and
``clarity partitions`` on demand. On SQLite it is a no-op."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from clarity.biometrics.partitions import DEFAULT, maintain, month_start, partition_name
from tests.api.test_biometrics_ingest import new_patient, send
from tests.conftest import BACKEND, Harness
from tests.support.cli import run_clarity


async def _count(h: Harness, table: str) -> int:
    async with h.runtime.db.engine.connect() as conn:
        return int((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())  # noqa: S608


async def test_old_months_leave_the_default_partition_and_future_months_exist(h: Harness) -> None:
    token = await h.token_for()
    patient_id = await new_patient(h, token)
    start = datetime(2003, 5, 31, 23, 0, tzinfo=UTC)  # spans May and June 2003
    samples = [
        {
            "stream": "heart_rate",
            "ts": (start + timedelta(minutes=i)).isoformat(),
            "value": 60,
            "source": "watch",
        }
        for i in range(120)
    ]
    response = await send(h, token, patient_id, "old-recording", samples)
    assert response.status_code == 201, response.text

    async with h.runtime.db.engine.begin() as conn:
        report = await maintain(conn)
    if BACKEND != "postgres":
        assert report.created == []
        assert report.moved_rows == 0
        return

    assert report.moved_rows == 120
    assert {"biometric_samples_2003_05", "biometric_samples_2003_06"} <= set(report.created)
    assert await _count(h, DEFAULT) == 0
    assert await _count(h, "biometric_partitions.biometric_samples_2003_05") == 60
    assert await _count(h, "biometric_partitions.biometric_samples_2003_06") == 60
    assert await _count(h, "biometric_samples") == 120

    # A second run has nothing to do; a run "in 30 months" creates the months then ahead.
    async with h.runtime.db.engine.begin() as conn:
        assert (await maintain(conn)).created == []
    later = datetime.now(UTC) + timedelta(days=31 * 30)
    async with h.runtime.db.engine.begin() as conn:
        created = (await maintain(conn, now=later)).created
    assert partition_name(month_start(later.year, later.month + 24)) in created

    # The same samples sent again are still recognised as duplicates across partitions.
    again = await send(h, token, patient_id, "old-recording-again", samples)
    assert again.json()["duplicate"] == 120


async def test_the_server_keeps_partitions_and_the_command_does_it_on_demand(
    h: Harness, database_url: str
) -> None:
    keeper = h.app.state.partition_keeper
    assert (keeper._task is not None) == (BACKEND == "postgres")  # daily, from start-up
    token = await h.token_for()
    patient_id = await new_patient(h, token)
    start = datetime(2001, 2, 10, 8, 0, tzinfo=UTC)
    samples = [
        {
            "stream": "heart_rate",
            "ts": (start + timedelta(minutes=i)).isoformat(),
            "value": 60,
            "source": "watch",
        }
        for i in range(30)
    ]
    response = await send(h, token, patient_id, "older-recording", samples)
    assert response.status_code == 201, response.text
    assert response.json()["accepted"] == 30

    code, output = await asyncio.to_thread(run_clarity, database_url, "partitions")
    output = " ".join(output.split())
    assert code == 0, output
    if BACKEND != "postgres":
        assert "up to date" in output
        return
    assert "moved 30 sample(s)" in output
    assert await _count(h, DEFAULT) == 0
    assert await _count(h, "biometric_partitions.biometric_samples_2001_02") == 30
    assert (await keeper.run_once()).moved_rows == 0  # nothing left to do
