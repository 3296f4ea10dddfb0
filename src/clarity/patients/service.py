"""Patient record logic. Every read and write leaves an audit record in its transaction."""

from __future__ import annotations

import uuid
from datetime import timedelta

import orjson
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from clarity.audit.service import record
from clarity.auth import profiles
from clarity.auth.dependencies import Principal
from clarity.auth.models import Role, User
from clarity.database import utcnow
from clarity.errors import AppError, not_found
from clarity.patients.access import PatientContext, active_grant, care_team_ids
from clarity.patients.models import BreakGlassGrant, CareTeamMember, Patient
from clarity.patients.schemas import (
    CareTeamAdd,
    Contact,
    EmergencyContact,
    PatientCreate,
    PatientOut,
    PatientStatus,
    PatientUpdate,
    SexAtBirth,
)
from clarity.runtime import Runtime


def audit_patient(
    session: AsyncSession,
    ctx: PatientContext,
    action: str,
    details: dict[str, object] | None = None,
) -> None:
    """Audit an access to one patient; access through break-the-glass is high severity."""
    extra = dict(details or {})
    if ctx.via_break_glass:
        extra["break_glass"] = True
    record(
        session,
        action,
        resource_type="patient",
        resource_id=ctx.patient.id,
        severity="high" if ctx.via_break_glass else "info",
        details=extra,
    )


def to_out(patient: Patient) -> PatientOut:
    return PatientOut(
        id=patient.id,
        mrn=patient.mrn,
        given_name=patient.given_name,
        family_name=patient.family_name,
        birth_date=patient.birth_date,
        sex_at_birth=SexAtBirth(patient.sex_at_birth),
        gender_identity=patient.gender_identity,
        timezone=patient.timezone,
        contact=Contact.model_validate_json(patient.contact),
        emergency_contact=(
            None
            if patient.emergency_contact is None
            else EmergencyContact.model_validate_json(patient.emergency_contact)
        ),
        flags=orjson.loads(patient.flags),
        status=PatientStatus(patient.status),
        discharged_at=patient.discharged_at,
        created_at=patient.created_at,
        updated_at=patient.updated_at,
    )


def _mrn_context(organization_id: uuid.UUID) -> str:
    # The organization is part of the index context: one MRN, unrelated tokens per clinic.
    return f"patients.mrn:{organization_id}"


async def find_by_mrn(
    runtime: Runtime, session: AsyncSession, organization_id: uuid.UUID, mrn: str
) -> Patient | None:
    tokens = runtime.blind_index.candidates(mrn, _mrn_context(organization_id))
    found: Patient | None = await session.scalar(
        select(Patient).where(Patient.mrn_index.in_(tokens)).limit(1)
    )
    return found


async def create_patient(
    runtime: Runtime, session: AsyncSession, principal: Principal, body: PatientCreate
) -> Patient:
    patient = await add_patient(runtime, session, principal, body)
    await session.commit()
    return patient


async def add_patient(
    runtime: Runtime, session: AsyncSession, principal: Principal, body: PatientCreate
) -> Patient:
    """Register a patient in the session's transaction without committing it (a caller that
    writes more in the same unit of work, such as a FHIR import, commits once at the end)."""
    if await find_by_mrn(runtime, session, principal.organization_id, body.mrn) is not None:
        raise AppError(409, "mrn_taken", "A patient with this MRN already exists here.")
    patient = Patient(
        mrn=body.mrn.strip(),
        mrn_index=runtime.blind_index.compute(body.mrn, _mrn_context(principal.organization_id)),
        given_name=body.given_name,
        family_name=body.family_name,
        birth_date=body.birth_date,
        sex_at_birth=body.sex_at_birth.value,
        gender_identity=body.gender_identity,
        timezone=body.timezone,
        contact=body.contact.model_dump_json(),
        emergency_contact=(
            None if body.emergency_contact is None else body.emergency_contact.model_dump_json()
        ),
        flags=orjson.dumps(body.flags).decode(),
        status=PatientStatus.active.value,
    )
    session.add(patient)
    await session.flush()
    if principal.role == Role.clinician:
        # The clinician who registers a patient is on the care team from the start.
        session.add(
            CareTeamMember(
                patient_id=patient.id,
                user_id=principal.user_id,
                role="primary",
                added_by=principal.user_id,
            )
        )
    record(session, "patient.create", resource_type="patient", resource_id=patient.id)
    return patient


async def update_patient(
    session: AsyncSession, ctx: PatientContext, body: PatientUpdate
) -> Patient:
    patient = ctx.patient
    changes = body.model_dump(exclude_unset=True)
    for field in ("given_name", "family_name", "birth_date", "gender_identity", "timezone"):
        if field in changes and changes[field] is not None:
            setattr(patient, field, changes[field])
    if body.sex_at_birth is not None:
        patient.sex_at_birth = body.sex_at_birth.value
    if body.contact is not None:
        patient.contact = body.contact.model_dump_json()
    if "emergency_contact" in changes:
        patient.emergency_contact = (
            None if body.emergency_contact is None else body.emergency_contact.model_dump_json()
        )
    if body.flags is not None:
        patient.flags = orjson.dumps(body.flags).decode()
    # Field names only: the values are PHI.
    audit_patient(session, ctx, "patient.update", {"fields": sorted(changes)})
    await session.commit()
    return patient


async def discharge(session: AsyncSession, ctx: PatientContext) -> Patient:
    patient = ctx.patient
    if patient.status == PatientStatus.discharged:
        raise AppError(409, "already_discharged", "This patient is already discharged.")
    patient.status = PatientStatus.discharged.value
    patient.discharged_at = utcnow()
    audit_patient(session, ctx, "patient.discharge")
    await session.commit()
    return patient


async def list_patients(
    session: AsyncSession,
    principal: Principal,
    *,
    status: PatientStatus | None,
    care_team_member: uuid.UUID | None,
    mrn: str | None,
    runtime: Runtime,
    limit: int,
    offset: int,
) -> tuple[list[Patient], int]:
    """Admins see the organization's patients, clinicians those on their care teams (and
    any under an active break-the-glass grant), a patient only themself."""
    query = select(Patient)
    if principal.role == Role.clinician:
        team = select(CareTeamMember.patient_id).where(CareTeamMember.user_id == principal.user_id)
        grants = select(BreakGlassGrant.patient_id).where(
            BreakGlassGrant.user_id == principal.user_id, BreakGlassGrant.expires_at > utcnow()
        )
        query = query.where(Patient.id.in_(team) | Patient.id.in_(grants))
    elif principal.role == Role.patient:
        user = await session.get(User, principal.user_id)
        query = query.where(Patient.id == (user.patient_id if user else None))
    elif principal.role != Role.admin:
        return [], 0
    if status is not None:
        query = query.where(Patient.status == status.value)
    if mrn is not None:
        tokens = runtime.blind_index.candidates(mrn, _mrn_context(principal.organization_id))
        query = query.where(Patient.mrn_index.in_(tokens))
    if care_team_member is not None:
        query = query.where(
            Patient.id.in_(
                select(CareTeamMember.patient_id).where(CareTeamMember.user_id == care_team_member)
            )
        )
    total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = list(
        (
            await session.scalars(
                query.order_by(Patient.created_at, Patient.id).limit(limit).offset(offset)
            )
        ).all()
    )
    record(
        session,
        "patient.list",
        resource_type="patient",
        details={"count": len(rows), "ids": [str(p.id) for p in rows]},
    )
    await session.commit()
    return rows, total


async def list_care_team(session: AsyncSession, ctx: PatientContext) -> list[CareTeamMember]:
    rows = await session.scalars(
        select(CareTeamMember)
        .where(CareTeamMember.patient_id == ctx.patient.id)
        .order_by(CareTeamMember.added_at)
    )
    audit_patient(session, ctx, "patient.care_team.read")
    await session.commit()
    return list(rows.all())


async def add_care_team_member(
    session: AsyncSession, ctx: PatientContext, body: CareTeamAdd
) -> CareTeamMember:
    user = await session.get(User, body.user_id)
    if user is None or not user.is_active or user.role != Role.clinician:
        raise AppError(
            422, "not_a_clinician", "Only active clinicians of this organization can join."
        )
    if body.user_id in await care_team_ids(session, ctx.patient.id):
        raise AppError(409, "already_on_care_team", "This clinician is already on the team.")
    member = CareTeamMember(
        patient_id=ctx.patient.id,
        user_id=body.user_id,
        role=body.role.value,
        added_by=ctx.principal.user_id,
    )
    session.add(member)
    audit_patient(session, ctx, "patient.care_team.add", {"user_id": str(body.user_id)})
    await session.commit()
    return member


async def remove_care_team_member(
    session: AsyncSession, ctx: PatientContext, user_id: uuid.UUID
) -> None:
    member = await session.get(CareTeamMember, (ctx.patient.id, user_id))
    if member is None:
        raise AppError(404, "not_found", "This user is not on the care team.")
    await session.delete(member)
    audit_patient(session, ctx, "patient.care_team.remove", {"user_id": str(user_id)})
    await session.commit()


async def break_glass(
    runtime: Runtime,
    session: AsyncSession,
    principal: Principal,
    patient_id: uuid.UUID,
    reason: str,
) -> BreakGlassGrant:
    """A clinician off the team opens the record in an emergency: time-limited, audited high."""
    if principal.role != Role.clinician:
        raise not_found("patient")
    if await session.get(Patient, patient_id) is None:
        raise not_found("patient")
    existing = await active_grant(session, patient_id, principal.user_id)
    if existing is not None:
        return existing
    grant = BreakGlassGrant(
        patient_id=patient_id,
        user_id=principal.user_id,
        reason=reason,
        expires_at=utcnow() + timedelta(minutes=runtime.settings.break_glass_minutes),
    )
    session.add(grant)
    await session.flush()
    record(
        session,
        "patient.break_glass",
        resource_type="patient",
        resource_id=patient_id,
        severity="high",
        details={"grant_id": str(grant.id), "minutes": runtime.settings.break_glass_minutes},
    )
    await session.commit()
    return grant


async def list_break_glass(session: AsyncSession, *, active_only: bool) -> list[BreakGlassGrant]:
    query = select(BreakGlassGrant).order_by(BreakGlassGrant.granted_at.desc()).limit(500)
    if active_only:
        query = query.where(BreakGlassGrant.expires_at > utcnow())
    rows = list((await session.scalars(query)).all())
    record(
        session,
        "patient.break_glass.list",
        resource_type="break_glass",
        details={"count": len(rows)},
    )
    await session.commit()
    return rows


async def link_account(
    runtime: Runtime, session: AsyncSession, ctx: PatientContext, user_id: uuid.UUID
) -> None:
    """Link a patient user account to this record (the patient then sees only it)."""
    user = await session.get(User, user_id)
    if user is None or user.role != Role.patient:
        raise AppError(422, "not_a_patient_account", "Only a patient account can be linked.")
    taken = await session.scalar(
        select(func.count())
        .select_from(User)
        .where(User.patient_id == ctx.patient.id, User.id != user_id)
    )
    if taken:
        raise AppError(409, "record_already_linked", "Another account is linked to this record.")
    user.patient_id = ctx.patient.id
    audit_patient(session, ctx, "patient.link_account", {"user_id": str(user_id)})
    await session.commit()
    await profiles.touch(runtime.cache, user_id)
