"""Running one claimed import job to its end, chunk by chunk (used by the runner and the CLI).

The file is read by its format's reader in a worker thread, :data:`CHUNK` records at a time
(parsing is CPU-bound and must not stall the event loop); each chunk is stored as the
biometric batch ``import:<job id>:<chunk>`` in one transaction with the job's counters,
guarded by ``chunks_done = <chunk>``, so a chunk is counted exactly once even if two
workers ever ran the same job. Resuming re-reads the file and skips the records of the
chunks already done. Between chunks the worker checks for a cancel request and re-checks
the patient's consent to wearable data.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO, Literal

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from clarity.audit.service import AuditActor, bind_actor, record
from clarity.biometrics.formats import FormatError, Record, Records, get_format
from clarity.biometrics.service import enqueue_accepted, store_batch
from clarity.consent.service import has_consent
from clarity.database import Database, utcnow
from clarity.imports.models import ImportJob, JobStatus
from clarity.imports.service import (
    CHUNK,
    MAX_ERRORS,
    Failure,
    changed_one,
    failure_text,
    import_options,
    remove_upload,
)
from clarity.logging import get_logger

log = get_logger(__name__)

HASH_BLOCK = 1 << 20
HASH_PIECE = 64 << 20  # bytes hashed per thread hop, between heartbeats
ProgressHook = Callable[[ImportJob], None]
OnStop = Literal["requeue", "interrupt"]


@dataclass(frozen=True)
class WorkEnv:
    """What a worker needs: where to store, whom to wake after a commit (the outbox relay,
    which publishes ``biometrics.batch_accepted``), which uploads it may delete."""

    db: Database
    notify: Callable[[], None]
    import_dir: Path | None  # None: the CLI, whose files are the operator's, never deleted
    stale_seconds: float
    # Asked to stop (the app shutting down): checked between chunks.
    stopping: Callable[[], bool] = lambda: False


class _Stopped(Exception):
    """The process is stopping: leave the job for another start to resume."""


class _Ended(Exception):
    """The job reached a final status (or another worker has it): stop working on it."""


class _ReadFailed(Exception):
    def __init__(self, code: Failure, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _reading(fmt_name: str, exc: Exception) -> _ReadFailed:
    """A reader's exception as a failure; never its text unless it is a FormatError (whose
    messages are written not to quote the file)."""
    if isinstance(exc, FormatError):
        return _ReadFailed(Failure.format_error, str(exc)[:400])
    if isinstance(exc, OSError):
        return _ReadFailed(
            Failure.file_unavailable, f"The file could not be read ({type(exc).__name__})."
        )
    return _ReadFailed(
        Failure.format_error,
        f"The file could not be read as {fmt_name} ({type(exc).__name__}).",
    )


def _take_at(
    records: Iterator[Record | None], handle: BinaryIO, size: int
) -> tuple[list[Record | None], int]:
    """The next chunk of records, and how far into the file the reader is after it."""
    chunk = list(islice(records, CHUNK))
    return chunk, _position(handle, size)


def _skip(records: Iterator[Record | None], count: int) -> int:
    return sum(1 for _ in islice(records, count))


def _hash_piece(handle: BinaryIO, digest: Any) -> int:
    """Hash up to HASH_PIECE more bytes; returns how many were read (0 at the end)."""
    done = 0
    while done < HASH_PIECE:
        block = handle.read(HASH_BLOCK)
        if not block:
            break
        digest.update(block)
        done += len(block)
    return done


def _position(handle: BinaryIO, size: int) -> int:
    try:
        return max(0, min(size, handle.tell()))
    except (OSError, ValueError):  # a reader closed or wrapped it beyond telling
        return size


class _Worker:
    """One run of one job; ``job`` is a detached copy mirroring the committed counters."""

    def __init__(
        self, env: WorkEnv, job: ImportJob, actor: AuditActor, on_progress: ProgressHook | None
    ) -> None:
        self.env = env
        self.job = job
        self.actor = actor
        self.on_progress = on_progress
        self.mark = time.perf_counter()
        self.last_beat = time.monotonic()
        self.skipped: dict[str, int] = {}

    # --- database steps -------------------------------------------------------------

    def _session(self) -> Any:
        return self.env.db.session(self.job.organization_id)

    def _audit(self, session: AsyncSession, action: str, **details: Any) -> None:
        bind_actor(session, self.actor)
        record(
            session,
            action,
            resource_type="patient",
            resource_id=self.job.patient_id,
            details={"import_job_id": str(self.job.id), **details},
        )

    async def _locked(self, session: AsyncSession) -> ImportJob:
        """The job row, locked; _Ended when it is gone or no longer ours to run."""
        current = await session.scalar(
            select(ImportJob)
            .where(ImportJob.id == self.job.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        if current is None:  # deleted with its patient: its upload goes too
            if self.env.import_dir is not None:
                remove_upload(self.job, self.env.import_dir)
            raise _Ended("job deleted")
        if current.status != JobStatus.running or current.chunks_done != self.job.chunks_done:
            raise _Ended("job taken over or stopped elsewhere")
        return current

    async def start(self) -> None:
        async with self._session() as session:
            current = await self._locked(session)
            now = utcnow()
            if current.started_at is None:
                current.started_at = now
            current.heartbeat_at = now
            self._audit(
                session,
                "import.start",
                format=current.format,
                resumed_at_record=current.chunks_done * CHUNK,
            )
            await session.commit()
            self.job.started_at = current.started_at

    async def beat(self) -> None:
        """Tell other processes this job is alive (during long phases without commits)."""
        if time.monotonic() - self.last_beat < min(10.0, self.env.stale_seconds / 3):
            return
        async with self._session() as session:
            current = await self._locked(session)
            current.heartbeat_at = utcnow()
            await session.commit()
        self.last_beat = time.monotonic()

    async def finish(
        self,
        status: JobStatus,
        failure: tuple[Failure, str] | None = None,
        session: AsyncSession | None = None,
    ) -> None:
        """Record the final status (in ``session`` when given, else a new one) and delete
        the upload; a job interrupted keeps its file so that it can resume."""
        if session is None:
            async with self._session() as own:
                await self._finish_in(own, status, failure)
        else:
            await self._finish_in(session, status, failure)
        self.job.status = status
        keep = failure is not None and failure[0] is Failure.interrupted
        if self.env.import_dir is not None and not keep:
            remove_upload(self.job, self.env.import_dir)
        raise _Ended(status)

    async def _finish_in(
        self, session: AsyncSession, status: JobStatus, failure: tuple[Failure, str] | None
    ) -> None:
        current = await self._locked(session)
        now = utcnow()
        current.status = status
        current.finished_at = now
        current.heartbeat_at = now
        current.failure = None if failure is None else failure_text(*failure)
        if self.skipped:
            current.skipped = dict(self.skipped)
        self._audit(
            session,
            "import.finish",
            status=status.value,
            failure=None if failure is None else failure[0].value,
            rows_read=current.rows_read,
            rows_accepted=current.rows_accepted,
            rows_duplicate=current.rows_duplicate,
            rows_rejected=current.rows_rejected,
            skipped=self.skipped,
        )
        await session.commit()

    async def store_chunk(self, records: list[Record | None], bytes_read: int) -> None:
        job = self.job
        k = job.chunks_done
        async with self._session() as session:
            current = await self._locked(session)
            if current.cancel_requested:
                await self.finish(JobStatus.cancelled, session=session)
            if not await has_consent(session, job.patient_id, "wearable_data"):
                await self.finish(
                    JobStatus.failed,
                    (
                        Failure.consent_withdrawn,
                        "The patient withdrew consent to wearable data; the import stopped.",
                    ),
                    session=session,
                )
            errors = list(current.errors)
            stored = await store_batch(
                session, job.organization_id, job.patient_id, f"import:{job.id}:{k}", records
            )
            receipt = stored.receipt
            for rejection in receipt.rejections:
                if len(errors) >= MAX_ERRORS:
                    break
                errors.append(
                    {
                        "record": k * CHUNK + rejection.index + 1,
                        "reason": rejection.reason,
                        "field": rejection.field,
                    }
                )
            enqueue_accepted(session, job.organization_id, job.patient_id, stored)
            if stored.created:
                self._audit(
                    session,
                    "biometrics.ingest",
                    batch_id=str(stored.batch.id),
                    received=receipt.received,
                    accepted=receipt.accepted,
                    duplicate=receipt.duplicate,
                    rejected=receipt.rejected,
                )
            now = time.perf_counter()
            seconds = now - self.mark
            values = {
                "chunks_done": k + 1,
                "rows_read": job.rows_read + len(records),
                "rows_accepted": job.rows_accepted + receipt.accepted,
                "rows_duplicate": job.rows_duplicate + receipt.duplicate,
                "rows_rejected": job.rows_rejected + receipt.rejected,
                "bytes_read": bytes_read,
                "seconds_running": job.seconds_running + seconds,
                "errors": errors,
                "heartbeat_at": utcnow(),
            }
            result = await session.execute(
                update(ImportJob)
                .where(
                    ImportJob.id == job.id,
                    ImportJob.chunks_done == k,
                    ImportJob.status == JobStatus.running,
                )
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            if not changed_one(result):
                await session.rollback()
                raise _Ended("job taken over or stopped elsewhere")
            await session.commit()
        self.mark = now
        self.last_beat = time.monotonic()
        for name, value in values.items():
            setattr(job, name, value)
        self.env.notify()
        if self.on_progress is not None:
            self.on_progress(job)

    async def release(self, on_stop: OnStop) -> None:
        """Stopped from outside: back to the queue, or failed as interrupted."""
        if on_stop == "interrupt":
            await _quietly(
                self.finish(
                    JobStatus.failed,
                    (Failure.interrupted, "Stopped before the end; run the same import to resume."),
                )
            )
            return
        try:
            async with self._session() as session:
                current = await self._locked(session)
                current.status = JobStatus.queued
                current.heartbeat_at = None
                await session.commit()
        except _Ended:
            pass
        except Exception as exc:
            log.error("import.release_failed", error=type(exc).__name__)

    # --- the file -------------------------------------------------------------------

    def _read_ahead(
        self, records: Iterator[Record | None], handle: BinaryIO
    ) -> asyncio.Future[tuple[list[Record | None], int]]:
        return asyncio.ensure_future(
            asyncio.to_thread(_take_at, records, handle, self.job.file_bytes)
        )

    async def verify_file(self, handle: BinaryIO) -> None:
        """The file must be the one the job was made for (same SHA-256)."""
        digest = hashlib.sha256()
        while await asyncio.to_thread(_hash_piece, handle, digest):
            await self.beat()
        if digest.hexdigest() != self.job.file_sha256:
            raise _ReadFailed(
                Failure.file_unavailable, "The file has changed since the import was created."
            )
        handle.seek(0)

    async def run(self) -> None:
        job = self.job
        fmt = get_format(job.format)
        try:
            handle = await asyncio.to_thread(open, job.file_path, "rb")
        except OSError as exc:
            raise _reading(fmt.name, exc) from None
        records: Iterator[Record | None] = iter(())
        ahead: asyncio.Future[tuple[list[Record | None], int]] | None = None
        try:
            await self.verify_file(handle)
            try:
                records = await asyncio.to_thread(fmt.read, handle, import_options(job.options))
                for _ in range(job.chunks_done):  # resuming: past the chunks already stored
                    await asyncio.to_thread(_skip, records, CHUNK)
                    await self.beat()
            except Exception as exc:
                raise _reading(fmt.name, exc) from None
            # The next chunk is parsed (in a thread) while this one is stored.
            ahead = self._read_ahead(records, handle)
            while True:
                try:
                    # Shielded: stopped from outside, the thread is left to finish its chunk.
                    chunk, position = await asyncio.shield(ahead)
                except Exception as exc:
                    raise _reading(fmt.name, exc) from None
                if not chunk:
                    break
                if self.env.stopping():
                    raise _Stopped
                ahead = self._read_ahead(records, handle)
                await self.store_chunk(chunk, position)
            if isinstance(records, Records):
                self.skipped = dict(records.skipped)
        finally:
            if ahead is not None:
                await asyncio.wait([ahead])  # the thread must be done with the file
                if not ahead.cancelled():
                    ahead.exception()  # retrieved: reported above, or moot after a failure
            close = getattr(records, "close", None)
            if close is not None:
                with contextlib.suppress(ValueError):  # still running in a cancelled thread
                    close()
            handle.close()
        async with self._session() as session:
            current = await self._locked(session)
            current.bytes_read = job.file_bytes
            await self.finish(JobStatus.succeeded, session=session)


@dataclass(frozen=True)
class Outcome:
    """How a run ended: the job as stored (None: deleted meanwhile) and what the file held
    that maps to no stream, by kind (complete only when the file was read to its end)."""

    job: ImportJob | None
    skipped: dict[str, int]


async def execute(
    env: WorkEnv,
    job_id: uuid.UUID,
    organization_id: uuid.UUID,
    actor: AuditActor,
    *,
    on_progress: ProgressHook | None = None,
    on_stop: OnStop = "requeue",
) -> Outcome:
    """Run a job this caller has claimed (see :func:`clarity.imports.service.claim`) to its
    end.

    Stopped from outside (task cancelled: shutdown, Ctrl-C), the job is put back in the
    queue (``requeue``: another start resumes it) or marked failed as interrupted
    (``interrupt``: resumable by hand), then the cancellation goes on."""
    job = await _load(env.db, job_id, organization_id)
    if job is None:
        return Outcome(None, {})
    worker = _Worker(env, job, actor, on_progress)
    try:
        await worker.start()
        await worker.run()
    except _Ended:
        pass
    except _ReadFailed as exc:
        await _quietly(worker.finish(JobStatus.failed, (exc.code, exc.message)))
    except _Stopped:
        await worker.release(on_stop)
    except asyncio.CancelledError:
        await asyncio.shield(worker.release(on_stop))
        raise
    except Exception as exc:
        log.error("import.job_error", job_id=str(job_id), error=type(exc).__name__)
        await _quietly(
            worker.finish(
                JobStatus.failed,
                (
                    Failure.interrupted,
                    f"The import stopped on an internal error ({type(exc).__name__}); resume it.",
                ),
            )
        )
    return Outcome(await _load(env.db, job_id, organization_id), worker.skipped)


async def _quietly(step: Any) -> None:
    try:
        await step
    except _Ended:
        pass
    except Exception as exc:  # the database is gone too: the heartbeat goes stale instead
        log.error("import.finish_failed", error=type(exc).__name__)


async def _load(db: Database, job_id: uuid.UUID, organization_id: uuid.UUID) -> ImportJob | None:
    async with db.session(organization_id) as session:
        job: ImportJob | None = await session.get(ImportJob, job_id)
        return job
