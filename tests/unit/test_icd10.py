"""ICD-10-CM codes: form checks, normalisation and the mental-health chapter."""

from __future__ import annotations

import pytest

from clarity.clinical import icd10
from clarity.clinical.icd10 import InvalidICD10CodeError


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("F32.9", "F32.9"),
        ("F32.A", "F32.A"),  # letter after the '.': "Depression, unspecified" (FY 2022 on)
        ("f32a", "F32.A"),
        ("F3181", "F31.81"),
        ("  f31.81\t", "F31.81"),
        ("Z63.0", "Z63.0"),
        ("S72.001A", "S72.001A"),
        ("T43.011A", "T43.011A"),
        ("s034xxa", "S03.4XXA"),  # placeholders pad up to the 7th character
        ("T36.0X1A", "T36.0X1A"),  # placeholder before a further character
        ("T07.XXXA", "T07.XXXA"),
        ("F20", "F20"),  # a three-character category
        ("I10", "I10"),
        ("C4A.0", "C4A.0"),  # third character may be a letter
        ("Z3A.01", "Z3A.01"),
        ("U07.1", "U07.1"),  # 'U' is in use since 2020
        ("R45.851", "R45.851"),
    ],
)
def test_valid_codes_normalise(raw: str, expected: str) -> None:
    assert icd10.normalize(raw) == expected
    assert icd10.is_valid(raw)
    assert icd10.normalize(expected) == expected  # idempotent


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("32.9", "first character must be a letter"),
        ("F3", "has 2 characters"),
        ("F", "has 1 character "),
        ("F32.99999", "has 8 characters"),
        ("F3299999", "has 8 characters"),
        ("FF2.1", "second character must be a digit"),
        ("", "empty"),
        ("   ", "empty"),
        ("F32.", "nothing follows the '.'"),
        ("F.329", "right after the third character"),
        ("F3.29", "right after the third character"),
        ("F32..9", "more than one '.'"),
        ("F32-9", "contains '-'"),
        ("F32 9", "contains ' '"),
        ("F32.9!", "contains '!'"),
        ("S03.4XX", "placeholder 'X'"),
        ("S03.4X", "placeholder 'X'"),
        ("T07.XXX", "placeholder 'X'"),
        ("F32.99X", "7th character is missing"),
    ],
)
def test_invalid_codes_say_what_is_wrong(raw: str, reason: str) -> None:
    assert not icd10.is_valid(raw)
    with pytest.raises(InvalidICD10CodeError) as caught:
        icd10.normalize(raw)
    assert reason in str(caught.value)
    assert caught.value.reason in str(caught.value)


def test_error_is_a_value_error_that_names_the_code() -> None:
    with pytest.raises(ValueError, match=r"'FF2\.1' is not a valid ICD-10-CM code"):
        icd10.normalize(" ff2.1 ")


def test_category_is_the_first_three_characters() -> None:
    assert icd10.category("f3181") == "F31"
    assert icd10.category("I10") == "I10"


@pytest.mark.parametrize("code", ["F32.9", "F32.A", "f01.50", "F99", "F10.20", "F43.10"])
def test_chapter_f_is_mental_and_behavioural(code: str) -> None:
    assert icd10.is_mental_behavioural(code)


@pytest.mark.parametrize(
    "code",
    [
        "G30.9",  # Alzheimer's disease: chapter G, although psychiatry treats it
        "R45.851",  # suicidal ideation: a symptom code
        "Z63.0",
        "T43.011A",
        "F00",  # ICD-10 (WHO) dementia in Alzheimer's; not an ICD-10-CM chapter 5 category
        "F3A",
    ],
)
def test_other_codes_are_not_in_chapter_f(code: str) -> None:
    assert not icd10.is_mental_behavioural(code)


def test_chapter_check_refuses_malformed_codes() -> None:
    with pytest.raises(InvalidICD10CodeError):
        icd10.is_mental_behavioural("F3")
