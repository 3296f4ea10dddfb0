"""Clinical notes through the real app: write, list, read, amend (history kept, nothing
overwritten), encryption at rest, who is refused (404), and audit records without text."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any

import pytest
from sqlalchemy import select, text

from clarity.audit.models import AuditEvent
from clarity.auth.models import Role
from tests.conftest import Harness, bearer

CANARY_TEXT = "Pt reports hearing the Zorvath choir at 3am; denies SI. Plan: titrate."
CANARY_AMENDED = "Pt reports hearing the Zorvath choir at 4am; denies SI. Plan: hold dose."
CANARY_REASON = "Corrected the Qelmira timing after the call with the night nurse."
CANARIES = ("Zorvath", "Qelmira", "titrate", "hold dose")


async def new_patient(h: Harness, token: str) -> str:
    body = {
        "mrn": f"MRN-{uuid.uuid4().hex[:8]}",
        "given_name": "Ines",
        "family_name": "Notetest",
        "birth_date": "1980-02-03",
    }
    response = await h.client.post("/api/v1/patients", json=body, headers=bearer(token))
    assert response.status_code == 201, response.text
    patient_id: str = response.json()["id"]
    return patient_id


async def write_note(
    h: Harness, token: str, patient_id: str, note_text: str = CANARY_TEXT, kind: str = "progress"
) -> dict[str, Any]:
    response = await h.client.post(
        f"/api/v1/patients/{patient_id}/notes",
        json={"kind": kind, "text": note_text},
        headers=bearer(token),
    )
    assert response.status_code == 201, response.text
    note: dict[str, Any] = response.json()
    return note


async def audit_events(h: Harness, *actions: str) -> list[AuditEvent]:
    async with h.runtime.db.session(system=True) as session:
        rows = await session.scalars(
            select(AuditEvent).where(AuditEvent.action.in_(actions)).order_by(AuditEvent.id)
        )
        return list(rows.all())


async def test_write_list_read_and_amend_keeps_every_version(h: Harness) -> None:
    email, author_id = await h.user(Role.clinician)
    clinician = (await h.login(email))["access_token"]
    patient_id = await new_patient(h, clinician)
    url = f"/api/v1/patients/{patient_id}/notes"

    first = await write_note(h, clinician, patient_id, kind="intake")
    assert first["version"] == 1
    assert first["kind"] == "intake"
    assert first["text"] == CANARY_TEXT
    assert first["author_id"] == str(author_id)
    assert first["version_author_id"] == str(author_id)
    assert first["patient_id"] == patient_id
    second = await write_note(h, clinician, patient_id, "Second note.", kind="progress")

    listed = await h.client.get(url, headers=bearer(clinician))
    assert listed.status_code == 200
    assert [n["id"] for n in listed.json()["items"]] == [second["id"], first["id"]]
    assert listed.json()["total"] == 2
    only_intake = await h.client.get(url, params={"kind": "intake"}, headers=bearer(clinician))
    assert [n["id"] for n in only_intake.json()["items"]] == [first["id"]]

    # Another clinician on the team amends; the earlier text stays in the history.
    other_email, other_id = await h.user(Role.clinician)
    admin = await h.token_for(Role.admin)
    added = await h.client.post(
        f"/api/v1/patients/{patient_id}/care-team",
        json={"user_id": str(other_id)},
        headers=bearer(admin),
    )
    assert added.status_code == 201
    other = (await h.login(other_email))["access_token"]
    amended = await h.client.post(
        f"{url}/{first['id']}/amendments",
        json={"text": CANARY_AMENDED, "reason": CANARY_REASON},
        headers=bearer(other),
    )
    assert amended.status_code == 201, amended.text
    assert amended.json()["version"] == 2
    assert amended.json()["text"] == CANARY_AMENDED
    assert amended.json()["author_id"] == str(author_id)
    assert amended.json()["version_author_id"] == str(other_id)
    assert amended.json()["created_at"] == first["created_at"]

    read = await h.client.get(f"{url}/{first['id']}", headers=bearer(clinician))
    assert read.status_code == 200
    assert (read.json()["version"], read.json()["text"]) == (2, CANARY_AMENDED)
    listed = await h.client.get(url, headers=bearer(admin))
    current = {n["id"]: n["text"] for n in listed.json()["items"]}
    assert current == {first["id"]: CANARY_AMENDED, second["id"]: "Second note."}

    history = await h.client.get(f"{url}/{first['id']}/versions", headers=bearer(clinician))
    assert history.status_code == 200
    versions = history.json()
    assert [v["version"] for v in versions] == [1, 2]
    assert [v["text"] for v in versions] == [CANARY_TEXT, CANARY_AMENDED]
    assert [v["amendment_reason"] for v in versions] == [None, CANARY_REASON]
    assert [v["author_id"] for v in versions] == [str(author_id), str(other_id)]

    # No route overwrites or deletes a note.
    for method in ("PUT", "PATCH", "DELETE"):
        response = await h.client.request(
            method, f"{url}/{first['id']}", json={"text": "x"}, headers=bearer(admin)
        )
        assert response.status_code == 405, (method, response.status_code)
    again = await h.client.get(f"{url}/{first['id']}/versions", headers=bearer(admin))
    assert len(again.json()) == 2


async def test_amendments_are_checked_and_concurrent_ones_both_kept(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, clinician)
    other_patient = await new_patient(h, clinician)
    note = await write_note(h, clinician, patient_id)
    url = f"/api/v1/patients/{patient_id}/notes/{note['id']}"

    unchanged = await h.client.post(
        f"{url}/amendments",
        json={"text": CANARY_TEXT, "reason": "No change"},
        headers=bearer(clinician),
    )
    assert unchanged.status_code == 422
    assert unchanged.json()["code"] == "amendment_unchanged"
    no_reason = await h.client.post(
        f"{url}/amendments", json={"text": "New text"}, headers=bearer(clinician)
    )
    assert no_reason.status_code == 422
    # The note exists, but not under another patient, and unknown ids are 404.
    elsewhere = f"/api/v1/patients/{other_patient}/notes/{note['id']}"
    assert (await h.client.get(elsewhere, headers=bearer(clinician))).status_code == 404
    moved = await h.client.post(
        f"{elsewhere}/amendments", json={"text": "x", "reason": "y"}, headers=bearer(clinician)
    )
    assert moved.status_code == 404
    unknown = f"/api/v1/patients/{patient_id}/notes/{uuid.uuid4()}"
    assert (await h.client.get(unknown, headers=bearer(clinician))).status_code == 404
    assert (await h.client.get(f"{unknown}/versions", headers=bearer(clinician))).status_code == 404

    results = await asyncio.gather(
        *(
            h.client.post(
                f"{url}/amendments",
                json={"text": f"Concurrent amendment {i}", "reason": "Race"},
                headers=bearer(clinician),
            )
            for i in range(4)
        )
    )
    assert [r.status_code for r in results] == [201] * 4, [r.text for r in results]
    assert sorted(r.json()["version"] for r in results) == [2, 3, 4, 5]
    history = await h.client.get(f"{url}/versions", headers=bearer(clinician))
    assert [v["version"] for v in history.json()] == [1, 2, 3, 4, 5]
    read = await h.client.get(url, headers=bearer(clinician))
    assert read.json()["version"] == 5


async def test_bad_input_is_refused_without_echo(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, clinician)
    url = f"/api/v1/patients/{patient_id}/notes"
    cases = [
        {"kind": "gossip", "text": CANARY_TEXT},
        {"kind": "progress", "text": ""},
        {"kind": "progress", "text": "   \n  "},
        {"kind": "progress", "text": "Zorvath " * 6_250 + "x"},  # 50,001 characters
        {"kind": "progress", "text": CANARY_TEXT, "author_id": str(uuid.uuid4())},
    ]
    for body in cases:
        response = await h.client.post(url, json=body, headers=bearer(clinician))
        assert response.status_code == 422, response.text
        for canary in CANARIES:
            assert canary not in response.text
    longest = await write_note(h, clinician, patient_id, "y" * 50_000)
    assert len(longest["text"]) == 50_000
    listed = await h.client.get(url, headers=bearer(clinician))
    assert listed.json()["total"] == 1


async def test_raw_rows_hold_no_plaintext(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, clinician)
    note = await write_note(h, clinician, patient_id)
    amended = await h.client.post(
        f"/api/v1/patients/{patient_id}/notes/{note['id']}/amendments",
        json={"text": CANARY_AMENDED, "reason": CANARY_REASON},
        headers=bearer(clinician),
    )
    assert amended.status_code == 201
    async with h.runtime.db.engine.connect() as conn:
        versions = (await conn.execute(text("SELECT * FROM note_versions"))).all()
        notes = (await conn.execute(text("SELECT * FROM notes"))).all()
    assert len(versions) == 2
    dump = repr(versions) + repr(notes)
    for canary in CANARIES:
        assert canary not in dump, canary


async def test_patients_off_team_clinicians_and_researchers_get_404(h: Harness) -> None:
    admin = await h.token_for(Role.admin)
    clinician = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, clinician)
    note = await write_note(h, clinician, patient_id)
    email, user_id = await h.user(Role.patient)
    linked = await h.client.post(
        f"/api/v1/patients/{patient_id}/account",
        json={"user_id": str(user_id)},
        headers=bearer(admin),
    )
    assert linked.status_code == 204
    patient = (await h.login(email))["access_token"]
    # The linked patient reaches their record, but not the notes about them.
    own = await h.client.get(f"/api/v1/patients/{patient_id}", headers=bearer(patient))
    assert own.status_code == 200
    off_team = await h.token_for(Role.clinician)
    researcher = await h.token_for(Role.researcher)

    url = f"/api/v1/patients/{patient_id}/notes"
    calls: list[tuple[str, str, dict[str, str] | None]] = [
        ("GET", url, None),
        ("GET", f"{url}/{note['id']}", None),
        ("GET", f"{url}/{note['id']}/versions", None),
        ("POST", url, {"kind": "other", "text": "Sneaky"}),
        ("POST", f"{url}/{note['id']}/amendments", {"text": "Sneaky", "reason": "Because"}),
    ]
    for token in (patient, off_team, researcher):
        for method, target, body in calls:
            response = await h.client.request(method, target, json=body, headers=bearer(token))
            assert response.status_code == 404, (method, target, response.text)
            assert response.json()["code"] == "not_found"
            assert "Zorvath" not in response.text
    for method, target, _ in calls[:3]:
        assert (await h.client.request(method, target, headers=bearer(admin))).status_code == 200

    history = await h.client.get(f"{url}/{note['id']}/versions", headers=bearer(admin))
    assert [v["version"] for v in history.json()] == [1]  # nothing was written by the refused
    denied = await audit_events(h, "patient.access")
    reasons = [e.details["reason"] for e in denied if e.resource_id == patient_id]
    # Patients may read their record but not its notes; they may never write them.
    assert reasons.count("notes_not_released") == 3
    assert reasons.count("role") == 2 + len(calls)  # the patient's writes, the researcher
    assert reasons.count("not_on_care_team") == len(calls)
    assert all(e.outcome == "denied" for e in denied)


async def test_break_glass_reader_is_audited_high(h: Harness) -> None:
    owner = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, owner)
    await write_note(h, owner, patient_id)
    emergency = await h.token_for(Role.clinician)
    url = f"/api/v1/patients/{patient_id}/notes"
    assert (await h.client.get(url, headers=bearer(emergency))).status_code == 404
    grant = await h.client.post(
        f"/api/v1/patients/{patient_id}/break-glass",
        json={"reason": "Patient in crisis at the emergency desk"},
        headers=bearer(emergency),
    )
    assert grant.status_code == 201
    listed = await h.client.get(url, headers=bearer(emergency))
    assert listed.status_code == 200
    assert listed.json()["total"] == 1
    events = await audit_events(h, "note.list")
    assert [(e.severity, e.details.get("break_glass")) for e in events] == [("high", True)]


async def test_every_read_and_write_is_audited_without_text(
    h: Harness, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The test client's own logger prints full URLs; only the application is under test.
    monkeypatch.setattr(logging.getLogger("httpx"), "disabled", True)
    email, clinician_id = await h.user(Role.clinician)
    clinician = (await h.login(email))["access_token"]
    patient_id = await new_patient(h, clinician)
    note = await write_note(h, clinician, patient_id)
    url = f"/api/v1/patients/{patient_id}/notes"
    await h.client.get(url, headers=bearer(clinician))
    await h.client.get(f"{url}/{note['id']}", headers=bearer(clinician))
    amended = await h.client.post(
        f"{url}/{note['id']}/amendments",
        json={"text": CANARY_AMENDED, "reason": CANARY_REASON},
        headers=bearer(clinician),
    )
    assert amended.status_code == 201
    await h.client.get(f"{url}/{note['id']}/versions", headers=bearer(clinician))
    bad = await h.client.post(url, json={"kind": "Zorvath", "text": 7}, headers=bearer(clinician))
    assert bad.status_code == 422

    actions = ("note.create", "note.list", "note.read", "note.amend", "note.versions.read")
    events = await audit_events(h, *actions)
    assert [e.action for e in events] == list(actions)
    for event in events:
        assert event.resource_type == "patient"
        assert event.resource_id == patient_id
        assert event.actor_id == clinician_id
        assert event.outcome == "success"
    assert events[0].details == {"note_id": note["id"], "kind": "progress", "version": 1}
    assert events[1].details == {"count": 1, "note_ids": [note["id"]]}
    assert events[3].details["version"] == 2
    assert events[4].details == {"note_id": note["id"], "versions": [1, 2]}
    dump = json.dumps([e.details for e in events])
    captured = capfd.readouterr()
    for canary in CANARIES:
        assert canary not in dump, canary
        assert canary not in captured.out + captured.err, canary
