"""Diagnoses and medication statements through the real app: create, list, update,
ICD-10-CM normalisation, catalogue checks with suggestions, date rules, the active filter,
the 404 rules of patient scope and record ids, audit records, and the catalogue search."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import func, select

from clarity.audit.models import AuditEvent
from clarity.auth.models import Role
from clarity.clinical.models import Diagnosis, MedicationStatement
from tests.conftest import Harness, bearer

# The patients below live in UTC, so "today" for the active filter is the UTC date; every
# date these tests use is at least a day away from the boundary it tests.
TODAY = datetime.now(UTC).date()


def days(n: int) -> str:
    return (TODAY + timedelta(days=n)).isoformat()


async def new_patient(h: Harness, token: str) -> str:
    response = await h.client.post(
        "/api/v1/patients",
        json={
            "mrn": f"MRN-{uuid.uuid4().hex[:8]}",
            "given_name": "Quillon",
            "family_name": "Vexmarrow",
            "birth_date": "1961-07-14",
            "timezone": "UTC",
        },
        headers=bearer(token),
    )
    assert response.status_code == 201, response.text
    patient_id: str = response.json()["id"]
    return patient_id


def diagnoses(patient_id: str) -> str:
    return f"/api/v1/patients/{patient_id}/diagnoses"


def medications(patient_id: str) -> str:
    return f"/api/v1/patients/{patient_id}/medications"


SERTRALINE = {
    "drug": "Zoloft",
    "dose": 50,
    "unit": "milligrams",
    "frequency": "once daily",
    "start": days(-30),
}


async def add_diagnosis(h: Harness, token: str, patient_id: str, **body: Any) -> dict[str, Any]:
    response = await h.client.post(diagnoses(patient_id), json=body, headers=bearer(token))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def add_statement(h: Harness, token: str, patient_id: str, **body: Any) -> dict[str, Any]:
    response = await h.client.post(
        medications(patient_id), json={**SERTRALINE, **body}, headers=bearer(token)
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def fields(response: Any) -> set[str]:
    return {e["field"] for e in response.json()["errors"]}


async def count(h: Harness, model: type[Diagnosis] | type[MedicationStatement]) -> int:
    async with h.runtime.db.session(system=True) as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def audit_actions(h: Harness, patient_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    async with h.runtime.db.session(system=True) as session:
        rows = await session.execute(
            select(AuditEvent.action, AuditEvent.outcome, AuditEvent.details)
            .where(AuditEvent.resource_id == patient_id)
            .order_by(AuditEvent.id)
        )
        return [(a, o, d) for a, o, d in rows.all()]


# --- diagnoses ------------------------------------------------------------------------


async def test_diagnoses_are_created_normalised_listed_and_updated(h: Harness) -> None:
    email, clinician_id = await h.user(Role.clinician)
    clinician = (await h.login(email))["access_token"]
    patient = await new_patient(h, clinician)

    depression = await add_diagnosis(h, clinician, patient, code=" f329", onset=days(-400))
    assert depression["code"] == "F32.9"
    assert depression["status"] == "active"
    assert depression["mental_behavioural"] is True
    assert depression["onset"] == days(-400)
    assert depression["recorded_by"] == str(clinician_id)
    ideation = await add_diagnosis(h, clinician, patient, code="r45851")
    assert ideation["code"] == "R45.851"
    assert ideation["mental_behavioural"] is False

    listed = await h.client.get(diagnoses(patient), headers=bearer(clinician))
    assert listed.status_code == 200
    assert [d["code"] for d in listed.json()] == ["F32.9", "R45.851"]

    url = f"{diagnoses(patient)}/{depression['id']}"
    remission = await h.client.patch(url, json={"status": "remission"}, headers=bearer(clinician))
    assert remission.status_code == 200, remission.text
    assert remission.json()["status"] == "remission"
    assert remission.json()["onset"] == days(-400)

    resolved = await h.client.patch(
        url, json={"status": "resolved", "resolved_on": days(-2)}, headers=bearer(clinician)
    )
    assert resolved.status_code == 200, resolved.text
    assert (resolved.json()["status"], resolved.json()["resolved_on"]) == ("resolved", days(-2))
    only_resolved = await h.client.get(
        diagnoses(patient), params={"status": "resolved"}, headers=bearer(clinician)
    )
    assert [d["id"] for d in only_resolved.json()] == [depression["id"]]

    # A recurrence re-opens it: the date it resolved no longer holds.
    recurred = await h.client.patch(url, json={"status": "active"}, headers=bearer(clinician))
    assert recurred.status_code == 200, recurred.text
    assert (recurred.json()["status"], recurred.json()["resolved_on"]) == ("active", None)

    async with h.runtime.db.session(system=True) as session:
        stored = await session.get(Diagnosis, uuid.UUID(depression["id"]))
        assert stored is not None
        assert (stored.code, stored.status, stored.resolved_on) == ("F32.9", "active", None)


async def test_an_invalid_code_is_a_422_naming_the_field_with_the_reason(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    patient = await new_patient(h, clinician)
    for code, reason in (
        ("F3", "ICD-10-CM codes have 3 to 7"),
        ("32.9", "the first character must be a letter"),
        ("F32..9", "more than one '.'"),
        ("S03.4XX", "the 7th character is missing"),
        ("", "at least 1 character"),
    ):
        response = await h.client.post(
            diagnoses(patient), json={"code": code}, headers=bearer(clinician)
        )
        assert response.status_code == 422, (code, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        errors = response.json()["errors"]
        assert [e["field"] for e in errors] == ["body.code"], code
        assert reason in errors[0]["message"], (code, errors)
    assert await count(h, Diagnosis) == 0


async def test_diagnosis_dates_and_duplicates_are_checked(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    patient = await new_patient(h, clinician)
    cases = (
        ({"code": "F41.1", "resolved_on": days(-1)}, "body.resolved_on"),  # status is active
        (
            {"code": "F41.1", "status": "resolved", "onset": days(-3), "resolved_on": days(-9)},
            "body.resolved_on",
        ),
        ({"code": "F41.1", "onset": days(30)}, "body.onset"),
        ({"code": "F41.1", "status": "cured"}, "body.status"),
        ({"code": "F41.1", "note": "free text"}, "body.note"),
    )
    for body, field in cases:
        response = await h.client.post(diagnoses(patient), json=body, headers=bearer(clinician))
        assert response.status_code == 422, (body, response.text)
        assert fields(response) == {field}, body
    assert await count(h, Diagnosis) == 0

    anxiety = await add_diagnosis(h, clinician, patient, code="F41.1", onset=days(-100))
    twice = await h.client.post(
        diagnoses(patient), json={"code": "f411"}, headers=bearer(clinician)
    )
    assert twice.status_code == 409
    assert twice.json()["code"] == "diagnosis_exists"

    url = f"{diagnoses(patient)}/{anxiety['id']}"
    for body, field in (
        ({"resolved_on": days(-1)}, "body.resolved_on"),  # still active
        ({"status": None}, "body.status"),
        ({"code": "F32.9"}, "body.code"),  # the code is not changed: record a new one
    ):
        response = await h.client.patch(url, json=body, headers=bearer(clinician))
        assert response.status_code == 422, (body, response.text)
        assert fields(response) == {field}, body
    resolved = await h.client.patch(
        url, json={"status": "resolved", "resolved_on": days(-10)}, headers=bearer(clinician)
    )
    assert resolved.status_code == 200
    late_onset = await h.client.patch(url, json={"onset": days(-5)}, headers=bearer(clinician))
    assert late_onset.status_code == 422
    assert fields(late_onset) == {"body.onset"}
    # Once resolved, the code may be recorded again (a new episode)...
    await add_diagnosis(h, clinician, patient, code="F41.1")
    # ...and then the resolved one cannot be re-opened beside it.
    reopen = await h.client.patch(url, json={"status": "active"}, headers=bearer(clinician))
    assert reopen.status_code == 409


# --- medication statements ------------------------------------------------------------


async def test_a_brand_name_is_stored_as_the_generic_with_class_and_rxcui(h: Harness) -> None:
    email, clinician_id = await h.user(Role.clinician)
    clinician = (await h.login(email))["access_token"]
    patient = await new_patient(h, clinician)

    created = await add_statement(h, clinician, patient, prescriber="Dr. Ellery Hart")
    assert created["drug"] == "sertraline"
    assert created["drug_class"] == "SSRI"
    assert created["rxcui"] == "36437"
    assert (created["dose"], created["unit"], created["frequency"]) == (50, "mg", "daily")
    assert created["frequency_display"] == "once daily"
    assert (created["start"], created["stop"], created["active"]) == (days(-30), None, True)
    assert created["recorded_by"] == str(clinician_id)

    async with h.runtime.db.session(system=True) as session:
        stored = await session.get(MedicationStatement, uuid.UUID(created["id"]))
        assert stored is not None
        assert (stored.drug, stored.drug_class, stored.rxcui) == ("sertraline", "SSRI", "36437")
        assert (stored.unit, stored.frequency, float(stored.dose)) == ("mg", "daily", 50.0)

    # A salt name and a fractional dose; a drug the catalogue has no verified RxCUI for.
    lithium = await add_statement(
        h, clinician, patient, drug="lithium carbonate", dose=0.3, unit="g", frequency="b.i.d."
    )
    assert (lithium["drug"], lithium["drug_class"]) == ("lithium", "mood stabilizer")
    assert (lithium["dose"], lithium["unit"], lithium["frequency"]) == (0.3, "g", "BID")
    buspirone = await add_statement(h, clinician, patient, drug="BuSpar", unit="mg")
    assert (buspirone["drug"], buspirone["rxcui"]) == ("buspirone", None)

    listed = await h.client.get(medications(patient), headers=bearer(clinician))
    assert listed.status_code == 200
    assert {s["drug"] for s in listed.json()} == {"sertraline", "lithium", "buspirone"}


async def test_statements_are_updated_stop_dose_and_frequency(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    patient = await new_patient(h, clinician)
    statement = await add_statement(h, clinician, patient)
    url = f"{medications(patient)}/{statement['id']}"

    titrated = await h.client.patch(
        url, json={"dose": "100", "frequency": "QHS"}, headers=bearer(clinician)
    )
    assert titrated.status_code == 200, titrated.text
    assert (titrated.json()["dose"], titrated.json()["frequency"]) == (100, "QHS")
    assert titrated.json()["drug"] == "sertraline"

    stopped = await h.client.patch(url, json={"stop": days(-1)}, headers=bearer(clinician))
    assert stopped.status_code == 200
    assert (stopped.json()["stop"], stopped.json()["active"]) == (days(-1), False)
    assert stopped.json()["dose"] == 100

    restarted = await h.client.patch(url, json={"stop": None}, headers=bearer(clinician))
    assert (restarted.json()["stop"], restarted.json()["active"]) == (None, True)

    for body, field in (
        ({"stop": days(-31)}, "body.stop"),  # before the start
        ({"dose": 0}, "body.dose"),
        ({"dose": None}, "body.dose"),
        ({"dose": "0.00001"}, "body.dose"),
        ({"frequency": None}, "body.frequency"),
        ({"frequency": "every blue moon"}, "body.frequency"),
        ({"drug": "lithium"}, "body.drug"),  # another drug is another statement
    ):
        response = await h.client.patch(url, json=body, headers=bearer(clinician))
        assert response.status_code == 422, (body, response.text)
        assert fields(response) == {field}, body
    unchanged = (await h.client.get(medications(patient), headers=bearer(clinician))).json()
    assert [(s["dose"], s["frequency"], s["stop"]) for s in unchanged] == [(100, "QHS", None)]


async def test_an_unknown_drug_is_a_422_with_suggestions_and_writes_nothing(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    patient = await new_patient(h, clinician)
    typo = await h.client.post(
        medications(patient), json={**SERTRALINE, "drug": "setraline"}, headers=bearer(clinician)
    )
    assert typo.status_code == 422, typo.text
    [error] = typo.json()["errors"]
    assert error["field"] == "body.drug"
    assert error["type"] == "unknown_medication"
    assert "sertraline" in error["suggestions"]
    assert "did you mean" in error["message"]
    assert "sertraline" in error["message"]

    # Every unknown term is reported at once; the input is never echoed.
    canary = "Quillonexatrine"
    unknown = await h.client.post(
        medications(patient),
        json={**SERTRALINE, "drug": canary, "unit": "furlongs", "frequency": "whenever"},
        headers=bearer(clinician),
    )
    assert unknown.status_code == 422
    assert fields(unknown) == {"body.drug", "body.unit", "body.frequency"}
    for text in (canary, "furlongs", "whenever"):
        assert text not in unknown.text
    assert await count(h, MedicationStatement) == 0
    assert (await h.client.get(medications(patient), headers=bearer(clinician))).json() == []


async def test_statement_dates_and_doses_are_checked(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    patient = await new_patient(h, clinician)
    for body, field in (
        ({"start": days(-10), "stop": days(-20)}, "body.stop"),
        ({"start": days(400)}, "body.start"),
        ({"start": "1850-01-01"}, "body.start"),
        ({"dose": 0}, "body.dose"),
        ({"dose": -5}, "body.dose"),
        ({"dose": 10**9}, "body.dose"),
        ({"dose": "lots"}, "body.dose"),
        ({"start": None}, "body.start"),
    ):
        response = await h.client.post(
            medications(patient), json={**SERTRALINE, **body}, headers=bearer(clinician)
        )
        assert response.status_code == 422, (body, response.text)
        assert fields(response) == {field}, body
    assert await count(h, MedicationStatement) == 0
    # Same-day stop and a planned start a few weeks ahead are fine.
    await add_statement(h, clinician, patient, start=days(-3), stop=days(-3))
    await add_statement(h, clinician, patient, start=days(20))


async def test_the_active_filter(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    patient = await new_patient(h, clinician)
    ongoing = await add_statement(h, clinician, patient)
    ends_soon = await add_statement(h, clinician, patient, drug="lithium", stop=days(7))
    stopped = await add_statement(h, clinician, patient, drug="quetiapine", stop=days(-2))
    planned = await add_statement(h, clinician, patient, drug="bupropion", start=days(10))

    async def ids(active: str | None) -> set[str]:
        params: dict[str, str] = {} if active is None else {"active": active}
        response = await h.client.get(
            medications(patient), params=params, headers=bearer(clinician)
        )
        assert response.status_code == 200, response.text
        if active is not None:
            assert {s["active"] for s in response.json()} <= {active == "true"}
        return {s["id"] for s in response.json()}

    assert await ids("true") == {ongoing["id"], ends_soon["id"]}
    assert await ids("false") == {stopped["id"], planned["id"]}
    assert await ids(None) == {ongoing["id"], ends_soon["id"], stopped["id"], planned["id"]}
    bad = await h.client.get(
        medications(patient), params={"active": "maybe"}, headers=bearer(clinician)
    )
    assert bad.status_code == 422


# --- who may reach what ---------------------------------------------------------------


async def test_outsiders_get_404_and_the_patient_reads_only_their_own(h: Harness) -> None:
    admin = await h.token_for(Role.admin)
    owner = await h.token_for(Role.clinician)
    outsider = await h.token_for(Role.clinician)
    researcher = await h.token_for(Role.researcher)
    patient = await new_patient(h, owner)
    other_record = await new_patient(h, owner)
    diagnosis = await add_diagnosis(h, owner, patient, code="F32.9")
    statement = await add_statement(h, owner, patient)

    email, user_id = await h.user(Role.patient)
    linked = await h.client.post(
        f"/api/v1/patients/{other_record}/account",
        json={"user_id": str(user_id)},
        headers=bearer(admin),
    )
    assert linked.status_code == 204
    another_patient = (await h.login(email))["access_token"]

    calls: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", diagnoses(patient), None),
        ("POST", diagnoses(patient), {"code": "F41.1"}),
        ("PATCH", f"{diagnoses(patient)}/{diagnosis['id']}", {"status": "remission"}),
        ("GET", medications(patient), None),
        ("POST", medications(patient), SERTRALINE),
        ("PATCH", f"{medications(patient)}/{statement['id']}", {"dose": 75}),
    ]
    for token in (outsider, researcher, another_patient):
        for method, url, body in calls:
            response = await h.client.request(method, url, json=body, headers=bearer(token))
            assert response.status_code == 404, (method, url, response.text)
            assert response.json()["code"] == "not_found"
            assert "F32.9" not in response.text
    assert await count(h, Diagnosis) == 1
    assert await count(h, MedicationStatement) == 1

    # The patient reads their own lists, and may not write them.
    own = await add_diagnosis(h, owner, other_record, code="F43.10")
    seen = await h.client.get(diagnoses(other_record), headers=bearer(another_patient))
    assert [d["id"] for d in seen.json()] == [own["id"]]
    assert (
        await h.client.get(medications(other_record), headers=bearer(another_patient))
    ).json() == []
    writes = await h.client.post(
        diagnoses(other_record), json={"code": "F41.1"}, headers=bearer(another_patient)
    )
    assert writes.status_code == 404
    # An admin of the organization reads any patient's.
    assert (await h.client.get(diagnoses(patient), headers=bearer(admin))).status_code == 200


async def test_a_record_id_of_another_patient_is_a_404(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    mine = await new_patient(h, clinician)
    theirs = await new_patient(h, clinician)
    their_diagnosis = await add_diagnosis(h, clinician, theirs, code="F31.81")
    their_statement = await add_statement(h, clinician, theirs)

    for url, body in (
        (f"{diagnoses(mine)}/{their_diagnosis['id']}", {"status": "resolved"}),
        (f"{diagnoses(mine)}/{uuid.uuid4()}", {"status": "resolved"}),
        (f"{medications(mine)}/{their_statement['id']}", {"stop": days(-1)}),
        (f"{medications(mine)}/{uuid.uuid4()}", {"stop": days(-1)}),
    ):
        response = await h.client.patch(url, json=body, headers=bearer(clinician))
        assert response.status_code == 404, (url, response.text)
        assert response.json()["code"] == "not_found"

    theirs_now = (await h.client.get(diagnoses(theirs), headers=bearer(clinician))).json()
    assert [d["status"] for d in theirs_now] == ["active"]
    meds_now = (await h.client.get(medications(theirs), headers=bearer(clinician))).json()
    assert [s["stop"] for s in meds_now] == [None]
    denied = [(a, d) for a, o, d in await audit_actions(h, mine) if o == "denied"]
    assert ("patient.diagnosis.update", their_diagnosis["id"]) in [
        (a, d.get("diagnosis_id")) for a, d in denied
    ]
    assert ("patient.medication.update", their_statement["id"]) in [
        (a, d.get("statement_id")) for a, d in denied
    ]


async def test_every_read_and_write_is_audited_without_clinical_values(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    patient = await new_patient(h, clinician)
    diagnosis = await add_diagnosis(h, clinician, patient, code="F32.9")
    await h.client.get(diagnoses(patient), headers=bearer(clinician))
    await h.client.patch(
        f"{diagnoses(patient)}/{diagnosis['id']}",
        json={"status": "remission"},
        headers=bearer(clinician),
    )
    statement = await add_statement(h, clinician, patient)
    await h.client.get(medications(patient), params={"active": "true"}, headers=bearer(clinician))
    await h.client.patch(
        f"{medications(patient)}/{statement['id']}", json={"dose": 75}, headers=bearer(clinician)
    )

    events = await audit_actions(h, patient)
    actions = [a for a, _, _ in events]
    for expected in (
        "patient.diagnosis.create",
        "patient.diagnoses.read",
        "patient.diagnosis.update",
        "patient.medication.create",
        "patient.medications.read",
        "patient.medication.update",
    ):
        assert actions.count(expected) == 1, (expected, actions)
    by_action = {a: d for a, _, d in events}
    assert by_action["patient.diagnosis.create"]["diagnosis_id"] == diagnosis["id"]
    assert by_action["patient.diagnosis.update"]["fields"] == ["status"]
    assert by_action["patient.medication.update"] == {
        "statement_id": statement["id"],
        "fields": ["dose"],
    }
    assert by_action["patient.medications.read"] == {"count": 1, "active": True}
    dump = orjson.dumps([d for _, _, d in events]).decode()
    for value in ("F32", "sertraline", "Zoloft", "SSRI", "36437"):
        assert value not in dump, value


# --- catalogue search -----------------------------------------------------------------


async def test_catalogue_search_for_autocomplete(h: Harness) -> None:
    researcher = await h.token_for(Role.researcher)  # any signed-in user may search

    async def search(q: str, **params: Any) -> dict[str, Any]:
        response = await h.client.get(
            "/api/v1/medications/catalog", params={"q": q, **params}, headers=bearer(researcher)
        )
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found

    zolo = await search("zolo")
    assert zolo["items"][0]["generic_name"] == "sertraline"
    assert zolo["items"][0]["matched"] == "Zoloft"
    assert zolo["items"][0]["rxcui"] == "36437"
    assert "Zoloft" in zolo["items"][0]["brands"]
    # Generic names that start with the query come before brand names that do.
    zol = [(m["generic_name"], m["matched"]) for m in (await search("zol"))["items"]]
    assert zol.index(("zolpidem", "zolpidem")) < zol.index(("sertraline", "Zoloft"))

    lith = await search("LITH")
    assert lith["items"][0]["generic_name"] == "lithium"
    assert lith["items"][0]["drug_class"] == "mood stabilizer"

    typo = await search("setraline")
    assert [m["generic_name"] for m in typo["items"]][:1] == ["sertraline"]

    everything = await search("", limit=50)
    assert len(everything["items"]) == 50
    names = [m["generic_name"] for m in everything["items"]]
    assert names == sorted(names, key=str.casefold)
    assert {"mg", "mcg", "mL", "tablet"} <= {u["code"] for u in everything["units"]}
    assert "BID" in {f["code"] for f in everything["frequencies"]}

    assert (await search("zzzzqqq"))["items"] == []
    assert len((await search("a", limit=3))["items"]) == 3
    too_many = await h.client.get(
        "/api/v1/medications/catalog", params={"limit": 500}, headers=bearer(researcher)
    )
    assert too_many.status_code == 422
    anonymous = await h.client.get("/api/v1/medications/catalog", params={"q": "zol"})
    assert anonymous.status_code == 401


async def test_search_results_are_accepted_by_the_statement_api(h: Harness) -> None:
    """What the autocomplete offers, the statement API accepts (catalogue and API agree)."""
    clinician = await h.token_for(Role.clinician)
    patient = await new_patient(h, clinician)
    found = (
        await h.client.get(
            "/api/v1/medications/catalog", params={"q": "abil"}, headers=bearer(clinician)
        )
    ).json()
    first = found["items"][0]
    created = await add_statement(
        h,
        clinician,
        patient,
        drug=first["matched"],
        unit=found["units"][0]["code"],
        frequency=found["frequencies"][0]["code"],
    )
    assert created["drug"] == first["generic_name"]
    assert created["rxcui"] == first["rxcui"]
