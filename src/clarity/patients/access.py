"""The dependency every patient-scoped route declares: who may reach this patient.

It resolves the patient inside the caller's organization, gathers the care team and any
active break-the-glass grant of the caller, and applies the pure policy
(:mod:`clarity.auth.patient_access`). Any refusal, a missing permission included, is a 404
so that a record's existence does not leak; refusals are audited.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from clarity.audit.service import record
from clarity.auth.dependencies import Principal, SessionDep, authenticate, ensure_patient_access
from clarity.auth.models import Role, User
from clarity.auth.permissions import Permission, role_has
from clarity.database import utcnow
from clarity.errors import AppError, not_found
from clarity.patients.models import BreakGlassGrant, CareTeamMember, Patient


@dataclass(frozen=True)
class PatientContext:
    principal: Principal
    patient: Patient
    via_break_glass: bool


async def care_team_ids(session: AsyncSession, patient_id: uuid.UUID) -> set[uuid.UUID]:
    rows = await session.scalars(
        select(CareTeamMember.user_id).where(CareTeamMember.patient_id == patient_id)
    )
    return set(rows.all())


async def active_grant(
    session: AsyncSession, patient_id: uuid.UUID, user_id: uuid.UUID
) -> BreakGlassGrant | None:
    grant: BreakGlassGrant | None = await session.scalar(
        select(BreakGlassGrant)
        .where(
            BreakGlassGrant.patient_id == patient_id,
            BreakGlassGrant.user_id == user_id,
            BreakGlassGrant.expires_at > utcnow(),
        )
        .order_by(BreakGlassGrant.expires_at.desc())
        .limit(1)
    )
    return grant


async def _own_patient_id(session: AsyncSession, principal: Principal) -> uuid.UUID | None:
    if principal.role != Role.patient:
        return None
    user = await session.get(User, principal.user_id)
    return None if user is None else user.patient_id


async def refuse(
    session: AsyncSession, patient_id: uuid.UUID | None, reason: str, resource: str = "patient"
) -> AppError:
    """Audit a refused access, commit it, and answer the 404 to raise (the same body as a
    record that does not exist)."""
    record(
        session,
        "patient.access",
        outcome="denied",
        severity="warning",
        resource_type="patient",
        resource_id=patient_id,
        details={"reason": reason},
    )
    await session.commit()
    return not_found(resource)


async def patient_context(
    session: AsyncSession, principal: Principal, patient_id: uuid.UUID, resource: str = "patient"
) -> PatientContext:
    """The caller's access to one patient (care team, a break-the-glass grant, a patient's
    own record), or an audited 404 naming ``resource``. The caller checks the permission."""
    patient = await session.get(Patient, patient_id)
    if patient is None:
        raise await refuse(session, patient_id, "not_found", resource)
    team = await care_team_ids(session, patient_id)
    grant = None
    if principal.role == Role.clinician and principal.user_id not in team:
        grant = await active_grant(session, patient_id, principal.user_id)
        if grant is not None:
            team.add(principal.user_id)
    try:
        ensure_patient_access(
            principal,
            patient_id,
            care_team=team,
            own_patient_id=await _own_patient_id(session, principal),
        )
    except AppError:
        raise await refuse(session, patient_id, "not_on_care_team", resource) from None
    return PatientContext(principal, patient, via_break_glass=grant is not None)


def patient_scope(permission: Permission) -> Any:
    """Declare a patient-scoped route: the permission it needs and the 404-on-refusal rule."""

    async def resolve_patient(
        patient_id: uuid.UUID,
        principal: Annotated[Principal, Depends(authenticate)],
        session: SessionDep,
    ) -> PatientContext:
        if principal.mfa_setup_only:
            raise AppError(403, "mfa_enrolment_required", "Enrol in multi-factor first.")
        if not role_has(principal.role, permission):
            raise await refuse(session, patient_id, "role")
        return await patient_context(session, principal, patient_id)

    resolve_patient.required_permission = permission  # type: ignore[attr-defined]
    return Depends(resolve_patient)
