"""The background runner of import jobs in an app process: a few asyncio worker tasks.

Started and stopped with the app. A job is run by whichever process claims it first (one
conditional UPDATE, :func:`clarity.imports.service.claim`), so several app processes can
share the queue. At start and then periodically the runner sweeps the table for uploads
left behind: queued jobs nobody took and running jobs whose worker went silent (its
process died); both resume where their last committed chunk ended. Jobs importing a file
in place (the CLI's) are left to the CLI, which resumes them when run again.

Stopping the app puts the jobs in hand back in the queue (see :func:`execute`).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from clarity.audit.service import AuditActor
from clarity.database import Database, utcnow
from clarity.imports.models import ImportJob, JobStatus
from clarity.imports.service import claim, owns_file
from clarity.imports.work import WorkEnv, execute
from clarity.logging import get_logger

log = get_logger(__name__)

WORKERS = 2  # parsing is CPU-bound: more tasks than this would only interleave


class ImportRunner:
    def __init__(
        self,
        db: Database,
        notify: Callable[[], None],
        import_dir: Path,
        stale_seconds: float,
    ) -> None:
        self.import_dir = import_dir
        self.env = WorkEnv(db, notify, import_dir, stale_seconds, lambda: self._stopping)
        self._stopping = False
        self._queue: asyncio.Queue[uuid.UUID | None] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._stopping = False
        self._queue = asyncio.Queue()
        self._workers = [
            asyncio.create_task(self._work(), name=f"imports.worker.{n}") for n in range(WORKERS)
        ]
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="imports.sweep")

    async def stop(self, grace_seconds: float = 20.0) -> None:
        """Stop taking jobs; a job in hand stops after its current chunk and goes back to
        the queue (cancelled outright after ``grace_seconds``: it resumes from its last
        committed chunk all the same)."""
        self._stopping = True
        tasks = [*self._workers, *([self._sweeper] if self._sweeper else [])]
        if self._sweeper is not None:
            self._sweeper.cancel()
        for _ in self._workers:
            self._queue.put_nowait(None)
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=grace_seconds)
            for task in late:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._workers = []
        self._sweeper = None

    def submit(self, job_id: uuid.UUID) -> None:
        """Run this job soon (it is claimed first: if another process has it, nothing)."""
        if not self._stopping:
            self._queue.put_nowait(job_id)

    async def sweep(self) -> int:
        """Queue every upload job left queued, or running without a heartbeat for longer
        than the stale limit; returns how many were queued."""
        stale = utcnow() - timedelta(seconds=self.env.stale_seconds)
        async with self.env.db.session(system=True) as session:
            jobs = list(
                await session.scalars(
                    select(ImportJob).where(
                        (ImportJob.status == JobStatus.queued)
                        | (
                            (ImportJob.status == JobStatus.running)
                            & (ImportJob.heartbeat_at.is_(None) | (ImportJob.heartbeat_at < stale))
                        )
                    )
                )
            )
        found = [job.id for job in jobs if owns_file(job, self.import_dir)]
        for job_id in found:
            self.submit(job_id)
        return len(found)

    async def _sweep_forever(self) -> None:
        while True:
            try:
                queued = await self.sweep()
                if queued:
                    log.info("imports.resumed", jobs=queued)
            except Exception as exc:  # the database may be briefly away: try again later
                log.error("imports.sweep_failed", error=type(exc).__name__)
            await asyncio.sleep(max(1.0, self.env.stale_seconds / 2))

    async def _work(self) -> None:
        while not self._stopping:
            job_id = await self._queue.get()
            if job_id is None or self._stopping:
                return
            try:
                await self._run(job_id)
            except Exception as exc:
                log.error("imports.worker_error", job_id=str(job_id), error=type(exc).__name__)

    async def _run(self, job_id: uuid.UUID) -> None:
        async with self.env.db.session(system=True) as session:
            if not await claim(session, job_id, self.env.stale_seconds):
                return
            await session.commit()
            job = await session.get(ImportJob, job_id)
            if job is None:
                return
            organization_id = job.organization_id
            # The work is done on behalf of whoever created the job.
            actor = AuditActor(
                actor_id=job.created_by,
                organization_id=organization_id,
                request_id=f"import:{job.id}",
            )
        log.info("imports.job_started", job_id=str(job_id))
        final = (await execute(self.env, job_id, organization_id, actor)).job
        log.info(
            "imports.job_ended",
            job_id=str(job_id),
            status=None if final is None else final.status,
        )
