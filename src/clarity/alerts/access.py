"""Which patients' alerts a caller reaches: the patient access rules, applied to alerts.

Alert routes are not under ``/patients/{patient_id}``, so they cannot declare
:func:`clarity.patients.access.patient_scope`; these helpers apply the same policy
(:func:`clarity.auth.dependencies.ensure_patient_access`): admins reach every patient of
their organization, clinicians those whose care team they are on or for whom they hold an
active break-the-glass grant. A refusal is a 404, audited, exactly like patient_scope's.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from clarity.audit.service import record
from clarity.auth.dependencies import Principal, ensure_patient_access
from clarity.auth.models import Role
from clarity.database import utcnow
from clarity.errors import AppError, not_found
from clarity.patients.access import PatientContext, active_grant, care_team_ids
from clarity.patients.models import BreakGlassGrant, CareTeamMember, Patient


async def refuse(session: AsyncSession, patient_id: uuid.UUID | None, reason: str) -> None:
    """Audit a refused access and commit it (the caller then raises its 404)."""
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


async def patient_context(
    session: AsyncSession, principal: Principal, patient_id: uuid.UUID, resource: str = "patient"
) -> PatientContext:
    """The caller's access to one patient, or an audited 404 naming ``resource``."""
    patient = await session.get(Patient, patient_id)
    if patient is None:
        await refuse(session, patient_id, "not_found")
        raise not_found(resource)
    team = await care_team_ids(session, patient_id)
    grant = None
    if principal.role == Role.clinician and principal.user_id not in team:
        grant = await active_grant(session, patient_id, principal.user_id)
        if grant is not None:
            team.add(principal.user_id)
    try:
        ensure_patient_access(principal, patient_id, care_team=team)
    except AppError:
        await refuse(session, patient_id, "not_on_care_team")
        raise not_found(resource) from None
    return PatientContext(principal, patient, via_break_glass=grant is not None)


@dataclass(frozen=True)
class Reach:
    """The patients a caller reaches: all of the organization's (admins), or a filter."""

    everyone: bool
    grants: frozenset[uuid.UUID] = frozenset()

    def clause(
        self, column: InstrumentedAttribute[uuid.UUID], principal: Principal
    ) -> ColumnElement[bool]:
        """A WHERE clause limiting ``column`` (a patient id) to what the caller reaches."""
        if self.everyone:
            return column.is_not(None)
        team = select(CareTeamMember.patient_id).where(CareTeamMember.user_id == principal.user_id)
        return or_(column.in_(team), column.in_(sorted(self.grants)))


async def reach(session: AsyncSession, principal: Principal) -> Reach:
    if principal.role == Role.admin:
        return Reach(everyone=True)
    if principal.role != Role.clinician:
        return Reach(everyone=False)
    grants = await session.scalars(
        select(BreakGlassGrant.patient_id).where(
            BreakGlassGrant.user_id == principal.user_id, BreakGlassGrant.expires_at > utcnow()
        )
    )
    return Reach(everyone=False, grants=frozenset(grants.all()))
