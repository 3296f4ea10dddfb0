"""Clarity records to FHIR resources and back (pure: no web, no database).

**FHIR version.** ``fhir.resources`` 8.x ships models for R5 (top level), R4B and STU3; it
has no separate R4 package. This module uses ``fhir.resources.R4B`` (FHIR 4.3.0). For the
resources exchanged here (Patient, Condition, MedicationStatement, QuestionnaireResponse,
Observation and Bundle) R4B is structurally the R4 (4.0.1) definition, so what is written
is R4 content and R4 bundles from other systems read. Every resource that leaves or enters
is validated by those models (``model_validate``).

**Export** (:func:`export_bundle`): a ``collection`` Bundle, entries addressed by
``urn:uuid:<row id>`` and referencing each other that way.

- Patient: ``identifier`` is the MRN under the system :data:`MRN_SYSTEM` (type v2-0203
  ``MR``); one official ``name``; ``birthDate``; ``gender`` from sex at birth (female,
  male; intersex gives ``other``, unknown ``unknown``), with the exact value in the
  :data:`SEX_AT_BIRTH_EXTENSION` extension; gender identity in HL7's
  ``patient-genderIdentity`` extension; time zone in :data:`TIMEZONE_EXTENSION`; phone and
  email as ``telecom``, the address as ``address.text``; the emergency contact as a
  ``contact`` with relationship v2-0131 ``C``; ``active`` false once discharged. Free-text
  flags are not exported.
- Condition per diagnosis: ICD-10-CM code; ``clinicalStatus`` active, remission or
  resolved (Clarity's statuses are codes of condition-clinical); ``verificationStatus``
  confirmed (Clarity records diagnoses made); category problem-list-item;
  ``onsetDateTime`` and ``abatementDateTime`` (the date resolved) as dates.
- MedicationStatement per statement: ``medicationCodeableConcept`` with the RxNorm
  ingredient RxCUI where the catalogue has a verified one, ``text`` the generic name;
  ``status`` intended, active or completed as of today in the patient's time zone;
  ``effectivePeriod`` start and stop; one ``dosage`` whose ``doseQuantity`` is UCUM where
  the unit has a UCUM code (else the Clarity unit system), whose ``timing`` carries the
  Clarity frequency code (plus the HL7 GTSAbbreviation code where one means the same), the
  ``repeat`` structure and its text; ``asNeededBoolean``. The prescriber's name is in
  :data:`PRESCRIBER_EXTENSION` (R4 has no element for a free-text prescriber).
- QuestionnaireResponse per assessment: ``questionnaire`` ``urn:clarity:instrument:<id>|
  <version>``, ``authored`` the time administered, one item per answered item
  (``linkId`` = item id) with ``valueInteger``.
- Observation per assessment: category survey; code the instrument's LOINC total-score
  code where it has a verified one, else :data:`SCORE_SYSTEM` ``<id>-total``;
  ``valueInteger`` the total; severity band as ``interpretation``; a transformed score
  (WHO-5 percentage) as a component; ``derivedFrom`` the QuestionnaireResponse.

**Import** (:func:`parse_bundle`) reads the same shapes, and accepts the usual variants of
other systems (an MRN found by type ``MR``, ``Patient/<id>`` references, RxNorm or name,
UCUM or catalogue unit, frequency by Clarity code, GTS code, ``repeat`` or text). What
Clarity cannot hold faithfully is refused with a problem naming the entry and field rather
than dropped or guessed: a partial date, a ``refuted`` or ``provisional`` diagnosis, an
``inactive`` status (remission or resolved?), several dosages. Records marked
``entered-in-error`` (and medications ``not-taken``) are skipped and counted. Answers are
re-scored with :mod:`clarity.assessments.scoring`; an Observation's total must agree with
that score, and is otherwise not stored (scores are derived, never imported). Problems
never contain the values sent.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fhir.resources.R4B.address import Address
from fhir.resources.R4B.bundle import Bundle, BundleEntry
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.dosage import Dosage
from fhir.resources.R4B.extension import Extension
from fhir.resources.R4B.humanname import HumanName
from fhir.resources.R4B.medicationstatement import MedicationStatement
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.quantity import Quantity
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from fhir.resources.R4B.reference import Reference
from pydantic import ValidationError

from clarity.assessments import scoring
from clarity.assessments.catalog import Instrument, UnknownInstrumentError, get_instrument
from clarity.clinical import icd10
from clarity.clinical import medications as catalogue
from clarity.patients.schemas import PatientCreate, SexAtBirth

FHIR_VERSION: Final = "4.3.0"  # R4B; see the module notes
FHIR_JSON: Final = "application/fhir+json"

# Code systems and identifier systems (setting-free constants).
MRN_SYSTEM: Final = "urn:clarity:mrn"
ICD10CM_SYSTEM: Final = "http://hl7.org/fhir/sid/icd-10-cm"
RXNORM_SYSTEM: Final = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM_SYSTEM: Final = "http://unitsofmeasure.org"
LOINC_SYSTEM: Final = "http://loinc.org"
IDENTIFIER_TYPE_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/v2-0203"
CONTACT_ROLE_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/v2-0131"
CONDITION_CLINICAL_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CONDITION_CATEGORY_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/condition-category"
OBSERVATION_CATEGORY_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/observation-category"
TIMING_ABBREVIATION_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation"
GENDER_IDENTITY_EXTENSION: Final = "http://hl7.org/fhir/StructureDefinition/patient-genderIdentity"
SEX_AT_BIRTH_EXTENSION: Final = "urn:clarity:fhir:extension:sex-at-birth"
TIMEZONE_EXTENSION: Final = "urn:clarity:fhir:extension:timezone"
PRESCRIBER_EXTENSION: Final = "urn:clarity:fhir:extension:prescriber"
FREQUENCY_SYSTEM: Final = "urn:clarity:frequency"
DOSE_UNIT_SYSTEM: Final = "urn:clarity:dose-unit"
SCORE_SYSTEM: Final = "urn:clarity:instrument-score"
INSTRUMENT_PREFIX: Final = "urn:clarity:instrument:"

SUPPORTED_RESOURCES: Final = (
    "Patient",
    "Condition",
    "MedicationStatement",
    "QuestionnaireResponse",
    "Observation",
)
IMPORT_BUNDLE_TYPES: Final = ("collection", "transaction", "batch", "searchset")

GENDER_FROM_SEX: Final[Mapping[str, str]] = {
    SexAtBirth.female: "female",
    SexAtBirth.male: "male",
    SexAtBirth.intersex: "other",
    SexAtBirth.unknown: "unknown",
}
# Administrative gender "other" says nothing about sex at birth: it reads as unknown
# unless the Clarity extension states the value.
SEX_FROM_GENDER: Final[Mapping[str, str]] = {
    "female": SexAtBirth.female,
    "male": SexAtBirth.male,
    "other": SexAtBirth.unknown,
    "unknown": SexAtBirth.unknown,
}
CLINICAL_STATUS_DISPLAY: Final[Mapping[str, str]] = {
    "active": "Active",
    "remission": "Remission",
    "resolved": "Resolved",
}
# condition-clinical codes Clarity can hold; recurrence and relapse are kinds of active.
STATUS_FROM_CLINICAL: Final[Mapping[str, str]] = {
    "active": "active",
    "recurrence": "active",
    "relapse": "active",
    "remission": "remission",
    "resolved": "resolved",
}
# Clarity frequency code -> HL7 TimingAbbreviation code with the same meaning.
GTS_FROM_FREQUENCY: Final[Mapping[str, str]] = {
    "daily": "QD",
    "BID": "BID",
    "TID": "TID",
    "QID": "QID",
    "QAM": "AM",
    "QHS": "BED",
    "QOD": "QOD",
    "Q4H": "Q4H",
    "Q6H": "Q6H",
    "Q8H": "Q8H",
    "weekly": "WK",
    "monthly": "MO",
}
FREQUENCY_FROM_GTS: Final[Mapping[str, str]] = {v: k for k, v in GTS_FROM_FREQUENCY.items()}
EARLIEST_DATE: Final = date(1900, 1, 1)
MAX_START_AHEAD_DAYS: Final = 90
# A date that is "today" somewhere on Earth is at most this far ahead of UTC (UTC+14).
_FURTHEST_AHEAD: Final = timedelta(hours=14)
_MAX_DOSE: Final = Decimal(10) ** 8  # Numeric(12, 4)
_DOSE_STEP: Final = Decimal("0.0001")


# --- Clarity-side records -------------------------------------------------------------


@dataclass(frozen=True)
class EmergencyContactData:
    name: str
    relationship: str | None = None
    phone: str | None = None


@dataclass(frozen=True)
class PatientData:
    id: uuid.UUID
    mrn: str
    given_name: str
    family_name: str
    birth_date: date
    sex_at_birth: str
    gender_identity: str | None = None
    timezone: str = "UTC"
    phone: str | None = None
    email: str | None = None
    address: str | None = None
    emergency_contact: EmergencyContactData | None = None
    active: bool = True


@dataclass(frozen=True)
class DiagnosisData:
    code: str
    status: str = "active"
    onset: date | None = None
    resolved_on: date | None = None
    id: uuid.UUID | None = None


@dataclass(frozen=True)
class MedicationData:
    drug: str
    drug_class: str
    rxcui: str | None
    dose: Decimal
    unit: str
    frequency: str
    start: date
    stop: date | None = None
    prescriber: str | None = None
    id: uuid.UUID | None = None


@dataclass(frozen=True)
class AssessmentData:
    instrument_id: str
    instrument_version: str
    answers: Mapping[str, int]
    total: int
    administered_at: datetime
    derived_score: float | None = None
    severity: str | None = None
    safety_signal: bool = False
    id: uuid.UUID | None = None


# --- Export ---------------------------------------------------------------------------


def _compact(value: Any) -> Any:
    """Drop None and empty lists/objects: FHIR forbids empty elements."""
    if isinstance(value, Mapping):
        out = {k: _compact(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not None and v != [] and v != {}}
    if isinstance(value, list):
        items = [_compact(v) for v in value]
        return [v for v in items if v is not None and v != [] and v != {}]
    return value


def _urn(resource_id: uuid.UUID) -> str:
    return f"urn:uuid:{resource_id}"


def _coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    return {"system": system, "code": code, "display": display}


def _concept(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    return {"coding": [_coding(system, code, display)]}


def _require_id(resource_id: uuid.UUID | None, what: str) -> uuid.UUID:
    if resource_id is None:
        raise ValueError(f"an exported {what} needs its id")
    return resource_id


def patient_resource(patient: PatientData) -> Patient:
    extensions: list[dict[str, Any]] = [
        {"url": SEX_AT_BIRTH_EXTENSION, "valueCode": patient.sex_at_birth},
        {"url": TIMEZONE_EXTENSION, "valueCode": patient.timezone},
    ]
    if patient.gender_identity:
        extensions.insert(
            1,
            {
                "url": GENDER_IDENTITY_EXTENSION,
                "valueCodeableConcept": {"text": patient.gender_identity},
            },
        )
    telecom = []
    if patient.phone:
        telecom.append({"system": "phone", "value": patient.phone})
    if patient.email:
        telecom.append({"system": "email", "value": patient.email})
    contact = None
    ec = patient.emergency_contact
    if ec is not None:
        relationship: list[dict[str, Any]] = [
            _concept(CONTACT_ROLE_SYSTEM, "C", "Emergency Contact")
        ]
        if ec.relationship:
            relationship.append({"text": ec.relationship})
        contact = [
            {
                "relationship": relationship,
                "name": {"text": ec.name},
                "telecom": [{"system": "phone", "value": ec.phone}] if ec.phone else None,
            }
        ]
    data = {
        "resourceType": "Patient",
        "id": str(patient.id),
        "extension": extensions,
        "identifier": [
            {
                "type": _concept(IDENTIFIER_TYPE_SYSTEM, "MR", "Medical record number"),
                "system": MRN_SYSTEM,
                "value": patient.mrn,
            }
        ],
        "active": patient.active,
        "name": [{"use": "official", "family": patient.family_name, "given": [patient.given_name]}],
        "telecom": telecom,
        "gender": GENDER_FROM_SEX.get(patient.sex_at_birth, "unknown"),
        "birthDate": patient.birth_date.isoformat(),
        "address": [{"text": patient.address}] if patient.address else None,
        "contact": contact,
    }
    return Patient.model_validate(_compact(data))


def condition_resource(diagnosis: DiagnosisData, patient_ref: str) -> Condition:
    data = {
        "resourceType": "Condition",
        "id": str(_require_id(diagnosis.id, "diagnosis")),
        "clinicalStatus": _concept(
            CONDITION_CLINICAL_SYSTEM,
            diagnosis.status,
            CLINICAL_STATUS_DISPLAY.get(diagnosis.status),
        ),
        "verificationStatus": _concept(CONDITION_VERIFICATION_SYSTEM, "confirmed", "Confirmed"),
        "category": [_concept(CONDITION_CATEGORY_SYSTEM, "problem-list-item", "Problem List Item")],
        "code": {"coding": [_coding(ICD10CM_SYSTEM, diagnosis.code)]},
        "subject": {"reference": patient_ref},
        "onsetDateTime": None if diagnosis.onset is None else diagnosis.onset.isoformat(),
        "abatementDateTime": (
            None if diagnosis.resolved_on is None else diagnosis.resolved_on.isoformat()
        ),
    }
    return Condition.model_validate(_compact(data))


def _today_in(zone: str, now: datetime) -> date:
    try:
        return now.astimezone(ZoneInfo(zone)).date()
    except (ZoneInfoNotFoundError, ValueError):
        return now.astimezone(UTC).date()


def _dose_value(dose: Decimal) -> Decimal:
    """The dose without the storage's trailing zeros (50.0000 -> 50, 12.5000 -> 12.5)."""
    if dose == dose.to_integral_value():
        return dose.quantize(Decimal(1))
    return dose.quantize(_DOSE_STEP).normalize()


def _timing(frequency_code: str) -> tuple[dict[str, Any], bool]:
    """A Dosage.timing for a Clarity frequency code, and whether it is "as needed"."""
    try:
        frequency = catalogue.lookup_frequency(frequency_code)
    except catalogue.UnknownTermError:
        return {"code": {"coding": [_coding(FREQUENCY_SYSTEM, frequency_code)]}}, False
    codings = [_coding(FREQUENCY_SYSTEM, frequency.code, frequency.display)]
    gts = GTS_FROM_FREQUENCY.get(frequency.code)
    if gts is not None:
        codings.append(_coding(TIMING_ABBREVIATION_SYSTEM, gts))
    repeat: dict[str, Any] | None = None
    if frequency.frequency is not None:
        repeat = {
            "frequency": frequency.frequency,
            "period": frequency.period,
            "periodUnit": frequency.period_unit,
            "when": [frequency.when] if frequency.when else None,
        }
    elif frequency.code == "once":
        repeat = {"count": 1}
    timing = {"code": {"coding": codings, "text": frequency.display}, "repeat": repeat}
    return timing, frequency.as_needed


def _dose_quantity(dose: Decimal, unit_code: str) -> dict[str, Any]:
    value = _dose_value(dose)
    try:
        unit = catalogue.lookup_unit(unit_code)
    except catalogue.UnknownTermError:
        return {"value": value, "unit": unit_code}
    if unit.ucum is not None:
        return {"value": value, "unit": unit.code, "system": UCUM_SYSTEM, "code": unit.ucum}
    return {"value": value, "unit": unit.code, "system": DOSE_UNIT_SYSTEM, "code": unit.code}


def medication_status(medication: MedicationData, today: date) -> str:
    if medication.start > today:
        return "intended"
    if medication.stop is not None and medication.stop < today:
        return "completed"
    return "active"


def medication_statement_resource(
    medication: MedicationData, patient_ref: str, today: date
) -> MedicationStatement:
    concept: dict[str, Any] = {"text": medication.drug}
    if medication.rxcui:
        concept["coding"] = [_coding(RXNORM_SYSTEM, medication.rxcui, medication.drug)]
    timing, as_needed = _timing(medication.frequency)
    data = {
        "resourceType": "MedicationStatement",
        "id": str(_require_id(medication.id, "medication statement")),
        "extension": (
            [{"url": PRESCRIBER_EXTENSION, "valueString": medication.prescriber}]
            if medication.prescriber
            else None
        ),
        "status": medication_status(medication, today),
        "medicationCodeableConcept": concept,
        "subject": {"reference": patient_ref},
        "effectivePeriod": {
            "start": medication.start.isoformat(),
            "end": None if medication.stop is None else medication.stop.isoformat(),
        },
        "dosage": [
            {
                "timing": timing,
                "asNeededBoolean": as_needed,
                "doseAndRate": [{"doseQuantity": _dose_quantity(medication.dose, medication.unit)}],
            }
        ],
    }
    return MedicationStatement.model_validate(_compact(data))


def _known_instrument(instrument_id: str) -> Instrument | None:
    try:
        return get_instrument(instrument_id)
    except UnknownInstrumentError:
        return None


def questionnaire_canonical(instrument_id: str, version: str) -> str:
    return f"{INSTRUMENT_PREFIX}{instrument_id}|{version}"


def questionnaire_response_resource(
    assessment: AssessmentData, patient_ref: str
) -> QuestionnaireResponse:
    instrument = _known_instrument(assessment.instrument_id)
    if instrument is not None:
        order = [i for i in instrument.item_ids if i in assessment.answers]
        texts = {item.id: item.text for item in instrument.items}
    else:
        order = sorted(assessment.answers)
        texts = {}
    data = {
        "resourceType": "QuestionnaireResponse",
        "id": str(_require_id(assessment.id, "assessment response")),
        "questionnaire": questionnaire_canonical(
            assessment.instrument_id, assessment.instrument_version
        ),
        "status": "completed",
        "subject": {"reference": patient_ref},
        "authored": assessment.administered_at.isoformat(),
        "item": [
            {
                "linkId": item_id,
                "text": texts.get(item_id),
                "answer": [{"valueInteger": assessment.answers[item_id]}],
            }
            for item_id in order
        ],
    }
    return QuestionnaireResponse.model_validate(_compact(data))


def score_code(instrument_id: str, instrument: Instrument | None) -> tuple[str, str]:
    """(system, code) of an instrument's total score: LOINC where verified, else Clarity's."""
    if instrument is not None and instrument.loinc.total_score:
        return LOINC_SYSTEM, instrument.loinc.total_score
    return SCORE_SYSTEM, f"{instrument_id}-total"


def observation_id(response_id: uuid.UUID) -> uuid.UUID:
    """The score Observation's id: stable, derived from the response it summarises."""
    return uuid.uuid5(response_id, "total-score")


def score_observation_resource(
    assessment: AssessmentData, patient_ref: str, response_ref: str
) -> Observation:
    response_id = _require_id(assessment.id, "assessment response")
    instrument = _known_instrument(assessment.instrument_id)
    system, code = score_code(assessment.instrument_id, instrument)
    name = instrument.abbreviation if instrument is not None else assessment.instrument_id
    interpretation = None
    if assessment.severity:
        band = None
        if instrument is not None:
            band = next(
                (b for b in instrument.severity.bands if b.code == assessment.severity), None
            )
        label = band.label if band is not None else assessment.severity
        interpretation = [
            {
                "coding": [
                    _coding(
                        f"{INSTRUMENT_PREFIX}{assessment.instrument_id}:severity",
                        assessment.severity,
                        label,
                    )
                ],
                "text": label,
            }
        ]
    component = None
    transform = instrument.scoring.transform if instrument is not None else None
    if transform is not None and assessment.derived_score is not None:
        component = [
            {
                "code": {
                    "coding": [
                        _coding(SCORE_SYSTEM, f"{assessment.instrument_id}-{transform.code}")
                    ],
                    "text": transform.label,
                },
                "valueInteger": round(assessment.derived_score),
            }
        ]
    data = {
        "resourceType": "Observation",
        "id": str(observation_id(response_id)),
        "status": "final",
        "category": [_concept(OBSERVATION_CATEGORY_SYSTEM, "survey", "Survey")],
        "code": {"coding": [_coding(system, code)], "text": f"{name} total score"},
        "subject": {"reference": patient_ref},
        "effectiveDateTime": assessment.administered_at.isoformat(),
        "valueInteger": assessment.total,
        "interpretation": interpretation,
        "derivedFrom": [{"reference": response_ref}],
        "component": component,
    }
    return Observation.model_validate(_compact(data))


def _diagnosis_key(d: DiagnosisData) -> tuple[Any, ...]:
    return (d.onset or date.min, d.code, d.status, d.resolved_on or date.min, str(d.id))


def _medication_key(m: MedicationData) -> tuple[Any, ...]:
    return (m.start, m.drug, m.stop or date.max, m.frequency, m.dose, m.unit, str(m.id))


def _assessment_key(a: AssessmentData) -> tuple[Any, ...]:
    return (a.administered_at, a.instrument_id, str(a.id))


def export_bundle(
    patient: PatientData,
    diagnoses: Iterable[DiagnosisData],
    medications: Iterable[MedicationData],
    assessments: Iterable[AssessmentData],
    *,
    now: datetime,
) -> Bundle:
    """The patient's record as a validated ``collection`` Bundle, in a stable order:
    Patient, Conditions, MedicationStatements, then each QuestionnaireResponse followed by
    its score Observation."""
    patient_ref = _urn(patient.id)
    entries: list[dict[str, Any]] = [
        {"fullUrl": patient_ref, "resource": patient_resource(patient)}
    ]
    for diagnosis in sorted(diagnoses, key=_diagnosis_key):
        entries.append(
            {
                "fullUrl": _urn(_require_id(diagnosis.id, "diagnosis")),
                "resource": condition_resource(diagnosis, patient_ref),
            }
        )
    today = _today_in(patient.timezone, now)
    for medication in sorted(medications, key=_medication_key):
        entries.append(
            {
                "fullUrl": _urn(_require_id(medication.id, "medication statement")),
                "resource": medication_statement_resource(medication, patient_ref, today),
            }
        )
    for assessment in sorted(assessments, key=_assessment_key):
        response_id = _require_id(assessment.id, "assessment response")
        response_ref = _urn(response_id)
        entries.append(
            {
                "fullUrl": response_ref,
                "resource": questionnaire_response_resource(assessment, patient_ref),
            }
        )
        entries.append(
            {
                "fullUrl": _urn(observation_id(response_id)),
                "resource": score_observation_resource(assessment, patient_ref, response_ref),
            }
        )
    return Bundle.model_validate(
        {
            "resourceType": "Bundle",
            "type": "collection",
            "timestamp": now.astimezone(UTC).isoformat(),
            "entry": entries,
        }
    )


# --- Import ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One reason a Bundle is refused: where (FHIRPath-like) and why, never the value."""

    field: str
    message: str


class FhirImportError(ValueError):
    """A Bundle that cannot be imported; ``problems`` name each entry and field."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in self.problems))


@dataclass(frozen=True)
class ImportPlan:
    """What a valid Bundle creates, checked and scored, ready to be written in one go."""

    patient: PatientCreate
    active: bool
    diagnoses: tuple[DiagnosisData, ...]
    medications: tuple[MedicationData, ...]
    assessments: tuple[AssessmentData, ...]
    observations_checked: int
    skipped: Mapping[str, int] = field(default_factory=dict)


def _path(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "root":
            continue
        else:
            name = "resourceType" if part == "resource_type" else part
            out += f".{name}" if out else name
    return out or "(bundle)"


def _safe_message(message: str, value: object) -> str:
    """Pydantic's message without the value sent (it may be PHI)."""
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        text = str(value)
        if len(text) >= 3:
            message = message.replace(text, "[value]")
    return message.split("\n", 1)[0].strip()


def validate_bundle(data: object) -> Bundle:
    """Check the JSON document is an importable FHIR R4 Bundle; problems name the fields."""
    if not isinstance(data, Mapping):
        raise FhirImportError([Problem("(bundle)", "must be a FHIR Bundle (a JSON object)")])
    problems: list[Problem] = []
    if data.get("resourceType") != "Bundle":
        problems.append(Problem("resourceType", "must be 'Bundle'"))
    bundle_type = data.get("type")
    if bundle_type is not None and (
        not isinstance(bundle_type, str) or bundle_type not in IMPORT_BUNDLE_TYPES
    ):
        problems.append(Problem("type", f"must be one of {', '.join(IMPORT_BUNDLE_TYPES)}"))
    entries = data.get("entry")
    if isinstance(entries, list):
        for n, entry in enumerate(entries):
            if not isinstance(entry, Mapping):
                continue
            resource = entry.get("resource")
            if resource is None:
                problems.append(Problem(f"entry[{n}].resource", "is required"))
            elif isinstance(resource, Mapping):
                kind = resource.get("resourceType")
                if not isinstance(kind, str) or kind not in SUPPORTED_RESOURCES:
                    problems.append(
                        Problem(
                            f"entry[{n}].resource.resourceType",
                            "must be one of " + ", ".join(SUPPORTED_RESOURCES),
                        )
                    )
    if problems:
        raise FhirImportError(problems)
    try:
        return Bundle.model_validate(data)
    except ValidationError as exc:
        raise FhirImportError(
            Problem(_path(err["loc"]), _safe_message(err["msg"], err.get("input")))
            for err in exc.errors()
        ) from None
    except (KeyError, TypeError, ValueError, AttributeError):
        # fhir.resources raises these for some malformed shapes (e.g. an unknown contained
        # resource type) instead of a ValidationError.
        raise FhirImportError([Problem("(bundle)", "is not a valid FHIR R4 Bundle")]) from None


def _latest_today(now: datetime) -> date:
    return (now.astimezone(UTC) + _FURTHEST_AHEAD).date()


def _as_date(value: object) -> date | None:
    """A full calendar date from a FHIR date/dateTime, or None for a partial one."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return None


def _codes(concept: CodeableConcept | None, system: str) -> list[str]:
    """Codes of a concept in ``system`` (a coding without a system counts too)."""
    if concept is None:
        return []
    return [c.code for c in concept.coding or [] if c.code and c.system in (system, None)]


def _extension(extensions: Sequence[Extension] | None, url: str) -> Extension | None:
    return next((e for e in extensions or [] if e.url == url), None)


@dataclass
class _Scored:
    index: int
    instrument: Instrument
    assessment: AssessmentData
    result: scoring.ScoreResult


# PatientCreate fields -> the FHIR element they came from (for problems).
_PATIENT_FIELDS: Final[Mapping[str, str]] = {
    "mrn": "identifier",
    "given_name": "name.given",
    "family_name": "name.family",
    "birth_date": "birthDate",
    "sex_at_birth": "gender",
    "gender_identity": "extension",
    "timezone": "extension",
    "contact": "telecom",
    "emergency_contact": "contact",
}


class _Importer:
    def __init__(self, bundle: Bundle, now: datetime) -> None:
        self.entries: list[BundleEntry] = list(bundle.entry or [])
        self.now = now
        self.today = _latest_today(now)
        self.problems: list[Problem] = []
        self.skipped: dict[str, int] = {}
        self.patient_refs: set[str] = set()

    def problem(self, where: str, message: str) -> None:
        self.problems.append(Problem(where, message))

    def skip(self, kind: str) -> None:
        self.skipped[kind] = self.skipped.get(kind, 0) + 1

    @staticmethod
    def refs(entry: BundleEntry, kind: str) -> set[str]:
        """Every way a reference inside this Bundle may point at ``entry``."""
        found: set[str] = set()
        resource = entry.resource
        if entry.fullUrl:
            found.add(entry.fullUrl)
        if resource is not None and resource.id:
            found.add(f"{kind}/{resource.id}")
            if entry.fullUrl and entry.fullUrl.endswith(f"/{kind}/{resource.id}"):
                found.add(entry.fullUrl)
        return found

    def check_subject(self, base: str, subject: Reference | None, *, required: bool) -> None:
        if subject is None:
            if required:
                self.problem(f"{base}.subject", "is required")
            return
        if subject.reference not in self.patient_refs:
            self.problem(f"{base}.subject", "must reference the Patient in this Bundle")

    def run(self) -> ImportPlan:
        patients = [
            (n, e.resource) for n, e in enumerate(self.entries) if isinstance(e.resource, Patient)
        ]
        if len(patients) != 1:
            raise FhirImportError([Problem("entry", "must hold exactly one Patient")])
        index, patient = patients[0]
        self.patient_refs = self.refs(self.entries[index], "Patient")
        created = self.patient(f"entry[{index}].resource", patient)

        diagnoses: list[DiagnosisData] = []
        medications: list[MedicationData] = []
        scored: dict[int, _Scored] = {}
        for n, entry in enumerate(self.entries):
            base = f"entry[{n}].resource"
            resource = entry.resource
            if isinstance(resource, Condition):
                found = self.condition(base, resource)
                if found is not None:
                    diagnoses.append(found)
            elif isinstance(resource, MedicationStatement):
                med = self.medication(base, resource)
                if med is not None:
                    medications.append(med)
            elif isinstance(resource, QuestionnaireResponse):
                response = self.questionnaire_response(n, base, resource)
                if response is not None:
                    scored[n] = response
        self.check_duplicates(scored)

        checked = 0
        for n, entry in enumerate(self.entries):
            if isinstance(entry.resource, Observation):
                checked += self.observation(f"entry[{n}].resource", entry.resource, scored)

        if self.problems or created is None:
            raise FhirImportError(dict.fromkeys(self.problems))  # in order, once each
        patient_body, active = created
        return ImportPlan(
            patient=patient_body,
            active=active,
            diagnoses=tuple(diagnoses),
            medications=tuple(medications),
            assessments=tuple(s.assessment for s in scored.values()),
            observations_checked=checked,
            skipped=dict(self.skipped),
        )

    # Patient ------------------------------------------------------------------------

    def patient(self, base: str, patient: Patient) -> tuple[PatientCreate, bool] | None:
        fields: dict[str, Any] = {}
        mrn = self.mrn(base, patient)
        if mrn is not None:
            fields["mrn"] = mrn
        name = self.official_name(base, patient.name)
        if name is not None:
            fields["given_name"] = " ".join(g for g in name.given or [] if g)
            fields["family_name"] = name.family or ""
        birth: object = patient.birthDate
        if birth is None:
            self.problem(f"{base}.birthDate", "is required")
        elif _as_date(birth) is None:
            self.problem(f"{base}.birthDate", "must be a full date (YYYY-MM-DD)")
        else:
            fields["birth_date"] = _as_date(birth)
        fields["sex_at_birth"] = self.sex_at_birth(base, patient)
        identity = _extension(patient.extension, GENDER_IDENTITY_EXTENSION)
        if identity is not None and identity.valueCodeableConcept is not None:
            concept = identity.valueCodeableConcept
            fields["gender_identity"] = concept.text or next(
                (c.display or c.code for c in concept.coding or [] if c.display or c.code), None
            )
        zone = _extension(patient.extension, TIMEZONE_EXTENSION)
        if zone is not None and zone.valueCode:
            fields["timezone"] = zone.valueCode
        contact: dict[str, str] = {}
        for point in patient.telecom or []:
            if point.system in ("phone", "email") and point.value and point.system not in contact:
                contact[point.system] = point.value
        if patient.address:
            address = self.address_text(patient.address[0])
            if address:
                contact["address"] = address
        fields["contact"] = contact
        emergency = self.emergency_contact(patient)
        if emergency is not None:
            fields["emergency_contact"] = emergency
        try:
            body = PatientCreate.model_validate(fields)
        except ValidationError as exc:
            for err in exc.errors():
                loc = [str(p) for p in err["loc"]]
                element = _PATIENT_FIELDS.get(loc[0], "") if loc else ""
                if loc[:2] == ["contact", "address"]:
                    element = "address"
                message = _safe_message(err["msg"], err.get("input"))
                self.problem(f"{base}.{element}" if element else base, message)
            return None
        return body, patient.active is not False

    def mrn(self, base: str, patient: Patient) -> str | None:
        identifiers = patient.identifier or []
        chosen = next((i for i in identifiers if i.system == MRN_SYSTEM and i.value), None)
        if chosen is None:
            chosen = next(
                (
                    i
                    for i in identifiers
                    if i.value and "MR" in _codes(i.type, IDENTIFIER_TYPE_SYSTEM)
                ),
                None,
            )
        if chosen is None or not chosen.value:
            self.problem(
                f"{base}.identifier",
                f"needs the MRN: an identifier with system {MRN_SYSTEM} or type v2-0203 MR",
            )
            return None
        return chosen.value

    def official_name(self, base: str, names: Sequence[HumanName] | None) -> HumanName | None:
        if not names:
            self.problem(f"{base}.name", "is required (family and given name)")
            return None
        return next((n for n in names if n.use == "official"), names[0])

    def sex_at_birth(self, base: str, patient: Patient) -> str:
        stated = _extension(patient.extension, SEX_AT_BIRTH_EXTENSION)
        if stated is not None:
            if stated.valueCode in {s.value for s in SexAtBirth}:
                return str(stated.valueCode)
            self.problem(
                f"{base}.extension",
                "sex-at-birth must be one of " + ", ".join(s.value for s in SexAtBirth),
            )
            return SexAtBirth.unknown.value
        if patient.gender is None:
            return SexAtBirth.unknown.value
        if patient.gender not in SEX_FROM_GENDER:
            self.problem(f"{base}.gender", "must be male, female, other or unknown")
            return SexAtBirth.unknown.value
        return str(SEX_FROM_GENDER[patient.gender])

    @staticmethod
    def address_text(address: Address) -> str | None:
        if address.text:
            return str(address.text)
        parts = [*(address.line or []), address.city, address.state, address.postalCode]
        parts.append(address.country)
        joined = ", ".join(str(p) for p in parts if p)
        return joined or None

    @staticmethod
    def emergency_contact(patient: Patient) -> dict[str, Any] | None:
        for contact in patient.contact or []:
            concepts = contact.relationship or []
            if not any("C" in _codes(c, CONTACT_ROLE_SYSTEM) for c in concepts):
                continue
            name = contact.name
            text = None
            if name is not None:
                parts = [*(g for g in name.given or [] if g), name.family or ""]
                text = name.text or " ".join(parts).strip()
            relationship = next(
                (c.text for c in concepts if c.text and "C" not in _codes(c, CONTACT_ROLE_SYSTEM)),
                None,
            )
            phone = next(
                (t.value for t in contact.telecom or [] if t.system == "phone" and t.value), None
            )
            return {"name": text or "", "relationship": relationship, "phone": phone}
        return None

    # Condition ----------------------------------------------------------------------

    def condition(self, base: str, condition: Condition) -> DiagnosisData | None:
        verification = _codes(condition.verificationStatus, CONDITION_VERIFICATION_SYSTEM)
        if "entered-in-error" in verification:
            self.skip("Condition")
            return None
        before = len(self.problems)
        if verification and "confirmed" not in verification:
            self.problem(
                f"{base}.verificationStatus",
                "must be confirmed: Clarity records confirmed diagnoses only",
            )
        self.check_subject(base, condition.subject, required=True)
        code = self.icd10_code(base, condition.code)
        onset = self.condition_date(base, condition, "onset")
        resolved_on = self.condition_date(base, condition, "abatement")
        clinical = _codes(condition.clinicalStatus, CONDITION_CLINICAL_SYSTEM)
        if not clinical:
            status = "resolved" if resolved_on is not None else "active"
        elif clinical[0] in STATUS_FROM_CLINICAL:
            status = STATUS_FROM_CLINICAL[clinical[0]]
        else:
            status = "active"
            self.problem(
                f"{base}.clinicalStatus",
                "must be active, recurrence, relapse, remission or resolved "
                "(inactive does not say which of remission or resolved)",
            )
        if resolved_on is not None and status != "resolved":
            self.problem(
                f"{base}.abatementDateTime", "is only kept on a resolved diagnosis in Clarity"
            )
        if resolved_on is not None and onset is not None and resolved_on < onset:
            self.problem(f"{base}.abatementDateTime", "must not be before the onset")
        if len(self.problems) > before or code is None:
            return None
        return DiagnosisData(code=code, status=status, onset=onset, resolved_on=resolved_on)

    def icd10_code(self, base: str, concept: CodeableConcept | None) -> str | None:
        codings = [
            (n, c)
            for n, c in enumerate(concept.coding or [] if concept is not None else [])
            if c.system == ICD10CM_SYSTEM
        ]
        if not codings:
            self.problem(f"{base}.code", f"needs an ICD-10-CM coding (system {ICD10CM_SYSTEM})")
            return None
        n, coding = codings[0]
        try:
            return icd10.normalize(coding.code or "")
        except icd10.InvalidICD10CodeError as exc:
            self.problem(f"{base}.code.coding[{n}].code", exc.reason)
            return None

    def condition_date(self, base: str, condition: Condition, kind: str) -> date | None:
        """Onset or abatement as a full date; other forms of [x] cannot be held."""
        value: object = getattr(condition, f"{kind}DateTime")
        where = f"{base}.{kind}DateTime"
        if kind == "onset" and value is None and condition.onsetPeriod is not None:
            value, where = condition.onsetPeriod.start, f"{base}.onsetPeriod.start"
        unsupported = (
            ("Age", "Range", "String") if kind == "onset" else ("Age", "Period", "Range", "String")
        )
        for form in unsupported:
            if getattr(condition, f"{kind}{form}", None) is not None:
                self.problem(f"{base}.{kind}{form}", "is not supported; send a full date")
        if value is None:
            return None
        return self.full_date(where, value)

    def full_date(self, where: str, value: object, *, ahead: int = 0) -> date | None:
        found = _as_date(value)
        if found is None:
            self.problem(where, "must be a full date (YYYY-MM-DD)")
            return None
        if found < EARLIEST_DATE:
            self.problem(where, "must not be before 1900")
            return None
        if found > self.today + timedelta(days=ahead):
            self.problem(where, "must not be in the future" if not ahead else "is too far ahead")
            return None
        return found

    # MedicationStatement ------------------------------------------------------------

    def medication(self, base: str, statement: MedicationStatement) -> MedicationData | None:
        if statement.status in ("entered-in-error", "not-taken"):
            self.skip("MedicationStatement")
            return None
        before = len(self.problems)
        self.check_subject(base, statement.subject, required=True)
        drug = self.drug(base, statement)
        start, stop = self.effective(base, statement)
        dose: tuple[Decimal, str, str] | None = None
        dosages = statement.dosage or []
        if len(dosages) != 1:
            self.problem(f"{base}.dosage", "must hold exactly one dosage")
        else:
            dose = self.dosage(f"{base}.dosage[0]", dosages[0])
        prescriber = None
        extension = _extension(statement.extension, PRESCRIBER_EXTENSION)
        if extension is not None:
            prescriber = extension.valueString
            if not prescriber or len(prescriber) > 200:
                self.problem(f"{base}.extension", "prescriber must be 1 to 200 characters")
        if len(self.problems) > before or drug is None or start is None or dose is None:
            return None
        value, unit, frequency = dose
        return MedicationData(
            drug=drug.generic_name,
            drug_class=drug.drug_class,
            rxcui=drug.rxcui,
            dose=value,
            unit=unit,
            frequency=frequency,
            start=start,
            stop=stop,
            prescriber=prescriber,
        )

    def drug(self, base: str, statement: MedicationStatement) -> catalogue.Medication | None:
        concept = statement.medicationCodeableConcept
        if concept is None:
            self.problem(
                f"{base}.medicationCodeableConcept",
                "is required (a medicationReference is not supported)",
            )
            return None
        for coding in concept.coding or []:
            if coding.system == RXNORM_SYSTEM and coding.code:
                found = catalogue.lookup_rxcui(coding.code)
                if found is not None:
                    return found
        names = [concept.text, *(c.display for c in concept.coding or [])]
        suggestions: tuple[str, ...] = ()
        for name in names:
            if not name:
                continue
            try:
                return catalogue.lookup(name)
            except catalogue.UnknownTermError as exc:
                suggestions = suggestions or exc.suggestions
        message = "is not in Clarity's medication catalogue (by RxNorm ingredient or name)"
        if suggestions:
            message += "; did you mean: " + ", ".join(suggestions) + "?"
        self.problem(f"{base}.medicationCodeableConcept", message)
        return None

    def effective(
        self, base: str, statement: MedicationStatement
    ) -> tuple[date | None, date | None]:
        period = statement.effectivePeriod
        if period is not None:
            start_value: object = period.start
            stop_value: object = period.end
            where = f"{base}.effectivePeriod"
        elif statement.effectiveDateTime is not None:
            start_value, stop_value = statement.effectiveDateTime, None
            where = f"{base}.effectiveDateTime"
        else:
            self.problem(f"{base}.effectivePeriod", "needs a start date")
            return None, None
        if start_value is None:
            self.problem(f"{where}.start", "is required")
            return None, None
        start_where = f"{where}.start" if period is not None else where
        start = self.full_date(start_where, start_value, ahead=MAX_START_AHEAD_DAYS)
        stop = None
        if stop_value is not None:
            stop = _as_date(stop_value)
            if stop is None:
                self.problem(f"{where}.end", "must be a full date (YYYY-MM-DD)")
            elif start is not None and stop < start:
                self.problem(f"{where}.end", "must not be before the start")
        return start, stop

    def dosage(self, base: str, dosage: Dosage) -> tuple[Decimal, str, str] | None:
        frequency = self.frequency(base, dosage)
        rates = dosage.doseAndRate or []
        quantity = rates[0].doseQuantity if len(rates) == 1 else None
        if quantity is None or quantity.value is None:
            self.problem(f"{base}.doseAndRate", "needs exactly one doseQuantity with a value")
            return None
        where = f"{base}.doseAndRate[0].doseQuantity"
        value = Decimal(quantity.value)
        try:
            valid = Decimal(0) < value < _MAX_DOSE and value == value.quantize(_DOSE_STEP)
        except InvalidOperation:
            valid = False
        if not valid:
            self.problem(
                f"{where}.value", "must be above 0, below 100000000, with at most 4 decimals"
            )
        unit = self.unit(where, quantity.system, quantity.code, quantity.unit)
        if not valid or unit is None or frequency is None:
            return None
        return value, unit, frequency

    def unit(
        self, where: str, system: str | None, code: str | None, text: str | None
    ) -> str | None:
        units = catalogue.catalogue().units
        if system == UCUM_SYSTEM and code:
            found = next((u for u in units if u.ucum == code), None)
            if found is not None:
                return found.code
        suggestions: tuple[str, ...] = ()
        for name in (code, text):
            if not name:
                continue
            try:
                return catalogue.lookup_unit(name).code
            except catalogue.UnknownTermError as exc:
                suggestions = suggestions or exc.suggestions
        message = "is not a dose unit Clarity knows"
        if suggestions:
            message += "; did you mean: " + ", ".join(suggestions) + "?"
        self.problem(f"{where}.unit", message)
        return None

    def frequency(self, base: str, dosage: Dosage) -> str | None:
        timing = dosage.timing
        concept = timing.code if timing is not None else None
        codings = concept.coding or [] if concept is not None else []
        try:
            for coding in codings:
                if coding.system == FREQUENCY_SYSTEM and coding.code:
                    return catalogue.lookup_frequency(coding.code).code
            for coding in codings:
                if coding.system == TIMING_ABBREVIATION_SYSTEM and coding.code:
                    mapped = FREQUENCY_FROM_GTS.get(coding.code)
                    if mapped is not None:
                        return mapped
        except catalogue.UnknownTermError:
            self.problem(f"{base}.timing.code", "is not a frequency Clarity knows")
            return None
        if dosage.asNeededBoolean:
            return "PRN"
        repeat = timing.repeat if timing is not None else None
        if repeat is not None:
            if repeat.count == 1 and repeat.frequency is None:
                return "once"
            when = list(repeat.when or [])
            for known in catalogue.catalogue().frequencies:
                if (
                    known.frequency is not None
                    and known.period is not None
                    and repeat.frequency == known.frequency
                    and repeat.period is not None
                    and Decimal(repeat.period) == Decimal(str(known.period))
                    and repeat.periodUnit == known.period_unit
                    and when == ([known.when] if known.when else [])
                ):
                    return known.code
        for text in (concept.text if concept is not None else None, dosage.text):
            if text:
                try:
                    return catalogue.lookup_frequency(text).code
                except catalogue.UnknownTermError:
                    continue
        self.problem(
            f"{base}.timing",
            "needs a frequency Clarity knows (Clarity or GTS code, repeat, or text)",
        )
        return None

    # QuestionnaireResponse and Observation -----------------------------------------

    def questionnaire_response(
        self, index: int, base: str, response: QuestionnaireResponse
    ) -> _Scored | None:
        if response.status == "entered-in-error":
            self.skip("QuestionnaireResponse")
            return None
        before = len(self.problems)
        if response.status not in ("completed", "amended"):
            self.problem(f"{base}.status", "must be completed or amended")
        self.check_subject(base, response.subject, required=False)
        instrument = self.instrument(base, response.questionnaire)
        administered_at = self.authored(base, response.authored)
        answers: dict[str, int] = {}
        for n, item in enumerate(response.item or []):
            where = f"{base}.item[{n}]"
            if item.item:
                self.problem(f"{where}.item", "nested items are not supported")
            given = item.answer or []
            if len(given) != 1 or given[0].valueInteger is None:
                self.problem(f"{where}.answer", "must be exactly one valueInteger")
                continue
            if not item.linkId:
                self.problem(f"{where}.linkId", "is required")
                continue
            if item.linkId in answers:
                self.problem(f"{where}.linkId", "is answered twice")
                continue
            answers[item.linkId] = given[0].valueInteger
        if len(self.problems) > before or instrument is None or administered_at is None:
            return None
        try:
            result = scoring.score(instrument, answers)
        except scoring.AnswerError as exc:
            self.problem(f"{base}.item", str(exc))  # names item ids, never answers
            return None
        assessment = AssessmentData(
            instrument_id=instrument.id,
            instrument_version=instrument.version,
            answers={i.item_id: i.value for i in result.items if i.value is not None},
            total=result.total,
            administered_at=administered_at,
            derived_score=(
                None if result.transformed_total is None else float(result.transformed_total)
            ),
            severity=result.severity_code,
            safety_signal=result.safety_signal,
        )
        return _Scored(index, instrument, assessment, result)

    def instrument(self, base: str, questionnaire: str | None) -> Instrument | None:
        where = f"{base}.questionnaire"
        if not questionnaire or not questionnaire.startswith(INSTRUMENT_PREFIX):
            self.problem(where, f"must be a Clarity instrument ({INSTRUMENT_PREFIX}<id>|<version>)")
            return None
        instrument_id, _, version = questionnaire[len(INSTRUMENT_PREFIX) :].partition("|")
        instrument = _known_instrument(instrument_id)
        if instrument is None:
            self.problem(where, "names an instrument Clarity does not have")
            return None
        if version and version != instrument.version:
            self.problem(
                where, f"names a version of {instrument.abbreviation} that Clarity cannot score"
            )
            return None
        return instrument

    def authored(self, base: str, value: object) -> datetime | None:
        where = f"{base}.authored"
        if value is None:
            self.problem(where, "is required (when the instrument was administered)")
            return None
        if not isinstance(value, datetime) or value.tzinfo is None:
            self.problem(where, "must be a date and time with a time zone")
            return None
        if value > self.now + timedelta(minutes=5):
            self.problem(where, "must not be in the future")
            return None
        return value.astimezone(UTC)

    def check_duplicates(self, scored: Mapping[int, _Scored]) -> None:
        seen: set[tuple[str, datetime]] = set()
        for n, item in scored.items():
            key = (item.instrument.id, item.assessment.administered_at)
            if key in seen:
                self.problem(
                    f"entry[{n}].resource.authored",
                    "repeats another response to this instrument at the same time",
                )
            seen.add(key)

    def observation(
        self, base: str, observation: Observation, scored: Mapping[int, _Scored]
    ) -> int:
        """Check a score Observation against the server's score: 1 if checked, else 0."""
        if observation.status == "entered-in-error":
            self.skip("Observation")
            return 0
        self.check_subject(base, observation.subject, required=False)
        targets: set[int] = set()
        for ref in observation.derivedFrom or []:
            for n, entry in enumerate(self.entries):
                if isinstance(entry.resource, QuestionnaireResponse) and ref.reference in (
                    self.refs(entry, "QuestionnaireResponse")
                ):
                    targets.add(n)
        if len(targets) != 1:
            self.problem(
                f"{base}.derivedFrom",
                "must reference one QuestionnaireResponse in this Bundle: only assessment "
                "scores are imported, and they are recomputed from the answers",
            )
            return 0
        target = scored.get(targets.pop())
        if target is None:
            return 0  # the response itself was refused, with its own problems
        system, code = score_code(target.instrument.id, target.instrument)
        if code not in _codes(observation.code, system):
            self.problem(f"{base}.code", "must be the total-score code of the instrument")
            return 0
        if not self.same_value(observation.valueInteger, observation.valueQuantity, target):
            self.problem(f"{base}.value[x]", "does not match the score recomputed from the answers")
            return 0
        transform = target.instrument.scoring.transform
        for n, component in enumerate(observation.component or []):
            want = f"{target.instrument.id}-{transform.code}" if transform else None
            if want is None or want not in _codes(component.code, SCORE_SYSTEM):
                self.problem(f"{base}.component[{n}]", "is not a score Clarity derives")
            elif component.valueInteger != target.result.transformed_total:
                self.problem(
                    f"{base}.component[{n}].valueInteger",
                    "does not match the score recomputed from the answers",
                )
        return 1

    @staticmethod
    def same_value(integer: int | None, quantity: Quantity | None, target: _Scored) -> bool:
        if integer is not None:
            return integer == target.result.total
        if quantity is not None and quantity.value is not None:
            return Decimal(quantity.value) == target.result.total
        return False


def parse_bundle(data: object, *, now: datetime) -> ImportPlan:
    """Validate a Bundle (R4 via the R4B models) and turn it into an :class:`ImportPlan`.

    Raises :class:`FhirImportError` listing every problem found, each naming the entry and
    field; nothing in it repeats a value that was sent.
    """
    return _Importer(validate_bundle(data), now).run()
