"""All 55 Depresjon recordings import through ``clarity import`` and through the upload API,
each into its own patient, with exactly one stored sample per data row of the file.

Depresjon: Garcia-Ceja E, et al. MMSys '18, 2018, doi:10.1145/3204949.3208125 (real minute
actigraphy of 23 patients and 32 controls, read from ../shared/data beside the repo).
Rows are counted here independently of the reader: every non-blank line after the header.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from clarity.actigraphy.readers import SharedDataMissing, depresjon_dir, depresjon_files
from clarity.auth.models import Role
from clarity.imports.models import ImportJob, JobStatus
from tests.api.test_biometrics_ingest import new_patient
from tests.api.test_imports_api import read_job, start, stored, upload
from tests.api.test_imports_cli import import_file
from tests.conftest import BACKEND, Harness

# Each 55-file pass takes minutes; to keep the suite inside its time budget the CLI pass runs
# in the SQLite run and the API pass in the PostgreSQL run (both paths are tested on both
# backends with smaller files in tests/api/test_imports_cli.py and test_imports_api.py).
_CLI_BACKEND, _API_BACKEND = "sqlite", "postgres"


def _files() -> list[Path]:
    try:
        root = depresjon_dir()
    except SharedDataMissing as exc:
        pytest.skip(f"Depresjon data set not available: {exc}")
    files = depresjon_files(root)
    assert len(files) == 55
    return files


def data_rows(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip()) - 1


@pytest.mark.timeout(900)
async def test_every_recording_imports_through_the_cli(
    harness_factory: Any, database_url: str, tmp_path: Path
) -> None:
    if BACKEND != _CLI_BACKEND:
        pytest.skip(f"the 55-file CLI pass runs in the {_CLI_BACKEND} run (suite time budget)")
    files = _files()
    h = await start(harness_factory, tmp_path)
    token = await h.token_for(Role.clinician)
    elapsed = await _through_the_cli(h, token, database_url, files)
    total = sum(data_rows(path) for path in files)
    print(f"\n55 Depresjon files through the CLI: {total:,} rows in {elapsed:.1f} s")


@pytest.mark.timeout(900)
async def test_every_recording_imports_through_the_api(
    harness_factory: Any, tmp_path: Path
) -> None:
    if BACKEND != _API_BACKEND:
        pytest.skip(f"the 55-file API pass runs in the {_API_BACKEND} run (suite time budget)")
    files = _files()
    h = await start(harness_factory, tmp_path)
    token = await h.token_for(Role.clinician)
    elapsed = await _through_the_api(h, token, files)
    total = sum(data_rows(path) for path in files)
    print(f"\n55 Depresjon files through the API: {total:,} rows in {elapsed:.1f} s")


async def _through_the_cli(h: Harness, token: str, database_url: str, files: list[Path]) -> float:
    started = time.perf_counter()
    for path in files:
        patient_id = await new_patient(h, token)
        code, output = await import_file(database_url, path, patient_id)
        rows = data_rows(path)
        assert code == 0, (path.name, output)
        counts = f"{rows:,} records read, {rows:,} stored, 0 duplicate, 0 rejected"
        assert counts in output, (path.name, output)
        assert await stored(h, patient_id) == rows, path.name
    return time.perf_counter() - started


async def _through_the_api(h: Harness, token: str, files: list[Path]) -> float:
    """All 55 uploaded at once: they queue, and the runner works through them."""
    started = time.perf_counter()
    uploads: list[tuple[Path, str, str]] = []
    for path in files:
        patient_id = await new_patient(h, token)
        response = await upload(h, token, patient_id, path.read_bytes())
        assert response.status_code == 202, response.text
        uploads.append((path, patient_id, response.headers["location"]))
    async with asyncio.timeout(840):
        while True:
            if not await _active_jobs(h):
                break
            await asyncio.sleep(0.25)
    elapsed = time.perf_counter() - started
    for path, patient_id, location in uploads:
        job = await read_job(h, token, location)
        rows = data_rows(path)
        assert job["status"] == "succeeded", (path.name, job)
        assert (job["rows_read"], job["rows_accepted"], job["rows_rejected"]) == (rows, rows, 0)
        assert await stored(h, patient_id) == rows, path.name
    return elapsed


async def _active_jobs(h: Harness) -> int:
    async with h.runtime.db.session(system=True) as session:
        count = await session.scalar(
            select(func.count())
            .select_from(ImportJob)
            .where(ImportJob.status.in_([JobStatus.queued, JobStatus.running]))
        )
    return int(count or 0)
