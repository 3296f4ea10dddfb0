"""Partition maintenance in a running server: once at start-up, then every
:attr:`PartitionKeeper.every_seconds` (daily), in the background (:mod:`partitions`).

Several servers may run it at once: :func:`maintain` serialises them on an advisory lock,
and a run with nothing to do costs one catalogue query. On SQLite it never starts.
"""

from __future__ import annotations

import asyncio
import contextlib

from clarity.biometrics.partitions import MaintenanceReport, maintain
from clarity.database import Database
from clarity.logging import get_logger

log = get_logger(__name__)

DAY_SECONDS = 86_400.0
RETRY_SECONDS = 300.0  # after a failed run (the database was unreachable)


class PartitionKeeper:
    def __init__(self, db: Database, *, every_seconds: float = DAY_SECONDS) -> None:
        self.db = db
        self.every_seconds = every_seconds
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> MaintenanceReport:
        async with self.db.engine.begin() as conn:
            report = await maintain(conn)
        if report.created or report.moved_rows:
            log.info(
                "biometrics.partitions_maintained",
                created=len(report.created),
                moved_rows=report.moved_rows,
            )
        return report

    async def _forever(self) -> None:
        while True:
            delay = self.every_seconds
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("biometrics.partitions_failed", error=type(exc).__name__)
                delay = min(self.every_seconds, RETRY_SECONDS)
            await asyncio.sleep(delay)

    def start(self) -> None:
        if self._task is None and self.db.engine.dialect.name == "postgresql":
            self._task = asyncio.create_task(self._forever(), name="biometrics.partitions")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
