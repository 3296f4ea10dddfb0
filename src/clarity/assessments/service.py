"""Assessment logic: score server-side, store, audit, publish; history and trends.

Every read and write of a patient's responses leaves an audit record in its transaction.
Errors name item ids only, never the answers given.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from clarity.assessments import scoring
from clarity.assessments.catalog import Instrument, UnknownInstrumentError, get_instrument
from clarity.assessments.models import AssessmentResponse
from clarity.assessments.schemas import (
    AssessmentOut,
    AssessmentSubmit,
    AssessmentSubmitted,
    SafetyFlagOut,
    TrendOut,
    TrendPointOut,
)
from clarity.audit.service import record
from clarity.auth.models import Role
from clarity.database import utcnow
from clarity.errors import AppError
from clarity.logging import get_logger
from clarity.outbox.relay import OutboxRelay
from clarity.outbox.service import enqueue
from clarity.patients.access import PatientContext
from clarity.patients.service import audit_patient

log = get_logger(__name__)

SUBMITTED_TOPIC = "assessment.submitted"
# Roles that may rate a patient on a clinician-rated instrument (e.g. MADRS).
CLINICAL_RATERS = frozenset({Role.admin, Role.clinician})


def instrument_or_422(instrument_id: str, field: str = "instrument_id") -> Instrument:
    try:
        return get_instrument(instrument_id)
    except UnknownInstrumentError:
        raise AppError(
            422,
            "unknown_instrument",
            "There is no instrument with this id; GET /api/v1/instruments lists them.",
            extra={
                "errors": [{"field": field, "message": "unknown instrument", "type": "unknown"}]
            },
        ) from None


def _answer_problem(instrument: Instrument, exc: scoring.AnswerError) -> AppError:
    """A 422 naming each item involved; the scoring module's messages never carry answers."""
    errors: list[dict[str, str]] = []
    for item_id in exc.item_ids:
        if isinstance(exc, scoring.MissingAnswerError):
            message, kind = "not answered", "missing"
        elif isinstance(exc, scoring.InvalidAnswerError):
            item = instrument.item(item_id)
            message = f"must be one of the item's answer values ({item.min_value}-{item.max_value})"
            kind = "out_of_range"
        else:
            message, kind = "not an item of this instrument", "unknown_item"
        errors.append({"field": f"answers.{item_id}", "message": message, "type": kind})
    if not errors:  # item keys that do not look like ids are not repeated back
        errors.append(
            {"field": "answers", "message": "holds unknown item ids", "type": "unknown_item"}
        )
    return AppError(
        422,
        "invalid_answers",
        f"The answers cannot be scored: {str(exc).split(': ', 1)[-1]}.",
        extra={"errors": errors},
    )


def _severity_label(instrument: Instrument, code: str | None) -> str | None:
    return next((b.label for b in instrument.severity.bands if b.code == code), None)


def to_out(row: AssessmentResponse) -> AssessmentOut:
    try:
        label = _severity_label(get_instrument(row.instrument_id), row.severity)
    except UnknownInstrumentError:  # an instrument since withdrawn from the catalogue
        label = None
    return AssessmentOut(
        id=row.id,
        patient_id=row.patient_id,
        instrument_id=row.instrument_id,
        instrument_version=row.instrument_version,
        answers=dict(row.answers),
        total=row.total,
        derived_score=row.derived_score,
        severity=row.severity,
        severity_label=label,
        safety_signal=row.safety_signal,
        administered_at=row.administered_at,
        recorded_by=row.recorded_by,
        created_at=row.created_at,
    )


def event_payload(
    ctx: PatientContext,
    instrument: Instrument,
    row: AssessmentResponse,
    result: scoring.ScoreResult,
) -> dict[str, Any]:
    """The ``assessment.submitted`` event: ids and scores only, no names or other PHI."""
    safety_items = sorted({rule.item_id for rule in instrument.safety_rules})
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": SUBMITTED_TOPIC,
        "occurred_at": utcnow().isoformat(),
        "organization_id": str(ctx.principal.organization_id),
        "patient_id": str(row.patient_id),
        "response_id": str(row.id),
        "instrument_id": row.instrument_id,
        "instrument_version": row.instrument_version,
        "total": row.total,
        "derived_score": row.derived_score,
        "severity": row.severity,
        "safety_signal": row.safety_signal,
        "safety_flags": [flag.code for flag in result.safety_flags],
        # The answers that alert rules read (PHQ-9 item 9), and no others.
        "items": {item: row.answers[item] for item in safety_items},
    }


async def submit(
    outbox: OutboxRelay, session: AsyncSession, ctx: PatientContext, body: AssessmentSubmit
) -> AssessmentSubmitted:
    instrument = instrument_or_422(body.instrument_id)
    if instrument.respondent == "clinician" and ctx.principal.role not in CLINICAL_RATERS:
        record(
            session,
            "assessment.submit",
            outcome="denied",
            severity="warning",
            resource_type="patient",
            resource_id=ctx.patient.id,
            details={"instrument_id": instrument.id, "reason": "clinician_rated"},
        )
        await session.commit()
        raise AppError(
            403,
            "clinician_rated_instrument",
            f"{instrument.abbreviation} is rated by a clinician; only clinicians submit it.",
        )
    try:
        result = scoring.score(instrument, body.answers)
    except scoring.AnswerError as exc:
        raise _answer_problem(instrument, exc) from None

    administered_at = body.administered_at or utcnow()
    duplicate = await session.scalar(
        select(AssessmentResponse.id).where(
            AssessmentResponse.patient_id == ctx.patient.id,
            AssessmentResponse.instrument_id == instrument.id,
            AssessmentResponse.administered_at == administered_at,
        )
    )
    if duplicate is not None:
        raise AppError(
            409,
            "duplicate_assessment",
            "A response to this instrument at this time is already recorded.",
            extra={"existing_id": str(duplicate)},
        )

    row = AssessmentResponse(
        patient_id=ctx.patient.id,
        instrument_id=instrument.id,
        instrument_version=instrument.version,
        answers={item.item_id: item.value for item in result.items if item.value is not None},
        total=result.total,
        derived_score=None if result.transformed_total is None else float(result.transformed_total),
        severity=result.severity_code,
        safety_signal=result.safety_signal,
        administered_at=administered_at,
        recorded_by=ctx.principal.user_id,
        created_at=utcnow(),
    )
    session.add(row)
    await session.flush()
    audit_patient(
        session,
        ctx,
        "assessment.submit",
        {
            "response_id": str(row.id),
            "instrument_id": instrument.id,
            "safety_signal": result.safety_signal,
        },
    )
    # Written in the same transaction as the response: both are stored or neither is.
    enqueue(
        session,
        SUBMITTED_TOPIC,
        event_payload(ctx, instrument, row, result),
        key=str(row.patient_id),
    )
    await session.commit()
    outbox.notify()

    out = to_out(row)
    return AssessmentSubmitted(
        **out.model_dump(),
        safety_flags=[
            SafetyFlagOut(code=f.code, item_id=f.item_id, message=f.message)
            for f in result.safety_flags
        ],
        answered=result.answered,
        prorated=result.prorated,
    )


async def history(
    session: AsyncSession,
    ctx: PatientContext,
    *,
    instrument_id: str | None,
    limit: int,
    offset: int,
) -> tuple[list[AssessmentResponse], int]:
    """The patient's responses, newest first, optionally for one instrument."""
    query = select(AssessmentResponse).where(AssessmentResponse.patient_id == ctx.patient.id)
    if instrument_id is not None:
        query = query.where(AssessmentResponse.instrument_id == instrument_or_422(instrument_id).id)
    total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = list(
        (
            await session.scalars(
                query.order_by(
                    AssessmentResponse.administered_at.desc(),
                    AssessmentResponse.created_at.desc(),
                    AssessmentResponse.id,
                )
                .limit(limit)
                .offset(offset)
            )
        ).all()
    )
    audit_patient(
        session,
        ctx,
        "assessment.list",
        {
            "instrument_id": instrument_id,
            "count": len(rows),
            "ids": [str(r.id) for r in rows],
        },
    )
    await session.commit()
    return rows, total


async def trend(session: AsyncSession, ctx: PatientContext, instrument_id: str) -> TrendOut:
    """The series of one instrument, oldest first, with change from the previous response
    and from the first (baseline), and whether each reaches the reliable-change threshold."""
    instrument = instrument_or_422(instrument_id)
    rows = list(
        (
            await session.scalars(
                select(AssessmentResponse)
                .where(
                    AssessmentResponse.patient_id == ctx.patient.id,
                    AssessmentResponse.instrument_id == instrument.id,
                )
                .order_by(AssessmentResponse.administered_at, AssessmentResponse.created_at)
            )
        ).all()
    )
    # One point per time: should two responses share one (submitted concurrently), the one
    # recorded last stands, as a correction would.
    by_time = {row.administered_at: row for row in rows}
    points = scoring.trend(instrument, [(at, row.total) for at, row in by_time.items()])
    audit_patient(
        session,
        ctx,
        "assessment.trend",
        {"instrument_id": instrument.id, "count": len(points)},
    )
    await session.commit()
    rc = instrument.reliable_change
    return TrendOut(
        patient_id=ctx.patient.id,
        instrument_id=instrument.id,
        higher_is_worse=instrument.higher_is_worse,
        reliable_change_threshold=None if rc is None else rc.threshold,
        reliable_change_scale=None if rc is None else rc.scale,
        points=[
            TrendPointOut(
                response_id=by_time[point.at].id,
                administered_at=point.at,
                total=point.total,
                derived_score=by_time[point.at].derived_score,
                severity=by_time[point.at].severity,
                change_from_previous=point.change_from_previous,
                change_from_baseline=point.change_from_baseline,
                direction_from_previous=point.direction_from_previous,
                direction_from_baseline=point.direction_from_baseline,
                reliable_from_previous=point.reliable_from_previous,
                reliable_from_baseline=point.reliable_from_baseline,
            )
            for point in points
        ],
    )
