"""The periodic sweep (every minute, from the server or a worker): what no event triggers.

* **Data gaps.** No event arrives when data stops, so ``missing_data`` rules are evaluated
  here for active patients with wearable consent. Each rule is replayed from the latest
  sample of the streams it watches: a gap fires at exactly that sample's time plus the
  rule's duration, whichever process notices it and whenever.
* **Cooldown expiries.** An episode held back by a cooldown fires when the cooldown ends
  if it is still going on (:mod:`clarity.rules.cooldown`); nothing else would look at that
  moment, so each key whose cooldown ended since the previous sweep (within
  :data:`COOLDOWN_HORIZON` of its firing) is replayed from the end of its cooldown.
* **Escalation** of open alerts not acknowledged in time (:mod:`clarity.alerts.escalation`):
  a conditional update raises the level, so two sweeps never escalate twice, and emits
  ``alert.escalated``.

On PostgreSQL one sweep runs at a time across processes (a session advisory lock taken
with ``pg_try_advisory_lock``; a process that does not get it skips the round). Everything
it writes is idempotent anyway: alerts by ``(dedup_key, fired_at)``, escalations by their
condition.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Final

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from clarity.alerts import raising
from clarity.alerts.escalation import MAX_LEVEL, EscalationPolicy
from clarity.alerts.events import ESCALATED, emit
from clarity.alerts.models import Alert
from clarity.alerts.needs import has_missing_data, leaves, missing_streams
from clarity.alerts.raising import Subject, Task
from clarity.alerts.rulesets import ruleset
from clarity.alerts.signals_loader import last_seen
from clarity.audit.service import AuditActor, record
from clarity.consent.service import consenting_patients
from clarity.database import utcnow
from clarity.logging import get_logger
from clarity.patients.models import Patient
from clarity.rules import Rule
from clarity.rules.conditions import MissingData
from clarity.rules.durations import duration_seconds
from clarity.rules.signals import from_epoch
from clarity.runtime import Runtime

log = get_logger(__name__)

_SWEEP_LOCK: Final = 0x616C_7274  # "alrt"
COOLDOWN_HORIZON: Final = dt.timedelta(days=31)
ESCALATION_BATCH: Final = 1000


@dataclass(frozen=True)
class SweepReport:
    ran: bool
    gap_alerts: int = 0
    cooldown_alerts: int = 0
    escalated: int = 0


def escalation_policy(runtime: Runtime) -> EscalationPolicy:
    """``CLARITY_ALERT_ESCALATION`` (checked when the settings were read)."""
    return EscalationPolicy.parse(runtime.settings.alert_escalation)


@asynccontextmanager
async def _leading(runtime: Runtime) -> AsyncIterator[bool]:
    if runtime.db.engine.dialect.name != "postgresql":
        yield True
        return
    async with runtime.db.engine.connect() as connection:
        got = bool(
            await connection.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": _SWEEP_LOCK})
        )
        await connection.commit()
        try:
            yield got
        finally:
            if got:
                with suppress(Exception):
                    await connection.execute(
                        text("SELECT pg_advisory_unlock(:k)"), {"k": _SWEEP_LOCK}
                    )
                    await connection.commit()


async def _evaluate(runtime: Runtime, subject: Subject, tasks: list[Task], now: dt.datetime) -> int:
    async with runtime.db.session(subject.organization_id) as session:
        prepared = await raising.prepare(session, subject, tasks, now)
    signals = await raising.compute(prepared)
    async with runtime.db.session(subject.organization_id) as session:
        created = await raising.store(session, subject, tasks, signals, now)
        await session.commit()
    if created:
        runtime.outbox.notify()
    return len(created)


def _gap_possible(rule: Rule, latest: float, now: dt.datetime) -> bool:
    """False when a pure missing-data rule cannot hold yet (the usual case: data flows)."""
    parts = list(leaves(rule.condition))
    if not all(isinstance(p, MissingData) for p in parts):
        return True
    shortest = min(duration_seconds(p.duration) for p in parts if isinstance(p, MissingData))
    return now.timestamp() - latest >= shortest


async def _rules_by_org(
    session: AsyncSession, orgs: set[uuid.UUID], keep: bool | None = None
) -> dict[uuid.UUID, list[Rule]]:
    found: dict[uuid.UUID, list[Rule]] = {}
    for org in orgs:
        rules = (await ruleset(session, org)).rules
        found[org] = [r for r in rules if keep is None or has_missing_data(r) == keep]
    return found


async def data_gaps(runtime: Runtime, now: dt.datetime) -> int:
    """Evaluate missing-data rules for every active patient with wearable consent."""
    async with runtime.db.session(system=True) as session:
        patients = (
            await session.execute(
                select(Patient.id, Patient.organization_id, Patient.timezone).where(
                    Patient.status == "active",
                    Patient.id.in_(consenting_patients("wearable_data")),
                )
            )
        ).all()
        rules_by_org = await _rules_by_org(session, {p.organization_id for p in patients}, True)
    created = 0
    for patient in patients:
        subject = Subject(patient.organization_id, patient.id, patient.timezone)
        rules = raising.applicable(
            rules_by_org[subject.organization_id], patient.id, subject.organization_id
        )
        if not rules:
            continue
        watched = [missing_streams(r) for r in rules]
        wanted: set[str] | None = set()
        for streams in watched:
            wanted = None if streams is None or wanted is None else wanted | streams
        async with runtime.db.session(subject.organization_id) as session:
            seen = await last_seen(session, patient.id, wanted, now)
        tasks: list[Task] = []
        for rule, streams in zip(rules, watched, strict=True):
            times = [t for s, t in seen.items() if streams is None or s in streams]
            if times and _gap_possible(rule, max(times), now):
                tasks.append(Task(rule, from_epoch(max(times))))
        if tasks:
            created += await _evaluate(runtime, subject, tasks, now)
    return created


async def cooldown_expiries(runtime: Runtime, since: dt.datetime, now: dt.datetime) -> int:
    """Replay each key whose cooldown ended in ``(since, now]`` from that moment."""
    async with runtime.db.session(system=True) as session:
        rows = (
            await session.execute(
                select(
                    Alert.organization_id,
                    Alert.patient_id,
                    Alert.rule_id,
                    Alert.dedup_key,
                    func.max(Alert.fired_at).label("fired_at"),
                )
                .where(Alert.fired_at >= since - COOLDOWN_HORIZON, Alert.fired_at <= now)
                .group_by(Alert.organization_id, Alert.patient_id, Alert.rule_id, Alert.dedup_key)
            )
        ).all()
        if not rows:
            return 0
        rules_by_org = await _rules_by_org(session, {r.organization_id for r in rows}, False)
        patients = {
            p.id: p
            for p in (
                await session.execute(
                    select(Patient.id, Patient.timezone).where(
                        Patient.id.in_({r.patient_id for r in rows}), Patient.status == "active"
                    )
                )
            ).all()
        }
    due: dict[Subject, list[Task]] = defaultdict(list)
    for row in rows:
        patient = patients.get(row.patient_id)
        rule = next((r for r in rules_by_org[row.organization_id] if r.id == row.rule_id), None)
        if patient is None or rule is None:
            continue
        subject = Subject(row.organization_id, row.patient_id, patient.timezone)
        effective = raising.applicable([rule], row.patient_id, row.organization_id)
        if not effective or raising.dedup_key(effective[0], subject) != row.dedup_key:
            continue
        cooldown = dt.timedelta(seconds=duration_seconds(effective[0].cooldown))
        expiry = row.fired_at + cooldown
        if cooldown and since < expiry <= now:
            due[subject].append(Task(effective[0], expiry))
    created = 0
    for subject, tasks in due.items():
        created += await _evaluate(runtime, subject, tasks, now)
    return created


async def escalate(runtime: Runtime, policy: EscalationPolicy, now: dt.datetime) -> int:
    """Raise the escalation level of open alerts waiting longer than the policy allows."""
    if not policy.after:
        return 0
    shortest = min(policy.after.values())
    escalated = 0
    async with runtime.db.session(system=True) as session:
        alerts = (
            await session.scalars(
                select(Alert)
                .where(
                    Alert.status == "open",
                    Alert.severity.in_(sorted(policy.after)),
                    Alert.escalation_level < MAX_LEVEL,
                    Alert.created_at <= now - shortest,
                )
                .order_by(Alert.created_at)
                .limit(ESCALATION_BATCH)
            )
        ).all()
        for alert in alerts:
            level = policy.due_level(alert.severity, alert.created_at, now)
            if level <= alert.escalation_level:
                continue
            result = await session.execute(
                update(Alert)
                .where(
                    Alert.id == alert.id,
                    Alert.status == "open",
                    Alert.escalation_level == alert.escalation_level,
                )
                .values(escalation_level=level, escalated_at=now)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                continue
            emit(
                session,
                ESCALATED,
                alert,
                {"escalation_level": level, "escalated_at": now.isoformat()},
            )
            record(
                session,
                "alert.escalate",
                resource_type="alert",
                resource_id=alert.id,
                severity="warning",
                details={"patient_id": str(alert.patient_id), "level": level},
                actor=AuditActor(organization_id=alert.organization_id, request_id="alerts"),
            )
            escalated += 1
        await session.commit()
    if escalated:
        runtime.outbox.notify()
    return escalated


async def sweep(
    runtime: Runtime,
    *,
    now: dt.datetime | None = None,
    since: dt.datetime | None = None,
    policy: EscalationPolicy | None = None,
) -> SweepReport:
    """One round (see the module doc). ``since``: when the previous round ran (cooldowns
    that ended before it were handled then); a day ago by default."""
    now = now or utcnow()
    since = since or now - dt.timedelta(days=1)
    async with _leading(runtime) as leading:
        if not leading:
            return SweepReport(ran=False)
        gaps = await data_gaps(runtime, now)
        cooled = await cooldown_expiries(runtime, since, now)
        escalated = await escalate(runtime, policy or escalation_policy(runtime), now)
    return SweepReport(True, gaps, cooled, escalated)
