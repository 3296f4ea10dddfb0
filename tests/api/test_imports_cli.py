"""``clarity import`` in-process against the test database: exact counts, a resend counted
as duplicates, rejected records listed by position, MRN look-up, consent and usage errors,
an interrupted import resumed by running the same command again."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from sqlalchemy import select, update

from clarity.auth.models import Role
from clarity.database import utcnow
from clarity.imports.models import ImportJob, JobStatus
from clarity.imports.service import CHUNK
from tests.api.test_biometrics_ingest import PATIENT, new_patient
from tests.api.test_imports_api import PHI, depresjon_csv, set_job, stored
from tests.conftest import Harness, bearer
from tests.support.cli import run_clarity


def _invoke(database_url: str, args: list[str], extra_env: dict[str, str]) -> tuple[int, str]:
    code, output = run_clarity(database_url, "import", *args, **extra_env)
    return code, " ".join(output.split())


async def run_import(database_url: str, *args: str, **env: str) -> tuple[int, str]:
    """Run ``clarity import ARGS`` in this process (in a thread: it runs its own event
    loop); its exit status and output (stdout and stderr, unwrapped)."""
    return await asyncio.to_thread(_invoke, database_url, list(args), env)


async def import_file(
    database_url: str, path: Path, patient: str, *extra: str, fmt: str = "depresjon", **env: str
) -> tuple[int, str]:
    """``clarity import PATH --patient PATIENT --format FMT EXTRA...``."""
    return await run_import(
        database_url, str(path), "--patient", patient, "--format", fmt, *extra, **env
    )


async def _job(h: Harness, patient_id: str) -> ImportJob:
    async with h.runtime.db.session(system=True) as session:
        job = await session.scalar(
            select(ImportJob)
            .where(ImportJob.patient_id == uuid.UUID(patient_id))
            .order_by(ImportJob.created_at.desc())
            .limit(1)
        )
    assert job is not None
    return job


async def test_a_file_imports_and_a_resend_counts_as_duplicates(
    h: Harness, database_url: str, tmp_path: Path
) -> None:
    token = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, token)
    rows = CHUNK + 99
    path = tmp_path / "activity.csv"
    path.write_bytes(depresjon_csv(rows))

    code, output = await run_import(
        database_url, str(path), "--patient", patient_id, "--format", "depresjon"
    )
    assert code == 0, output
    assert f"{rows:,} records read, {rows:,} stored, 0 duplicate, 0 rejected" in output
    assert await stored(h, patient_id) == rows
    first = await _job(h, patient_id)
    assert first.status == JobStatus.succeeded
    assert first.file_path == str(path.resolve())
    assert path.exists()  # the operator's file is never deleted

    code, output = await run_import(
        database_url, str(path), "--patient", patient_id, "--format", "depresjon"
    )
    assert code == 0, output
    assert f"0 stored, {rows:,} duplicate" in output
    assert await stored(h, patient_id) == rows

    # The jobs show through the API like uploads.
    listed = await h.client.get(f"/api/v1/patients/{patient_id}/imports", headers=bearer(token))
    assert [j["status"] for j in listed.json()] == ["succeeded", "succeeded"]


async def test_rejected_records_are_listed_by_position(
    h: Harness, database_url: str, tmp_path: Path
) -> None:
    token = await h.token_for(Role.clinician)
    mrn = f"MRN-{uuid.uuid4().hex[:8]}"
    created = await h.client.post(
        "/api/v1/patients", json={**PATIENT, "mrn": mrn}, headers=bearer(token)
    )
    patient_id = created.json()["id"]
    await h.client.post(
        f"/api/v1/patients/{patient_id}/consents",
        json={"category": "wearable_data", "granted": True},
        headers=bearer(token),
    )
    lines = depresjon_csv(300).decode().splitlines()
    lines[3] = f"2003-04-01 12:02:00,x,{PHI}"
    lines[250] = "2003-04-01 16:09:00,x,-5"
    path = tmp_path / "export.csv"
    path.write_text("\n".join(lines) + "\n")

    code, output = await run_import(
        database_url,
        str(path),
        "--patient",
        mrn,
        "--organization",
        "Test clinic",
        "--format",
        "depresjon",
    )
    assert code == 0, output
    assert "300 records read, 298 stored, 0 duplicate, 2 rejected" in output
    assert "record 3: bad_format" in output
    assert "record 250: bad_format" in output
    assert PHI not in output
    assert await stored(h, patient_id) == 298


async def test_refusals_and_usage_errors(h: Harness, database_url: str, tmp_path: Path) -> None:
    token = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, token, consent=False)
    path = tmp_path / "a.csv"
    path.write_bytes(depresjon_csv(20))

    code, output = await run_import(
        database_url, str(path), "--patient", patient_id, "--format", "depresjon"
    )
    assert code == 1
    assert "not consented" in output

    code, output = await run_import(
        database_url, str(path), "--patient", patient_id, "--format", "nope"
    )
    assert code == 2
    assert "depresjon" in output

    code, output = await run_import(
        database_url,
        str(path),
        "--patient",
        patient_id,
        "--format",
        "depresjon",
        "--timezone",
        "Mars/Base",
    )
    assert code == 2
    assert "IANA" in output

    code, output = await run_import(
        database_url,
        str(tmp_path / "missing.csv"),
        "--patient",
        patient_id,
        "--format",
        "depresjon",
    )
    assert code == 2
    assert "does not exist" in output

    code, output = await run_import(
        database_url, str(path), "--patient", str(uuid.uuid4()), "--format", "depresjon"
    )
    assert code == 1
    assert "No such patient" in output

    xml = tmp_path / "export.xml"
    xml.write_text(f'<?xml version="1.0"?><HealthData><Me name="{PHI}"/></HealthData>')
    consenting = await new_patient(h, token)
    code, output = await run_import(
        database_url, str(xml), "--patient", consenting, "--format", "depresjon"
    )
    assert code == 1
    assert "format_error" in output
    assert PHI not in output


async def test_running_the_same_command_again_resumes_an_interrupted_import(
    h: Harness, database_url: str, tmp_path: Path
) -> None:
    """An import whose process was killed after two chunks: "running", silent. The same
    command takes it over once it has been silent past the stale limit, goes on after the
    stored chunks, and ends with the counts of an uninterrupted import."""
    token = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, token)
    rows = 3 * CHUNK + 5
    path = tmp_path / "big.csv"
    path.write_bytes(depresjon_csv(rows))
    code, output = await import_file(database_url, path, patient_id)
    assert code == 0, output
    job = await _job(h, patient_id)
    # Roll the job back to "killed after two chunks" (what test_imports_resume.py does for
    # real with SIGKILL): status running, two chunks done, their samples stored.
    async with h.runtime.db.session(system=True) as session:
        await session.execute(
            update(ImportJob)
            .where(ImportJob.id == job.id)
            .values(
                status=JobStatus.running,
                finished_at=None,
                chunks_done=2,
                rows_read=2 * CHUNK,
                rows_accepted=2 * CHUNK,
                heartbeat_at=utcnow(),
            )
        )
        await session.commit()
    resume = f"/api/v1/patients/{patient_id}/imports/{job.id}/resume"
    active = await h.client.post(resume, headers=bearer(token))
    assert active.status_code == 409
    assert active.json()["code"] == "import_active"
    # Were it interrupted by Ctrl-C instead, the API would still leave it to the CLI.
    await set_job(h, job.id, status=JobStatus.failed, failure="interrupted: stopped")
    by_cli = await h.client.post(resume, headers=bearer(token))
    assert by_cli.status_code == 409
    assert by_cli.json()["code"] == "import_resumed_by_cli"
    await set_job(h, job.id, status=JobStatus.running, failure=None, heartbeat_at=utcnow())

    code, output = await import_file(
        database_url, path, patient_id, CLARITY_IMPORT_STALE_SECONDS="1"
    )
    assert code == 0, output
    assert f"Resuming import job {job.id}" in output
    assert f"going on from record {2 * CHUNK + 1:,}" in output
    assert f"{rows:,} records read" in output
    resumed = await _job(h, patient_id)
    assert resumed.id == job.id
    assert resumed.status == JobStatus.succeeded
    assert (resumed.rows_read, resumed.rows_accepted, resumed.chunks_done) == (rows, rows, 4)
    assert await stored(h, patient_id) == rows
