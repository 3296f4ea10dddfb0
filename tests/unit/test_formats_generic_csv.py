"""The ``generic_csv`` import format: mapping, time formats, empty cells, bad rows."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from clarity.biometrics.formats import CsvMapping, FormatError, OptionsError, get_format
from clarity.biometrics.streams import Sample, check_sample
from tests.support.formats import fixture, read_records, utc

MAPPING = CsvMapping(
    timestamp="time",
    columns={"hr": "heart_rate", "temp_f": "skin_temperature", "stage": "sleep_stage"},
    units={"heart_rate": "bpm", "skin_temperature": "degF"},
    delimiter=";",
)


def rec(stream: str, ts: datetime, value: object, unit: str | None) -> dict[str, object]:
    return {"stream": stream, "ts": ts, "value": value, "unit": unit, "source": "generic_csv"}


def test_mapped_columns_with_local_times_across_dst() -> None:
    records = read_records(
        "generic_csv", fixture("generic.csv"), mapping=MAPPING, timezone="Europe/Oslo"
    )
    plus_two = timezone(timedelta(hours=2))
    assert records == [
        rec("heart_rate", utc(2024, 3, 31, 0, 59), 61.0, "bpm"),
        rec("skin_temperature", utc(2024, 3, 31, 0, 59), 35.5, "Cel"),  # from 95.9 degF
        rec("sleep_stage", utc(2024, 3, 31, 0, 59), "light", None),
        # empty heart-rate cell: no record
        rec("skin_temperature", utc(2024, 3, 31, 1, 0), pytest.approx(35.611111111), "Cel"),
        rec("sleep_stage", utc(2024, 3, 31, 1, 0), "deep", None),
        rec("heart_rate", datetime(2024, 3, 31, 3, 1, tzinfo=plus_two), 63.0, "bpm"),
        rec("sleep_stage", datetime(2024, 3, 31, 3, 1, tzinfo=plus_two), "REM", None),
        None,  # unreadable time: one None for the row
        None,  # heart rate is no number
        rec("skin_temperature", utc(2024, 3, 31, 1, 2), pytest.approx(35.666666667), "Cel"),
    ]
    now = utc(2030, 1, 1)
    good = [r for r in records if r is not None]
    assert all(isinstance(check_sample(i, r, now), Sample) for i, r in enumerate(good))


@pytest.mark.parametrize(
    ("time_format", "cell", "expected"),
    [
        ("epoch_s", "1704447000", utc(2024, 1, 5, 9, 30)),
        ("epoch_ms", "1704447000500", utc(2024, 1, 5, 9, 30, 0, 500_000)),
        ("%d.%m.%Y %H:%M %z", "05.01.2024 10:30 +0100", utc(2024, 1, 5, 9, 30)),
        ("%d.%m.%Y %H:%M", "05.01.2024 10:30", utc(2024, 1, 5, 9, 30)),  # in the zone
        ("iso", "2024-01-05T09:30:00Z", utc(2024, 1, 5, 9, 30)),
    ],
)
def test_time_formats(time_format: str, cell: str, expected: datetime) -> None:
    mapping = CsvMapping(timestamp="t", columns={"v": "steps"}, time_format=time_format)
    data = f"t,v\n{cell},12\n".encode()
    (record,) = read_records("generic_csv", data, mapping=mapping, timezone="Europe/Oslo")
    assert record is not None
    assert record["ts"] == expected
    assert record["value"] == 12.0


def test_naive_iso_time_without_a_zone_is_unreadable() -> None:
    mapping = CsvMapping(timestamp="t", columns={"v": "steps"})
    data = b"t,v\n2024-01-05 09:30:00,12\n2024-01-05T09:31:00Z,3\n"
    records = read_records("generic_csv", data, mapping=mapping)
    assert records[0] is None
    assert records[1] is not None


def test_missing_mapped_column_is_a_format_error_naming_it() -> None:
    with pytest.raises(FormatError, match="'temp_f'"):
        read_records("generic_csv", b"time;hr;stage\n", mapping=MAPPING, timezone="Europe/Oslo")


@pytest.mark.parametrize(
    ("mapping", "timezone"),
    [
        (None, None),
        (CsvMapping(timestamp="t", columns={}), None),
        (CsvMapping(timestamp="t", columns={"v": "mood"}), None),
        (CsvMapping(timestamp="t", columns={"v": "steps"}, delimiter=";;"), None),
        (CsvMapping(timestamp="t", columns={"v": "steps"}, time_format="%d.%m.%Y"), None),
        (CsvMapping(timestamp="t", columns={"v": "steps"}), "Nowhere/Else"),
    ],
)
def test_unsuitable_options(mapping: CsvMapping | None, timezone: str | None) -> None:
    with pytest.raises(OptionsError):
        read_records("generic_csv", b"t,v\n", mapping=mapping, timezone=timezone)


def test_empty_file_and_oversized_field() -> None:
    mapping = CsvMapping(timestamp="t", columns={"v": "steps"}, time_format="epoch_s")
    with pytest.raises(FormatError):
        read_records("generic_csv", b"", mapping=mapping)
    huge = b"t,v\n" + b"1," + b"9" * 200_000 + b"\n1704447000,5\n"
    records = read_records("generic_csv", huge, mapping=mapping)
    assert records[0] is None
    assert records[1] is not None
    assert records[1]["value"] == 5.0


def test_format_flags() -> None:
    assert get_format("generic_csv").needs_mapping
    assert not get_format("generic_csv").needs_timezone
