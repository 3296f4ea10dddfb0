"""Assessments through the real app: the instrument catalogue, submission scored on the
server, the safety signal and its event, refusals that leave no row, who may submit what,
history, trends, and the audit trail."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import func, select

from clarity.assessments.models import AssessmentResponse
from clarity.audit.models import AuditEvent
from clarity.auth.models import Role
from clarity.events import InProcessBus
from tests.conftest import Harness, bearer

PATIENT = {
    "given_name": "Quillon",
    "family_name": "Vexmarrow",
    "birth_date": "1961-07-14",
    "timezone": "Europe/Oslo",
}
T0 = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


def phq9(*values: int) -> dict[str, int]:
    assert len(values) == 9
    return {f"phq9_{n}": v for n, v in enumerate(values, start=1)}


async def new_patient(h: Harness, token: str) -> str:
    response = await h.client.post(
        "/api/v1/patients",
        json={**PATIENT, "mrn": f"MRN-{uuid.uuid4().hex[:8]}"},
        headers=bearer(token),
    )
    assert response.status_code == 201, response.text
    patient_id: str = response.json()["id"]
    return patient_id


async def linked_patient_token(h: Harness, admin: str, patient_id: str) -> str:
    email, user_id = await h.user(Role.patient)
    linked = await h.client.post(
        f"/api/v1/patients/{patient_id}/account",
        json={"user_id": str(user_id)},
        headers=bearer(admin),
    )
    assert linked.status_code == 204, linked.text
    return (await h.login(email))["access_token"]


async def submit(
    h: Harness,
    token: str,
    patient_id: str,
    instrument_id: str,
    answers: dict[str, int],
    **extra: Any,
) -> Any:
    return await h.client.post(
        f"/api/v1/patients/{patient_id}/assessments",
        json={"instrument_id": instrument_id, "answers": answers, **extra},
        headers=bearer(token),
    )


async def row_count(h: Harness) -> int:
    async with h.runtime.db.session(system=True) as session:
        return await session.scalar(select(func.count()).select_from(AssessmentResponse)) or 0


async def audit_rows(h: Harness, patient_id: str) -> list[AuditEvent]:
    async with h.runtime.db.session(system=True) as session:
        rows = await session.scalars(
            select(AuditEvent).where(AuditEvent.resource_id == patient_id).order_by(AuditEvent.id)
        )
        return list(rows.all())


def events(h: Harness) -> list[dict[str, Any]]:
    bus = h.runtime.bus
    assert isinstance(bus, InProcessBus)
    received: list[dict[str, Any]] = []

    async def handler(payload: dict[str, Any]) -> None:
        received.append(payload)

    bus.subscribe("assessment.submitted", handler)
    return received


async def test_catalogue_is_served_to_any_signed_in_user(h: Harness) -> None:
    patient = await h.token_for(Role.patient)
    listed = await h.client.get("/api/v1/instruments", headers=bearer(patient))
    assert listed.status_code == 200
    ids = [i["id"] for i in listed.json()]
    assert ids == sorted(ids)
    assert {"phq9", "gad7", "madrs", "who5"} <= set(ids)

    one = await h.client.get("/api/v1/instruments/phq9", headers=bearer(patient))
    assert one.status_code == 200
    body = one.json()
    assert [i["id"] for i in body["items"]] == [f"phq9_{n}" for n in range(1, 10)]
    assert [o["value"] for o in body["items"][8]["options"]] == [0, 1, 2, 3]
    assert body["loinc"]["total_score"] == "44261-6"
    assert [(b["min"], b["max"]) for b in body["severity"]["bands"]][2] == (10, 14)
    assert body["citation"]["year"] > 1990
    assert body["respondent"] == "self"

    missing = await h.client.get("/api/v1/instruments/nosuch", headers=bearer(patient))
    assert missing.status_code == 404
    assert (await h.client.get("/api/v1/instruments")).status_code == 401


async def test_submit_scores_on_the_server_and_reads_back(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, clinician)

    created = await submit(
        h,
        clinician,
        patient_id,
        "phq9",
        phq9(2, 2, 1, 2, 1, 1, 2, 1, 0),
        administered_at=T0.isoformat(),
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["total"] == 12
    assert body["severity"] == "moderate"
    assert body["severity_label"]
    assert body["safety_signal"] is False
    assert body["safety_flags"] == []
    assert body["answered"] == 9
    assert body["prorated"] is False
    assert body["instrument_version"] == "1.0.0"
    assert datetime.fromisoformat(body["administered_at"]) == T0
    assert body["patient_id"] == patient_id

    history = await h.client.get(
        f"/api/v1/patients/{patient_id}/assessments", headers=bearer(clinician)
    )
    assert history.status_code == 200
    page = history.json()
    assert page["total"] == 1
    (item,) = page["items"]
    assert item["id"] == body["id"]
    assert item["answers"] == phq9(2, 2, 1, 2, 1, 1, 2, 1, 0)
    assert (item["total"], item["severity"]) == (12, "moderate")


async def test_severity_bands_follow_the_instrument(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, clinician)
    cases = [
        ((0, 0, 0, 0, 0, 0, 0, 0, 0), 0, "minimal"),
        ((1, 1, 1, 1, 1, 0, 0, 0, 0), 5, "mild"),
        ((3, 3, 3, 3, 3, 0, 0, 0, 0), 15, "moderately_severe"),
        ((3, 3, 3, 3, 3, 3, 2, 0, 0), 20, "severe"),
    ]
    for n, (values, total, band) in enumerate(cases):
        at = (T0 + timedelta(days=n)).isoformat()
        response = await submit(h, clinician, patient_id, "phq9", phq9(*values), administered_at=at)
        assert response.status_code == 201, response.text
        assert (response.json()["total"], response.json()["severity"]) == (total, band)
    who5 = await submit(h, clinician, patient_id, "who5", {f"who5_{n}": 3 for n in range(1, 6)})
    assert who5.status_code == 201, who5.text
    assert who5.json()["total"] == 15
    assert who5.json()["derived_score"] == 60.0
    assert who5.json()["severity"] == "not_indicated"


async def test_item_nine_raises_the_safety_signal_and_the_event(h: Harness) -> None:
    received = events(h)
    clinician = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, clinician)

    response = await submit(h, clinician, patient_id, "phq9", phq9(0, 1, 0, 0, 0, 0, 0, 0, 1))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["total"] == 2
    assert body["severity"] == "minimal"
    assert body["safety_signal"] is True  # whatever the total
    assert [f["item_id"] for f in body["safety_flags"]] == ["phq9_9"]

    await h.drain_events()
    (event,) = received
    assert event["patient_id"] == patient_id
    assert event["response_id"] == body["id"]
    assert event["instrument_id"] == "phq9"
    assert event["total"] == 2
    assert event["severity"] == "minimal"
    assert event["safety_signal"] is True
    assert event["safety_flags"] == ["phq9_item9_positive"]
    assert event["items"] == {"phq9_9": 1}
    uuid.UUID(event["event_id"])
    me = await h.client.get("/api/v1/auth/me", headers=bearer(clinician))
    assert event["organization_id"] == me.json()["organization_id"]
    dump = repr(event)
    for secret in (PATIENT["given_name"], PATIENT["family_name"], PATIENT["birth_date"], "MRN-"):
        assert secret not in dump
    # Only the items alert rules read travel with the event, not the whole answer set.
    assert "phq9_1" not in dump

    calm = await submit(h, clinician, patient_id, "phq9", phq9(0, 1, 0, 0, 0, 0, 0, 0, 0))
    assert calm.json()["safety_signal"] is False
    await h.drain_events()
    assert received[-1]["safety_signal"] is False
    assert received[-1]["items"] == {"phq9_9": 0}
    assert received[-1]["event_id"] != event["event_id"]


async def test_bad_answers_are_a_422_naming_the_item_and_write_nothing(h: Harness) -> None:
    received = events(h)
    clinician = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, clinician)
    answers = phq9(1, 1, 1, 1, 1, 1, 1, 1, 1)

    missing = dict(answers)
    del missing["phq9_9"]
    response = await submit(h, clinician, patient_id, "phq9", missing)
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_answers"
    assert response.json()["errors"] == [
        {"field": "answers.phq9_9", "message": "not answered", "type": "missing"}
    ]

    out_of_range = {**answers, "phq9_3": 7}
    response = await submit(h, clinician, patient_id, "phq9", out_of_range)
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert (error["field"], error["type"]) == ("answers.phq9_3", "out_of_range")
    assert "7" not in error["message"]
    assert "7" not in response.json()["detail"]

    # An unknown key that does not look like an item id is not repeated back.
    leaky = {**answers, "Quillon Vexmarrow": 2}
    response = await submit(h, clinician, patient_id, "phq9", leaky)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "answers"
    assert "Quillon" not in response.text

    not_int = await submit(h, clinician, patient_id, "phq9", {**answers, "phq9_2": "2"})  # type: ignore[dict-item]
    assert not_int.status_code == 422
    assert not_int.json()["errors"][0]["field"] == "body.answers.phq9_2"

    future = await submit(
        h,
        clinician,
        patient_id,
        "phq9",
        answers,
        administered_at=(datetime.now(UTC) + timedelta(days=1)).isoformat(),
    )
    assert future.status_code == 422
    assert future.json()["errors"][0]["field"] == "body.administered_at"
    naive = await submit(
        h, clinician, patient_id, "phq9", answers, administered_at="2026-01-05T09:30:00"
    )
    assert naive.status_code == 422

    unknown = await submit(h, clinician, patient_id, "nosuch", answers)
    assert unknown.status_code == 422
    assert unknown.json()["code"] == "unknown_instrument"
    assert unknown.json()["errors"][0]["field"] == "instrument_id"

    assert await row_count(h) == 0
    await h.drain_events()
    assert received == []
    actions = {a.action for a in await audit_rows(h, patient_id)}
    assert "assessment.submit" not in actions


async def test_duplicate_time_is_a_conflict(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, clinician)
    answers = phq9(1, 1, 1, 1, 1, 1, 1, 1, 0)
    first = await submit(h, clinician, patient_id, "phq9", answers, administered_at=T0.isoformat())
    assert first.status_code == 201
    again = await submit(
        h,
        clinician,
        patient_id,
        "phq9",
        answers,
        administered_at=T0.astimezone(timezone(timedelta(hours=2))).isoformat(),  # the same instant
    )
    assert again.status_code == 409
    assert again.json()["code"] == "duplicate_assessment"
    assert await row_count(h) == 1


async def test_who_may_not_reach_the_patient_gets_404(h: Harness) -> None:
    admin = await h.token_for(Role.admin)
    owner = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, owner)
    other_record = await new_patient(h, owner)
    answers = phq9(1, 1, 1, 1, 1, 1, 1, 1, 0)
    assert (await submit(h, owner, patient_id, "phq9", answers)).status_code == 201

    outsiders = {
        "clinician off the team": await h.token_for(Role.clinician),
        "another patient": await linked_patient_token(h, admin, other_record),
        "researcher": await h.token_for(Role.researcher),
    }
    base = f"/api/v1/patients/{patient_id}/assessments"
    for who, token in outsiders.items():
        posted = await submit(h, token, patient_id, "phq9", answers)
        assert posted.status_code == 404, who
        assert posted.json()["code"] == "not_found", who
        for url in (base, f"{base}/trend?instrument_id=phq9"):
            got = await h.client.get(url, headers=bearer(token))
            assert got.status_code == 404, (who, url)
            assert "Quillon" not in got.text
    assert await row_count(h) == 1
    unknown = await h.client.get(
        f"/api/v1/patients/{uuid.uuid4()}/assessments", headers=bearer(admin)
    )
    assert unknown.status_code == 404


async def test_linked_patient_submits_self_report_but_not_clinician_rated(h: Harness) -> None:
    admin = await h.token_for(Role.admin)
    clinician = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, clinician)
    patient = await linked_patient_token(h, admin, patient_id)

    own = await submit(h, patient, patient_id, "phq9", phq9(1, 1, 1, 1, 1, 1, 1, 1, 0))
    assert own.status_code == 201, own.text
    assert own.json()["total"] == 8
    me = await h.client.get("/api/v1/auth/me", headers=bearer(patient))
    assert own.json()["recorded_by"] == me.json()["id"]

    madrs = {f"madrs_{n}": 2 for n in range(1, 11)}
    refused = await submit(h, patient, patient_id, "madrs", madrs)
    assert refused.status_code == 403
    assert refused.json()["code"] == "clinician_rated_instrument"
    assert await row_count(h) == 1

    rated = await submit(h, clinician, patient_id, "madrs", madrs)
    assert rated.status_code == 201, rated.text
    assert (rated.json()["total"], rated.json()["severity"]) == (20, "moderate")
    assert (
        await submit(h, admin, patient_id, "gad7", {f"gad7_{n}": 1 for n in range(1, 8)})
    ).status_code == 201

    # The patient reads their own history, newest first.
    history = await h.client.get(
        f"/api/v1/patients/{patient_id}/assessments", headers=bearer(patient)
    )
    assert history.status_code == 200
    assert [i["instrument_id"] for i in history.json()["items"]] == ["gad7", "madrs", "phq9"]

    denied = [
        a
        for a in await audit_rows(h, patient_id)
        if a.action == "assessment.submit" and a.outcome == "denied"
    ]
    assert len(denied) == 1
    assert denied[0].details["reason"] == "clinician_rated"


async def test_history_is_newest_first_filtered_and_paged(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, clinician)
    for day in (3, 1, 2):
        at = (T0 + timedelta(days=day)).isoformat()
        values = (day, 0, 0, 0, 0, 0, 0, 0, 0)
        assert (
            await submit(h, clinician, patient_id, "phq9", phq9(*values), administered_at=at)
        ).status_code == 201
    gad = {f"gad7_{n}": 0 for n in range(1, 8)}
    at = (T0 + timedelta(days=10)).isoformat()
    assert (
        await submit(h, clinician, patient_id, "gad7", gad, administered_at=at)
    ).status_code == 201

    url = f"/api/v1/patients/{patient_id}/assessments"
    everything = (await h.client.get(url, headers=bearer(clinician))).json()
    assert everything["total"] == 4
    assert [i["instrument_id"] for i in everything["items"]] == ["gad7", "phq9", "phq9", "phq9"]

    only = await h.client.get(url, params={"instrument_id": "phq9"}, headers=bearer(clinician))
    assert [i["total"] for i in only.json()["items"]] == [3, 2, 1]
    page = await h.client.get(
        url, params={"instrument_id": "phq9", "limit": 1, "offset": 1}, headers=bearer(clinician)
    )
    assert page.json()["total"] == 3
    assert [i["total"] for i in page.json()["items"]] == [2]

    bad = await h.client.get(url, params={"instrument_id": "nosuch"}, headers=bearer(clinician))
    assert bad.status_code == 422
    too_many = await h.client.get(url, params={"limit": 1000}, headers=bearer(clinician))
    assert too_many.status_code == 422


async def test_trend_reports_change_and_reliable_change(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, clinician)
    # Submitted out of order: the trend orders by administration time. PHQ-9 threshold: 5.
    series = [
        (2, (3, 3, 2, 2, 2, 2, 1, 0, 0)),  # 15
        (0, (3, 3, 3, 3, 3, 3, 2, 0, 0)),  # 20, baseline
        (1, (2, 2, 2, 2, 2, 2, 2, 0, 0)),  # 14
    ]
    for day, values in series:
        at = (T0 + timedelta(days=7 * day)).isoformat()
        response = await submit(h, clinician, patient_id, "phq9", phq9(*values), administered_at=at)
        assert response.status_code == 201, response.text

    url = f"/api/v1/patients/{patient_id}/assessments/trend"
    trend = await h.client.get(url, params={"instrument_id": "phq9"}, headers=bearer(clinician))
    assert trend.status_code == 200, trend.text
    body = trend.json()
    assert body["instrument_id"] == "phq9"
    assert body["reliable_change_threshold"] == 5
    assert body["higher_is_worse"] is True
    points = body["points"]
    assert [p["total"] for p in points] == [20, 14, 15]
    assert [datetime.fromisoformat(p["administered_at"]) for p in points] == [
        T0,
        T0 + timedelta(days=7),
        T0 + timedelta(days=14),
    ]
    assert [p["change_from_previous"] for p in points] == [None, -6, 1]
    assert [p["change_from_baseline"] for p in points] == [None, -6, -5]
    assert [p["direction_from_previous"] for p in points] == [None, "improved", "worsened"]
    assert [p["reliable_from_previous"] for p in points] == [None, True, False]
    assert [p["reliable_from_baseline"] for p in points] == [None, True, True]
    assert [p["severity"] for p in points] == ["severe", "moderate", "moderately_severe"]

    # WHO-5: higher is better, and its threshold (10) is on the percentage scale (raw x 4).
    for day, value in ((0, 2), (1, 3)):
        at = (T0 + timedelta(days=day)).isoformat()
        answers = {f"who5_{n}": value for n in range(1, 6)}
        assert (
            await submit(h, clinician, patient_id, "who5", answers, administered_at=at)
        ).status_code == 201
    who5 = await h.client.get(url, params={"instrument_id": "who5"}, headers=bearer(clinician))
    (first, second) = who5.json()["points"]
    assert (first["derived_score"], second["derived_score"]) == (40.0, 60.0)
    assert second["change_from_baseline"] == 5
    assert second["direction_from_baseline"] == "improved"
    assert second["reliable_from_baseline"] is True

    # No published threshold: reliability is unknown, not "no".
    empty = await h.client.get(url, params={"instrument_id": "gad2"}, headers=bearer(clinician))
    assert empty.json()["points"] == []
    assert empty.json()["reliable_change_threshold"] is None
    assert (await h.client.get(url, headers=bearer(clinician))).status_code == 422
    unknown = await h.client.get(url, params={"instrument_id": "nosuch"}, headers=bearer(clinician))
    assert unknown.status_code == 422


async def test_submissions_and_reads_are_audited(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, clinician)
    created = await submit(h, clinician, patient_id, "phq9", phq9(1, 1, 1, 1, 1, 1, 1, 1, 1))
    base = f"/api/v1/patients/{patient_id}/assessments"
    assert (await h.client.get(base, headers=bearer(clinician))).status_code == 200
    trend = await h.client.get(f"{base}/trend?instrument_id=phq9", headers=bearer(clinician))
    assert trend.status_code == 200

    rows = {a.action: a for a in await audit_rows(h, patient_id)}
    assert {"assessment.submit", "assessment.list", "assessment.trend"} <= set(rows)
    submitted = rows["assessment.submit"]
    assert submitted.outcome == "success"
    assert submitted.details["response_id"] == created.json()["id"]
    assert submitted.details["instrument_id"] == "phq9"
    assert rows["assessment.list"].details["ids"] == [created.json()["id"]]
    assert rows["assessment.trend"].details == {"instrument_id": "phq9", "count": 1}
    me = await h.client.get("/api/v1/auth/me", headers=bearer(clinician))
    assert {str(a.actor_id) for a in rows.values()} == {me.json()["id"]}
    # Audit details carry ids and codes, never the answers.
    assert "phq9_1" not in repr([a.details for a in rows.values()])


async def test_a_failing_subscriber_does_not_lose_the_response(h: Harness) -> None:
    bus = h.runtime.bus
    assert isinstance(bus, InProcessBus)

    async def broken(_: dict[str, Any]) -> None:
        raise RuntimeError("subscriber down")

    bus.subscribe("assessment.submitted", broken)
    clinician = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, clinician)
    response = await submit(h, clinician, patient_id, "phq9", phq9(0, 0, 0, 0, 0, 0, 0, 0, 2))
    assert response.status_code == 201
    assert await row_count(h) == 1
