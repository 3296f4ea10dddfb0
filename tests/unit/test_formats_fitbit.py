"""The ``fitbit_json`` import format: each file kind, detection, local times, bad items."""

from __future__ import annotations

import io
from collections import Counter
from datetime import datetime

import pytest

from clarity.biometrics.formats import (
    FormatError,
    ImportOptions,
    OptionsError,
    Records,
    get_format,
)
from tests.support.formats import fixture, read_records, utc

OSLO = "Europe/Oslo"


def rec(stream: str, ts: datetime, value: float, unit: str) -> dict[str, object]:
    return {"stream": stream, "ts": ts, "value": value, "unit": unit, "source": "fitbit"}


def test_heart_rate_file() -> None:
    records = read_records("fitbit_json", fixture("heart_rate-2024-01-05.json"), timezone=OSLO)
    assert records == [
        rec("heart_rate", utc(2024, 1, 5, 8, 30), 70.0, "/min"),
        rec("heart_rate", utc(2024, 1, 5, 8, 30, 5), 72.0, "/min"),
        None,  # month 13
        None,  # bpm is no number
        # 02:30 on 31 March 2024 does not exist in Oslo: the offset before the change (+1)
        rec("heart_rate", utc(2024, 3, 31, 1, 30), 55.0, "/min"),
    ]


def test_steps_file_detected_by_its_name() -> None:
    records = read_records("fitbit_json", fixture("steps-2024-01-05.json"), timezone="UTC")
    assert records == [
        rec("steps", utc(2024, 1, 5, 0, 0), 0.0, "{steps}"),
        rec("steps", utc(2024, 1, 5, 0, 1), 12.0, "{steps}"),
        None,
    ]


def test_plain_number_file_needs_a_kind_without_a_telling_name() -> None:
    data = fixture("steps-2024-01-05.json").read_bytes()
    with pytest.raises(OptionsError, match="kind"):
        read_records("fitbit_json", data, timezone="UTC")
    records = read_records("fitbit_json", data, timezone="UTC", kind="steps")
    assert [r["value"] for r in records if r] == [0.0, 12.0]


def test_resting_heart_rate_zero_is_no_estimate() -> None:
    path = fixture("resting_heart_rate-2024-01-01.json")
    with path.open("rb") as handle:
        records = get_format("fitbit_json").read(handle, ImportOptions(timezone=OSLO))
        assert isinstance(records, Records)
        assert list(records) == [rec("resting_heart_rate", utc(2023, 12, 31, 23), 61.40654, "/min")]
    assert records.skipped == Counter({"resting_heart_rate_none": 1})


def test_sleep_stages() -> None:
    with fixture("sleep-2024-01-05.json").open("rb") as handle:
        records = get_format("fitbit_json").read(handle, ImportOptions(timezone=OSLO))
        assert isinstance(records, Records)
        assert list(records) == [
            rec("sleep_stage", utc(2024, 1, 5, 22, 30), 0.0, "{stage}"),
            rec("sleep_stage", utc(2024, 1, 5, 22, 36), 1.0, "{stage}"),
            rec("sleep_stage", utc(2024, 1, 5, 23, 1), 2.0, "{stage}"),
            rec("sleep_stage", utc(2024, 1, 5, 23, 21), 3.0, "{stage}"),
            None,  # a level that is no stage
        ]
    assert records.skipped == Counter({"sleep_short_wake": 1, "sleep_classic": 1})


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not json",
        b'{"dateTime": "01/05/24 09:30:00", "value": "3"}',
        b'[{"calories": 3}]',
        b"timestamp,date,activity\n",
    ],
)
def test_wrong_kind_of_file_is_a_format_error(data: bytes) -> None:
    with pytest.raises(FormatError):
        read_records("fitbit_json", data, timezone="UTC")


def test_timezone_is_required_and_kind_must_be_known() -> None:
    data = fixture("heart_rate-2024-01-05.json").read_bytes()
    assert get_format("fitbit_json").needs_timezone
    with pytest.raises(OptionsError, match="timezone"):
        read_records("fitbit_json", data)
    with pytest.raises(OptionsError, match="kind"):
        read_records("fitbit_json", data, timezone="UTC", kind="calories")


def test_source_option() -> None:
    data = io.BytesIO(fixture("heart_rate-2024-01-05.json").read_bytes())
    records = get_format("fitbit_json").read(data, ImportOptions(timezone="UTC", source="sense"))
    first = next(iter(records))
    assert first is not None
    assert first["source"] == "sense"
