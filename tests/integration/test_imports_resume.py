"""``clarity import`` as a real process, stopped for real: killed (SIGKILL) or interrupted
(SIGINT, Ctrl-C) after some chunks are committed. Running the same command again resumes
the job and ends with exactly the samples of an uninterrupted import: every row once."""

from __future__ import annotations

import asyncio
import math
import os
import signal
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select

from clarity.auth.models import Role
from clarity.biometrics.models import BiometricBatch
from clarity.imports.models import ImportJob, JobStatus
from clarity.imports.service import CHUNK
from tests.api.test_biometrics_ingest import new_patient
from tests.api.test_imports_api import depresjon_csv, stored
from tests.conftest import TEST_SECRET, Harness

ROWS = 8 * CHUNK + 3


def _env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLARITY_")}
    env.update(
        CLARITY_DATABASE_URL=database_url,
        CLARITY_SECRET_KEY=TEST_SECRET,
        CLARITY_ENVIRONMENT="test",
        COLUMNS="200",
        **extra,
    )
    return env


async def _start(
    database_url: str, path: Path, patient_id: str, cwd: Path, **env: str
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "clarity.cli",
        "import",
        str(path),
        "--patient",
        patient_id,
        "--format",
        "depresjon",
        env=_env(database_url, **env),
        cwd=cwd,  # away from any .env file of the checkout
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


async def _finish(process: asyncio.subprocess.Process) -> tuple[int, str]:
    out, _ = await asyncio.wait_for(process.communicate(), timeout=240)
    assert process.returncode is not None
    return process.returncode, " ".join(out.decode().split())


async def _job(h: Harness, patient_id: str) -> ImportJob | None:
    async with h.runtime.db.session(system=True) as session:
        job: ImportJob | None = await session.scalar(
            select(ImportJob).where(ImportJob.patient_id == uuid.UUID(patient_id))
        )
    return job


async def _after_chunks(
    h: Harness, patient_id: str, chunks: int, process: asyncio.subprocess.Process
) -> ImportJob:
    """Wait until the process has committed ``chunks`` chunks."""
    async with asyncio.timeout(120):
        while True:
            job = await _job(h, patient_id)
            if job is not None and job.chunks_done >= chunks:
                return job
            assert process.returncode is None, "the import ended before it could be stopped"
            await asyncio.sleep(0.05)


async def _assert_complete(h: Harness, patient_id: str, job_id: uuid.UUID) -> None:
    job = await _job(h, patient_id)
    assert job is not None
    assert job.id == job_id  # the same job, resumed: not a second one
    assert job.status == JobStatus.succeeded
    assert (job.rows_read, job.rows_accepted, job.rows_duplicate) == (ROWS, ROWS, 0)
    assert job.chunks_done == math.ceil(ROWS / CHUNK)
    assert await stored(h, patient_id) == ROWS
    async with h.runtime.db.session(system=True) as session:
        batches = await session.scalar(
            select(func.count())
            .select_from(BiometricBatch)
            .where(BiometricBatch.patient_id == uuid.UUID(patient_id))
        )
    assert batches == math.ceil(ROWS / CHUNK)


@pytest.mark.timeout(600)
async def test_a_killed_import_resumes_to_the_same_final_count(
    h: Harness, database_url: str, tmp_path: Path
) -> None:
    token = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, token)
    path = tmp_path / "activity.csv"
    path.write_bytes(depresjon_csv(ROWS))

    process = await _start(database_url, path, patient_id, tmp_path)
    await _after_chunks(h, patient_id, 2, process)
    process.kill()
    await process.wait()
    killed = await _job(h, patient_id)
    assert killed is not None
    assert killed.status == JobStatus.running  # nobody could say otherwise: it was killed
    assert 2 <= killed.chunks_done < math.ceil(ROWS / CHUNK)
    # What the counters say is what is stored: the chunk in flight was rolled back.
    assert await stored(h, patient_id) == killed.rows_accepted == killed.chunks_done * CHUNK

    # The same command again, once the dead worker's heartbeat is stale (2 s here).
    code, output = await _finish(
        await _start(database_url, path, patient_id, tmp_path, CLARITY_IMPORT_STALE_SECONDS="2")
    )
    assert code == 0, output
    assert f"Resuming import job {killed.id}" in output
    assert f"{ROWS:,} records read, {ROWS:,} stored, 0 duplicate, 0 rejected" in output
    await _assert_complete(h, patient_id, killed.id)


@pytest.mark.timeout(600)
async def test_ctrl_c_leaves_the_import_resumable(
    h: Harness, database_url: str, tmp_path: Path
) -> None:
    token = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, token)
    path = tmp_path / "activity.csv"
    path.write_bytes(depresjon_csv(ROWS))

    process = await _start(database_url, path, patient_id, tmp_path)
    await _after_chunks(h, patient_id, 1, process)
    process.send_signal(signal.SIGINT)
    code, output = await _finish(process)
    assert code == 130, output
    assert "run the same command again to resume" in output
    stopped = await _job(h, patient_id)
    assert stopped is not None
    assert stopped.status == JobStatus.failed
    assert (stopped.failure or "").startswith("interrupted:")
    assert await stored(h, patient_id) == stopped.rows_accepted

    code, output = await _finish(await _start(database_url, path, patient_id, tmp_path))
    assert code == 0, output
    assert f"Resuming import job {stopped.id}" in output
    await _assert_complete(h, patient_id, stopped.id)
