"""Consent decisions, append-only. The latest record of a category is the one in force; a
category never recorded is not granted. Should two records of one category carry the same
timestamp, the withdrawal wins: the helpers below err towards "not granted".

:func:`has_consent` and :func:`consenting_patients` are the helpers other features use
before touching data a patient must have agreed to (wearable ingestion, note analysis,
research exports). Both run in the caller's session, so they see its organization only.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import Select, case, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import func

from clarity.consent.models import ConsentRecord
from clarity.consent.schemas import (
    ConsentCategory,
    ConsentCreate,
    ConsentOverview,
    ConsentRecordOut,
    ConsentState,
)
from clarity.database import utcnow
from clarity.patients.access import PatientContext
from clarity.patients.service import audit_patient

_TICK = timedelta(microseconds=1)


def _category(category: ConsentCategory | str) -> ConsentCategory:
    """Accept the enum or its value; anything else is a programming error."""
    return ConsentCategory(category)


# Newest first; on a timestamp tie the withdrawal (False sorts first) wins.
_LATEST_FIRST = (ConsentRecord.recorded_at.desc(), ConsentRecord.granted.asc())


async def _latest(
    session: AsyncSession, patient_id: uuid.UUID, category: ConsentCategory
) -> ConsentRecord | None:
    latest: ConsentRecord | None = await session.scalar(
        select(ConsentRecord)
        .where(ConsentRecord.patient_id == patient_id, ConsentRecord.category == category.value)
        .order_by(*_LATEST_FIRST)
        .limit(1)
    )
    return latest


async def has_consent(
    session: AsyncSession, patient_id: uuid.UUID, category: ConsentCategory | str
) -> bool:
    """Whether the patient's latest decision for ``category`` grants it (never recorded:
    False). Pure lookup: it neither audits nor commits."""
    latest = await _latest(session, patient_id, _category(category))
    return latest is not None and latest.granted


def consenting_patients(category: ConsentCategory | str) -> Select[uuid.UUID]:
    """A statement selecting the ids of patients whose latest decision grants ``category``.

    Compose it into a query (``Patient.id.in_(consenting_patients(c))``) and run it in a
    tenant-scoped session, which limits it to the caller's organization. A patient counts
    when their latest grant is strictly later than their latest withdrawal.
    """
    value = _category(category).value
    last_grant = func.max(case((ConsentRecord.granted.is_(True), ConsentRecord.recorded_at)))
    last_withdrawal = func.max(case((ConsentRecord.granted.is_(False), ConsentRecord.recorded_at)))
    return (
        select(ConsentRecord.patient_id)
        .where(ConsentRecord.category == value)
        .group_by(ConsentRecord.patient_id)
        .having(
            last_grant.is_not(None) & (last_withdrawal.is_(None) | (last_grant > last_withdrawal))
        )
    )


async def record_consent(
    session: AsyncSession, ctx: PatientContext, body: ConsentCreate
) -> ConsentRecord:
    """Append a decision, recorded by the caller, now (and strictly after the previous one
    for the category, so that "latest" is never ambiguous)."""
    now = utcnow()
    previous = await _latest(session, ctx.patient.id, body.category)
    if previous is not None and previous.recorded_at >= now:
        now = previous.recorded_at + _TICK
    entry = ConsentRecord(
        patient_id=ctx.patient.id,
        category=body.category.value,
        granted=body.granted,
        recorded_by=ctx.principal.user_id,
        recorded_at=now,
    )
    session.add(entry)
    await session.flush()
    audit_patient(
        session,
        ctx,
        "consent.record",
        {"consent_id": str(entry.id), "category": entry.category, "granted": entry.granted},
    )
    await session.commit()
    return entry


async def consent_overview(session: AsyncSession, ctx: PatientContext) -> ConsentOverview:
    """The decision in force per category, and the full history, newest first."""
    history = list(
        (
            await session.scalars(
                select(ConsentRecord)
                .where(ConsentRecord.patient_id == ctx.patient.id)
                .order_by(*_LATEST_FIRST)
            )
        ).all()
    )
    current: dict[ConsentCategory, ConsentState] = {}
    for entry in history:
        category = ConsentCategory(entry.category)
        current.setdefault(
            category,
            ConsentState(
                category=category,
                granted=entry.granted,
                recorded_by=entry.recorded_by,
                recorded_at=entry.recorded_at,
            ),
        )
    audit_patient(session, ctx, "consent.read", {"records": len(history)})
    await session.commit()
    return ConsentOverview(
        patient_id=ctx.patient.id,
        current=[
            current.get(category, ConsentState(category=category, granted=False))
            for category in ConsentCategory
        ],
        history=[ConsentRecordOut.model_validate(entry) for entry in history],
    )
