"""Research export for researchers: de-identified, consenting patients only, streamed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import orjson
from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from sqlalchemy import func, select

from clarity.audit.service import record
from clarity.auth.dependencies import Principal, RuntimeDep, SessionDep, require
from clarity.auth.permissions import Permission
from clarity.consent.schemas import ConsentCategory
from clarity.consent.service import consenting_patients
from clarity.research.service import export_records

router = APIRouter(prefix="/research", tags=["research"])


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}}},
)
async def research_export(
    principal: Annotated[Principal, require(Permission.deidentified_read)],
    runtime: RuntimeDep,
    session: SessionDep,
) -> StreamingResponse:
    """One JSON line per patient who consented to research use: a stable pseudonym, age
    (over 89 as "90+"), sex at birth, coded diagnoses, medications and assessment scores,
    every date shifted by a per-patient offset (intervals kept). Nothing else."""
    key = runtime.settings.research_key.get_secret_value().encode()
    patients = await session.scalar(
        select(func.count()).select_from(
            consenting_patients(ConsentCategory.research_use).subquery()
        )
    )
    record(
        session,
        "research.export",
        resource_type="research_export",
        details={"patients": patients or 0},
    )
    await session.commit()  # releases the connection before the stream opens its own

    async def lines() -> AsyncIterator[bytes]:
        async with runtime.db.session(principal.organization_id) as stream_session:
            async for item in export_records(stream_session, key):
                yield orjson.dumps(item) + b"\n"

    return StreamingResponse(lines(), media_type="application/x-ndjson")
