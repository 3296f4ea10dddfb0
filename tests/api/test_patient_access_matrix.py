"""The access matrix: every patient-scoped route (found by walking the app, so routes added
later are covered) refuses a clinician off the care team, another patient and a
researcher with 404; break-the-glass opens the record for a limited time, and is audited."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.routing import APIRoute
from sqlalchemy import func, select, update

from clarity.app import walk_routes
from clarity.audit.models import AuditEvent
from clarity.auth.models import Role
from clarity.database import utcnow
from clarity.patients.models import BreakGlassGrant
from tests.api.test_patients import create
from tests.conftest import Harness, bearer


def patient_scoped_routes(h: Harness) -> list[tuple[str, str]]:
    """(method, path template) of every route that resolves its patient via patient_scope."""
    found: list[tuple[str, str]] = []
    for path, route in walk_routes(h.app.routes):
        if not isinstance(route, APIRoute) or "{patient_id}" not in path:
            continue
        calls = [d.call for d in route.dependant.dependencies]
        if any(getattr(c, "__name__", "") == "resolve_patient" for c in calls):
            found.extend((method, path) for method in sorted(route.methods or ()))
    return found


def fill(path: str, patient_id: str) -> str:
    url = path.replace("{patient_id}", patient_id)
    while "{" in url:  # any other id in the path: a random one (the 404 comes first)
        start, end = url.index("{"), url.index("}")
        url = url[:start] + str(uuid.uuid4()) + url[end + 1 :]
    return url


async def _setup(h: Harness) -> dict[str, Any]:
    owner = await h.token_for(Role.clinician)
    patient = await create(h, owner)
    admin = await h.token_for(Role.admin)
    other_patient = await create(h, owner)
    email, user_id = await h.user(Role.patient)
    await h.client.post(
        f"/api/v1/patients/{other_patient['id']}/account",
        json={"user_id": str(user_id)},
        headers=bearer(admin),
    )
    return {
        "patient": patient,
        "owner": owner,
        "admin": admin,
        "outsider": await h.token_for(Role.clinician),
        "other_patient": (await h.login(email))["access_token"],
        "researcher": await h.token_for(Role.researcher),
    }


async def test_every_patient_scoped_route_refuses_with_404(h: Harness) -> None:
    routes = patient_scoped_routes(h)
    assert len(routes) >= 7, routes  # read, update, discharge, care team x3, account, ...
    s = await _setup(h)
    patient_id = s["patient"]["id"]
    for who in ("outsider", "other_patient", "researcher"):
        for method, path in routes:
            response = await h.client.request(
                method, fill(path, patient_id), headers=bearer(s[who]), json={}
            )
            assert response.status_code == 404, (who, method, path, response.text)
            assert response.json()["code"] == "not_found"
            assert s["patient"]["given_name"] not in response.text
    # The owner reaches the record; the refusals were about the patient, not the route.
    ok = await h.client.get(f"/api/v1/patients/{patient_id}", headers=bearer(s["owner"]))
    assert ok.status_code == 200
    async with h.runtime.db.session(system=True) as session:
        denied = (
            await session.scalars(
                select(AuditEvent).where(
                    AuditEvent.action == "patient.access", AuditEvent.outcome == "denied"
                )
            )
        ).all()
    assert len(denied) >= 3 * len(routes)


async def test_a_missing_patient_is_the_same_404_as_a_forbidden_one(h: Harness) -> None:
    s = await _setup(h)
    forbidden = await h.client.get(
        f"/api/v1/patients/{s['patient']['id']}", headers=bearer(s["outsider"])
    )
    missing = await h.client.get(f"/api/v1/patients/{uuid.uuid4()}", headers=bearer(s["outsider"]))
    strip = {"request_id"}
    assert {k: v for k, v in forbidden.json().items() if k not in strip} == {
        k: v for k, v in missing.json().items() if k not in strip
    }


async def test_break_the_glass_opens_expires_and_is_audited(h: Harness) -> None:
    s = await _setup(h)
    url = f"/api/v1/patients/{s['patient']['id']}"
    assert (await h.client.get(url, headers=bearer(s["outsider"]))).status_code == 404

    too_short = await h.client.post(
        f"{url}/break-glass", json={"reason": "need"}, headers=bearer(s["outsider"])
    )
    assert too_short.status_code == 422
    grant = await h.client.post(
        f"{url}/break-glass",
        json={"reason": "Patient in the emergency department, on-call psychiatrist"},
        headers=bearer(s["outsider"]),
    )
    assert grant.status_code == 201, grant.text
    assert (await h.client.get(url, headers=bearer(s["outsider"]))).status_code == 200

    # Researchers and patients cannot break the glass.
    for who in ("researcher", "other_patient"):
        refused = await h.client.post(
            f"{url}/break-glass",
            json={"reason": "Patient in the emergency department"},
            headers=bearer(s[who]),
        )
        assert refused.status_code in {403, 404}

    # Admins see the grant.
    listed = await h.client.get("/api/v1/break-glass?active=true", headers=bearer(s["admin"]))
    assert [g["id"] for g in listed.json()] == [grant.json()["id"]]

    async with h.runtime.db.session(system=True) as session:
        events = (
            await session.scalars(
                select(AuditEvent).where(AuditEvent.resource_id == s["patient"]["id"])
            )
        ).all()
        # Time passes: the grant expires.
        await session.execute(
            update(BreakGlassGrant).values(expires_at=utcnow().replace(year=2020))
        )
        await session.commit()
    opened = [e for e in events if e.action == "patient.break_glass"]
    assert len(opened) == 1
    assert opened[0].severity == "high"
    reads = [e for e in events if e.action == "patient.read" and e.details.get("break_glass")]
    assert reads
    assert all(e.severity == "high" for e in reads)
    assert "emergency" not in str([e.details for e in events])  # the reason is not logged

    assert (await h.client.get(url, headers=bearer(s["outsider"]))).status_code == 404
    listed = await h.client.get("/api/v1/break-glass?active=true", headers=bearer(s["admin"]))
    assert listed.json() == []


_RANGE = {"start": "2026-01-05T00:00:00Z", "end": "2026-01-06T00:00:00Z"}
# Required query parameters of the reads that have some (by the end of their path).
READ_PARAMS: list[tuple[str, dict[str, str]]] = [
    ("/trend", {"instrument_id": "phq9"}),
    ("/biometrics/samples", {"stream": "heart_rate", **_RANGE}),
    ("/biometrics/aggregates", {"stream": "heart_rate", "bucket": "1h", **_RANGE}),
    ("/biometrics/coverage", {"stream": "heart_rate", **_RANGE}),
    ("/biometrics/export", {"format": "csv", **_RANGE}),
]


async def test_every_patient_scoped_read_leaves_an_audit_record(h: Harness) -> None:
    s = await _setup(h)
    patient_id = s["patient"]["id"]
    reads = [p for m, p in patient_scoped_routes(h) if m == "GET" and p.count("{") == 1]
    assert len(reads) >= 8, reads  # record, care team, fhir, notes, consents, assessments...
    for path in reads:
        async with h.runtime.db.engine.connect() as conn:
            before = await _audit_count(conn, patient_id)
        url = fill(path, patient_id)
        params = next((p for end, p in READ_PARAMS if path.endswith(end)), None)
        response = await h.client.get(url, params=params, headers=bearer(s["owner"]))
        if path.endswith("/actigraphy/summary"):  # no wearable data yet: refused, still audited
            assert response.json().get("code") == "insufficient_data", (path, response.text)
        else:
            assert response.status_code == 200, (path, response.text)
        async with h.runtime.db.engine.connect() as conn:
            assert await _audit_count(conn, patient_id) > before, path


async def _audit_count(conn: Any, patient_id: str) -> int:
    result = await conn.execute(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.resource_id == patient_id)
    )
    return int(result.scalar_one())
