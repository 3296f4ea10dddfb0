"""The ``open_mhealth`` import format: schemas, time frames, array and NDJSON, bad points."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from clarity.biometrics.formats import FormatError, ImportOptions, Records, get_format
from clarity.biometrics.streams import Sample, check_sample
from tests.support.formats import fixture, read_records, utc

CET = timezone(timedelta(hours=1))


def rec(stream: str, ts: datetime, value: float, unit: str) -> dict[str, object]:
    return {"stream": stream, "ts": ts, "value": value, "unit": unit, "source": "open_mhealth"}


EXPECTED = [
    rec("heart_rate", datetime(2024, 1, 5, 9, 30, tzinfo=CET), 71.0, "beats/min"),
    rec("steps", utc(2024, 1, 5, 8), 940.0, "steps"),  # step-count 2.0: a bare number
    rec("steps", utc(2024, 1, 5, 9, 45), 210.0, "steps"),  # end less duration
    rec("spo2", utc(2024, 1, 5, 3), 97.5, "%"),
    rec("respiratory_rate", utc(2024, 1, 5, 3, 1), 13.5, "breaths/min"),
    None,  # a date and a part of day is no sample time
    None,  # a time without a zone
    None,  # no header
]


def test_json_array() -> None:
    with fixture("omh_points.json").open("rb") as handle:
        records = get_format("open_mhealth").read(handle, ImportOptions())
        assert isinstance(records, Records)
        assert list(records) == EXPECTED
    assert records.skipped == Counter(
        {"omh:heart-rate:statistic": 1, "omh:body-temperature": 1, "namespace": 1}
    )


def test_ndjson_gives_the_same_records_and_none_for_a_bad_line() -> None:
    points = json.loads(fixture("omh_points.json").read_text())
    lines = [json.dumps(point) for point in points]
    lines.insert(3, "{not json")
    records = read_records("open_mhealth", ("\n".join(lines) + "\n\n").encode())
    assert records == [*EXPECTED[:3], None, *EXPECTED[3:]]


def test_records_pass_check_sample() -> None:
    now = utc(2030, 1, 1)
    good = [r for r in read_records("open_mhealth", fixture("omh_points.json")) if r]
    assert all(isinstance(check_sample(i, r, now), Sample) for i, r in enumerate(good))
    assert "Jane" not in repr(good)


@pytest.mark.parametrize(
    "data",
    [b"", b"  \n", b'"heart-rate"', b"{\n", b"timestamp,date,activity\n", b'{"a": 1}[', b"[1,"],
)
def test_wrong_kind_of_file_is_a_format_error(data: bytes) -> None:
    with pytest.raises(FormatError):
        read_records("open_mhealth", data)
