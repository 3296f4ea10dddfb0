"""Admins query and export their organization's audit log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import orjson
from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from sqlalchemy import Select, select

from clarity.audit.models import AuditEvent
from clarity.audit.schemas import AuditEventOut, AuditFilter, AuditPage
from clarity.audit.service import record
from clarity.auth.dependencies import Principal, RuntimeDep, SessionDep, require
from clarity.auth.permissions import Permission

router = APIRouter(prefix="/audit", tags=["audit"])
Auditor = Annotated[Principal, require(Permission.audit_read)]
Filter = Annotated[AuditFilter, Query()]
EXPORT_BATCH = 1000


def _query(principal: Principal, f: AuditFilter) -> Select[AuditEvent]:
    # Audit records are not TenantScoped (failed logins of unknown accounts have no
    # organization), so the organization filter is stated here, explicitly.
    query = select(AuditEvent).where(AuditEvent.organization_id == principal.organization_id)
    conditions = {
        AuditEvent.actor_id: f.actor_id,
        AuditEvent.resource_type: f.resource_type,
        AuditEvent.resource_id: f.resource_id,
        AuditEvent.action: f.action,
    }
    for column, value in conditions.items():
        if value is not None:
            query = query.where(column == value)
    if f.since is not None:
        query = query.where(AuditEvent.occurred_at >= f.since)
    if f.until is not None:
        query = query.where(AuditEvent.occurred_at < f.until)
    if f.after_id is not None:
        query = query.where(AuditEvent.id > f.after_id)
    return query.order_by(AuditEvent.id)


@router.get("", response_model=AuditPage)
async def search_audit(principal: Auditor, session: SessionDep, f: Filter) -> AuditPage:
    """Oldest first; pass ``next_after_id`` back as ``after_id`` for the next page."""
    rows = (await session.scalars(_query(principal, f).limit(f.limit))).all()
    record(session, "audit.query", resource_type="audit_log", details={"count": len(rows)})
    await session.commit()
    items = [AuditEventOut.model_validate(r) for r in rows]
    return AuditPage(items=items, next_after_id=items[-1].id if len(items) == f.limit else None)


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}}},
)
async def export_audit(
    principal: Auditor, runtime: RuntimeDep, session: SessionDep, f: Filter
) -> StreamingResponse:
    """Every matching record as NDJSON, streamed in batches (``limit`` is the batch size)."""
    record(session, "audit.export", resource_type="audit_log")
    await session.commit()
    query = _query(principal, f.model_copy(update={"after_id": None}))

    async def lines() -> AsyncIterator[bytes]:
        after = f.after_id or 0
        async with runtime.db.session(principal.organization_id) as export_session:
            while True:
                rows = (
                    await export_session.scalars(
                        query.where(AuditEvent.id > after).limit(EXPORT_BATCH)
                    )
                ).all()
                if not rows:
                    return
                yield b"".join(
                    orjson.dumps(AuditEventOut.model_validate(r).model_dump(mode="json")) + b"\n"
                    for r in rows
                )
                after = rows[-1].id
                export_session.expunge_all()

    return StreamingResponse(lines(), media_type="application/x-ndjson")
