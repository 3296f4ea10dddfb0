"""From domain events to alerts through the real app: a PHQ-9 with item 9 endorsed raises one
critical alert; the same event delivered again raises nothing more; severe totals, a
sustained hold in a wearable stream (at the moment it was reached), a wearable data gap
found by the sweep, and a cooldown that holds a firing back until it ends."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, select, update

from clarity.alerts.consumer import Outcome, handle_event, handle_events
from clarity.alerts.models import Alert, ProcessedEvent
from clarity.alerts.runner import AlertRunner
from clarity.alerts.sweep import sweep
from clarity.audit.models import AuditEvent
from clarity.auth.models import Role
from clarity.outbox.models import OutboxEvent
from tests.api.test_assessments_api import phq9, submit
from tests.api.test_biometrics_ingest import new_patient, send
from tests.conftest import Harness, bearer


async def settle(h: Harness) -> None:
    """Publish the outbox and wait until the in-process alert consumer is done."""
    await h.drain_events()
    runner: AlertRunner = h.app.state.alert_runner
    await runner.idle()


async def alerts_of(h: Harness, patient_id: str) -> list[Alert]:
    async with h.runtime.db.session(system=True) as session:
        rows = await session.scalars(
            select(Alert)
            .where(Alert.patient_id == uuid.UUID(patient_id))
            .order_by(Alert.fired_at, Alert.rule_id)
        )
        return list(rows.all())


async def outbox(h: Harness, topic: str) -> list[dict[str, Any]]:
    async with h.runtime.db.session(system=True) as session:
        rows = await session.scalars(
            select(OutboxEvent.payload).where(OutboxEvent.topic == topic).order_by(OutboxEvent.seq)
        )
        return [dict(p) for p in rows.all()]


def minute_floor(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def readings(
    stream: str, start: datetime, values: list[float], step: timedelta
) -> list[dict[str, Any]]:
    return [
        {
            "stream": stream,
            "ts": (start + n * step).isoformat(),
            "value": value,
            "unit": "/min",
            "source": "watch-1",
        }
        for n, value in enumerate(values)
    ]


async def test_phq9_item9_through_the_api_raises_one_critical_alert(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, clinician)
    response = await submit(h, clinician, patient_id, "phq9", phq9(1, 1, 0, 1, 0, 0, 1, 0, 1))
    assert response.status_code == 201, response.text
    await settle(h)

    (alert,) = await alerts_of(h, patient_id)
    assert alert.rule_id == "phq9-item9-positive"
    assert alert.severity == "critical"
    assert alert.status == "open"
    assert alert.fired_at == datetime.fromisoformat(response.json()["administered_at"])
    assert "phq9_9 answered 1" in alert.summary
    (raised,) = await outbox(h, "alert.raised")
    assert raised["alert_id"] == str(alert.id)
    assert raised["patient_id"] == patient_id
    assert raised["rule_id"] == "phq9-item9-positive"
    assert raised["severity"] == "critical"
    assert "Quillon" not in str(raised)  # ids and scores, never the patient's name
    async with h.runtime.db.session(system=True) as session:
        audited = await session.scalar(
            select(AuditEvent).where(
                AuditEvent.action == "alert.raise", AuditEvent.resource_id == str(alert.id)
            )
        )
    assert audited is not None
    assert audited.details["patient_id"] == patient_id
    assert audited.actor_id is None  # raised by the service, not by a person


async def test_a_redelivered_event_raises_nothing_more(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, clinician)
    await h.runtime.outbox.stop()  # this test delivers the event itself, twice
    response = await submit(h, clinician, patient_id, "phq9", phq9(0, 0, 0, 0, 0, 0, 0, 0, 2))
    assert response.status_code == 201
    (event,) = await outbox(h, "assessment.submitted")

    first = await handle_event(h.runtime, event)
    assert first.outcome is Outcome.processed
    assert len(first.alert_ids) == 1
    second = await handle_event(h.runtime, event)
    assert second.outcome is Outcome.duplicate
    assert len(await alerts_of(h, patient_id)) == 1

    # Even with the processed marker lost, the firing is stored once.
    async with h.runtime.db.session(system=True) as session:
        await session.execute(delete(ProcessedEvent))
        await session.commit()
    third = await handle_event(h.runtime, event)
    assert third.outcome is Outcome.processed
    assert third.alert_ids == ()
    assert len(await alerts_of(h, patient_id)) == 1
    assert len(await outbox(h, "alert.raised")) == 1


async def test_a_malformed_event_is_dropped_not_retried(h: Harness) -> None:
    result = await handle_event(h.runtime, {"event_type": "assessment.submitted"})
    assert result.outcome is Outcome.invalid


async def test_severe_totals_and_a_second_item9_each_raise(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, clinician)
    t0 = minute_floor(datetime.now(UTC)) - timedelta(hours=3)
    severe = phq9(3, 3, 3, 3, 2, 2, 2, 2, 0)  # 20: the severe band, item 9 not endorsed
    assert (
        await submit(h, clinician, patient_id, "phq9", severe, administered_at=t0.isoformat())
    ).status_code == 201
    anxious = {f"gad7_{n}": 3 for n in range(1, 8)}
    assert (await submit(h, clinician, patient_id, "gad7", anxious)).status_code == 201
    mild = phq9(1, 0, 0, 0, 0, 0, 0, 0, 0)
    assert (await submit(h, clinician, patient_id, "phq9", mild)).status_code == 201
    await settle(h)
    assert [a.rule_id for a in await alerts_of(h, patient_id)] == ["phq9-severe", "gad7-severe"]

    for hours in (2, 1):  # item 9 has no cooldown: every endorsement is its own alert
        answers = phq9(1, 1, 1, 1, 1, 1, 1, 1, 1)
        at = (t0 + timedelta(hours=hours)).isoformat()
        assert (
            await submit(h, clinician, patient_id, "phq9", answers, administered_at=at)
        ).status_code == 201
    await settle(h)
    item9 = [a for a in await alerts_of(h, patient_id) if a.rule_id == "phq9-item9-positive"]
    assert [a.fired_at for a in item9] == [t0 + timedelta(hours=1), t0 + timedelta(hours=2)]


async def test_a_cooldown_holds_the_next_episode_back_until_it_ends(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, clinician)
    t1 = minute_floor(datetime.now(UTC)) - timedelta(hours=3)
    severe = phq9(3, 3, 3, 3, 3, 3, 2, 0, 0)
    for at in (t1, t1 + timedelta(hours=1)):
        response = await submit(
            h, clinician, patient_id, "phq9", severe, administered_at=at.isoformat()
        )
        assert response.status_code == 201
    await settle(h)
    (first,) = await alerts_of(h, patient_id)
    assert first.fired_at == t1  # the second severe response is inside the 24 h cooldown

    # When the cooldown ends and the second response is still the latest, it fires then.
    end_of_cooldown = t1 + timedelta(hours=24)
    early = await sweep(h.runtime, now=end_of_cooldown - timedelta(minutes=1))
    assert early.cooldown_alerts == 0
    report = await sweep(
        h.runtime,
        now=end_of_cooldown + timedelta(minutes=1),
        since=end_of_cooldown - timedelta(minutes=1),
    )
    assert report.cooldown_alerts == 1
    first, second = await alerts_of(h, patient_id)
    assert second.fired_at == end_of_cooldown
    assert second.episode_start == t1 + timedelta(hours=1)
    again = await sweep(h.runtime, now=end_of_cooldown + timedelta(minutes=2))
    assert again.cooldown_alerts == 0
    assert len(await alerts_of(h, patient_id)) == 2


async def test_a_sustained_hold_fires_when_it_was_reached(h: Harness) -> None:
    admin = await h.token_for(Role.admin)
    created = await h.client.post(
        "/api/v1/alert-rules",
        json={
            "id": "hr-above-120",
            "name": "Heart rate above 120 for 10 minutes",
            "severity": "high",
            "condition": {
                "kind": "threshold_duration",
                "signal": "heart_rate",
                "op": ">",
                "value": 120,
                "duration": "10m",
            },
            "cooldown": "1h",
        },
        headers=bearer(admin),
    )
    assert created.status_code == 201, created.text
    clinician = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, clinician)
    t0 = minute_floor(datetime.now(UTC)) - timedelta(hours=2)
    values = [80.0] * 10 + [130.0] * 16 + [80.0] * 10  # above 120 from minute 10 to 25
    minute = timedelta(minutes=1)
    response = await send(
        h, clinician, patient_id, "b-1", readings("heart_rate", t0, values[:18], minute)
    )
    assert response.status_code == 201, response.text
    await settle(h)
    assert await alerts_of(h, patient_id) == []  # held 7 minutes so far

    later = t0 + 18 * minute
    response = await send(
        h, clinician, patient_id, "b-2", readings("heart_rate", later, values[18:], minute)
    )
    assert response.status_code == 201
    await settle(h)
    (alert,) = await alerts_of(h, patient_id)
    assert alert.rule_id == "hr-above-120"
    assert alert.fired_at == t0 + 20 * minute  # ten minutes after the first reading above
    assert alert.evidence["facts"]["threshold"] == 120

    # A later hold within the hour's cooldown is held back, not raised.
    response = await send(
        h,
        clinician,
        patient_id,
        "b-3",
        readings("heart_rate", t0 + 40 * minute, [140.0] * 15, minute),
    )
    assert response.status_code == 201
    await settle(h)
    assert len(await alerts_of(h, patient_id)) == 1


async def test_resting_tachycardia_from_daily_readings(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, clinician)
    day0 = minute_floor(datetime.now(UTC)).replace(hour=7, minute=0) - timedelta(days=10)
    values = [90.0, 105, 106, 107, 95, 101, 102, 103, 104, 80]
    response = await send(
        h,
        clinician,
        patient_id,
        "rhr",
        readings("resting_heart_rate", day0, values, timedelta(days=1)),
    )
    assert response.status_code == 201
    await settle(h)
    alerts = await alerts_of(h, patient_id)
    assert [(a.rule_id, a.fired_at) for a in alerts] == [
        ("resting-tachycardia-sustained", day0 + timedelta(days=3)),
        ("resting-tachycardia-sustained", day0 + timedelta(days=7)),
    ]


async def test_the_sweep_raises_a_wearable_data_gap_once(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, clinician)
    quiet = await new_patient(h, clinician, consent=False)
    last = minute_floor(datetime.now(UTC)) - timedelta(days=5)
    minute = timedelta(minutes=1)
    response = await send(
        h,
        clinician,
        patient_id,
        "b-1",
        readings("heart_rate", last - 9 * minute, [70.0] * 10, minute),
    )
    assert response.status_code == 201
    await settle(h)

    not_yet = await sweep(h.runtime, now=last + timedelta(hours=47))
    assert not_yet.gap_alerts == 0
    report = await sweep(h.runtime)
    assert report.ran
    assert report.gap_alerts == 1
    (alert,) = await alerts_of(h, patient_id)
    assert alert.rule_id == "wearable-data-gap"
    assert alert.fired_at == last + timedelta(hours=48)
    assert alert.severity == "info"
    assert (await sweep(h.runtime)).gap_alerts == 0
    assert await alerts_of(h, quiet) == []

    # Data again, then silence again: a new episode, after the cooldown.
    back = last + timedelta(hours=60)
    response = await send(
        h, clinician, patient_id, "b-2", readings("heart_rate", back, [70.0], minute)
    )
    assert response.status_code == 201
    await settle(h)
    assert (await sweep(h.runtime)).gap_alerts == 1
    fired = [a.fired_at for a in await alerts_of(h, patient_id)]
    assert fired == [last + timedelta(hours=48), back + timedelta(hours=48)]


async def test_a_discharged_patient_raises_nothing(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, clinician)
    await h.runtime.outbox.stop()
    response = await submit(h, clinician, patient_id, "phq9", phq9(0, 0, 0, 0, 0, 0, 0, 0, 3))
    assert response.status_code == 201
    discharged = await h.client.post(
        f"/api/v1/patients/{patient_id}/discharge", headers=bearer(clinician)
    )
    assert discharged.status_code in {200, 204}, discharged.text
    (event,) = await outbox(h, "assessment.submitted")
    assert (await handle_event(h.runtime, event)).outcome is Outcome.ignored
    assert await alerts_of(h, patient_id) == []


async def test_a_patients_burst_of_batches_is_evaluated_once(h: Harness) -> None:
    admin = await h.token_for(Role.admin)
    rule = {
        "id": "hr-above-120",
        "name": "Heart rate above 120 for 10 minutes",
        "severity": "high",
        "condition": {
            "kind": "threshold_duration",
            "signal": "heart_rate",
            "op": ">",
            "value": 120,
            "duration": "10m",
        },
        "cooldown": "1h",
    }
    assert (
        await h.client.post("/api/v1/alert-rules", json=rule, headers=bearer(admin))
    ).status_code == 201
    clinician = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, clinician)
    await h.runtime.outbox.stop()
    t0 = minute_floor(datetime.now(UTC)) - timedelta(hours=1)
    minute = timedelta(minutes=1)
    for n in range(3):  # a hold from minute 5 to 25 across three batches of ten minutes
        values = [130.0 if 5 <= n * 10 + m < 26 else 80.0 for m in range(10)]
        batch = readings("heart_rate", t0 + n * 10 * minute, values, minute)
        assert (await send(h, clinician, patient_id, f"b-{n}", batch)).status_code == 201
    payloads = await outbox(h, "biometrics.batch_accepted")
    assert len(payloads) == 3

    results = await handle_events(h.runtime, payloads)
    assert [r.outcome for r in results] == [Outcome.processed] * 3
    (alert,) = await alerts_of(h, patient_id)
    assert alert.fired_at == t0 + 15 * minute
    assert [r.outcome for r in await handle_events(h.runtime, payloads)] == [Outcome.duplicate] * 3
    other = await new_patient(h, clinician)
    mixed = [payloads[0], {**payloads[0], "patient_id": other}]
    with pytest.raises(ValueError, match="one patient"):
        await handle_events(h.runtime, mixed)


async def test_catch_up_delivers_an_event_the_consumer_never_saw(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, clinician)
    await h.runtime.outbox.stop()
    response = await submit(h, clinician, patient_id, "phq9", phq9(0, 0, 0, 0, 0, 0, 0, 0, 1))
    assert response.status_code == 201
    # Published, then the process died before the consumer got to it.
    published = datetime.now(UTC) - timedelta(minutes=5)
    async with h.runtime.db.session(system=True) as session:
        await session.execute(update(OutboxEvent).values(published_at=published))
        await session.commit()
    runner: AlertRunner = h.app.state.alert_runner
    assert await runner.catch_up(published + timedelta(minutes=1)) == 0  # still in flight
    assert await runner.catch_up() == 1
    await runner.idle()
    (alert,) = await alerts_of(h, patient_id)
    assert alert.rule_id == "phq9-item9-positive"
    assert await runner.catch_up() == 0
