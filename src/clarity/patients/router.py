"""Patient record endpoints (thin). Patient-scoped routes declare ``patient_scope``."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from clarity.auth.dependencies import Principal, RuntimeDep, SessionDep, require
from clarity.auth.permissions import Permission
from clarity.patients import service
from clarity.patients.access import PatientContext, patient_scope
from clarity.patients.schemas import (
    BreakGlassOut,
    BreakGlassRequest,
    CareTeamAdd,
    CareTeamMemberOut,
    LinkAccount,
    PatientCreate,
    PatientOut,
    PatientPage,
    PatientStatus,
    PatientUpdate,
)

router = APIRouter(prefix="/patients", tags=["patients"])
break_glass_router = APIRouter(prefix="/break-glass", tags=["patients"])

Reader = Annotated[PatientContext, patient_scope(Permission.patients_read)]
Writer = Annotated[PatientContext, patient_scope(Permission.patients_write)]
TeamManager = Annotated[PatientContext, patient_scope(Permission.care_team_manage)]
AccountLinker = Annotated[PatientContext, patient_scope(Permission.users_manage)]


@router.post("", response_model=PatientOut, status_code=status.HTTP_201_CREATED)
async def create_patient(
    body: PatientCreate,
    principal: Annotated[Principal, require(Permission.patients_write)],
    runtime: RuntimeDep,
    session: SessionDep,
) -> PatientOut:
    """Register a patient; a clinician who does so joins the care team as primary."""
    return service.to_out(await service.create_patient(runtime, session, principal, body))


@router.get("", response_model=PatientPage)
async def list_patients(
    principal: Annotated[Principal, require(Permission.patients_read)],
    runtime: RuntimeDep,
    session: SessionDep,
    status: PatientStatus | None = None,
    care_team_member: uuid.UUID | None = None,
    mrn: Annotated[str | None, Query(max_length=64, description="Exact MRN lookup.")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> PatientPage:
    """The patients the caller may see, filtered by status, care-team member or MRN."""
    rows, total = await service.list_patients(
        session,
        principal,
        status=status,
        care_team_member=care_team_member,
        mrn=mrn,
        runtime=runtime,
        limit=limit,
        offset=offset,
    )
    return PatientPage(
        items=[service.to_out(p) for p in rows], total=total, limit=limit, offset=offset
    )


@router.get("/{patient_id}", response_model=PatientOut)
async def read_patient(ctx: Reader, session: SessionDep) -> PatientOut:
    service.audit_patient(session, ctx, "patient.read")
    await session.commit()
    return service.to_out(ctx.patient)


@router.patch("/{patient_id}", response_model=PatientOut)
async def update_patient(body: PatientUpdate, ctx: Writer, session: SessionDep) -> PatientOut:
    return service.to_out(await service.update_patient(session, ctx, body))


@router.post("/{patient_id}/discharge", response_model=PatientOut)
async def discharge_patient(ctx: Writer, session: SessionDep) -> PatientOut:
    return service.to_out(await service.discharge(session, ctx))


@router.get("/{patient_id}/care-team", response_model=list[CareTeamMemberOut])
async def care_team(ctx: Reader, session: SessionDep) -> list[CareTeamMemberOut]:
    members = await service.list_care_team(session, ctx)
    return [CareTeamMemberOut.model_validate(m) for m in members]


@router.post(
    "/{patient_id}/care-team", response_model=CareTeamMemberOut, status_code=status.HTTP_201_CREATED
)
async def add_to_care_team(
    body: CareTeamAdd, ctx: TeamManager, session: SessionDep
) -> CareTeamMemberOut:
    return CareTeamMemberOut.model_validate(await service.add_care_team_member(session, ctx, body))


@router.delete("/{patient_id}/care-team/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_from_care_team(user_id: uuid.UUID, ctx: TeamManager, session: SessionDep) -> None:
    await service.remove_care_team_member(session, ctx, user_id)


@router.post("/{patient_id}/account", status_code=status.HTTP_204_NO_CONTENT)
async def link_account(
    body: LinkAccount, ctx: AccountLinker, runtime: RuntimeDep, session: SessionDep
) -> None:
    """Link a patient user account to this record."""
    await service.link_account(runtime, session, ctx, body.user_id)


@router.post(
    "/{patient_id}/break-glass", response_model=BreakGlassOut, status_code=status.HTTP_201_CREATED
)
async def break_glass(
    patient_id: uuid.UUID,
    body: BreakGlassRequest,
    principal: Annotated[Principal, require(Permission.break_glass_use)],
    runtime: RuntimeDep,
    session: SessionDep,
) -> BreakGlassOut:
    """Emergency access for a clinician off the care team: state why; it expires after
    ``CLARITY_BREAK_GLASS_MINUTES`` and every use is audited with high severity."""
    grant = await service.break_glass(runtime, session, principal, patient_id, body.reason)
    return BreakGlassOut.model_validate(grant)


@break_glass_router.get("", response_model=list[BreakGlassOut])
async def list_break_glass(
    _: Annotated[Principal, require(Permission.break_glass_review)],
    session: SessionDep,
    active: bool = False,
) -> list[BreakGlassOut]:
    """Break-the-glass grants of the organization, newest first (admins review them)."""
    rows = await service.list_break_glass(session, active_only=active)
    return [BreakGlassOut.model_validate(g) for g in rows]
