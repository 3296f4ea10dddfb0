"""The ``apple_health`` import format: mapping, skipping, PHI, safety, and the generator."""

from __future__ import annotations

import io
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from clarity.biometrics.formats import FormatError, ImportOptions, Records, get_format
from clarity.biometrics.streams import Sample, check_sample
from tests.support.apple_health import write_export
from tests.support.formats import fixture

CET = timezone(timedelta(hours=1))


def at(
    year: int,
    month: int,
    day: int,
    hour: int = 0,
    minute: int = 0,
    second: int = 0,
    tz: timezone = CET,
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=tz)


def rec(stream: str, ts: datetime, value: float, unit: str) -> dict[str, object]:
    return {"stream": stream, "ts": ts, "value": value, "unit": unit, "source": "apple_health"}


def read(data: bytes | Path, **options: object) -> Records:
    fmt = get_format("apple_health")
    handle = data.open("rb") if isinstance(data, Path) else io.BytesIO(data)
    records = fmt.read(handle, ImportOptions(**options))  # type: ignore[arg-type]
    assert isinstance(records, Records)
    return records


def test_fixture_records_skips_and_nones() -> None:
    records = read(fixture("apple_health_export.xml"))
    assert list(records) == [
        rec("heart_rate", at(2024, 1, 5, 9, 30), 72.0, "/min"),
        rec("steps", at(2024, 1, 5, 9, 31), 412.0, "count"),
        rec("spo2", at(2024, 1, 5, 3, 10), 97.0, "%"),  # HealthKit's fraction 0.97
        rec("resting_heart_rate", at(2024, 1, 5), 58.0, "/min"),
        rec("hrv_sdnn", at(2024, 1, 5, 7, 2, 11), 48.2571, "ms"),
        rec("respiratory_rate", at(2024, 1, 5, 3, 12), 14.5, "/min"),
        rec("skin_temperature", at(2024, 1, 4, 23, 40), 35.71, "degC"),
        rec("sleep_stage", at(2024, 1, 4, 23, 40), 1, "{stage}"),  # core -> light
        rec("sleep_stage", at(2024, 1, 5, 0, 10), 2, "{stage}"),
        rec("sleep_stage", at(2024, 1, 5, 1, 0), 3, "{stage}"),
        rec("sleep_stage", at(2024, 1, 5, 1, 30), 0, "{stage}"),
        None,  # unreadable startDate
        None,  # value is no number
        rec("heart_rate", at(2024, 7, 5, 9, 30, tz=timezone(timedelta(hours=2))), 64.0, "/min"),
    ]
    assert records.skipped == Counter(
        {
            "HKCategoryValueSleepAnalysisInBed": 1,
            "HKCategoryValueSleepAnalysisAsleepUnspecified": 1,
            "HKQuantityTypeIdentifierBodyMass": 1,
            "Correlation": 1,  # its nested heart rate is not a record
            "Workout": 1,
            "ActivitySummary": 1,
        }
    )


def test_records_pass_check_sample() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    records = [r for r in read(fixture("apple_health_export.xml")) if r is not None]
    assert all(isinstance(check_sample(i, r, now), Sample) for i, r in enumerate(records))


def test_personal_details_never_reach_records() -> None:
    """<Me> (birth date, sex) and sourceName (a person's device name) are never used."""
    text = repr(list(read(fixture("apple_health_export.xml"), source="watch")))
    for phi in ("1985", "Female", "Jane", "iPhone", "Cuff"):
        assert phi not in text
    assert "'source': 'watch'" in text


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"timestamp,date,activity\n2004-01-01 12:00:00,x,4\n",
        b'<?xml version="1.0"?><ClinicalDocument><Record type="x"/></ClinicalDocument>',
        b'{"resourceType": "Bundle"}',
    ],
)
def test_wrong_kind_of_file_is_a_format_error(data: bytes) -> None:
    with pytest.raises(FormatError):
        list(read(data))


def test_entity_declarations_are_refused() -> None:
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE HealthData [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        b'<HealthData><Record type="HKQuantityTypeIdentifierHeartRate" value="&b;"/></HealthData>'
    )
    with pytest.raises(FormatError, match="entities"):
        list(read(laughs))


@pytest.mark.parametrize("piece", [1 << 20, 64])
@pytest.mark.parametrize(
    "damage", [b'<Record type="HKQuant', b"<Record <<broken>> />\n</HealthData>\n"]
)
def test_broken_export_fails_naming_the_line_after_its_records(
    piece: int, damage: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clarity.biometrics.formats import apple_health

    monkeypatch.setattr(apple_health, "PIECE", piece)
    whole = fixture("apple_health_export.xml").read_bytes()
    records = read(whole[: whole.index(b"<Correlation")] + damage)
    seen: list[object] = []
    with pytest.raises(FormatError, match=r"line \d+"):
        seen.extend(records)
    assert len(seen) == 13  # everything before the break was read


def test_records_inside_a_large_file_are_read_in_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    from clarity.biometrics.formats import apple_health

    monkeypatch.setattr(apple_health, "PIECE", 97)  # elements split across pieces
    assert list(read(fixture("apple_health_export.xml"))) == list(
        read(fixture("apple_health_export.xml").read_bytes())
    )


def test_generator_and_reader_agree(tmp_path: Path) -> None:
    path = tmp_path / "export.xml"
    expected = write_export(path, 20_000, seed=3)
    assert expected.records == 20_000
    records = read(path)
    streams: Counter[str] = Counter()
    unreadable = 0
    now = datetime(2030, 1, 1, tzinfo=UTC)
    for index, record in enumerate(records):
        if record is None:
            unreadable += 1
            continue
        streams[record["stream"]] += 1
        assert isinstance(check_sample(index, record, now), Sample)
    assert streams == expected.streams
    assert unreadable == expected.unreadable > 0
    assert records.skipped == expected.skipped
    assert sum(streams.values()) + unreadable == expected.yielded


def test_generator_is_deterministic(tmp_path: Path) -> None:
    first, second = tmp_path / "a.xml", tmp_path / "b.xml"
    write_export(first, 3000, seed=7)
    write_export(second, 3000, seed=7)
    assert first.read_bytes() == second.read_bytes()
