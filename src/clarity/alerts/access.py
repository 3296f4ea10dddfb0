"""Which patients' alerts a caller reaches: the patient access rules, applied to alerts.

Alert routes are not under ``/patients/{patient_id}``, so they cannot declare
:func:`clarity.patients.access.patient_scope`; these helpers apply the same policy
(:func:`clarity.auth.dependencies.ensure_patient_access`): admins reach every patient of
their organization, clinicians those whose care team they are on or for whom they hold an
active break-the-glass grant. One alert's patient is checked with
:func:`clarity.patients.access.patient_context`, as patient-scoped routes are; this module
adds the filter for lists of alerts (:func:`reach`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from clarity.auth.dependencies import Principal
from clarity.auth.models import Role
from clarity.database import utcnow
from clarity.patients.models import BreakGlassGrant, CareTeamMember


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
