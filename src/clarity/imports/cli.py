"""``clarity import FILE --patient ID --format F``: import a file in this process, with a
progress bar.

The file is read where it is (not copied, never deleted). The import is a job like an
upload's, so it shows in the API and is audited (actor: the CLI). Interrupted (Ctrl-C, a
kill), it can be resumed: running the same command again for the same patient, format,
options and file (same SHA-256) continues the unfinished job after its last stored chunk.

Exit status: 0 imported; 1 the import failed, was cancelled or was refused (consent, no
such patient); 2 bad usage; 130 interrupted (resumable).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated
from zoneinfo import available_timezones

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from clarity.audit.service import AuditActor, bind_actor, record
from clarity.config import Settings, UnsafeConfiguration, get_settings
from clarity.consent.service import has_consent
from clarity.errors import AppError
from clarity.imports import service
from clarity.imports.models import ImportJob, JobStatus
from clarity.imports.schemas import MappingIn
from clarity.imports.service import CHUNK, CheckedOptions
from clarity.imports.work import Outcome, WorkEnv, execute
from clarity.organizations.models import Organization
from clarity.patients.models import Patient
from clarity.patients.service import find_by_mrn
from clarity.runtime import Runtime, open_runtime

console = Console()
err = Console(stderr=True, soft_wrap=True)
LISTED_REJECTIONS = 10
CLI_ACTOR = "cli"


class CliFailure(Exception):
    """A refusal to report in one line, with an exit status."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class Request:
    path: Path
    sha256: str
    size: int
    patient: str
    organization: str | None
    checked: CheckedOptions


def _fail(message: str, code: int) -> typer.Exit:
    err.print(f"[red]{message}[/red]", highlight=False)
    return typer.Exit(code)


def _settings() -> Settings:
    try:
        settings = get_settings()
        settings.check_production()
    except UnsafeConfiguration as exc:
        raise _fail(str(exc), 2) from None
    return settings


def _mapping(path: Path | None) -> MappingIn | None:
    if path is None:
        return None
    try:
        return MappingIn.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise _fail(f"Cannot read the mapping file ({type(exc).__name__}).", 2) from None
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'mapping'}: {e['msg']}" for e in exc.errors()
        )
        raise _fail(f"The mapping is invalid: {problems}", 2) from None


def _hash(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with (
        path.open("rb") as handle,
        Progress(
            SpinnerColumn(), TextColumn("Checking the file"), console=err, transient=True
        ) as progress,
    ):
        progress.add_task("hash", total=None)
        while block := handle.read(1 << 20):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


async def _patient(runtime: Runtime, session: AsyncSession, request: Request) -> Patient:
    """The patient by id or MRN (MRNs are per organization: --organization, else the
    default one); no such patient, or one of another organization than named: refused."""
    org: Organization | None = None
    if request.organization is not None:
        org = await session.scalar(
            select(Organization).where(Organization.name == request.organization)
        )
        if org is None:
            raise CliFailure("No organization of that name.")
    try:
        patient_id: uuid.UUID | None = uuid.UUID(request.patient)
    except ValueError:
        patient_id = None
    patient: Patient | None
    if patient_id is not None:
        patient = await session.get(Patient, patient_id)
        if patient is not None and org is not None and patient.organization_id != org.id:
            patient = None
    else:
        if org is None:
            name = runtime.settings.default_organization
            org = await session.scalar(select(Organization).where(Organization.name == name))
        patient = (
            None if org is None else await find_by_mrn(runtime, session, org.id, request.patient)
        )
    if patient is None:
        raise CliFailure("No such patient (give the patient's id, or an MRN and --organization).")
    return patient


async def _job(runtime: Runtime, request: Request) -> tuple[ImportJob, AuditActor, bool]:
    """The job to run (an unfinished one of the same file, else a new one), claimed; and
    whether it resumes."""
    async with runtime.db.session(system=True) as session:
        patient = await _patient(runtime, session, request)
    org_id = patient.organization_id
    actor = AuditActor(organization_id=org_id, request_id=CLI_ACTOR)
    stale_copies: list[Path] = []
    async with runtime.db.session(org_id) as session:
        bind_actor(session, actor)
        if not await has_consent(session, patient.id, "wearable_data"):
            record(
                session,
                "biometrics.ingest",
                outcome="denied",
                severity="warning",
                resource_type="patient",
                resource_id=patient.id,
                details={"reason": "no_wearable_consent", "via": "import"},
            )
            await session.commit()
            raise CliFailure(
                "The patient has not consented to wearable data collection; nothing was imported."
            )
        job = await service.unfinished_job(session, patient.id, request.checked, request.sha256)
        resumed = job is not None
        if job is None:
            job = service.new_job(
                patient_id=patient.id,
                organization_id=org_id,
                checked=request.checked,
                file_path=request.path,
                sha256=request.sha256,
                size=request.size,
                created_by=None,
            )
            session.add(job)
            action = "import.create"
        else:
            if service.owns_file(job, runtime.settings.import_path):
                stale_copies.append(Path(job.file_path))  # an upload this run replaces
            job.file_path = str(request.path)  # the same content, perhaps moved
            if service.resumable(job):
                await service.reopen(session, job)
            action = "import.resume"
        record(
            session,
            action,
            resource_type="patient",
            resource_id=patient.id,
            details={
                "import_job_id": str(job.id),
                "format": job.format,
                "bytes": request.size,
                "via": "cli",
            },
        )
        await session.commit()
        await _claim(runtime, session, job)
    for copy in stale_copies:
        copy.unlink(missing_ok=True)
    return job, actor, resumed


async def _claim(runtime: Runtime, session: AsyncSession, job: ImportJob) -> None:
    """Claim the job; one whose last worker was killed is taken over once its heartbeat is
    older than the stale limit (waiting for that); one still reporting is refused."""
    stale = runtime.settings.import_stale_seconds
    first_beat = job.heartbeat_at
    told = False
    deadline = time.monotonic() + stale + 5
    while True:
        claimed = await service.claim(session, job.id, stale)
        await session.commit()
        if claimed:
            return
        current = await session.get(ImportJob, job.id, populate_existing=True)
        if current is None or current.status not in (JobStatus.queued, JobStatus.running):
            raise CliFailure("The import job ended while starting; run the command again.")
        moving = current.heartbeat_at != first_beat and first_beat is not None
        if moving or time.monotonic() > deadline:
            raise CliFailure(
                f"Import job {job.id} is being run by another process right now; wait for it "
                "to end (or cancel it through the API)."
            )
        first_beat = first_beat or current.heartbeat_at
        if not told:
            err.print(
                f"Import job {job.id} was left running by a process that stopped; taking it "
                f"over once it has been silent for {stale:g} s..."
            )
            told = True
        await asyncio.sleep(min(1.0, stale / 4))


async def _import(runtime: Runtime, request: Request, started: list[uuid.UUID]) -> Outcome:
    job, actor, resumed = await _job(runtime, request)
    started.append(job.id)
    if resumed and job.chunks_done:
        console.print(
            f"Resuming import job {job.id}: {job.rows_read:,} records already done; "
            f"going on from record {job.chunks_done * CHUNK + 1:,}.",
            highlight=False,
        )
    else:
        console.print(f"Import job {job.id} started.", highlight=False)
    env = WorkEnv(runtime.db, runtime.outbox.notify, None, runtime.settings.import_stale_seconds)
    with Progress(
        TextColumn("Importing"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rows]:>12,} records  {task.fields[rate]:>9,.0f}/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task(
            "import",
            total=request.size,
            completed=job.bytes_read,
            rows=job.rows_read,
            rate=0.0,
        )

        def on_progress(current: ImportJob) -> None:
            progress.update(
                task,
                completed=current.bytes_read,
                rows=current.rows_read,
                rate=service.rows_per_second(current),
            )

        return await execute(
            env,
            job.id,
            job.organization_id,
            actor,
            on_progress=on_progress,
            on_stop="interrupt",
        )


def _summary(outcome: Outcome) -> int:
    job = outcome.job
    if job is None:
        err.print("[red]The import job was deleted while it ran.[/red]")
        return 1
    counts = (
        f"{job.rows_read:,} records read, {job.rows_accepted:,} stored, "
        f"{job.rows_duplicate:,} duplicate, {job.rows_rejected:,} rejected"
    )
    if job.status == JobStatus.succeeded:
        console.print(
            f"[green]Import job {job.id} succeeded:[/green] {counts} in "
            f"{job.seconds_running:,.1f} s ({service.rows_per_second(job):,.0f} records/s).",
            highlight=False,
        )
    elif job.status == JobStatus.cancelled:
        err.print(f"[yellow]Import job {job.id} was cancelled:[/yellow] {counts}.")
    else:
        code, message = service.split_failure(job.failure)
        err.print(
            f"[red]Import job {job.id} failed ({code}): {message}[/red] So far: {counts}.",
            highlight=False,
        )
    if outcome.skipped:
        kinds = ", ".join(f"{kind} {n:,}" for kind, n in sorted(outcome.skipped.items()))
        console.print(f"Not imported (no matching stream): {kinds}.", highlight=False)
    if job.errors:
        console.print("First rejected records:")
        for error in job.errors[:LISTED_REJECTIONS]:
            field = f" ({error['field']})" if error.get("field") else ""
            console.print(f"  record {error['record']:,}: {error['reason']}{field}")
    return 0 if job.status == JobStatus.succeeded else 1


def import_command(
    file: Annotated[Path, typer.Argument(help="The file to import (read in place).")],
    patient: Annotated[str, typer.Option("--patient", help="Patient id, or MRN.")],
    format: Annotated[
        str,
        typer.Option(
            "--format",
            help="depresjon, actigraph_csv, apple_health, fitbit_json, fhir_observations, "
            "open_mhealth or generic_csv.",
        ),
    ],
    timezone: Annotated[
        str | None, typer.Option(help="IANA zone of times written without one.")
    ] = None,
    source: Annotated[
        str | None, typer.Option(help="Device or app label stored with every sample.")
    ] = None,
    kind: Annotated[
        str | None, typer.Option(help="Which of a format's files this is (Fitbit: steps, ...).")
    ] = None,
    mapping: Annotated[
        Path | None, typer.Option(help="generic_csv: a JSON file with the column mapping.")
    ] = None,
    organization: Annotated[
        str | None, typer.Option("--organization", help="Organization name (MRN look-up).")
    ] = None,
) -> None:
    """Import a file of wearable data for one patient, with a progress bar. Run the same
    command again after an interruption to resume."""
    settings = _settings()
    if timezone is not None and timezone not in available_timezones():
        raise _fail("--timezone must be an IANA time zone such as Europe/Oslo.", 2)
    if source is not None and not 1 <= len(source) <= 128:
        raise _fail("--source must be 1 to 128 characters.", 2)
    try:
        checked = service.check_options(
            format, timezone=timezone, source=source, mapping=_mapping(mapping), kind=kind
        )
    except AppError as exc:
        raise _fail(exc.detail, 2) from None
    path = file.resolve()
    if not path.is_file():
        raise _fail("The file does not exist or is not a regular file.", 2)
    try:
        sha256, size = _hash(path)
    except OSError as exc:
        raise _fail(f"Cannot read the file ({type(exc).__name__}).", 2) from None
    except KeyboardInterrupt:
        raise _fail("Interrupted before anything was imported.", 130) from None
    request = Request(path, sha256, size, patient, organization, checked)
    started: list[uuid.UUID] = []

    async def main() -> Outcome:
        async with open_runtime(settings) as runtime:
            return await _import(runtime, request, started)

    try:
        outcome = asyncio.run(main())
    except KeyboardInterrupt:
        where = f"Import job {started[0]}" if started else "The import"
        raise _fail(
            f"Interrupted. {where} keeps what was stored; run the same command again to resume.",
            130,
        ) from None
    except CliFailure as exc:
        raise _fail(exc.message, exc.code) from None
    raise typer.Exit(_summary(outcome))
