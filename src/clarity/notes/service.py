"""Clinical note logic: write, read and amend, every step audited in its own transaction.

A note is never overwritten: an amendment adds a version (with its reason and author) and
moves the note's ``current_version`` pointer; earlier versions stay readable. Audit details
carry ids, kinds and version numbers only, never the text or the amendment reason.
"""

from __future__ import annotations

import uuid

from sqlalchemy import Select, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from clarity.audit.service import record
from clarity.auth.models import Role
from clarity.database import utcnow
from clarity.errors import AppError, not_found
from clarity.notes.models import Note, NoteVersion
from clarity.notes.schemas import NoteAmend, NoteCreate, NoteKind, NoteOut, NoteVersionOut
from clarity.patients.access import PatientContext
from clarity.patients.service import audit_patient


async def refuse_patient_role(session: AsyncSession, ctx: PatientContext) -> None:
    """Patients do not read notes through this API (not until a release workflow exists):
    answer 404 like any other refusal, and audit it."""
    if ctx.principal.role != Role.patient:
        return
    record(
        session,
        "patient.access",
        outcome="denied",
        severity="warning",
        resource_type="patient",
        resource_id=ctx.patient.id,
        details={"reason": "notes_not_released"},
    )
    await session.commit()
    raise not_found("note")


def to_out(note: Note, version: NoteVersion) -> NoteOut:
    return NoteOut(
        id=note.id,
        patient_id=note.patient_id,
        kind=NoteKind(note.kind),
        author_id=note.author_id,
        created_at=note.created_at,
        version=version.version,
        text=version.text,
        version_author_id=version.author_id,
        version_created_at=version.created_at,
    )


def version_out(version: NoteVersion) -> NoteVersionOut:
    return NoteVersionOut.model_validate(version)


def _with_current(patient_id: uuid.UUID) -> Select[Note, NoteVersion]:
    return (
        select(Note, NoteVersion)
        .join(
            NoteVersion,
            and_(NoteVersion.note_id == Note.id, NoteVersion.version == Note.current_version),
        )
        .where(Note.patient_id == patient_id)
    )


async def create_note(
    session: AsyncSession, ctx: PatientContext, body: NoteCreate
) -> tuple[Note, NoteVersion]:
    now = utcnow()
    note = Note(
        patient_id=ctx.patient.id,
        kind=body.kind.value,
        author_id=ctx.principal.user_id,
        created_at=now,
        current_version=1,
    )
    session.add(note)
    await session.flush()
    version = NoteVersion(
        note_id=note.id,
        version=1,
        text=body.text,
        amendment_reason=None,
        author_id=ctx.principal.user_id,
        created_at=now,
    )
    session.add(version)
    audit_patient(
        session, ctx, "note.create", {"note_id": str(note.id), "kind": note.kind, "version": 1}
    )
    await session.commit()
    return note, version


async def list_notes(
    session: AsyncSession,
    ctx: PatientContext,
    *,
    kind: NoteKind | None,
    limit: int,
    offset: int,
) -> tuple[list[tuple[Note, NoteVersion]], int]:
    """The patient's notes, newest first, each with its current version."""
    count = select(func.count()).select_from(Note).where(Note.patient_id == ctx.patient.id)
    query = _with_current(ctx.patient.id)
    if kind is not None:
        count = count.where(Note.kind == kind.value)
        query = query.where(Note.kind == kind.value)
    total = await session.scalar(count) or 0
    rows = [
        (note, version)
        for note, version in (
            await session.execute(
                query.order_by(Note.created_at.desc(), Note.id.desc()).limit(limit).offset(offset)
            )
        ).all()
    ]
    audit_patient(
        session,
        ctx,
        "note.list",
        {"count": len(rows), "note_ids": [str(note.id) for note, _ in rows]},
    )
    await session.commit()
    return rows, total


async def get_note(
    session: AsyncSession, ctx: PatientContext, note_id: uuid.UUID
) -> tuple[Note, NoteVersion]:
    row = (await session.execute(_with_current(ctx.patient.id).where(Note.id == note_id))).first()
    if row is None:
        raise not_found("note")
    note, version = row
    audit_patient(session, ctx, "note.read", {"note_id": str(note.id), "version": version.version})
    await session.commit()
    return note, version


async def list_versions(
    session: AsyncSession, ctx: PatientContext, note_id: uuid.UUID
) -> list[NoteVersion]:
    """Every version of one note, oldest first."""
    note = await session.scalar(
        select(Note).where(Note.id == note_id, Note.patient_id == ctx.patient.id)
    )
    if note is None:
        raise not_found("note")
    versions = list(
        (
            await session.scalars(
                select(NoteVersion)
                .where(NoteVersion.note_id == note.id)
                .order_by(NoteVersion.version)
            )
        ).all()
    )
    audit_patient(
        session,
        ctx,
        "note.versions.read",
        {"note_id": str(note.id), "versions": [v.version for v in versions]},
    )
    await session.commit()
    return versions


async def amend_note(
    session: AsyncSession, ctx: PatientContext, note_id: uuid.UUID, body: NoteAmend
) -> tuple[Note, NoteVersion]:
    """Add a version; the row lock serializes concurrent amendments of one note."""
    note = await session.scalar(
        select(Note)
        .where(Note.id == note_id, Note.patient_id == ctx.patient.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if note is None:
        raise not_found("note")
    current = await session.get(NoteVersion, (note.id, note.current_version))
    if current is not None and current.text == body.text:
        raise AppError(
            422, "amendment_unchanged", "The amended text is the same as the current version."
        )
    version = NoteVersion(
        note_id=note.id,
        version=note.current_version + 1,
        text=body.text,
        amendment_reason=body.reason,
        author_id=ctx.principal.user_id,
        created_at=utcnow(),
    )
    session.add(version)
    note.current_version = version.version
    audit_patient(
        session,
        ctx,
        "note.amend",
        {"note_id": str(note.id), "kind": note.kind, "version": version.version},
    )
    await session.commit()
    return note, version
