"""The alert consumer: turns ``assessment.submitted`` and ``biometrics.batch_accepted`` into
alerts. Callable from any transport (the in-process runner, a RabbitMQ worker):
``await handle_event(runtime, payload)``, or :func:`handle_events` for several queued
events of one patient at once (one evaluation for all of them).

Delivery is at least once, so the consumer is idempotent by event id: the alerts an event
raises, their ``alert.raised`` events and the :class:`ProcessedEvent` marker are written in
one transaction, and an event already marked changes nothing. Events of one patient must
be handled one at a time and in order (route by patient); the unique
``(dedup_key, fired_at)`` keeps even a concurrent redelivery from storing an alert twice.

Which rules, over which span: the rules in force for the organization that apply to the
patient and read what the event brought (the instrument answered; the streams uploaded,
``activity_counts`` for daily metrics). An assessment is replayed from the moment it was
administered; a batch from its first sample minus each rule's lookback (a hold may have
begun before the batch), to now. Rules that watch for missing data are left to the sweep:
arriving data can only end a gap. Discharged patients raise nothing.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from clarity.alerts import raising
from clarity.alerts.models import ProcessedEvent
from clarity.alerts.needs import (
    has_missing_data,
    lookback_seconds,
    touched_by_assessment,
    touched_by_batch,
)
from clarity.alerts.raising import Subject, Task
from clarity.alerts.rulesets import ruleset
from clarity.assessments.models import AssessmentResponse
from clarity.assessments.service import SUBMITTED_TOPIC
from clarity.biometrics.service import BATCH_ACCEPTED_TOPIC
from clarity.database import utcnow
from clarity.logging import get_logger
from clarity.patients.models import Patient
from clarity.rules import Rule
from clarity.runtime import Runtime

log = get_logger(__name__)

CONSUMER: Final = "alerts"
TOPICS: Final = (SUBMITTED_TOPIC, BATCH_ACCEPTED_TOPIC)


class Outcome(StrEnum):
    processed = "processed"  # evaluated and marked; ``alert_ids`` holds what it raised
    duplicate = "duplicate"  # this consumer had already processed the event
    ignored = "ignored"  # marked without evaluation: the patient is gone or discharged
    invalid = "invalid"  # not an event this consumer can read; never retried


@dataclass(frozen=True)
class EventResult:
    outcome: Outcome
    alert_ids: tuple[uuid.UUID, ...] = ()


@dataclass(frozen=True)
class Event:
    event_id: uuid.UUID
    topic: str
    organization_id: uuid.UUID
    patient_id: uuid.UUID
    body: dict[str, Any]


def _uuid(value: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _time(value: object) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def parse(payload: dict[str, Any]) -> Event | None:
    """The event's identity, or None when it lacks one (such a message is dropped)."""
    event_id = _uuid(payload.get("event_id"))
    org = _uuid(payload.get("organization_id"))
    patient = _uuid(payload.get("patient_id"))
    topic = payload.get("event_type")
    if event_id is None or org is None or patient is None or topic not in TOPICS:
        return None
    return Event(event_id, str(topic), org, patient, payload)


async def _processed(session: AsyncSession, event_id: uuid.UUID) -> bool:
    found = await session.get(ProcessedEvent, (CONSUMER, event_id))
    return found is not None


async def _assessment_time(session: AsyncSession, event: Event) -> dt.datetime | None:
    response_id = _uuid(event.body.get("response_id"))
    if response_id is None:
        return None
    administered: dt.datetime | None = await session.scalar(
        select(AssessmentResponse.administered_at).where(
            AssessmentResponse.id == response_id,
            AssessmentResponse.patient_id == event.patient_id,
        )
    )
    return administered


async def rules_for(session: AsyncSession, subject: Subject) -> list[Rule]:
    """The rules in force that apply to the patient, missing-data rules left to the sweep."""
    rules = raising.applicable(
        (await ruleset(session, subject.organization_id)).rules,
        subject.patient_id,
        subject.organization_id,
    )
    return [r for r in rules if not has_missing_data(r)]


async def plan(session: AsyncSession, event: Event, rules: list[Rule]) -> list[Task]:
    """The rules the event can affect, each with the moment its replay starts."""
    if event.topic == SUBMITTED_TOPIC:
        instrument = event.body.get("instrument_id")
        at = await _assessment_time(session, event)
        if not isinstance(instrument, str) or at is None:
            return []
        return [Task(r, at) for r in rules if touched_by_assessment(r, instrument)]
    streams = event.body.get("streams")
    first = _time(event.body.get("start"))
    if not isinstance(streams, list) or first is None:
        return []
    names = [s for s in streams if isinstance(s, str)]
    return [
        Task(r, first - dt.timedelta(seconds=lookback_seconds(r.condition)))
        for r in rules
        if touched_by_batch(r, names)
    ]


def merge(tasks: list[Task]) -> list[Task]:
    """One task per rule, from the earliest start any event asked for (rule order kept)."""
    earliest: dict[str, Task] = {}
    for task in tasks:
        known = earliest.get(task.rule.id)
        if known is None or task.start < known.start:
            earliest[task.rule.id] = task
    return list(earliest.values())


async def _mark_all(session: AsyncSession, event_ids: list[uuid.UUID]) -> bool:
    """Add the markers and commit; False when another delivery committed one first."""
    for event_id in event_ids:
        session.add(ProcessedEvent(consumer=CONSUMER, event_id=event_id, processed_at=utcnow()))
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        return False
    return True


async def handle_event(
    runtime: Runtime, payload: dict[str, Any], *, now: dt.datetime | None = None
) -> EventResult:
    """Process one delivery of an event (see the module doc); safe to call again with the
    same payload. Raises on a transient failure (the database is down): retry later."""
    return (await handle_events(runtime, [payload], now=now))[0]


async def handle_events(
    runtime: Runtime, payloads: list[dict[str, Any]], *, now: dt.datetime | None = None
) -> list[EventResult]:
    """Process several events of one patient, in order, as one evaluation (a burst of
    batches from an import replays each rule once, from the earliest start); one result
    per payload. Events of other patients are refused (ValueError): the caller groups."""
    events = [parse(p) for p in payloads]
    results = [EventResult(Outcome.invalid)] * len(payloads)
    for payload, event in zip(payloads, events, strict=True):
        if event is None:
            log.warning("alerts.event_invalid", topic=str(payload.get("event_type", ""))[:64])
    valid = [(n, e) for n, e in enumerate(events) if e is not None]
    if not valid:
        return results
    subjects = {(e.organization_id, e.patient_id) for _, e in valid}
    if len(subjects) > 1:
        raise ValueError("handle_events takes the events of one patient")
    now = now or utcnow()
    org = valid[0][1].organization_id
    async with runtime.db.session(org) as session:
        pending = [(n, e) for n, e in valid if not await _processed(session, e.event_id)]
        for n, _ in valid:
            results[n] = EventResult(Outcome.duplicate)
        if not pending:
            return results
        ids = [e.event_id for _, e in pending]
        patient = await session.get(Patient, pending[0][1].patient_id)
        if patient is None or patient.status != "active":
            if await _mark_all(session, ids):
                for n, _ in pending:
                    results[n] = EventResult(Outcome.ignored)
            return results if len(pending) == 1 else await _one_by_one(runtime, payloads, now)
        subject = Subject(org, patient.id, patient.timezone)
        rules = await rules_for(session, subject)
        tasks = merge([t for _, e in pending for t in await plan(session, e, rules)])
        if not tasks:
            if await _mark_all(session, ids):
                for n, _ in pending:
                    results[n] = EventResult(Outcome.processed)
                return results
            return results if len(pending) == 1 else await _one_by_one(runtime, payloads, now)
        prepared = await raising.prepare(session, subject, tasks, now)
    signals = await raising.compute(prepared)
    async with runtime.db.session(org) as session:
        still = [e.event_id for _, e in pending if not await _processed(session, e.event_id)]
        if still != ids:  # another delivery got some of them meanwhile: start over
            return results if not still else await _one_by_one(runtime, payloads, now)
        created = await raising.store(session, subject, tasks, signals, now, event_id=ids[0])
        if not await _mark_all(session, ids):
            return results if len(pending) == 1 else await _one_by_one(runtime, payloads, now)
    for n, _ in pending:
        results[n] = EventResult(Outcome.processed)
    results[pending[0][0]] = EventResult(Outcome.processed, tuple(created))
    if created:
        runtime.outbox.notify()
        log.info("alerts.raised", count=len(created), events=len(pending))
    return results


async def _one_by_one(
    runtime: Runtime, payloads: list[dict[str, Any]], now: dt.datetime
) -> list[EventResult]:
    """A group that raced with another delivery: each event on its own."""
    return [(await handle_events(runtime, [p], now=now))[0] for p in payloads]
