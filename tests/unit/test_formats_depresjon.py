"""The ``depresjon`` import format: records, bad lines, DST, and agreement with the reader."""

from __future__ import annotations

import io
from datetime import datetime

import numpy as np
import pytest

from clarity.actigraphy.readers import SharedDataMissing, depresjon_files, read_depresjon_csv
from clarity.biometrics.formats import FormatError, ImportOptions, OptionsError, get_format
from clarity.biometrics.streams import Sample, check_sample
from tests.support.formats import fixture, read_records, utc


def test_fixture_records_in_order_with_none_at_bad_rows() -> None:
    records = read_records("depresjon", fixture("depresjon_spring.csv"))

    def rec(ts: datetime, value: int) -> dict[str, object]:
        return {
            "stream": "activity_counts",
            "ts": ts,
            "value": value,
            "unit": "{count}",
            "source": "actiwatch",
        }

    # Oslo springs forward at 02:00 CET on 2004-03-28: 01:59 CET is 00:59Z, 03:00 CEST 01:00Z.
    assert records == [
        rec(utc(2004, 3, 28, 0, 58), 5),
        rec(utc(2004, 3, 28, 0, 59), 0),
        rec(utc(2004, 3, 28, 1, 0), 12),
        rec(utc(2004, 3, 28, 1, 1), 7),  # day-first style, trailing column ignored
        None,  # activity not a count
        None,  # timestamp unreadable
        None,  # 30 February
        None,  # too few fields
        None,  # negative activity (the blank line before it is no row)
        rec(utc(2004, 3, 28, 1, 5), 9),
    ]


def test_records_pass_check_sample() -> None:
    records = read_records("depresjon", fixture("depresjon_spring.csv"))
    now = utc(2030, 1, 1)
    checked = [check_sample(i, r, now) for i, r in enumerate(records) if r is not None]
    assert all(isinstance(c, Sample) for c in checked)


def test_autumn_repeated_hour_is_resolved_by_order() -> None:
    data = (
        b"timestamp,date,activity\n"
        b"2004-10-31 02:30:00,x,1\n"  # first 02:30, CEST
        b"2004-10-31 02:59:00,x,2\n"
        b"2004-10-31 02:00:00,x,3\n"  # clocks went back: second 02:00, CET
        b"2004-10-31 02:30:00,x,4\n"
        b"2004-10-31 03:00:00,x,5\n"
    )
    stamps = [r["ts"] for r in read_records("depresjon", data) if r is not None]
    assert stamps == [
        utc(2004, 10, 31, 0, 30),
        utc(2004, 10, 31, 0, 59),
        utc(2004, 10, 31, 1, 0),
        utc(2004, 10, 31, 1, 30),
        utc(2004, 10, 31, 2, 0),
    ]


def test_timezone_and_source_options() -> None:
    data = b"timestamp,date,activity\r\n2004-01-01 12:00:00,x,4\r\n"
    (record,) = read_records("depresjon", data, timezone="UTC", source="aw4")
    assert record == {
        "stream": "activity_counts",
        "ts": utc(2004, 1, 1, 12),
        "value": 4,
        "unit": "{count}",
        "source": "aw4",
    }


def test_utf8_bom_and_invalid_bytes_spoil_only_their_row() -> None:
    data = (
        b"\xef\xbb\xbftimestamp,date,activity\n"
        b"2004-01-01 12:00:00,x,4\n"
        b"2004-01-01 12:01:\xff0,x,4\n"
    )
    records = read_records("depresjon", data)
    assert records[0] is not None
    assert records[1] is None


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b'<?xml version="1.0"?><HealthData/>',
        b"time,date,counts\n2004-01-01 12:00:00,x,4\n",
        b"timestamp,activity,activity\n",
    ],
)
def test_wrong_kind_of_file_is_a_format_error(data: bytes) -> None:
    with pytest.raises(FormatError):
        read_records("depresjon", data)


def test_unknown_timezone_is_an_options_error() -> None:
    with pytest.raises(OptionsError):
        read_records("depresjon", b"timestamp,date,activity\n", timezone="Mars/Olympus")


def test_reader_leaves_the_file_open() -> None:
    handle = io.BytesIO(b"timestamp,date,activity\n2004-01-01 12:00:00,x,4\n")
    list(get_format("depresjon").read(handle, ImportOptions()))
    assert not handle.closed


def test_every_depresjon_file_matches_read_depresjon_csv() -> None:
    """All 55 recordings: one record per data row, same UTC times (across DST) and counts."""
    try:
        files = depresjon_files()
    except SharedDataMissing as exc:
        pytest.skip(f"Depresjon shared data absent: {exc}")
    assert len(files) == 55
    fmt = get_format("depresjon")
    for path in files:
        with path.open("rb") as handle:
            records = list(fmt.read(handle, ImportOptions()))
        with path.open("rb") as handle:
            data_rows = sum(1 for line in handle.read().splitlines()[1:] if line.strip())
        series = read_depresjon_csv(path)
        assert len(records) == data_rows == series.timestamps.size, path.name
        assert all(r is not None for r in records), path.name
        seconds = np.fromiter((int(r["ts"].timestamp()) for r in records if r), dtype=np.int64)
        expected = series.timestamps.astype("datetime64[s]").astype(np.int64)
        assert np.array_equal(seconds, expected), path.name
        values = np.fromiter((r["value"] for r in records if r), dtype=np.float64)
        assert np.array_equal(values, series.counts), path.name
