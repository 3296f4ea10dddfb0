"""The alerts API: clinicians see the alerts of their own patients only, filter and count
them, acknowledge and resolve them (who, when, an encrypted note; illegal transitions are
409 with a code), each transition emitting its event; unacknowledged alerts escalate."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, text, update

from clarity.alerts.escalation import EscalationPolicy
from clarity.alerts.models import Alert
from clarity.alerts.sweep import escalate, sweep
from clarity.audit.models import AuditEvent
from clarity.auth.models import Role
from tests.api.test_alerts_pipeline import outbox, settle
from tests.api.test_assessments_api import phq9, submit
from tests.api.test_biometrics_ingest import new_patient
from tests.conftest import Harness, bearer

NOTE = "Called the patient; safety plan reviewed with Dr Vexmarrow"


async def _patient_with_alerts(h: Harness, clinician: str, *, severe: bool = False) -> str:
    patient_id = await new_patient(h, clinician)
    answers = phq9(3, 3, 3, 3, 3, 3, 2, 2, 1) if severe else phq9(0, 0, 0, 0, 0, 0, 0, 0, 1)
    response = await submit(h, clinician, patient_id, "phq9", answers)
    assert response.status_code == 201, response.text
    return patient_id


async def _alerts(h: Harness, token: str, **params: Any) -> Any:
    response = await h.client.get("/api/v1/alerts", params=params, headers=bearer(token))
    assert response.status_code == 200, response.text
    return response.json()


async def test_lifecycle_with_notes_events_and_409s(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    patient_id = await _patient_with_alerts(h, clinician)
    await settle(h)
    (alert,) = (await _alerts(h, clinician))["items"]
    url = f"/api/v1/alerts/{alert['id']}"
    assert alert["status"] == "open"

    read = await h.client.get(url, headers=bearer(clinician))
    assert read.status_code == 200
    assert read.json()["rule_id"] == "phq9-item9-positive"

    acked = await h.client.post(
        f"{url}/acknowledge", json={"note": NOTE}, headers=bearer(clinician)
    )
    assert acked.status_code == 200, acked.text
    body = acked.json()
    assert body["status"] == "acknowledged"
    assert body["acknowledge_note"] == NOTE
    assert body["acknowledged_by"] is not None
    assert body["acknowledged_at"] is not None

    again = await h.client.post(f"{url}/acknowledge", headers=bearer(clinician))
    assert again.status_code == 409
    assert again.json()["code"] == "alert_already_acknowledged"

    resolved = await h.client.post(f"{url}/resolve", json={}, headers=bearer(clinician))
    assert resolved.status_code == 200
    assert resolved.json()["status"] == "resolved"
    assert resolved.json()["resolve_note"] is None
    assert resolved.json()["acknowledge_note"] == NOTE
    for action, code in (
        ("resolve", "alert_already_resolved"),
        ("acknowledge", "alert_already_resolved"),
    ):
        refused = await h.client.post(f"{url}/{action}", headers=bearer(clinician))
        assert refused.status_code == 409
        assert refused.json()["code"] == code

    too_long = await h.client.post(
        f"{url}/resolve", json={"note": "x" * 2001}, headers=bearer(clinician)
    )
    assert too_long.status_code == 422

    events = await outbox(h, "alert.acknowledged") + await outbox(h, "alert.resolved")
    assert [e["event_type"] for e in events] == ["alert.acknowledged", "alert.resolved"]
    assert all(e["alert_id"] == alert["id"] and e["patient_id"] == patient_id for e in events)
    assert "Vexmarrow" not in str(events)  # the note stays out of events
    async with h.runtime.db.session(system=True) as session:
        stored = await session.scalar(text("SELECT acknowledge_note FROM alerts"))
        actions = list(
            await session.scalars(
                select(AuditEvent.action).where(AuditEvent.resource_id == patient_id)
            )
        )
    assert stored is not None
    assert "Vexmarrow" not in stored  # encrypted at rest
    assert {"alert.read", "alert.acknowledge", "alert.resolve"} <= set(actions)
    assert "Vexmarrow" not in str(actions)


async def test_clinicians_see_only_their_patients_alerts(h: Harness) -> None:
    owner = await h.token_for(Role.clinician)
    outsider = await h.token_for(Role.clinician)
    admin = await h.token_for(Role.admin)
    mine = await _patient_with_alerts(h, owner)
    theirs = await _patient_with_alerts(h, outsider, severe=True)
    await settle(h)

    own = await _alerts(h, owner)
    assert {a["patient_id"] for a in own["items"]} == {mine}
    assert own["total"] == 1
    everyone = await _alerts(h, admin)
    assert {a["patient_id"] for a in everyone["items"]} == {mine, theirs}
    assert everyone["total"] == 3  # item 9, and for the severe response PHQ-9 >= 20 too

    # Filters: severity, status, patient, since.
    high = await _alerts(h, admin, severity="high")
    assert [a["rule_id"] for a in high["items"]] == ["phq9-severe"]
    assert (await _alerts(h, admin, patient_id=mine))["total"] == 1
    assert (await _alerts(h, admin, status="resolved"))["total"] == 0
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert (await _alerts(h, admin, since=future))["total"] == 0
    naive = await h.client.get(
        "/api/v1/alerts", params={"since": "2026-01-01T00:00:00"}, headers=bearer(admin)
    )
    assert naive.status_code == 422
    assert naive.json()["code"] == "timezone_required"
    bad = await h.client.get("/api/v1/alerts", params={"status": "gone"}, headers=bearer(admin))
    assert bad.status_code == 422
    # Asking for another team's patient by id yields nothing rather than their alerts.
    assert (await _alerts(h, owner, patient_id=theirs))["total"] == 0

    (other,) = [a for a in everyone["items"] if a["rule_id"] == "phq9-severe"]
    for method, suffix in (("GET", ""), ("POST", "/acknowledge"), ("POST", "/resolve")):
        refused = await h.client.request(
            method, f"/api/v1/alerts/{other['id']}{suffix}", headers=bearer(owner)
        )
        assert refused.status_code == 404, (method, suffix)
        assert refused.json()["code"] == "not_found"
    missing = await h.client.get(f"/api/v1/alerts/{uuid.uuid4()}", headers=bearer(owner))
    assert missing.status_code == 404
    assert {k: v for k, v in missing.json().items() if k != "request_id"} == {
        k: v
        for k, v in (await h.client.get(f"/api/v1/alerts/{other['id']}", headers=bearer(owner)))
        .json()
        .items()
        if k != "request_id"
    }

    # The patient-scoped route: the owner gets theirs, the outsider a 404.
    listed = await h.client.get(f"/api/v1/patients/{mine}/alerts", headers=bearer(owner))
    assert listed.status_code == 200
    assert listed.json()["total"] == 1
    assert (
        await h.client.get(f"/api/v1/patients/{theirs}/alerts", headers=bearer(owner))
    ).status_code == 404

    # Break the glass: the outsider's patient opens to the owner for a while.
    grant = await h.client.post(
        f"/api/v1/patients/{theirs}/break-glass",
        json={"reason": "Patient in the emergency department, on-call psychiatrist"},
        headers=bearer(owner),
    )
    assert grant.status_code == 201, grant.text
    assert (await _alerts(h, owner))["total"] == 3
    async with h.runtime.db.session(system=True) as session:
        listing = (
            await session.scalars(
                select(AuditEvent)
                .where(AuditEvent.action == "alert.list")
                .order_by(AuditEvent.occurred_at.desc())
            )
        ).first()
    assert listing is not None
    assert listing.severity == "high"
    assert listing.details["break_glass"] is True


async def test_patients_and_researchers_have_no_alerts_api(h: Harness) -> None:
    for role in (Role.patient, Role.researcher):
        token = await h.token_for(role)
        response = await h.client.get("/api/v1/alerts", headers=bearer(token))
        assert response.status_code == 403
        counts = await h.client.get("/api/v1/alerts/counts", headers=bearer(token))
        assert counts.status_code == 403


async def test_counts_per_patient(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    first = await _patient_with_alerts(h, clinician, severe=True)
    second = await _patient_with_alerts(h, clinician)
    await settle(h)
    (alert,) = (await _alerts(h, clinician, patient_id=second))["items"]
    await h.client.post(f"/api/v1/alerts/{alert['id']}/resolve", headers=bearer(clinician))

    response = await h.client.get("/api/v1/alerts/counts", headers=bearer(clinician))
    assert response.status_code == 200
    counts = {c["patient_id"]: c for c in response.json()["items"]}
    assert counts[first]["total"] == 2
    assert counts[first]["by_status"] == {"open": 2, "acknowledged": 0, "resolved": 0}
    assert counts[first]["by_severity"] == {"info": 0, "warning": 0, "high": 1, "critical": 1}
    assert counts[second]["by_status"]["resolved"] == 1
    open_only = await h.client.get(
        "/api/v1/alerts/counts", params={"status": "open"}, headers=bearer(clinician)
    )
    assert [c["patient_id"] for c in open_only.json()["items"]] == [first]
    outsider = await h.token_for(Role.clinician)
    empty = await h.client.get("/api/v1/alerts/counts", headers=bearer(outsider))
    assert empty.json()["items"] == []


async def test_unacknowledged_alerts_escalate_until_acknowledged(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    await _patient_with_alerts(h, clinician, severe=True)  # a critical and a high alert
    await settle(h)
    async with h.runtime.db.session(system=True) as session:
        critical = await session.scalar(select(Alert).where(Alert.severity == "critical"))
        assert critical is not None
        raised_at = critical.created_at
    policy = EscalationPolicy.parse("critical=15m,high=1h")

    assert await escalate(h.runtime, policy, raised_at + timedelta(minutes=14)) == 0
    assert await escalate(h.runtime, policy, raised_at + timedelta(minutes=16)) == 1
    assert await escalate(h.runtime, policy, raised_at + timedelta(minutes=17)) == 0
    report = await sweep(h.runtime, now=raised_at + timedelta(minutes=61), policy=policy)
    assert report.escalated == 2  # critical: 61 min / 15 = 4 periods, capped at 3; high: 1
    levels = await _levels(h)
    assert levels == {"critical": 3, "high": 1}
    escalations = await outbox(h, "alert.escalated")
    assert [e["escalation_level"] for e in escalations] == [1, 3, 1]

    (high,) = [a for a in (await _alerts(h, clinician))["items"] if a["severity"] == "high"]
    acked = await h.client.post(
        f"/api/v1/alerts/{high['id']}/acknowledge", headers=bearer(clinician)
    )
    assert acked.status_code == 200
    assert await escalate(h.runtime, policy, raised_at + timedelta(hours=5)) == 0
    assert (await _levels(h))["high"] == 1

    # An info alert never escalates under the default policy.
    async with h.runtime.db.session(system=True) as session:
        await session.execute(update(Alert).values(severity="info", status="open"))
        await session.commit()
    assert await escalate(h.runtime, policy, raised_at + timedelta(days=3)) == 0


async def _levels(h: Harness) -> dict[str, int]:
    async with h.runtime.db.session(system=True) as session:
        rows = await session.execute(select(Alert.severity, Alert.escalation_level))
        return {r.severity: r.escalation_level for r in rows.all()}
