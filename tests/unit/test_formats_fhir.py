"""The ``fhir_observations`` import format: LOINC mapping, units, skipping, bad entries."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta, timezone

import pytest

from clarity.biometrics.formats import FormatError, ImportOptions, Records, get_format
from clarity.biometrics.streams import Sample, check_sample
from tests.support.formats import fixture, read_records

CET = timezone(timedelta(hours=1))


def rec(stream: str, ts: datetime, value: float, unit: str) -> dict[str, object]:
    return {"stream": stream, "ts": ts, "value": value, "unit": unit, "source": "fhir"}


def test_bundle_records_skips_and_nones() -> None:
    with fixture("fhir_bundle.json").open("rb") as handle:
        records = get_format("fhir_observations").read(handle, ImportOptions())
        assert isinstance(records, Records)
        assert list(records) == [
            rec("heart_rate", datetime(2024, 1, 5, 9, 30, tzinfo=CET), 72.0, "/min"),
            rec("spo2", datetime(2024, 1, 5, 3, 10, tzinfo=UTC), 96.0, "%"),
            rec("respiratory_rate", datetime(2024, 1, 5, 3, 12, tzinfo=UTC), 14.0, "/min"),
            # no UCUM code: the unit text, spelt as the catalogue knows it
            rec("resting_heart_rate", datetime(2024, 1, 5, 7, tzinfo=CET), 58.0, "/min"),
            rec("hrv_sdnn", datetime(2024, 1, 5, 7, 2, tzinfo=CET), 48.2, "ms"),  # from s
            rec("steps", datetime(2024, 1, 5, 9, tzinfo=CET), 812.0, "{steps}"),
            None,  # a date is no sample time
            None,  # value is no number
            None,  # not an entry
        ]
    assert records.skipped == Counter(
        {
            "Patient": 1,
            "Device": 1,
            "Observation:unknown_code": 2,  # 41950-7 daily steps, 8310-5 body temperature
            "Observation:entered-in-error": 1,
            "Observation:data_absent": 1,
        }
    )


def test_records_pass_check_sample_and_never_carry_the_patient() -> None:
    records = read_records("fhir_observations", fixture("fhir_bundle.json"), source="ehr")
    now = datetime(2030, 1, 1, tzinfo=UTC)
    good = [r for r in records if r is not None]
    assert all(isinstance(check_sample(i, r, now), Sample) for i, r in enumerate(good))
    assert {r["source"] for r in good} == {"ehr"}
    assert "Jane" not in repr(records)
    assert "1985" not in repr(records)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"[]",
        b'{"resourceType": "Observation"}',
        b'{"resourceType": "Bundle", "entry": {}}',
        b'<Bundle xmlns="http://hl7.org/fhir"/>',
    ],
)
def test_wrong_kind_of_file_is_a_format_error(data: bytes) -> None:
    with pytest.raises(FormatError):
        read_records("fhir_observations", data)


def test_empty_bundle_has_no_records() -> None:
    assert read_records("fhir_observations", b'{"resourceType": "Bundle"}') == []
