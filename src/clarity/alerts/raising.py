"""Evaluate rules for one patient and store what they fire, exactly once.

Used by the event consumer and the periodic sweep. Two steps, so that the database
connection (the only one, on SQLite) is never held during computation:

1. **read** (:func:`prepare`): the patient's signals over the window the rules need
   (extended back to each key's last firing, see below); the daily metrics are then
   computed in a worker thread (:func:`compute`);
2. **write** (:func:`store`), in one transaction: the replay of each rule from its start to
   ``now``, given its key's last firing *before* that start (read inside the transaction),
   the new alerts (``INSERT ... ON CONFLICT (dedup_key, fired_at) DO NOTHING``: a firing
   computed twice is stored once), one ``alert.raised`` event and one audit record per new
   alert; the caller adds its own rows (the processed-event marker) and commits.

**Once per episode.** Replaying from the start of newly arrived data (not from the last
firing) lets data that arrives out of order fire at the moment it happened; a replayed
firing whose episode already fired (:func:`already_fired`) is not stored again.

**Episode identity across windows.** A window that begins inside a long episode sees it
start later than it did; the engine still recognises the key's previous firing as this
episode's when that firing lies inside the episode as computed now
(:func:`clarity.rules.cooldown.earliest_firing`). The window therefore reaches back to the
previous firing (at most :data:`MAX_EXTENSION`), so that the firing is in view.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, cast

from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from clarity.alerts.events import emit_raised
from clarity.alerts.models import Alert
from clarity.alerts.needs import Needs
from clarity.alerts.signals_loader import load
from clarity.audit.service import AuditActor, record
from clarity.database import utcnow
from clarity.rules import Firing, LastFiring, PatientSignals, Rule, replay
from clarity.rules.signals import epoch

MAX_EXTENSION: Final = dt.timedelta(days=31)
SUMMARY_LENGTH: Final = 500
SYSTEM_ACTOR: Final = "alerts"


@dataclass(frozen=True)
class Task:
    """Evaluate ``rule`` (already the patient's effective rule) from ``start`` to now."""

    rule: Rule
    start: dt.datetime


@dataclass(frozen=True)
class Subject:
    organization_id: uuid.UUID
    patient_id: uuid.UUID
    timezone: str


def applicable(rules: Sequence[Rule], patient_id: uuid.UUID, org: uuid.UUID) -> list[Rule]:
    """The rules that watch this patient, each with the patient's overrides applied, and
    enabled for them."""
    found: list[Rule] = []
    for rule in rules:
        if not rule.scope.covers(patient_id, org):
            continue
        effective = rule.for_patient(patient_id)
        if effective.enabled:
            found.append(effective)
    return found


def dedup_key(rule: Rule, subject: Subject) -> str:
    return rule.dedup_for(subject.patient_id, subject.organization_id)


async def last_before(session: AsyncSession, key: str, moment: dt.datetime) -> LastFiring | None:
    """The key's latest stored firing before ``moment`` (any status): the one the engine
    takes as "the last firing before the replay starts"."""
    row = (
        await session.execute(
            select(Alert.fired_at, Alert.episode_start)
            .where(Alert.dedup_key == key, Alert.fired_at < moment)
            .order_by(Alert.fired_at.desc())
            .limit(1)
        )
    ).first()
    return None if row is None else LastFiring(row.fired_at, row.episode_start)


async def stored_since(session: AsyncSession, key: str, moment: dt.datetime) -> list[LastFiring]:
    """The key's stored firings at or after ``moment`` (to recognise an episode fired)."""
    rows = await session.execute(
        select(Alert.fired_at, Alert.episode_start).where(
            Alert.dedup_key == key, Alert.fired_at >= moment
        )
    )
    return [LastFiring(r.fired_at, r.episode_start) for r in rows.all()]


def already_fired(firing: Firing, stored: Sequence[LastFiring]) -> bool:
    """Whether a stored firing belongs to ``firing``'s episode: one with the same episode
    start, or one made between that start and ``firing`` (the condition held throughout,
    so it was the same episode). An episode fires once, even when data arriving out of
    order (a backdated response) moves a cooldown."""
    return any(
        s.episode_start == firing.episode_start
        or firing.episode_start <= s.fired_at <= firing.fired_at
        for s in stored
    )


def replay_task(
    task: Task, signals: PatientSignals, subject: Subject, last: LastFiring | None, now: dt.datetime
) -> list[Firing]:
    """The task's firings from its start to ``now`` given the key's last firing before its
    start (pure)."""
    key = dedup_key(task.rule, subject)
    result = replay(task.rule, signals, min(task.start, now), now, {key: last} if last else {})
    return result.firings


def json_safe(value: Any) -> Any:
    """Evidence as JSON both backends accept (no NaN or infinity)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def _row(firing: Firing, subject: Subject, event_id: uuid.UUID | None) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "organization_id": subject.organization_id,
        "patient_id": subject.patient_id,
        "rule_id": firing.rule_id,
        "rule_version": firing.rule_version,
        "rule_name": firing.rule_name[:200],
        "severity": firing.severity,
        "dedup_key": firing.dedup_key,
        "status": "open",
        "fired_at": firing.fired_at,
        "episode_start": firing.episode_start,
        "summary": firing.summary[:SUMMARY_LENGTH],
        "evidence": json_safe(firing.evidence.as_dict()),
        "source_event_id": event_id,
        "created_at": utcnow(),
        "escalation_level": 0,
    }


async def _insert(session: AsyncSession, row: dict[str, Any]) -> uuid.UUID | None:
    """Insert one alert unless its (dedup_key, fired_at) is stored; its id, or None."""
    table = cast(Table, Alert.__table__)
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(table)
        .values(**row)
        .on_conflict_do_nothing(index_elements=["dedup_key", "fired_at"])
        .returning(table.c.id)
    )
    inserted: uuid.UUID | None = (await session.execute(statement)).scalar_one_or_none()
    return inserted


async def prepare(
    session: AsyncSession,
    subject: Subject,
    tasks: list[Task],
    now: dt.datetime,
    extra_needs: Callable[[Needs], None] | None = None,
) -> Callable[[], PatientSignals]:
    """Read what the tasks need; answers the computation to run in a worker thread."""
    needs = Needs()
    floor = now - MAX_EXTENSION
    for task in tasks:
        start = min(task.start, now)
        previous = await last_before(session, dedup_key(task.rule, subject), start)
        if previous is not None and previous.fired_at >= floor:
            start = previous.fired_at
        needs.add(task.rule, epoch(start))
    if extra_needs is not None:
        extra_needs(needs)
    loaded = await load(
        session,
        patient_id=subject.patient_id,
        organization_id=subject.organization_id,
        timezone=subject.timezone,
        needs=needs,
        now=now,
    )
    return loaded.signals


async def compute(prepared: Callable[[], PatientSignals]) -> PatientSignals:
    return await asyncio.to_thread(prepared)


async def store(
    session: AsyncSession,
    subject: Subject,
    tasks: list[Task],
    signals: PatientSignals,
    now: dt.datetime,
    *,
    event_id: uuid.UUID | None = None,
) -> list[uuid.UUID]:
    """Replay the tasks one after the other and insert their new alerts, events and audit
    records into the session's transaction (the caller commits); answers the new alert
    ids. Each task reads the last firings inside the transaction, its predecessors' new
    alerts included (rules may share a deduplication key, and then a cooldown)."""
    actor = AuditActor(organization_id=subject.organization_id, request_id=SYSTEM_ACTOR)
    created: list[uuid.UUID] = []
    for task in tasks:
        key = dedup_key(task.rule, subject)
        last = await last_before(session, key, min(task.start, now))
        for firing in replay_task(task, signals, subject, last, now):
            if already_fired(firing, await stored_since(session, key, firing.episode_start)):
                continue
            row = _row(firing, subject, event_id)
            alert_id = await _insert(session, row)
            if alert_id is None:
                continue
            created.append(alert_id)
            emit_raised(session, Alert(**row))
            record(
                session,
                "alert.raise",
                resource_type="alert",
                resource_id=alert_id,
                details={
                    "patient_id": str(subject.patient_id),
                    "rule_id": firing.rule_id,
                    "severity": firing.severity,
                    "source_event_id": None if event_id is None else str(event_id),
                },
                actor=actor,
            )
    return created
