"""File imports through the real app: upload, background job, status, exact counts, resend,
rejected rows named without values, wrong files, consent, cancel, resume after the runner
stops or its process dies, upload limits and the upload's file mode."""

from __future__ import annotations

import asyncio
import math
import stat
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select, update

from clarity.audit.models import AuditEvent
from clarity.auth.models import Role
from clarity.biometrics.models import BiometricBatch, BiometricSample
from clarity.database import utcnow
from clarity.imports.models import ImportJob, JobStatus
from clarity.imports.runner import ImportRunner
from clarity.imports.service import CHUNK
from tests.api.test_biometrics_ingest import new_patient, set_consent
from tests.conftest import Harness, bearer
from tests.support.formats import fixture

TERMINAL = {"succeeded", "failed", "cancelled"}
PHI = "Quillon Vexmarrow"  # a name that must never come back in a response


def depresjon_csv(rows: int, *, start: datetime = datetime(2003, 4, 1, 12, 0)) -> bytes:
    """A synthetic file in the Depresjon layout: one minute per row, local (Oslo) times
    (up to 400,000 rows from the default start cross no spring-forward gap, where two local
    times would name the same instant)."""
    lines = ["timestamp,date,activity"]
    for i in range(rows):
        moment = start + timedelta(minutes=i)
        lines.append(f"{moment:%Y-%m-%d %H:%M:%S},{moment:%Y-%m-%d},{(i * 37) % 900}")
    return ("\n".join(lines) + "\n").encode()


def imports_url(patient_id: str) -> str:
    return f"/api/v1/patients/{patient_id}/imports"


async def start(harness_factory: Any, tmp_path: Path, **overrides: Any) -> Harness:
    harness: Harness = await harness_factory(import_dir=tmp_path / "imports", **overrides)
    return harness


async def upload(
    h: Harness, token: str, patient_id: str, content: Any, **params: str
) -> httpx.Response:
    return await h.client.post(
        imports_url(patient_id),
        params={"format": "depresjon", **params},
        content=content,
        headers={**bearer(token), "content-type": "application/octet-stream"},
    )


async def read_job(h: Harness, token: str, location: str) -> dict[str, Any]:
    response = await h.client.get(location, headers=bearer(token))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def wait_for(
    h: Harness,
    token: str,
    location: str,
    until: Any = lambda job: job["status"] in TERMINAL,
    every: float = 0.02,
) -> dict[str, Any]:
    """Poll the job every ``every`` seconds until ``until`` holds (90 s at most)."""
    async with asyncio.timeout(90):
        while True:
            job = await read_job(h, token, location)
            if until(job):
                return job
            await asyncio.sleep(every)


async def stored(h: Harness, patient_id: str) -> int:
    async with h.runtime.db.session(system=True) as session:
        count = await session.scalar(
            select(func.count())
            .select_from(BiometricSample)
            .where(BiometricSample.patient_id == uuid.UUID(patient_id))
        )
    return int(count or 0)


async def batch_ids(h: Harness, patient_id: str) -> list[str]:
    async with h.runtime.db.session(system=True) as session:
        rows = await session.scalars(
            select(BiometricBatch.client_batch_id).where(
                BiometricBatch.patient_id == uuid.UUID(patient_id)
            )
        )
    return sorted(rows.all())


async def actions(h: Harness, patient_id: str) -> list[str]:
    async with h.runtime.db.session(system=True) as session:
        rows = await session.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.resource_id == patient_id)
            .order_by(AuditEvent.id)
        )
    return list(rows.all())


def leftover_uploads(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "imports"
    return sorted(folder.iterdir()) if folder.exists() else []


async def test_a_file_imports_in_the_background_with_exact_counts(
    harness_factory: Any, tmp_path: Path
) -> None:
    h = await start(harness_factory, tmp_path)
    token = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, token)
    rows = 2 * CHUNK + 345
    response = await upload(h, token, patient_id, depresjon_csv(rows))
    assert response.status_code == 202, response.text
    location = response.headers["location"]
    created = response.json()
    assert location.endswith(f"{imports_url(patient_id)}/{created['id']}")
    assert created["status"] in {"queued", "running"}
    assert created["file_bytes"] == len(depresjon_csv(rows))

    job = await wait_for(h, token, location)
    assert job["status"] == "succeeded", job
    assert (job["rows_read"], job["rows_accepted"], job["rows_duplicate"]) == (rows, rows, 0)
    assert job["rows_rejected"] == 0
    assert job["errors"] == []
    assert job["chunks_done"] == 3
    assert job["progress"] == 1.0
    assert job["rows_per_second"] > 0
    assert job["bytes_read"] == job["file_bytes"]
    assert job["finished_at"] is not None
    assert job["failure"] is None
    assert await stored(h, patient_id) == rows
    assert await batch_ids(h, patient_id) == [f"import:{job['id']}:{k}" for k in range(3)]
    assert leftover_uploads(tmp_path) == []  # the upload is deleted when the job ends

    listed = await h.client.get(imports_url(patient_id), headers=bearer(token))
    assert [j["id"] for j in listed.json()] == [job["id"]]
    done = await actions(h, patient_id)
    for action in ("import.create", "import.start", "import.finish", "import.read"):
        assert action in done, done
    assert done.count("biometrics.ingest") == 3


async def test_what_maps_to_no_stream_is_counted_by_kind_not_dropped_silently(
    harness_factory: Any, tmp_path: Path
) -> None:
    h = await start(harness_factory, tmp_path)
    token = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, token)
    content = fixture("apple_health_export.xml").read_bytes()
    response = await upload(h, token, patient_id, content, format="apple_health")
    assert response.status_code == 202, response.text
    assert response.json()["skipped"] == {}  # known once the whole file has been read
    job = await wait_for(h, token, response.headers["location"])
    assert job["status"] == "succeeded", job
    assert (job["rows_read"], job["rows_accepted"], job["rows_rejected"]) == (14, 12, 2)
    assert job["skipped"] == {
        "HKCategoryValueSleepAnalysisInBed": 1,
        "HKCategoryValueSleepAnalysisAsleepUnspecified": 1,
        "HKQuantityTypeIdentifierBodyMass": 1,
        "Correlation": 1,
        "Workout": 1,
        "ActivitySummary": 1,
    }


async def test_resending_the_same_file_stores_nothing_new(
    harness_factory: Any, tmp_path: Path
) -> None:
    h = await start(harness_factory, tmp_path)
    token = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, token)
    content = depresjon_csv(CHUNK + 10)
    first = await wait_for(
        h, token, (await upload(h, token, patient_id, content)).headers["location"]
    )
    again = await wait_for(
        h, token, (await upload(h, token, patient_id, content)).headers["location"]
    )
    assert first["rows_accepted"] == CHUNK + 10
    assert again["status"] == "succeeded"
    assert (again["rows_accepted"], again["rows_duplicate"]) == (0, CHUNK + 10)
    assert await stored(h, patient_id) == CHUNK + 10


async def test_rejected_records_are_named_by_position_never_by_value(
    harness_factory: Any, tmp_path: Path
) -> None:
    h = await start(harness_factory, tmp_path)
    token = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, token)
    lines = depresjon_csv(CHUNK + 20).decode().splitlines()
    # Records 5 and CHUNK + 7 (lines after the header) become unreadable.
    lines[5] = f"2003-01-06 12:04:00,{PHI},{PHI}"
    lines[CHUNK + 7] = "not a time,2003-01-06,12"
    job = await wait_for(
        h,
        token,
        (await upload(h, token, patient_id, "\n".join(lines).encode())).headers["location"],
    )
    assert job["status"] == "succeeded", job
    assert (job["rows_read"], job["rows_accepted"], job["rows_rejected"]) == (
        CHUNK + 20,
        CHUNK + 18,
        2,
    )
    assert [(e["record"], e["reason"]) for e in job["errors"]] == [
        (5, "bad_format"),
        (CHUNK + 7, "bad_format"),
    ]
    assert PHI not in str(job)
    assert await stored(h, patient_id) == CHUNK + 18


async def test_bad_parameters_are_422_before_anything_is_stored(
    harness_factory: Any, tmp_path: Path
) -> None:
    h = await start(harness_factory, tmp_path)
    token = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, token)
    content = depresjon_csv(10)

    unknown = await upload(h, token, patient_id, content, format="garmin_fit")
    assert unknown.status_code == 422
    assert unknown.json()["code"] == "unknown_format"
    assert "depresjon" in unknown.json()["known_formats"]
    assert "depresjon" in unknown.json()["detail"]

    zone = await upload(h, token, patient_id, content, timezone="Mars/Olympus")
    assert zone.status_code == 422
    assert zone.json()["errors"][0]["field"] == "query.timezone"

    mapped = await upload(h, token, patient_id, content, mapping='{"timestamp": "t"}')
    assert mapped.status_code == 422
    assert "query.mapping.columns" in [e["field"] for e in mapped.json()["errors"]]
    not_json = await upload(h, token, patient_id, content, mapping="{")
    assert not_json.status_code == 422
    assert not_json.json()["errors"][0]["field"].startswith("query.mapping")
    needless = await upload(
        h,
        token,
        patient_id,
        content,
        mapping='{"timestamp": "t", "columns": {"hr": "heart_rate"}}',
    )
    assert needless.status_code == 422
    assert needless.json()["code"] == "mapping_not_applicable"

    form = await h.client.post(
        imports_url(patient_id),
        params={"format": "depresjon"},
        files={"file": ("activity.csv", content)},
        headers=bearer(token),
    )
    assert form.status_code == 415
    assert "not a form" in form.json()["detail"]

    empty = await upload(h, token, patient_id, b"")
    assert empty.status_code == 422
    assert empty.json()["code"] == "empty_file"

    async with h.runtime.db.session(system=True) as session:
        assert await session.scalar(select(func.count()).select_from(ImportJob)) == 0
    assert leftover_uploads(tmp_path) == []


async def test_each_format_asks_for_what_it_needs(harness_factory: Any, tmp_path: Path) -> None:
    h = await start(harness_factory, tmp_path)
    token = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, token)
    content = b"t,hr\n"

    no_zone = await upload(h, token, patient_id, content, format="actigraph_csv")
    assert no_zone.status_code == 422
    assert no_zone.json()["code"] == "timezone_required"

    no_mapping = await upload(h, token, patient_id, content, format="generic_csv")
    assert no_mapping.status_code == 422
    assert no_mapping.json()["code"] == "mapping_required"

    bad_stream = await upload(
        h,
        token,
        patient_id,
        content,
        format="generic_csv",
        mapping='{"timestamp": "t", "columns": {"hr": "heart_beat"}}',
    )
    assert bad_stream.status_code == 422
    assert bad_stream.json()["errors"][0]["field"] == "query.mapping.columns.hr"

    # Options the reader itself refuses: a local time pattern without a zone, an unknown kind.
    local = await upload(
        h,
        token,
        patient_id,
        content,
        format="generic_csv",
        mapping='{"timestamp": "t", "columns": {"hr": "heart_rate"}, "time_format": "%H:%M"}',
    )
    assert local.status_code == 422
    assert local.json()["code"] == "invalid_import_options"
    kind = await upload(
        h, token, patient_id, content, format="fitbit_json", timezone="UTC", kind="moods"
    )
    assert kind.status_code == 422
    assert kind.json()["code"] == "invalid_import_options"
    async with h.runtime.db.session(system=True) as session:
        assert await session.scalar(select(func.count()).select_from(ImportJob)) == 0


async def test_a_generic_csv_imports_by_its_mapping(harness_factory: Any, tmp_path: Path) -> None:
    h = await start(harness_factory, tmp_path)
    token = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, token)
    lines = ["when;pulse;walked;note"]
    for i in range(500):
        pulse = "" if i % 100 == 7 else str(55 + i % 40)  # an empty cell is no record
        lines.append(f"2024-02-0{1 + i // 200}T{i % 200 // 60:02d}:{i % 60:02d}:00Z;{pulse};{i};x")
    mapping = (
        '{"timestamp": "when", "delimiter": ";", "columns": {"pulse": "heart_rate", '
        '"walked": "steps"}, "units": {"heart_rate": "bpm"}}'
    )
    response = await upload(
        h,
        token,
        patient_id,
        ("\n".join(lines) + "\n").encode(),
        format="generic_csv",
        mapping=mapping,
        source="ward-watch",
    )
    assert response.status_code == 202, response.text
    assert response.json()["options"]["mapping"]["columns"] == {
        "pulse": "heart_rate",
        "walked": "steps",
    }
    job = await wait_for(h, token, response.headers["location"])
    assert job["status"] == "succeeded", job
    assert (job["rows_read"], job["rows_accepted"], job["rows_rejected"]) == (995, 995, 0)
    assert await stored(h, patient_id) == 995
    async with h.runtime.db.session(system=True) as session:
        sources = await session.scalars(
            select(BiometricSample.source)
            .where(BiometricSample.patient_id == uuid.UUID(patient_id))
            .distinct()
        )
        assert list(sources) == ["ward-watch"]


async def test_a_file_in_another_format_fails_with_a_clear_message(
    harness_factory: Any, tmp_path: Path
) -> None:
    h = await start(harness_factory, tmp_path)
    token = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, token)
    xml = f'<?xml version="1.0"?>\n<HealthData><Me name="{PHI}"/></HealthData>\n'.encode()
    response = await upload(h, token, patient_id, xml)
    assert response.status_code == 202
    job = await wait_for(h, token, response.headers["location"])
    assert job["status"] == "failed"
    assert job["failure_code"] == "format_error"
    assert "Depresjon" in job["failure"]
    assert PHI not in str(job)
    assert "HealthData" not in job["failure"]
    assert job["resumable"] is False
    assert await stored(h, patient_id) == 0
    assert leftover_uploads(tmp_path) == []
    resume = await h.client.post(f"{response.headers['location']}/resume", headers=bearer(token))
    assert resume.status_code == 409
    assert resume.json()["code"] == "import_not_resumable"


async def test_without_consent_the_upload_is_refused(harness_factory: Any, tmp_path: Path) -> None:
    h = await start(harness_factory, tmp_path)
    token = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, token, consent=False)
    response = await upload(h, token, patient_id, depresjon_csv(10))
    assert response.status_code == 403
    assert response.json()["code"] == "consent_required"
    async with h.runtime.db.session(system=True) as session:
        assert await session.scalar(select(func.count()).select_from(ImportJob)) == 0
    assert leftover_uploads(tmp_path) == []


async def _running(h: Harness, token: str, patient_id: str, rows: int) -> str:
    """Upload a file of ``rows`` records and wait until its first chunk is stored."""
    response = await upload(h, token, patient_id, depresjon_csv(rows))
    assert response.status_code == 202, response.text
    location = response.headers["location"]
    job = await wait_for(
        h, token, location, lambda j: j["chunks_done"] >= 1 or j["status"] in TERMINAL
    )
    assert job["status"] == "running", job
    assert 0 < job["progress"] < 1  # how far the reader is into the file
    assert job["rows_per_second"] > 0
    return location


async def test_withdrawing_consent_stops_a_running_import(
    harness_factory: Any, tmp_path: Path
) -> None:
    h = await start(harness_factory, tmp_path)
    token = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, token)
    rows = 20 * CHUNK
    location = await _running(h, token, patient_id, rows)
    await set_consent(h, token, patient_id, granted=False)
    job = await wait_for(h, token, location)
    assert job["status"] == "failed", job
    assert job["failure_code"] == "consent_withdrawn"
    assert 0 < job["rows_accepted"] < rows
    assert await stored(h, patient_id) == job["rows_accepted"]
    assert leftover_uploads(tmp_path) == []
    refused = await upload(h, token, patient_id, depresjon_csv(10))
    assert refused.status_code == 403


async def test_cancel_stops_a_running_import(harness_factory: Any, tmp_path: Path) -> None:
    h = await start(harness_factory, tmp_path)
    token = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, token)
    rows = 20 * CHUNK
    location = await _running(h, token, patient_id, rows)
    cancel = await h.client.post(f"{location}/cancel", headers=bearer(token))
    assert cancel.status_code in {200, 202}, cancel.text
    job = await wait_for(h, token, location)
    assert job["status"] == "cancelled", job
    assert job["resumable"] is True
    assert 0 < job["rows_accepted"] < rows
    assert await stored(h, patient_id) == job["rows_accepted"]
    assert leftover_uploads(tmp_path) == []

    resume = await h.client.post(f"{location}/resume", headers=bearer(token))
    assert resume.status_code == 409
    assert resume.json()["code"] == "import_file_gone"
    again = await h.client.post(f"{location}/cancel", headers=bearer(token))
    assert again.status_code == 409
    assert again.json()["code"] == "import_finished"
    assert "import.cancel" in await actions(h, patient_id)


async def test_an_import_resumes_after_its_runner_stops_fails_or_its_process_dies(
    harness_factory: Any, tmp_path: Path
) -> None:
    h = await start(harness_factory, tmp_path)
    runner: ImportRunner = h.app.state.import_runner
    token = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, token)
    rows = 12 * CHUNK + 17
    location = await _running(h, token, patient_id, rows)
    job_id = uuid.UUID(location.rsplit("/", 1)[1])

    await runner.stop()  # the app shutting down: the job goes back to the queue
    stopped = await read_job(h, token, location)
    assert stopped["status"] == "queued", stopped
    assert 0 < stopped["chunks_done"] < math.ceil(rows / CHUNK)
    assert stopped["rows_accepted"] == await stored(h, patient_id)
    assert stopped["rows_accepted"] == stopped["chunks_done"] * CHUNK

    # An internal error stopped it instead: failed, resumable, its upload kept.
    await set_job(h, job_id, status=JobStatus.failed, failure="interrupted: internal error")
    assert (await read_job(h, token, location))["resumable"] is True
    await runner.start()
    resumed = await h.client.post(f"{location}/resume", headers=bearer(token))
    assert resumed.status_code == 202, resumed.text
    assert resumed.json()["status"] in {"queued", "running"}
    await wait_for(h, token, location, lambda j: j["chunks_done"] > stopped["chunks_done"])
    await runner.stop()
    again = await read_job(h, token, location)
    assert again["status"] == "queued", again

    # Its process died instead: "running", with a heartbeat fresh enough that no other
    # process takes it over yet...
    await set_job(h, job_id, status=JobStatus.running, heartbeat_at=utcnow())
    await runner.start()
    await asyncio.sleep(0.5)
    assert (await read_job(h, token, location))["chunks_done"] == again["chunks_done"]
    # ...until the heartbeat is stale: the next sweep resumes it after its last chunk.
    await set_job(h, job_id, heartbeat_at=utcnow() - timedelta(minutes=5))
    assert await runner.sweep() == 1
    job = await wait_for(h, token, location)
    assert job["status"] == "succeeded", job
    assert (job["rows_read"], job["rows_accepted"], job["rows_duplicate"]) == (rows, rows, 0)
    assert await stored(h, patient_id) == rows
    assert len(await batch_ids(h, patient_id)) == math.ceil(rows / CHUNK)
    assert leftover_uploads(tmp_path) == []


async def set_job(h: Harness, job_id: uuid.UUID, **values: Any) -> None:
    async with h.runtime.db.session(system=True) as session:
        await session.execute(update(ImportJob).where(ImportJob.id == job_id).values(**values))
        await session.commit()


async def test_the_upload_is_private_and_limited(harness_factory: Any, tmp_path: Path) -> None:
    h = await start(harness_factory, tmp_path, max_import_bytes=64 * 1024)
    runner: ImportRunner = h.app.state.import_runner
    token = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, token)

    await runner.stop()  # keep the job queued to look at its file
    response = await upload(h, token, patient_id, depresjon_csv(100))
    assert response.status_code == 202
    (saved,) = leftover_uploads(tmp_path)
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert stat.S_IMODE(saved.parent.stat().st_mode) == 0o700
    assert response.json()["id"].replace("-", "") in saved.name  # never the client's name

    too_big = depresjon_csv(5000)
    declared = await upload(h, token, patient_id, too_big)
    assert declared.status_code == 413

    async def streamed() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
        for start_at in range(0, len(too_big), 8192):
            yield too_big[start_at : start_at + 8192]

    chunked = await upload(h, token, patient_id, streamed())
    assert chunked.status_code == 413
    assert leftover_uploads(tmp_path) == [saved]

    await runner.start()
    job = await wait_for(h, token, response.headers["location"])
    assert job["status"] == "succeeded"
    assert leftover_uploads(tmp_path) == []


async def test_status_reads_are_scoped_to_the_patient(harness_factory: Any, tmp_path: Path) -> None:
    h = await start(harness_factory, tmp_path)
    token = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, token)
    other_id = await new_patient(h, token)
    response = await upload(h, token, patient_id, depresjon_csv(10))
    job_id = response.json()["id"]
    await wait_for(h, token, response.headers["location"])
    wrong = await h.client.get(f"{imports_url(other_id)}/{job_id}", headers=bearer(token))
    assert wrong.status_code == 404
    researcher = await h.token_for(Role.researcher)
    hidden = await h.client.get(response.headers["location"], headers=bearer(researcher))
    assert hidden.status_code == 404
    assert datetime.fromisoformat(
        (await read_job(h, token, response.headers["location"]))["created_at"]
    ) <= datetime.now(UTC)
