"""``clarity worker [--id NAME] [--concurrency N]``: consume events from the broker.

Runs until SIGTERM or Ctrl-C, then finishes the events in its handlers, hands its
partitions back and exits 0. It also relays the outbox (one relay publishes at a time).
Exit status 2: no broker configured, the schema is not at the migrations' head, a
``CLARITY_WORKER_HANDLERS`` entry cannot be loaded, or the partition count disagrees.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import uuid
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from clarity.config import Settings, UnsafeConfiguration, get_settings
from clarity.logging import configure_logging, get_logger
from clarity.migrate import SchemaOutOfDate, check_at_head
from clarity.runtime import Runtime
from clarity.worker.dead_letters import RetryReport, dead_events, retry
from clarity.worker.models import DeadEvent
from clarity.worker.registry import HookError, build_registry
from clarity.worker.service import Worker, WorkerError

log = get_logger(__name__)
err = Console(stderr=True, soft_wrap=True)


class _Refused(Exception):
    """A reason not to start, printed in one line."""


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


async def _serve(settings: Settings, worker_id: str, concurrency: int) -> None:
    runtime = Runtime.build(settings)
    try:
        try:
            await check_at_head(runtime.db.engine)
            registry = build_registry(runtime)
            worker = Worker(runtime, registry, worker_id=worker_id, concurrency=concurrency)
        except (SchemaOutOfDate, HookError, WorkerError) as exc:
            raise _Refused(str(exc)) from None
        await runtime.start(relay=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        log.info(
            "worker.started",
            worker=worker_id,
            partitions=worker.bus.partitions,
            handlers=sorted({route.name for route in registry.routes}),
            jobs=[job.name for job in registry.jobs],
            concurrency=concurrency,
        )
        try:
            await worker.run(stop)
        except WorkerError as exc:
            raise _Refused(str(exc)) from None
    finally:
        await runtime.stop()


def worker_command(
    worker_id: Annotated[
        str | None,
        typer.Option(
            "--id", help="This worker's name (default: host-pid); unique among live workers."
        ),
    ] = None,
    concurrency: Annotated[
        int,
        typer.Option(min=1, max=256, help="Events handled at once (each partition in order)."),
    ] = 8,
) -> None:
    """Consume events from the broker (CLARITY_BROKER_URL), sharing partitions with the
    other workers; stop with SIGTERM or Ctrl-C."""
    try:
        settings = get_settings()
        settings.check_production()
    except UnsafeConfiguration as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    if not settings.broker_url:
        err.print(
            "[red]clarity worker needs CLARITY_BROKER_URL (amqp://...); without a broker "
            "the server handles events in-process[/red]"
        )
        raise typer.Exit(2)
    name = worker_id or default_worker_id()
    if not 0 < len(name) <= 128:
        err.print("[red]--id must be 1 to 128 characters[/red]")
        raise typer.Exit(2)
    configure_logging(settings.log_level, settings.log_json)
    try:
        asyncio.run(_serve(settings, name, concurrency))
    except _Refused as exc:
        err.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(2) from None


def _open_runtime() -> Runtime:
    try:
        settings = get_settings()
    except UnsafeConfiguration as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    return Runtime.build(settings)


def dead_command() -> None:
    """List the events set aside after their handler failed CLARITY_WORKER_MAX_ATTEMPTS
    times in a row (ids, topics and errors only; event payloads carry no PHI)."""

    async def main() -> list[DeadEvent]:
        runtime = _open_runtime()
        try:
            return await dead_events(runtime.db)
        finally:
            await runtime.db.dispose()

    rows = asyncio.run(main())
    if not rows:
        Console().print("No dead letters.")
        return
    table = Table("id", "handler", "topic", "event id", "error", "attempts", "dead since")
    for row in rows:
        table.add_row(
            str(row.id),
            row.handler,
            row.topic,
            str(row.event_id),
            row.error,
            str(row.attempts),
            row.dead_at.isoformat(timespec="seconds"),
        )
    Console().print(table)


def retry_command(
    ids: Annotated[
        list[str] | None, typer.Argument(help="Dead letter ids (from `clarity events dead`).")
    ] = None,
    retry_all: Annotated[bool, typer.Option("--all", help="Retry every open dead letter.")] = False,
) -> None:
    """Hand dead letters to their handler again (after fixing what made it fail); each
    that succeeds is marked retried. Exit 1 if any still fails."""
    if bool(ids) == retry_all:
        err.print("[red]give dead letter ids, or --all[/red]")
        raise typer.Exit(2)
    wanted: list[uuid.UUID] | None = None
    if ids:
        try:
            wanted = [uuid.UUID(value) for value in ids]
        except ValueError:
            err.print("[red]ids are UUIDs, as `clarity events dead` lists them[/red]")
            raise typer.Exit(2) from None

    async def main() -> RetryReport:
        runtime = _open_runtime()
        try:
            await check_at_head(runtime.db.engine)
            return await retry(runtime.db, build_registry(runtime), wanted)
        except (SchemaOutOfDate, HookError) as exc:
            raise _Refused(str(exc)) from None
        finally:
            await runtime.db.dispose()

    try:
        report = asyncio.run(main())
    except _Refused as exc:
        err.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(2) from None
    Console().print(f"Retried {len(report.retried)}; still failing {len(report.failed)}.")
    for dead_id, why in report.failed.items():
        err.print(f"{dead_id}: {why}", highlight=False)
    if report.failed:
        raise typer.Exit(1)
