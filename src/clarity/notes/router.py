"""Clinical notes of one patient (thin): write, list, read, amend, and read the history.

Who: admins and clinicians on the care team (or under break-the-glass, audited high) read
and write. Researchers never reach identified notes. **Patients get 404 on every note
route, their own record included**: a clinic releases notes to a patient deliberately, and
this API has no release workflow yet, so it releases none.

Notes are never overwritten or deleted here: there is no PUT, PATCH or DELETE. A correction
is an amendment (``POST .../amendments`` with a reason), which adds a version and keeps the
earlier ones readable at ``.../versions``. Text is encrypted at rest and kept out of audit
records, logs and error messages.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, status

from clarity.auth.dependencies import SessionDep
from clarity.auth.permissions import Permission
from clarity.notes import service
from clarity.notes.schemas import NoteAmend, NoteCreate, NoteKind, NoteOut, NotePage, NoteVersionOut
from clarity.patients.access import PatientContext, patient_scope

router = APIRouter(prefix="/patients/{patient_id}/notes", tags=["notes"])


def notes_scope(permission: Permission) -> Any:
    """``patient_scope`` plus the notes rule: a patient is refused (404), even on their own
    record. Declares ``permission`` as the route's one access rule."""
    patient_dependency = patient_scope(permission)

    # A default, not ``Annotated``: a local name cannot be resolved from a string annotation.
    async def resolve_notes_scope(
        session: SessionDep, ctx: PatientContext = patient_dependency
    ) -> PatientContext:
        await service.refuse_patient_role(session, ctx)
        return ctx

    resolve_notes_scope.required_permission = permission  # type: ignore[attr-defined]
    return Depends(resolve_notes_scope)


Reader = Annotated[PatientContext, notes_scope(Permission.patients_read)]
Writer = Annotated[PatientContext, notes_scope(Permission.patients_write)]


@router.post("", response_model=NoteOut, status_code=status.HTTP_201_CREATED)
async def create_note(body: NoteCreate, ctx: Writer, session: SessionDep) -> NoteOut:
    """Write a note (version 1); the caller is its author."""
    return service.to_out(*await service.create_note(session, ctx, body))


@router.get("", response_model=NotePage)
async def list_notes(
    ctx: Reader,
    session: SessionDep,
    kind: NoteKind | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> NotePage:
    """The patient's notes, newest first, each as its current version."""
    rows, total = await service.list_notes(session, ctx, kind=kind, limit=limit, offset=offset)
    return NotePage(
        items=[service.to_out(note, version) for note, version in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get("/{note_id}", response_model=NoteOut)
async def read_note(note_id: uuid.UUID, ctx: Reader, session: SessionDep) -> NoteOut:
    """One note as it stands (its current version)."""
    return service.to_out(*await service.get_note(session, ctx, note_id))


@router.get("/{note_id}/versions", response_model=list[NoteVersionOut])
async def note_versions(
    note_id: uuid.UUID, ctx: Reader, session: SessionDep
) -> list[NoteVersionOut]:
    """Every version of the note, oldest first, with each amendment's reason and author."""
    return [service.version_out(v) for v in await service.list_versions(session, ctx, note_id)]


@router.post("/{note_id}/amendments", response_model=NoteOut, status_code=status.HTTP_201_CREATED)
async def amend_note(
    note_id: uuid.UUID, body: NoteAmend, ctx: Writer, session: SessionDep
) -> NoteOut:
    """Amend a note: the new text becomes the current version; earlier ones are kept."""
    return service.to_out(*await service.amend_note(session, ctx, note_id, body))
