"""File imports of one patient's wearable data (thin): upload a file, follow, cancel, resume.

Who uploads, cancels and resumes: whoever may upload wearable data for the patient
(``biometrics:write``); who reads the jobs: whoever may read the record (``patients:read``).
Everyone else gets 404. The import itself runs in the background
(:mod:`clarity.imports.runner`).
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from clarity.auth.dependencies import RuntimeDep, SessionDep
from clarity.auth.permissions import Permission
from clarity.biometrics.service import check_consent
from clarity.errors import AppError
from clarity.imports import service
from clarity.imports.runner import ImportRunner
from clarity.imports.schemas import ImportJobOut, ImportJobSummary, MappingIn
from clarity.imports.uploads import save_upload
from clarity.patients.access import PatientContext, patient_scope
from clarity.patients.schemas import Timezone
from clarity.patients.service import audit_patient

router = APIRouter(prefix="/patients/{patient_id}/imports", tags=["imports"])

Uploader = Annotated[PatientContext, patient_scope(Permission.biometrics_write)]
Reader = Annotated[PatientContext, patient_scope(Permission.patients_read)]

_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The file itself, as the whole body (not a multipart form).",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


def _mapping(raw: str | None) -> MappingIn | None:
    """The ``mapping`` query parameter, checked field by field (422 naming the field)."""
    if raw is None:
        return None
    try:
        return MappingIn.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("query", "mapping", *e["loc"])} for e in exc.errors()]
        ) from None


def _runner(request: Request) -> ImportRunner:
    runner: ImportRunner = request.app.state.import_runner
    return runner


@router.post(
    "",
    response_model=ImportJobOut,
    status_code=status.HTTP_202_ACCEPTED,
    openapi_extra=_BODY_DOC,
)
async def upload_import(
    request: Request,
    response: Response,
    ctx: Uploader,
    runtime: RuntimeDep,
    session: SessionDep,
    format: Annotated[
        str, Query(min_length=1, max_length=32, description="e.g. depresjon, apple_health.")
    ],
    timezone: Annotated[
        Timezone | None, Query(description="IANA zone of times written without one.")
    ] = None,
    source: Annotated[
        str | None, Query(min_length=1, max_length=128, description="Device or app label.")
    ] = None,
    kind: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=32,
            description="Which of a format's files this is "
            "where its content cannot tell (fitbit_json: steps, ...).",
        ),
    ] = None,
    mapping: Annotated[
        str | None,
        Query(max_length=8192, description="generic_csv only: the column mapping, as JSON."),
    ] = None,
) -> ImportJobOut:
    """Upload a file to import in the background; answers 202 with the job (follow it at
    the Location). The body is the file itself, up to ``CLARITY_MAX_IMPORT_BYTES``.
    Requires the patient's consent to wearable data, checked again while the job runs."""
    if request.headers.get("content-type", "").lower().startswith("multipart/"):
        raise AppError(
            415,
            "unsupported_media_type",
            "Send the file itself as the body (application/octet-stream), not a form.",
        )
    checked = service.check_options(
        format, timezone=timezone, source=source, mapping=_mapping(mapping), kind=kind
    )
    await check_consent(session, ctx)
    await session.commit()  # hand the connection back while the file streams in
    settings = runtime.settings
    job_id = uuid.uuid4()
    saved = await save_upload(
        request.stream(), settings.import_path, job_id, settings.max_import_bytes
    )
    try:
        job = service.new_job(
            job_id=job_id,
            patient_id=ctx.patient.id,
            organization_id=ctx.patient.organization_id,
            checked=checked,
            file_path=saved.path,
            sha256=saved.sha256,
            size=saved.size,
            created_by=ctx.principal.user_id,
        )
        session.add(job)
        audit_patient(
            session,
            ctx,
            "import.create",
            {"import_job_id": str(job_id), "format": checked.format.name, "bytes": saved.size},
        )
        await session.commit()
    except BaseException:
        saved.path.unlink(missing_ok=True)
        raise
    _runner(request).submit(job.id)
    response.headers["Location"] = f"{request.url.path.rstrip('/')}/{job.id}"
    return service.to_out(job)


@router.get("", response_model=list[ImportJobSummary])
async def list_imports(ctx: Reader, session: SessionDep) -> list[ImportJobSummary]:
    """The patient's import jobs, newest first (at most 100)."""
    jobs = await service.list_jobs(session, ctx.patient.id)
    audit_patient(session, ctx, "import.list", {"count": len(jobs)})
    await session.commit()
    return [service.to_summary(job) for job in jobs]


@router.get("/{job_id}", response_model=ImportJobOut)
async def read_import(job_id: uuid.UUID, ctx: Reader, session: SessionDep) -> ImportJobOut:
    """Status of one import: rows read, stored, duplicate and rejected, rows per second,
    progress through the file, the first rejected records (position and reason only)."""
    job = await service.get_job(session, ctx.patient.id, job_id)
    audit_patient(session, ctx, "import.read", {"import_job_id": str(job_id)})
    await session.commit()
    return service.to_out(job)


@router.post(
    "/{job_id}/cancel",
    response_model=ImportJobOut,
    responses={202: {"model": ImportJobOut, "description": "Cancel requested: it stops soon."}},
)
async def cancel_import(
    response: Response,
    job_id: uuid.UUID,
    ctx: Uploader,
    runtime: RuntimeDep,
    session: SessionDep,
) -> ImportJobOut:
    """Cancel an import. A queued job is cancelled at once (200); a running one stops after
    the chunk in hand (202; the samples stored so far stay)."""
    job = await service.get_job(session, ctx.patient.id, job_id)
    settings = runtime.settings
    now = await service.cancel(session, job, settings.import_stale_seconds)
    audit_patient(session, ctx, "import.cancel", {"import_job_id": str(job_id)})
    await session.commit()
    if now:
        service.remove_upload(job, settings.import_path)
    else:
        response.status_code = status.HTTP_202_ACCEPTED
    return service.to_out(await service.get_job(session, ctx.patient.id, job_id))


@router.post("/{job_id}/resume", response_model=ImportJobOut, status_code=202)
async def resume_import(
    request: Request,
    job_id: uuid.UUID,
    ctx: Uploader,
    runtime: RuntimeDep,
    session: SessionDep,
) -> ImportJobOut:
    """Resume a cancelled or interrupted upload whose file is still there: it goes on after
    the last stored chunk; nothing is stored twice. 409 says why it cannot (an import made
    with ``clarity import`` is resumed by running the command again)."""
    job = await service.get_job(session, ctx.patient.id, job_id)
    file_exists = await asyncio.to_thread(Path(job.file_path).is_file)
    refusal = service.resume_refusal(job, runtime.settings.import_path, file_exists)
    if refusal is not None:
        raise refusal
    await check_consent(session, ctx)
    if not await service.reopen(session, job):
        raise AppError(409, "import_active", "The import job changed meanwhile; read it again.")
    audit_patient(session, ctx, "import.resume", {"import_job_id": str(job_id)})
    await session.commit()
    _runner(request).submit(job.id)
    return service.to_out(await service.get_job(session, ctx.patient.id, job_id))
