"""Import jobs as rows: options checked once, created, listed, claimed, cancelled, reopened.

Running a job chunk by chunk is :mod:`clarity.imports.work`; this module holds the state
changes around it. Every change of a job's status that could race another process (two
app processes, the CLI and the app) is one conditional ``UPDATE ... WHERE status = ...``:
whoever changes the row first wins, the others see ``rowcount == 0``.
"""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from clarity.biometrics.formats import CsvMapping, Format, ImportOptions, OptionsError, formats
from clarity.database import utcnow
from clarity.errors import AppError, not_found
from clarity.imports.models import ImportJob, JobStatus
from clarity.imports.schemas import (
    ImportJobOut,
    ImportJobSummary,
    MappingIn,
    RejectedRecord,
)

# Records per chunk; each chunk is one biometric batch, committed with the job's counters.
CHUNK = 10_000
MAX_ERRORS = 1000
LISTED_JOBS = 100


class Failure(StrEnum):
    """Why a job failed; stored as ``"<code>: <message>"`` in ``ImportJob.failure``."""

    format_error = "format_error"  # the file is not in the format asked for
    file_unavailable = "file_unavailable"  # missing, unreadable or changed since upload
    consent_withdrawn = "consent_withdrawn"
    interrupted = "interrupted"  # stopped by an internal error or the operator: resumable


RESUMABLE_FAILURES = frozenset({Failure.interrupted})


def failure_text(code: Failure, message: str) -> str:
    return f"{code.value}: {message}"[:512]


def split_failure(text: str | None) -> tuple[str | None, str | None]:
    if not text:
        return None, None
    code, _, message = text.partition(": ")
    return (code, message) if code in Failure.__members__ else (None, text)


@dataclass(frozen=True)
class CheckedOptions:
    format: Format
    options: dict[str, Any]  # as stored on the job (JSON)


def check_options(
    format_name: str,
    *,
    timezone: str | None,
    source: str | None,
    mapping: MappingIn | None,
    kind: str | None = None,
) -> CheckedOptions:
    """The format and its options, or a 422 saying what is missing (shared by API and CLI).

    Beyond the format's declared needs, the reader itself is asked: readers raise
    :class:`OptionsError` before reading anything, so reading an empty file with the options
    shows whether they suit the format (an unknown zone, a kind of file it does not know)."""
    known = formats()
    if format_name not in known:
        names = sorted(known)
        raise AppError(
            422,
            "unknown_format",
            f"Unknown import format; known formats: {', '.join(names) or 'none'}.",
            extra={"known_formats": names},
        )
    fmt = known[format_name]
    if fmt.needs_timezone and timezone is None:
        raise AppError(
            422,
            "timezone_required",
            f"Format {fmt.name} has local times without a zone: give timezone (an IANA zone "
            "such as Europe/Oslo).",
        )
    if fmt.needs_mapping and mapping is None:
        raise AppError(
            422,
            "mapping_required",
            f"Format {fmt.name} needs a column mapping: give mapping (timestamp, columns).",
        )
    if mapping is not None and not fmt.needs_mapping:
        raise AppError(422, "mapping_not_applicable", f"Format {fmt.name} takes no column mapping.")
    options: dict[str, Any] = {"timezone": timezone, "source": source, "kind": kind}
    if mapping is not None:
        options["mapping"] = mapping.model_dump()
    problem = _options_problem(fmt, import_options(options))
    if problem is not None:
        raise AppError(422, "invalid_import_options", problem)
    return CheckedOptions(fmt, options)


def _options_problem(fmt: Format, options: ImportOptions) -> str | None:
    try:
        next(iter(fmt.read(io.BytesIO(b""), options)), None)
    except OptionsError as exc:
        return f"The options do not suit format {fmt.name}: {exc}."
    except Exception:  # noqa: S110 - anything else is about the (empty) file, not the options
        pass
    return None


def import_options(options: dict[str, Any]) -> ImportOptions:
    """The reader options of a stored job."""
    mapping = options.get("mapping")
    return ImportOptions(
        source=options.get("source"),
        timezone=options.get("timezone"),
        mapping=None if mapping is None else CsvMapping(**mapping),
        kind=options.get("kind"),
    )


def owns_file(job: ImportJob, import_dir: Path) -> bool:
    """Whether the job's file is an upload kept by the server (the CLI imports a file in
    place: it is never moved or deleted)."""
    return Path(job.file_path).resolve().is_relative_to(import_dir.resolve())


def remove_upload(job: ImportJob, import_dir: Path) -> None:
    """Delete the job's uploaded copy, if it has one (ended jobs keep no patient file)."""
    if owns_file(job, import_dir):
        Path(job.file_path).unlink(missing_ok=True)


def resumable(job: ImportJob) -> bool:
    if job.status == JobStatus.cancelled:
        return True
    code, _ = split_failure(job.failure)
    return job.status == JobStatus.failed and code in RESUMABLE_FAILURES


def rows_per_second(job: ImportJob) -> float:
    return round(job.rows_read / job.seconds_running, 1) if job.seconds_running > 0 else 0.0


def progress(job: ImportJob) -> float:
    if job.status == JobStatus.succeeded:
        return 1.0
    if job.file_bytes <= 0:
        return 0.0
    return round(min(1.0, job.bytes_read / job.file_bytes), 4)


def to_summary(job: ImportJob) -> ImportJobSummary:
    return ImportJobSummary(
        id=job.id,
        patient_id=job.patient_id,
        format=job.format,
        status=job.status,
        rows_read=job.rows_read,
        rows_accepted=job.rows_accepted,
        rows_duplicate=job.rows_duplicate,
        rows_rejected=job.rows_rejected,
        rows_per_second=rows_per_second(job),
        progress=progress(job),
        file_bytes=job.file_bytes,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )


def to_out(job: ImportJob) -> ImportJobOut:
    code, message = split_failure(job.failure)
    return ImportJobOut(
        **to_summary(job).model_dump(),
        options=dict(job.options),
        file_sha256=job.file_sha256,
        bytes_read=job.bytes_read,
        chunks_done=job.chunks_done,
        seconds_running=round(job.seconds_running, 3),
        heartbeat_at=job.heartbeat_at,
        cancel_requested=job.cancel_requested,
        resumable=resumable(job),
        failure_code=code,
        failure=message,
        errors=[RejectedRecord.model_validate(e) for e in job.errors],
        errors_truncated=job.rows_rejected > len(job.errors),
        skipped=dict(job.skipped or {}),
    )


def new_job(
    *,
    job_id: uuid.UUID | None = None,
    patient_id: uuid.UUID,
    organization_id: uuid.UUID,
    checked: CheckedOptions,
    file_path: Path,
    sha256: str,
    size: int,
    created_by: uuid.UUID | None,
) -> ImportJob:
    return ImportJob(
        id=job_id or uuid.uuid4(),
        organization_id=organization_id,
        patient_id=patient_id,
        format=checked.format.name,
        options=checked.options,
        status=JobStatus.queued,
        file_path=str(file_path),
        file_sha256=sha256,
        file_bytes=size,
        created_by=created_by,
        created_at=utcnow(),
        cancel_requested=False,
        chunks_done=0,
        rows_read=0,
        rows_accepted=0,
        rows_duplicate=0,
        rows_rejected=0,
        bytes_read=0,
        seconds_running=0.0,
        errors=[],
    )


async def get_job(session: AsyncSession, patient_id: uuid.UUID, job_id: uuid.UUID) -> ImportJob:
    job = await session.scalar(
        select(ImportJob)
        .where(ImportJob.id == job_id, ImportJob.patient_id == patient_id)
        .execution_options(populate_existing=True)
    )
    if job is None:
        raise not_found("import job")
    return job


async def list_jobs(session: AsyncSession, patient_id: uuid.UUID) -> list[ImportJob]:
    rows = await session.scalars(
        select(ImportJob)
        .where(ImportJob.patient_id == patient_id)
        .order_by(ImportJob.created_at.desc())
        .limit(LISTED_JOBS)
    )
    return list(rows.all())


async def unfinished_job(
    session: AsyncSession, patient_id: uuid.UUID, checked: CheckedOptions, sha256: str
) -> ImportJob | None:
    """The newest job importing the same file the same way that has not ended for good:
    queued, running, cancelled or interrupted (the CLI resumes it instead of starting anew)."""
    rows = await session.scalars(
        select(ImportJob)
        .where(
            ImportJob.patient_id == patient_id,
            ImportJob.format == checked.format.name,
            ImportJob.file_sha256 == sha256,
            ImportJob.status != JobStatus.succeeded,
        )
        .order_by(ImportJob.created_at.desc())
    )
    for job in rows:
        if job.options == checked.options and (
            job.status in (JobStatus.queued, JobStatus.running) or resumable(job)
        ):
            return job
    return None


def changed_one(result: Any) -> bool:
    """Whether a conditional UPDATE changed its one row."""
    assert isinstance(result, CursorResult)
    return bool(result.rowcount == 1)


async def claim(session: AsyncSession, job_id: uuid.UUID, stale_seconds: float) -> bool:
    """Take a queued job, or a running one whose worker has been silent for longer than
    ``stale_seconds`` (it died), in one conditional UPDATE; True when this caller won."""
    now = utcnow()
    stale = now - timedelta(seconds=stale_seconds)
    result = await session.execute(
        update(ImportJob)
        .where(
            ImportJob.id == job_id,
            (ImportJob.status == JobStatus.queued)
            | (
                (ImportJob.status == JobStatus.running)
                & (ImportJob.heartbeat_at.is_(None) | (ImportJob.heartbeat_at < stale))
            ),
        )
        .values(status=JobStatus.running, heartbeat_at=now)
        .execution_options(synchronize_session=False)
    )
    return changed_one(result)


async def reopen(session: AsyncSession, job: ImportJob) -> bool:
    """Put a cancelled or interrupted job back in the queue (its chunks done are kept)."""
    if not resumable(job):
        return False
    result = await session.execute(
        update(ImportJob)
        .where(ImportJob.id == job.id, ImportJob.status == job.status)
        .values(
            status=JobStatus.queued,
            cancel_requested=False,
            failure=None,
            finished_at=None,
            heartbeat_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    return changed_one(result)


async def cancel(session: AsyncSession, job: ImportJob, stale_seconds: float) -> bool:
    """Cancel a job: at once when no worker holds it (queued, or its worker is gone);
    otherwise flag it and its worker stops after the chunk in hand. Returns True when the
    job is cancelled now (the caller deletes its upload), False when it was flagged."""
    if job.status not in (JobStatus.queued, JobStatus.running):
        raise AppError(409, "import_finished", f"The import job has already ended ({job.status}).")
    now = utcnow()
    stale = now - timedelta(seconds=stale_seconds)
    result = await session.execute(
        update(ImportJob)
        .where(
            ImportJob.id == job.id,
            (ImportJob.status == JobStatus.queued)
            | (
                (ImportJob.status == JobStatus.running)
                & (ImportJob.heartbeat_at.is_(None) | (ImportJob.heartbeat_at < stale))
            ),
        )
        .values(status=JobStatus.cancelled, finished_at=now, cancel_requested=True)
        .execution_options(synchronize_session=False)
    )
    if changed_one(result):
        return True
    await session.execute(
        update(ImportJob)
        .where(ImportJob.id == job.id, ImportJob.status == JobStatus.running)
        .values(cancel_requested=True)
        .execution_options(synchronize_session=False)
    )
    return False


def resume_refusal(job: ImportJob, import_dir: Path, file_exists: bool) -> AppError | None:
    """Why the API cannot resume a job (409), or None when it can."""
    if job.status in (JobStatus.queued, JobStatus.running):
        return AppError(409, "import_active", "The import job is still queued or running.")
    if job.status == JobStatus.succeeded:
        return AppError(409, "import_finished", "The import job has already succeeded.")
    if not resumable(job):
        code, _ = split_failure(job.failure)
        return AppError(
            409,
            "import_not_resumable",
            f"The import job failed ({code}); resuming would fail again. Fix the cause and "
            "upload the file again.",
        )
    if not owns_file(job, import_dir):
        return AppError(
            409,
            "import_resumed_by_cli",
            "This import reads a file in place (clarity import): run the same command again "
            "to resume it.",
        )
    if not file_exists:
        return AppError(
            409,
            "import_file_gone",
            "The file of this import job was deleted when it ended; upload it again (samples "
            "already stored are counted as duplicates, not stored twice).",
        )
    return None
