"""Clarity records to FHIR R4 (R4B models) and back, without a database."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from clarity.assessments.catalog import get_instrument
from clarity.assessments.scoring import score
from clarity.fhir import mapping as m

NOW = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)
CANARY_NAME = "Quillon"
CANARY_PHONE = "+47 415 55 019"


def patient(**overrides: Any) -> m.PatientData:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "mrn": "MRN-FHIR-1",
        "given_name": CANARY_NAME,
        "family_name": "Vexmarrow",
        "birth_date": date(1961, 7, 14),
        "sex_at_birth": "female",
        "gender_identity": "woman",
        "timezone": "Europe/Oslo",
        "phone": CANARY_PHONE,
        "email": "quillon.v@mail.example.org",
        "address": "Storgata 1, Oslo",
        "emergency_contact": m.EmergencyContactData("Ardis Vexmarrow", "sister", "+47 99 99"),
    }
    values.update(overrides)
    return m.PatientData(**values)


def assessment(instrument_id: str, answers: dict[str, int], at: datetime) -> m.AssessmentData:
    instrument = get_instrument(instrument_id)
    result = score(instrument, answers)
    return m.AssessmentData(
        id=uuid.uuid4(),
        instrument_id=instrument_id,
        instrument_version=instrument.version,
        answers=answers,
        total=result.total,
        administered_at=at,
        derived_score=None if result.transformed_total is None else float(result.transformed_total),
        severity=result.severity_code,
        safety_signal=result.safety_signal,
    )


PHQ9 = {f"phq9_{i}": (2 if i < 5 else 1) for i in range(1, 10)}
WHO5 = {f"who5_{i}": 3 for i in range(1, 6)}


def record_set() -> tuple[
    m.PatientData, list[m.DiagnosisData], list[m.MedicationData], list[m.AssessmentData]
]:
    diagnoses = [
        m.DiagnosisData(id=uuid.uuid4(), code="F32.1", onset=date(2023, 2, 1)),
        m.DiagnosisData(
            id=uuid.uuid4(),
            code="F41.1",
            status="resolved",
            onset=date(2019, 5, 1),
            resolved_on=date(2021, 9, 30),
        ),
        m.DiagnosisData(id=uuid.uuid4(), code="F31.81", status="remission"),
    ]
    medications = [
        m.MedicationData(
            id=uuid.uuid4(),
            drug="sertraline",
            drug_class="SSRI",
            rxcui="36437",
            dose=Decimal("50.0000"),
            unit="mg",
            frequency="daily",
            start=date(2024, 1, 10),
            prescriber="Dr. Ingrid Hald",
        ),
        m.MedicationData(
            id=uuid.uuid4(),
            drug="lorazepam",
            drug_class="benzodiazepine",
            rxcui="6470",
            dose=Decimal("0.5000"),
            unit="tablet",
            frequency="PRN",
            start=date(2024, 1, 10),
            stop=date(2024, 3, 1),
        ),
        m.MedicationData(
            id=uuid.uuid4(),
            drug="quetiapine",
            drug_class="second-generation antipsychotic",
            rxcui="51272",
            dose=Decimal("12.5000"),
            unit="mg",
            frequency="QHS",
            start=date(2025, 7, 1),
        ),
    ]
    assessments = [
        assessment("phq9", PHQ9, datetime(2025, 5, 1, 9, 30, tzinfo=UTC)),
        assessment("who5", WHO5, datetime(2025, 5, 2, 9, 30, tzinfo=UTC)),
    ]
    return patient(), diagnoses, medications, assessments


def export_json(*, now: datetime = NOW) -> dict[str, Any]:
    p, d, meds, a = record_set()
    bundle = m.export_bundle(p, d, meds, a, now=now)
    loaded: dict[str, Any] = json.loads(bundle.model_dump_json())
    return loaded


def resources(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def entry_index(bundle: dict[str, Any], kind: str, n: int = 0) -> int:
    found = [i for i, e in enumerate(bundle["entry"]) if e["resource"]["resourceType"] == kind]
    return found[n]


def condition_index(bundle: dict[str, Any], code: str) -> int:
    for n, entry in enumerate(bundle["entry"]):
        resource = entry["resource"]
        if (
            resource["resourceType"] == "Condition"
            and resource["code"]["coding"][0]["code"] == code
        ):
            return n
    raise AssertionError(code)


def medication_index(bundle: dict[str, Any], drug: str) -> int:
    for n, entry in enumerate(bundle["entry"]):
        resource = entry["resource"]
        if (
            resource["resourceType"] == "MedicationStatement"
            and resource["medicationCodeableConcept"]["text"] == drug
        ):
            return n
    raise AssertionError(drug)


def problems(data: Any) -> list[m.Problem]:
    with pytest.raises(m.FhirImportError) as caught:
        m.parse_bundle(data, now=NOW)
    return list(caught.value.problems)


def fields(data: Any) -> set[str]:
    return {p.field for p in problems(data)}


def comparable(bundle: dict[str, Any]) -> dict[str, Any]:
    """The bundle without ids, meta and timestamp, with fullUrls replaced by positions."""
    names = {e["fullUrl"]: f"entry-{n}" for n, e in enumerate(bundle["entry"])}

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items() if k not in {"id", "meta", "timestamp"}}
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, str):
            return names.get(value, value)
        return value

    result: dict[str, Any] = walk(bundle)
    return result


# --- export ---------------------------------------------------------------------------


def test_every_exported_resource_validates_as_its_r4_type() -> None:
    bundle = export_json()
    assert bundle["resourceType"] == "Bundle"
    assert bundle["type"] == "collection"
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds == [
        "Patient",
        *["Condition"] * 3,
        *["MedicationStatement"] * 3,
        "QuestionnaireResponse",
        "Observation",
        "QuestionnaireResponse",
        "Observation",
    ]
    for entry in bundle["entry"]:
        model = get_fhir_model_class(entry["resource"]["resourceType"])
        model.model_validate(entry["resource"])
        assert entry["fullUrl"] == f"urn:uuid:{entry['resource']['id']}"


def test_patient_identifier_name_gender_and_telecom() -> None:
    (resource,) = resources(export_json(), "Patient")
    assert resource["identifier"][0]["system"] == m.MRN_SYSTEM
    assert resource["identifier"][0]["value"] == "MRN-FHIR-1"
    assert resource["identifier"][0]["type"]["coding"][0]["code"] == "MR"
    assert resource["name"] == [{"use": "official", "family": "Vexmarrow", "given": [CANARY_NAME]}]
    assert resource["birthDate"] == "1961-07-14"
    assert resource["gender"] == "female"
    assert {"system": "phone", "value": CANARY_PHONE} in resource["telecom"]
    assert {"system": "email", "value": "quillon.v@mail.example.org"} in resource["telecom"]
    assert resource["address"] == [{"text": "Storgata 1, Oslo"}]
    assert resource["active"] is True
    contact = resource["contact"][0]
    assert contact["relationship"][0]["coding"][0]["code"] == "C"
    assert contact["name"] == {"text": "Ardis Vexmarrow"}


@pytest.mark.parametrize(
    ("sex", "gender"),
    [("female", "female"), ("male", "male"), ("intersex", "other"), ("unknown", "unknown")],
)
def test_gender_comes_from_sex_at_birth_which_an_extension_keeps_exactly(
    sex: str, gender: str
) -> None:
    resource = m.patient_resource(patient(sex_at_birth=sex)).model_dump(mode="json")
    assert resource["gender"] == gender
    stated = [e for e in resource["extension"] if e["url"] == m.SEX_AT_BIRTH_EXTENSION]
    assert stated == [{"url": m.SEX_AT_BIRTH_EXTENSION, "valueCode": sex}]


def test_condition_codes_status_and_dates() -> None:
    conditions = resources(export_json(), "Condition")
    by_code = {c["code"]["coding"][0]["code"]: c for c in conditions}
    assert set(by_code) == {"F32.1", "F41.1", "F31.81"}
    for condition in conditions:
        assert condition["code"]["coding"][0]["system"] == m.ICD10CM_SYSTEM
        assert condition["verificationStatus"]["coding"][0]["code"] == "confirmed"
    resolved = by_code["F41.1"]
    assert resolved["clinicalStatus"]["coding"][0] == {
        "system": m.CONDITION_CLINICAL_SYSTEM,
        "code": "resolved",
        "display": "Resolved",
    }
    assert resolved["onsetDateTime"] == "2019-05-01"
    assert resolved["abatementDateTime"] == "2021-09-30"
    assert by_code["F31.81"]["clinicalStatus"]["coding"][0]["code"] == "remission"
    assert "onsetDateTime" not in by_code["F31.81"]


def test_medication_statement_rxnorm_ucum_timing_and_status() -> None:
    statements = {
        s["medicationCodeableConcept"]["text"]: s
        for s in resources(export_json(), "MedicationStatement")
    }
    sertraline = statements["sertraline"]
    assert sertraline["medicationCodeableConcept"]["coding"] == [
        {"system": m.RXNORM_SYSTEM, "code": "36437", "display": "sertraline"}
    ]
    assert sertraline["status"] == "active"
    assert sertraline["effectivePeriod"] == {"start": "2024-01-10"}
    dosage = sertraline["dosage"][0]
    assert dosage["doseAndRate"][0]["doseQuantity"] == {
        "value": 50,
        "unit": "mg",
        "system": m.UCUM_SYSTEM,
        "code": "mg",
    }
    codes = {(c["system"], c["code"]) for c in dosage["timing"]["code"]["coding"]}
    assert codes == {(m.FREQUENCY_SYSTEM, "daily"), (m.TIMING_ABBREVIATION_SYSTEM, "QD")}
    assert dosage["timing"]["repeat"] == {"frequency": 1, "period": 1.0, "periodUnit": "d"}
    assert sertraline["extension"] == [
        {"url": m.PRESCRIBER_EXTENSION, "valueString": "Dr. Ingrid Hald"}
    ]

    lorazepam = statements["lorazepam"]
    assert lorazepam["status"] == "completed"
    assert lorazepam["effectivePeriod"] == {"start": "2024-01-10", "end": "2024-03-01"}
    assert lorazepam["dosage"][0]["asNeededBoolean"] is True
    assert lorazepam["dosage"][0]["doseAndRate"][0]["doseQuantity"] == {
        "value": 0.5,
        "unit": "tablet",
        "system": m.DOSE_UNIT_SYSTEM,
        "code": "tablet",
    }

    quetiapine = statements["quetiapine"]
    assert quetiapine["status"] == "intended"  # starts after "now"
    assert quetiapine["dosage"][0]["timing"]["repeat"]["when"] == ["HS"]
    assert quetiapine["dosage"][0]["doseAndRate"][0]["doseQuantity"]["value"] == 12.5


def test_questionnaire_response_and_loinc_score_observation() -> None:
    bundle = export_json()
    response = resources(bundle, "QuestionnaireResponse")[0]
    assert response["questionnaire"] == "urn:clarity:instrument:phq9|1.0.0"
    assert response["status"] == "completed"
    assert response["authored"].startswith("2025-05-01T09:30:00")
    assert [i["linkId"] for i in response["item"]] == [f"phq9_{i}" for i in range(1, 10)]
    assert response["item"][0]["answer"] == [{"valueInteger": 2}]

    qr_index = entry_index(bundle, "QuestionnaireResponse")
    observation = bundle["entry"][qr_index + 1]["resource"]
    assert observation["code"]["coding"][0] == {"system": m.LOINC_SYSTEM, "code": "44261-6"}
    assert observation["valueInteger"] == sum(PHQ9.values())
    assert observation["derivedFrom"] == [{"reference": bundle["entry"][qr_index]["fullUrl"]}]
    assert observation["category"][0]["coding"][0]["code"] == "survey"
    assert observation["interpretation"][0]["coding"][0]["code"] == "moderate"


def test_an_instrument_without_loinc_gets_the_clarity_code_and_its_transformed_score() -> None:
    bundle = export_json()
    observation = resources(bundle, "Observation")[1]
    assert observation["code"]["coding"][0] == {"system": m.SCORE_SYSTEM, "code": "who5-total"}
    assert observation["valueInteger"] == 15
    assert observation["component"][0]["valueInteger"] == 60
    assert observation["component"][0]["code"]["coding"][0]["code"] == "who5-percentage"


def test_export_order_and_ids_do_not_depend_on_input_order() -> None:
    p, d, meds, a = record_set()
    first = m.export_bundle(p, d, meds, a, now=NOW)
    second = m.export_bundle(p, d[::-1], meds[::-1], a[::-1], now=NOW)
    assert first.model_dump_json() == second.model_dump_json()


# --- import ---------------------------------------------------------------------------


def test_export_then_parse_gives_back_the_records() -> None:
    p, d, meds, a = record_set()
    plan = m.parse_bundle(
        json.loads(m.export_bundle(p, d, meds, a, now=NOW).model_dump_json()), now=NOW
    )
    body = plan.patient
    assert (body.mrn, body.given_name, body.family_name) == (p.mrn, p.given_name, p.family_name)
    assert body.birth_date == p.birth_date
    assert body.sex_at_birth.value == "female"
    assert body.gender_identity == "woman"
    assert body.timezone == "Europe/Oslo"
    assert (body.contact.phone, body.contact.email, body.contact.address) == (
        p.phone,
        p.email,
        p.address,
    )
    assert body.emergency_contact is not None
    assert body.emergency_contact.relationship == "sister"
    assert plan.active is True
    assert sorted((x.code, x.status, x.onset, x.resolved_on) for x in plan.diagnoses) == sorted(
        (x.code, x.status, x.onset, x.resolved_on) for x in d
    )
    assert sorted(
        (x.drug, x.rxcui, x.dose, x.unit, x.frequency, x.start, x.stop, x.prescriber)
        for x in plan.medications
    ) == sorted(
        (x.drug, x.rxcui, x.dose, x.unit, x.frequency, x.start, x.stop, x.prescriber) for x in meds
    )
    assert [(x.instrument_id, dict(x.answers), x.total, x.severity) for x in plan.assessments] == [
        (x.instrument_id, dict(x.answers), x.total, x.severity) for x in a
    ]
    assert plan.assessments[1].derived_score == 60.0
    assert plan.observations_checked == 2
    assert plan.skipped == {}


def test_round_trip_through_records_gives_an_equivalent_bundle() -> None:
    original = export_json()
    plan = m.parse_bundle(original, now=NOW)
    body = plan.patient
    again = m.export_bundle(
        m.PatientData(
            id=uuid.uuid4(),
            mrn=body.mrn,
            given_name=body.given_name,
            family_name=body.family_name,
            birth_date=body.birth_date,
            sex_at_birth=body.sex_at_birth.value,
            gender_identity=body.gender_identity,
            timezone=body.timezone,
            phone=body.contact.phone,
            email=body.contact.email,
            address=body.contact.address,
            emergency_contact=m.EmergencyContactData(**body.emergency_contact.model_dump())
            if body.emergency_contact
            else None,
        ),
        [m.DiagnosisData(**{**vars(x), "id": uuid.uuid4()}) for x in plan.diagnoses],
        [m.MedicationData(**{**vars(x), "id": uuid.uuid4()}) for x in plan.medications],
        [m.AssessmentData(**{**vars(x), "id": uuid.uuid4()}) for x in plan.assessments],
        now=NOW,
    )
    assert comparable(json.loads(again.model_dump_json())) == comparable(original)


def test_a_minimal_foreign_bundle_imports_with_the_usual_variants() -> None:
    """What another system might send: relative references, an MRN by type, a brand name,
    a GTS frequency code, a UCUM microgram, a frequency given only as a repeat."""
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {
                    "resourceType": "Patient",
                    "id": "p1",
                    "identifier": [
                        {"system": "urn:oid:1.2.3", "value": "X-1"},
                        {
                            "type": {
                                "coding": [{"system": m.IDENTIFIER_TYPE_SYSTEM, "code": "MR"}]
                            },
                            "system": "https://hospital.example.org/mrn",
                            "value": "H-42",
                        },
                    ],
                    "name": [
                        {"use": "nickname", "given": ["Q"]},
                        {"use": "official", "family": "V", "given": ["Anna", "Maria"]},
                    ],
                    "gender": "other",
                    "birthDate": "1980-02-29",
                    "address": [{"line": ["Main St 1"], "city": "Bergen", "postalCode": "5003"}],
                },
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "resource": {
                    "resourceType": "Condition",
                    "subject": {"reference": "Patient/p1"},
                    "code": {"coding": [{"system": m.ICD10CM_SYSTEM, "code": "f3181"}]},
                    "clinicalStatus": {
                        "coding": [{"system": m.CONDITION_CLINICAL_SYSTEM, "code": "relapse"}]
                    },
                    "onsetDateTime": "2020-03-04T10:00:00+01:00",
                }
            },
            {
                "resource": {
                    "resourceType": "MedicationStatement",
                    "status": "active",
                    "subject": {"reference": "Patient/p1"},
                    "medicationCodeableConcept": {"text": "Zoloft"},
                    "effectiveDateTime": "2024-02-01",
                    "dosage": [
                        {
                            "timing": {
                                "code": {
                                    "coding": [
                                        {"system": m.TIMING_ABBREVIATION_SYSTEM, "code": "BID"}
                                    ]
                                }
                            },
                            "doseAndRate": [
                                {
                                    "doseQuantity": {
                                        "value": 250,
                                        "system": m.UCUM_SYSTEM,
                                        "code": "ug",
                                    }
                                }
                            ],
                        }
                    ],
                }
            },
            {
                "resource": {
                    "resourceType": "MedicationStatement",
                    "status": "active",
                    "subject": {"reference": "Patient/p1"},
                    "medicationCodeableConcept": {"text": "quetiapine fumarate"},
                    "effectivePeriod": {"start": "2024-02-01"},
                    "dosage": [
                        {
                            "timing": {
                                "repeat": {
                                    "frequency": 1,
                                    "period": 1,
                                    "periodUnit": "d",
                                    "when": ["HS"],
                                }
                            },
                            "doseAndRate": [{"doseQuantity": {"value": 25, "unit": "milligrams"}}],
                        }
                    ],
                }
            },
        ],
    }
    plan = m.parse_bundle(bundle, now=NOW)
    assert plan.patient.mrn == "H-42"
    assert (plan.patient.given_name, plan.patient.family_name) == ("Anna Maria", "V")
    assert plan.patient.sex_at_birth.value == "unknown"  # "other" is not a sex at birth
    assert plan.patient.contact.address == "Main St 1, Bergen, 5003"
    (diagnosis,) = plan.diagnoses
    assert (diagnosis.code, diagnosis.status, diagnosis.onset) == (
        "F31.81",
        "active",
        date(2020, 3, 4),
    )
    sertraline, quetiapine = plan.medications
    assert (sertraline.drug, sertraline.rxcui, sertraline.unit, sertraline.frequency) == (
        "sertraline",
        "36437",
        "mcg",
        "BID",
    )
    assert sertraline.start == date(2024, 2, 1)
    assert (quetiapine.drug, quetiapine.unit, quetiapine.frequency) == ("quetiapine", "mg", "QHS")


def test_entered_in_error_records_are_skipped_and_counted() -> None:
    bundle = export_json()
    bundle["entry"][entry_index(bundle, "Condition")]["resource"]["verificationStatus"] = {
        "coding": [{"system": m.CONDITION_VERIFICATION_SYSTEM, "code": "entered-in-error"}]
    }
    del bundle["entry"][entry_index(bundle, "Condition")]["resource"]["clinicalStatus"]
    bundle["entry"][entry_index(bundle, "MedicationStatement")]["resource"]["status"] = (
        "entered-in-error"
    )
    plan = m.parse_bundle(bundle, now=NOW)
    assert len(plan.diagnoses) == 2
    assert len(plan.medications) == 2
    assert plan.skipped == {"Condition": 1, "MedicationStatement": 1}


def test_answers_are_rescored_and_a_disagreeing_observation_is_refused() -> None:
    bundle = export_json()
    obs = entry_index(bundle, "Observation")
    bundle["entry"][obs]["resource"]["valueInteger"] = 3
    assert fields(bundle) == {f"entry[{obs}].resource.value[x]"}


def test_an_observation_not_derived_from_a_response_in_the_bundle_is_refused() -> None:
    bundle = export_json()
    obs = entry_index(bundle, "Observation")
    bundle["entry"][obs]["resource"]["derivedFrom"] = [{"reference": "urn:uuid:nowhere"}]
    assert fields(bundle) == {f"entry[{obs}].resource.derivedFrom"}


def test_unscorable_answers_name_the_item_not_the_value() -> None:
    bundle = export_json()
    qr = entry_index(bundle, "QuestionnaireResponse")
    bundle["entry"][qr]["resource"]["item"][8]["answer"] = [{"valueInteger": 777}]
    found = problems(bundle)
    assert [p.field for p in found] == [f"entry[{qr}].resource.item"]
    assert "phq9_9" in found[0].message
    assert "777" not in found[0].message


def test_unknown_instrument_or_version_is_refused() -> None:
    bundle = export_json()
    qr = entry_index(bundle, "QuestionnaireResponse")
    other = copy.deepcopy(bundle)
    bundle["entry"][qr]["resource"]["questionnaire"] = "urn:clarity:instrument:phq9|9.9.9"
    other["entry"][qr]["resource"]["questionnaire"] = "http://loinc.org/q/44249-1"
    assert fields(bundle) == {f"entry[{qr}].resource.questionnaire"}
    assert fields(other) == {f"entry[{qr}].resource.questionnaire"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (
            {"code": {"coding": [{"system": m.ICD10CM_SYSTEM, "code": "F3!.9"}]}},
            "code.coding[0].code",
        ),
        (
            {"code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "F32.9"}]}},
            "code",
        ),
        ({"onsetDateTime": "2019"}, "onsetDateTime"),
        ({"onsetDateTime": "2999-01-01"}, "onsetDateTime"),
        ({"onsetString": "childhood"}, "onsetString"),
        (
            {
                "clinicalStatus": {
                    "coding": [{"system": m.CONDITION_CLINICAL_SYSTEM, "code": "inactive"}]
                }
            },
            "clinicalStatus",
        ),
        (
            {
                "verificationStatus": {
                    "coding": [{"system": m.CONDITION_VERIFICATION_SYSTEM, "code": "refuted"}]
                }
            },
            "verificationStatus",
        ),
        ({"subject": {"reference": "Patient/someone-else"}}, "subject"),
    ],
)
def test_conditions_clarity_cannot_hold_are_refused_by_field(
    change: dict[str, Any], field: str
) -> None:
    bundle = export_json()
    n = condition_index(bundle, "F31.81")  # the one without an onset or abatement
    bundle["entry"][n]["resource"].update(change)
    assert fields(bundle) == {f"entry[{n}].resource.{field}"}


def test_abatement_needs_a_resolved_status() -> None:
    bundle = export_json()
    n = condition_index(bundle, "F31.81")
    bundle["entry"][n]["resource"]["abatementDateTime"] = "2024-01-01"
    assert fields(bundle) == {f"entry[{n}].resource.abatementDateTime"}


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("medicationCodeableConcept",), {"text": "unobtainium"}, "medicationCodeableConcept"),
        (("dosage",), [], "dosage"),
        (
            ("dosage", 0, "doseAndRate", 0, "doseQuantity", "value"),
            0,
            "dosage[0].doseAndRate[0].doseQuantity.value",
        ),
        (
            ("dosage", 0, "doseAndRate", 0, "doseQuantity", "value"),
            1.23456,
            "dosage[0].doseAndRate[0].doseQuantity.value",
        ),
        (
            ("dosage", 0, "doseAndRate", 0, "doseQuantity"),
            {"value": 5, "unit": "furlongs"},
            "dosage[0].doseAndRate[0].doseQuantity.unit",
        ),
        (
            ("dosage", 0, "timing"),
            {"code": {"text": "whenever the moon is full"}},
            "dosage[0].timing",
        ),
        (("effectivePeriod",), {"start": "2024-03-01", "end": "2024-01-01"}, "effectivePeriod.end"),
        (("effectivePeriod",), {"start": "2024"}, "effectivePeriod.start"),
    ],
)
def test_medication_statements_clarity_cannot_hold_are_refused_by_field(
    path: tuple[Any, ...], value: Any, field: str
) -> None:
    bundle = export_json()
    n = medication_index(bundle, "sertraline")
    target: Any = bundle["entry"][n]["resource"]
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert fields(bundle) == {f"entry[{n}].resource.{field}"}


def test_an_unknown_drug_gets_suggestions_but_never_its_name_back() -> None:
    bundle = export_json()
    n = entry_index(bundle, "MedicationStatement")
    bundle["entry"][n]["resource"]["medicationCodeableConcept"] = {"text": "sertralinne"}
    (problem,) = problems(bundle)
    assert "sertraline" in problem.message
    assert "sertralinne" not in problem.message


def test_patient_problems_map_to_fhir_elements() -> None:
    bundle = export_json()
    resource = bundle["entry"][0]["resource"]
    resource["identifier"] = [{"system": "urn:oid:1.2.3", "value": "X"}]
    resource["birthDate"] = "1961"
    resource["extension"] = [{"url": m.TIMEZONE_EXTENSION, "valueCode": "Mars/Olympus"}]
    resource["telecom"] = [{"system": "email", "value": "not-an-address"}]
    found = problems(bundle)
    assert {p.field for p in found} == {
        "entry[0].resource.identifier",
        "entry[0].resource.birthDate",
        "entry[0].resource.extension",
        "entry[0].resource.telecom",
    }
    text = json.dumps([vars(p) for p in found])
    for secret in ("Olympus", "not-an-address", "1961"):
        assert secret not in text


def test_a_bundle_needs_exactly_one_patient() -> None:
    bundle = export_json()
    assert fields({**bundle, "entry": bundle["entry"][1:]}) == {"entry"}
    assert fields({**bundle, "entry": [bundle["entry"][0], *bundle["entry"]]}) == {"entry"}


def test_structural_errors_name_the_entry_and_field_without_the_value() -> None:
    bundle = export_json()
    bundle["entry"][0]["resource"]["birthDate"] = "14/07/1961-CANARY"
    bundle["entry"][1]["resource"]["valueSecret"] = "CANARY-EXTRA"
    found = problems(bundle)
    assert {p.field for p in found} == {
        "entry[0].resource.birthDate",
        "entry[1].resource.valueSecret",
    }
    assert "CANARY" not in json.dumps([vars(p) for p in found])


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ([], "(bundle)"),
        ({"resourceType": "Patient"}, "resourceType"),
        ({"resourceType": "Bundle", "type": "history", "entry": []}, "type"),
        (
            {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"resource": {"resourceType": "Encounter"}}],
            },
            "entry[0].resource.resourceType",
        ),
        (
            {"resourceType": "Bundle", "type": "collection", "entry": [{"fullUrl": "urn:uuid:1"}]},
            "entry[0].resource",
        ),
        ({"resourceType": "Bundle", "type": "collection", "entry": "no"}, "entry"),
        ({"resourceType": "Bundle", "type": ["collection"]}, "type"),
        (
            {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [
                    {
                        "resource": {
                            "resourceType": "Patient",
                            "contained": [{"resourceType": "Nope"}],
                        }
                    }
                ],
            },
            "(bundle)",
        ),
    ],
)
def test_documents_that_are_not_importable_bundles(data: Any, field: str) -> None:
    assert field in fields(data)


def test_observation_ids_are_stable_and_distinct_from_the_response() -> None:
    response_id = uuid.uuid4()
    assert m.observation_id(response_id) == m.observation_id(response_id)
    assert m.observation_id(response_id) != response_id


def test_a_discharged_patient_exports_inactive_and_imports_as_discharged() -> None:
    _, d, meds, a = record_set()
    bundle = json.loads(
        m.export_bundle(patient(active=False), d, meds, a, now=NOW).model_dump_json()
    )
    assert bundle["entry"][0]["resource"]["active"] is False
    assert m.parse_bundle(bundle, now=NOW).active is False
