"""Diagnoses and medication statements of a patient, and the catalogue search.

Every read and write of a patient's records leaves an audit record in its transaction
(:func:`clarity.patients.service.audit_patient`), with record ids and field names only,
never codes, drugs or doses. A record id that is not this patient's is a 404, audited as
a denied access. Functions that write commit.
"""

from __future__ import annotations

import difflib
import uuid
from collections.abc import Callable
from datetime import date, datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import and_, not_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from clarity.audit.service import record
from clarity.clinical import icd10, medications
from clarity.clinical.medications import Medication, UnknownTermError, normalize_term
from clarity.clinical.models import Diagnosis, MedicationStatement
from clarity.clinical.schemas import (
    CatalogueMedicationOut,
    CatalogueSearchOut,
    CatalogueTermOut,
    DiagnosisCreate,
    DiagnosisOut,
    DiagnosisStatus,
    DiagnosisUpdate,
    MedicationStatementCreate,
    MedicationStatementOut,
    MedicationStatementUpdate,
    diagnosis_dates_problem,
    medication_dates_problem,
)
from clarity.errors import AppError, not_found
from clarity.patients.access import PatientContext
from clarity.patients.models import Patient
from clarity.patients.service import audit_patient

_T = TypeVar("_T")


# --- errors ---------------------------------------------------------------------------


def invalid(errors: list[dict[str, Any]]) -> AppError:
    """A 422 shaped like the request-validation problem: ``errors`` name ``body.<field>``."""
    fields = ", ".join(str(e["field"]) for e in errors)
    return AppError(
        422,
        "validation_error",
        f"The request is invalid: check {fields}.",
        extra={"errors": errors},
    )


def _field_error(field: str, message: str) -> dict[str, Any]:
    return {"field": f"body.{field}", "message": message, "type": "value_error"}


async def _missing(
    session: AsyncSession,
    ctx: PatientContext,
    action: str,
    resource: str,
    id_key: str,
    record_id: uuid.UUID,
) -> AppError:
    """Audit a request for a record that is not this patient's, and answer 404."""
    record(
        session,
        action,
        outcome="denied",
        severity="warning",
        resource_type="patient",
        resource_id=ctx.patient.id,
        details={"reason": "not_found", id_key: str(record_id)},
    )
    await session.commit()
    return not_found(resource)


def patient_today(patient: Patient) -> date:
    """Today's date where the patient lives (their time zone sets day boundaries)."""
    try:
        zone = ZoneInfo(patient.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return datetime.now(zone).date()


# --- diagnoses ------------------------------------------------------------------------


def diagnosis_out(diagnosis: Diagnosis) -> DiagnosisOut:
    return DiagnosisOut(
        id=diagnosis.id,
        patient_id=diagnosis.patient_id,
        code=diagnosis.code,
        mental_behavioural=icd10.is_valid(diagnosis.code)
        and icd10.is_mental_behavioural(diagnosis.code),
        onset=diagnosis.onset,
        status=DiagnosisStatus(diagnosis.status),
        resolved_on=diagnosis.resolved_on,
        recorded_by=diagnosis.recorded_by,
        created_at=diagnosis.created_at,
        updated_at=diagnosis.updated_at,
    )


async def _open_duplicate(
    session: AsyncSession, patient_id: uuid.UUID, code: str, other_than: uuid.UUID | None
) -> bool:
    query = select(Diagnosis.id).where(
        Diagnosis.patient_id == patient_id,
        Diagnosis.code == code,
        Diagnosis.status != DiagnosisStatus.resolved.value,
    )
    if other_than is not None:
        query = query.where(Diagnosis.id != other_than)
    return await session.scalar(query.limit(1)) is not None


def _duplicate_error() -> AppError:
    return AppError(
        409,
        "diagnosis_exists",
        "This patient already has this diagnosis, not resolved; update that one instead.",
    )


async def list_diagnoses(
    session: AsyncSession, ctx: PatientContext, *, status: DiagnosisStatus | None
) -> list[Diagnosis]:
    query = select(Diagnosis).where(Diagnosis.patient_id == ctx.patient.id)
    if status is not None:
        query = query.where(Diagnosis.status == status.value)
    rows = list((await session.scalars(query.order_by(Diagnosis.created_at, Diagnosis.id))).all())
    audit_patient(session, ctx, "patient.diagnoses.read", {"count": len(rows)})
    await session.commit()
    return rows


async def create_diagnosis(
    session: AsyncSession, ctx: PatientContext, body: DiagnosisCreate
) -> Diagnosis:
    if body.status is not DiagnosisStatus.resolved and await _open_duplicate(
        session, ctx.patient.id, body.code, None
    ):
        raise _duplicate_error()
    diagnosis = Diagnosis(
        patient_id=ctx.patient.id,
        code=body.code,
        onset=body.onset,
        status=body.status.value,
        resolved_on=body.resolved_on,
        recorded_by=ctx.principal.user_id,
    )
    session.add(diagnosis)
    await session.flush()
    audit_patient(session, ctx, "patient.diagnosis.create", {"diagnosis_id": str(diagnosis.id)})
    await session.commit()
    return diagnosis


async def update_diagnosis(
    session: AsyncSession, ctx: PatientContext, diagnosis_id: uuid.UUID, body: DiagnosisUpdate
) -> Diagnosis:
    action = "patient.diagnosis.update"
    diagnosis = await session.scalar(
        select(Diagnosis).where(
            Diagnosis.id == diagnosis_id, Diagnosis.patient_id == ctx.patient.id
        )
    )
    if diagnosis is None:
        raise await _missing(session, ctx, action, "diagnosis", "diagnosis_id", diagnosis_id)
    changes = body.model_dump(exclude_unset=True)
    was = DiagnosisStatus(diagnosis.status)
    status = body.status if body.status is not None else was
    onset = changes.get("onset", diagnosis.onset)
    if "resolved_on" in changes:
        resolved_on = changes["resolved_on"]
    else:
        # A diagnosis that recurs or is re-opened is no longer resolved on that date.
        resolved_on = diagnosis.resolved_on if status is DiagnosisStatus.resolved else None
    found = diagnosis_dates_problem(status, onset, resolved_on)
    if found is not None:
        field, reason = found
        if "resolved_on" not in changes and "onset" in changes:
            field, reason = "onset", "must not be after the date the diagnosis resolved"
        raise invalid([_field_error(field, reason)])
    if (
        was is DiagnosisStatus.resolved
        and status is not DiagnosisStatus.resolved
        and await _open_duplicate(session, ctx.patient.id, diagnosis.code, diagnosis.id)
    ):
        raise _duplicate_error()
    diagnosis.status = status.value
    diagnosis.onset = onset
    diagnosis.resolved_on = resolved_on
    audit_patient(
        session, ctx, action, {"diagnosis_id": str(diagnosis.id), "fields": sorted(changes)}
    )
    await session.commit()
    return diagnosis


# --- medication statements ------------------------------------------------------------


def _frequency_display(code: str) -> str:
    try:
        return medications.lookup_frequency(code).display
    except UnknownTermError:
        return code  # a code the catalogue has since dropped: show it as stored


def statement_out(statement: MedicationStatement, today: date) -> MedicationStatementOut:
    return MedicationStatementOut(
        id=statement.id,
        patient_id=statement.patient_id,
        drug=statement.drug,
        drug_class=statement.drug_class,
        rxcui=statement.rxcui,
        dose=statement.dose,
        unit=statement.unit,
        frequency=statement.frequency,
        frequency_display=_frequency_display(statement.frequency),
        start=statement.start,
        stop=statement.stop,
        active=is_active(statement.start, statement.stop, today),
        prescriber=statement.prescriber,
        recorded_by=statement.recorded_by,
        created_at=statement.created_at,
        updated_at=statement.updated_at,
    )


def is_active(start: date, stop: date | None, today: date) -> bool:
    """Taken today: started, and with no stop date or one still in the future."""
    return start <= today and (stop is None or stop > today)


def _lookup(
    errors: list[dict[str, Any]], field: str, find: Callable[[str], _T], name: str | None
) -> _T | None:
    if name is None:
        return None
    try:
        return find(name)
    except UnknownTermError as exc:
        # The message and suggestions name catalogue entries only, never the input.
        errors.append(
            {
                "field": f"body.{field}",
                "message": str(exc),
                "type": f"unknown_{exc.kind}",
                "suggestions": list(exc.suggestions),
            }
        )
        return None


async def list_statements(
    session: AsyncSession, ctx: PatientContext, *, active: bool | None
) -> tuple[list[MedicationStatement], date]:
    """The patient's statements, newest start first; ``active`` keeps those taken today
    (True) or the others (False). Returns the patient's today with them."""
    today = patient_today(ctx.patient)
    query = select(MedicationStatement).where(MedicationStatement.patient_id == ctx.patient.id)
    if active is not None:
        taken = and_(
            MedicationStatement.start <= today,
            or_(MedicationStatement.stop.is_(None), MedicationStatement.stop > today),
        )
        query = query.where(taken if active else not_(taken))
    query = query.order_by(
        MedicationStatement.start.desc(),
        MedicationStatement.created_at.desc(),
        MedicationStatement.id,
    )
    rows = list((await session.scalars(query)).all())
    audit_patient(
        session,
        ctx,
        "patient.medications.read",
        {"count": len(rows), "active": active},
    )
    await session.commit()
    return rows, today


async def create_statement(
    session: AsyncSession, ctx: PatientContext, body: MedicationStatementCreate
) -> MedicationStatement:
    errors: list[dict[str, Any]] = []
    medication = _lookup(errors, "drug", medications.lookup, body.drug)
    unit = _lookup(errors, "unit", medications.lookup_unit, body.unit)
    frequency = _lookup(errors, "frequency", medications.lookup_frequency, body.frequency)
    if errors or medication is None or unit is None or frequency is None:
        raise invalid(errors)
    statement = MedicationStatement(
        patient_id=ctx.patient.id,
        drug=medication.generic_name,
        drug_class=medication.drug_class,
        rxcui=medication.rxcui,
        dose=body.dose,
        unit=unit.code,
        frequency=frequency.code,
        start=body.start,
        stop=body.stop,
        prescriber=body.prescriber,
        recorded_by=ctx.principal.user_id,
    )
    session.add(statement)
    await session.flush()
    audit_patient(session, ctx, "patient.medication.create", {"statement_id": str(statement.id)})
    await session.commit()
    return statement


async def update_statement(
    session: AsyncSession,
    ctx: PatientContext,
    statement_id: uuid.UUID,
    body: MedicationStatementUpdate,
) -> MedicationStatement:
    action = "patient.medication.update"
    statement = await session.scalar(
        select(MedicationStatement).where(
            MedicationStatement.id == statement_id,
            MedicationStatement.patient_id == ctx.patient.id,
        )
    )
    if statement is None:
        raise await _missing(
            session, ctx, action, "medication statement", "statement_id", statement_id
        )
    changes = body.model_dump(exclude_unset=True)
    errors: list[dict[str, Any]] = []
    frequency = _lookup(errors, "frequency", medications.lookup_frequency, body.frequency)
    stop = changes.get("stop", statement.stop)
    found = medication_dates_problem(statement.start, stop)
    if found is not None:
        errors.append(_field_error(*found))
    if errors:
        raise invalid(errors)
    statement.stop = stop
    if body.dose is not None:
        statement.dose = body.dose
    if frequency is not None:
        statement.frequency = frequency.code
    audit_patient(
        session, ctx, action, {"statement_id": str(statement.id), "fields": sorted(changes)}
    )
    await session.commit()
    return statement


# --- catalogue search -----------------------------------------------------------------

MAX_SEARCH_RESULTS = 50
_FUZZY_CUTOFF = 0.7


def _rank(medication: Medication, key: str) -> tuple[int, str] | None:
    """How well a medication matches a normalised query (lower is better), and the name
    that matched; None when it does not."""
    best: tuple[int, str] | None = None
    for position, name in enumerate(medication.names):
        term = normalize_term(name)
        generic = position == 0
        if term == key:
            rank = 0
        elif term.startswith(key):
            rank = 1 if generic else 2
        elif any(word.startswith(key) for word in term.split(" ")):
            rank = 3
        elif key in term:
            rank = 4
        else:
            continue
        if best is None or rank < best[0]:
            best = (rank, name)
    return best


def search_catalogue(query: str, limit: int) -> CatalogueSearchOut:
    """Medications whose generic, synonym or brand name matches ``query`` (for
    autocomplete): exact, then prefix, then word prefix, then substring; when nothing
    matches, the closest spellings. An empty query lists the catalogue alphabetically."""
    key = normalize_term(query)
    catalogue = medications.catalogue()
    found: list[tuple[int, str, Medication]] = []
    for medication in catalogue.medications:
        if not key:
            found.append((0, medication.generic_name, medication))
            continue
        ranked = _rank(medication, key)
        if ranked is not None:
            found.append((ranked[0], ranked[1], medication))
    if key and not found:
        names = {normalize_term(n): (n, m) for m in catalogue.medications for n in m.names}
        close = difflib.get_close_matches(key, list(names), n=limit, cutoff=_FUZZY_CUTOFF)
        seen: set[str] = set()
        for match in close:
            name, medication = names[match]
            if medication.generic_name not in seen:
                seen.add(medication.generic_name)
                found.append((5, name, medication))
    else:
        found.sort(key=lambda item: (item[0], item[2].generic_name.casefold()))
    return CatalogueSearchOut(
        items=[
            CatalogueMedicationOut(
                generic_name=medication.generic_name,
                drug_class=medication.drug_class,
                rxcui=medication.rxcui,
                brands=list(medication.brands),
                synonyms=list(medication.synonyms),
                matched=name,
            )
            for _, name, medication in found[:limit]
        ],
        units=[CatalogueTermOut(code=u.code, display=u.display) for u in catalogue.units],
        frequencies=[
            CatalogueTermOut(code=f.code, display=f.display) for f in catalogue.frequencies
        ],
    )
