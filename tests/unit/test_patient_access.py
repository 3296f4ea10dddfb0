"""Who may reach which patient, and the 404 the web layer answers on refusal."""

from __future__ import annotations

import uuid

import pytest

from clarity.auth.dependencies import Principal, ensure_patient_access
from clarity.auth.patient_access import may_reach_patient
from clarity.errors import AppError

USER = uuid.uuid4()
PATIENT = uuid.uuid4()
OTHER_PATIENT = uuid.uuid4()


def may(
    role: str,
    *,
    care_team: tuple[uuid.UUID, ...] = (),
    own: uuid.UUID | None = None,
    identified: bool = True,
) -> bool:
    return may_reach_patient(
        role=role,
        user_id=USER,
        own_patient_id=own,
        patient_id=PATIENT,
        care_team=care_team,
        identified=identified,
    )


def test_admin_reaches_any_patient() -> None:
    assert may("admin") is True


def test_clinician_only_on_the_care_team() -> None:
    assert may("clinician", care_team=(uuid.uuid4(), USER)) is True
    assert may("clinician", care_team=(uuid.uuid4(),)) is False
    assert may("clinician") is False


def test_patient_only_their_own_record() -> None:
    assert may("patient", own=PATIENT) is True
    assert may("patient", own=OTHER_PATIENT) is False
    assert may("patient", own=None) is False
    # Being on a care team gives a patient nothing.
    assert may("patient", care_team=(USER,)) is False


def test_researcher_only_de_identified() -> None:
    assert may("researcher", identified=False) is True
    assert may("researcher", identified=True) is False
    assert may("researcher", care_team=(USER,), identified=True) is False


@pytest.mark.parametrize("role", ["", "superuser", "ADMIN", "auditor"])
def test_unknown_role_reaches_nobody(role: str) -> None:
    assert may(role, care_team=(USER,), own=PATIENT, identified=False) is False


def principal(role: str) -> Principal:
    return Principal(
        user_id=USER,
        organization_id=uuid.uuid4(),
        role=role,
        session_id=uuid.uuid4(),
        token_id=uuid.uuid4(),
    )


def test_ensure_patient_access_allows_silently() -> None:
    ensure_patient_access(principal("clinician"), PATIENT, care_team=[USER])
    ensure_patient_access(principal("patient"), PATIENT, care_team=[], own_patient_id=PATIENT)


@pytest.mark.parametrize("role", ["clinician", "patient", "researcher", "nobody"])
def test_ensure_patient_access_refuses_with_404(role: str) -> None:
    with pytest.raises(AppError) as caught:
        ensure_patient_access(
            principal(role), PATIENT, care_team=[uuid.uuid4()], own_patient_id=OTHER_PATIENT
        )
    assert caught.value.status == 404
    assert caught.value.code == "not_found"
