"""What the format readers share: the registry, skip counts, local times, units, text."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clarity.actigraphy.series import local_to_utc
from clarity.biometrics.formats import (
    MAX_SKIPPED_KINDS,
    OTHER_KIND,
    CsvMapping,
    Records,
    SkipCounts,
    formats,
    get_format,
    localtime,
)
from clarity.biometrics.formats.text import OVERLONG_LINE, bounded_lines, text_lines
from clarity.biometrics.formats.units import catalogue_unit
from clarity.biometrics.streams import stream_types
from tests.support.formats import read_records

NAMES = {
    "depresjon",
    "actigraph_csv",
    "apple_health",
    "fitbit_json",
    "fhir_observations",
    "open_mhealth",
    "generic_csv",
}


def test_every_format_is_registered() -> None:
    assert set(formats()) == NAMES
    for name in NAMES:
        assert get_format(name).name == name
    assert {n for n, f in formats().items() if f.needs_timezone} == {"actigraph_csv", "fitbit_json"}
    assert {n for n, f in formats().items() if f.needs_mapping} == {"generic_csv"}
    with pytest.raises(KeyError, match="known"):
        get_format("gt3x")


def test_skip_counts_are_bounded() -> None:
    counts = SkipCounts()
    for i in range(MAX_SKIPPED_KINDS + 10):
        counts.skip(f"kind{i}")
    counts.skip("kind0")
    assert len(counts) == MAX_SKIPPED_KINDS + 1
    assert counts[OTHER_KIND] == 10
    assert counts["kind0"] == 2


def test_records_close_stops_the_reader() -> None:
    closed = []

    def gen() -> object:
        try:
            yield {"stream": "steps"}
            yield None
        finally:
            closed.append(True)

    records = Records(gen(), SkipCounts())  # type: ignore[arg-type]
    assert next(records) == {"stream": "steps"}
    records.close()
    assert closed == [True]


# ------------------------------------------------------------------ local times
OSLO = ZoneInfo("Europe/Oslo")
# 01:00 wall clock in Oslo on 31 October 2004, an hour before the clocks went back
AUTUMN = int((datetime(2004, 10, 31, 1, 0) - datetime(1970, 1, 1)).total_seconds())


def rows_for(seconds: list[int]) -> list[localtime.Row]:
    return [(s, ({"i": i},)) for i, s in enumerate(seconds)]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(min_value=-3 * 3600, max_value=4 * 3600), min_size=1, max_size=60),
    st.integers(min_value=1, max_value=7),
)
def test_batched_conversion_equals_local_to_utc_on_the_whole(
    offsets: list[int], batch: int
) -> None:
    """However the rows are cut into batches, the result is local_to_utc's on all of them
    (times around Oslo's autumn change, in any order, so repeated hours are exercised)."""
    seconds = [AUTUMN + offset for offset in offsets]
    expected = local_to_utc(np.array(seconds, dtype=np.int64), OSLO).tolist()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(localtime, "BATCH", batch)
        got = [r["ts"] for r in localtime.to_utc(rows_for(seconds), OSLO) if r]
    assert [int(ts.timestamp()) for ts in got] == expected


def test_rows_without_local_time_keep_their_place() -> None:
    fixed = {"ts": datetime(2000, 1, 1, tzinfo=UTC)}
    rows: list[localtime.Row] = [(AUTUMN, ({"a": 1},)), None, (None, (fixed,)), (AUTUMN, ())]
    out = list(localtime.to_utc(rows, OSLO))
    assert out[1] is None
    assert out[2] is fixed
    assert len(out) == 3


def test_sparse_times_are_cut_into_short_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def counting(local: np.ndarray, tz: ZoneInfo) -> np.ndarray:
        calls.append(int(local.max() - local.min()))
        return local_to_utc(local, tz)

    monkeypatch.setattr(localtime, "local_to_utc", counting)
    days = [AUTUMN + day * 86_400 for day in range(0, 3650, 100)]  # ten years, sparse
    assert len(list(localtime.to_utc(rows_for(days), OSLO))) == len(days)
    assert max(calls) <= localtime.MAX_BATCH_SPAN


# ------------------------------------------------------------------ units and text
@pytest.mark.parametrize(
    ("stream", "unit", "value", "expected"),
    [
        ("heart_rate", "count/min", 70.0, (70.0, "/min")),
        ("heart_rate", "bpm", 70.0, (70.0, "bpm")),  # accepted as it is
        ("spo2", "1", 0.97, (97.0, "%")),
        ("hrv_sdnn", "s", 0.05, (50.0, "ms")),
        ("skin_temperature", "[degF]", 95.0, (35.0, "Cel")),
        ("skin_temperature", "furlongs", 3.0, (3.0, "furlongs")),  # check_sample rejects it
        ("steps", None, 5.0, (5.0, None)),
        ("generic", "mmol/L", 5.0, (5.0, "mmol/L")),
    ],
)
def test_catalogue_units(
    stream: str, unit: str | None, value: float, expected: tuple[float, str | None]
) -> None:
    got_value, got_unit = catalogue_unit(stream, unit, value)
    assert got_unit == expected[1]
    assert got_value == pytest.approx(expected[0])
    if expected[1] is not None and expected[1] != "furlongs":
        assert stream_types()[stream].accepts_unit(expected[1])


def test_text_lines_leaves_the_binary_file_open() -> None:
    handle = io.BytesIO(b"\xef\xbb\xbfa\r\nb\rc\n")
    with text_lines(handle) as lines:
        assert list(lines) == ["a\n", "b\n", "c\n"]
    assert not handle.closed


def test_bounded_lines_never_hold_an_overlong_line() -> None:
    handle = io.BytesIO(b"a,b\n" + b"x" * 5000 + b"\nc,d\n" + b"y" * 10)
    with text_lines(handle) as text:
        assert list(bounded_lines(text, limit=1000)) == ["a,b\n", OVERLONG_LINE, "c,d\n", "y" * 10]


def test_an_overlong_line_is_one_unreadable_record(monkeypatch: pytest.MonkeyPatch) -> None:
    from clarity.biometrics.formats import text

    monkeypatch.setattr(text, "MAX_LINE_CHARS", 100)
    data = b"timestamp,date,activity\n" + b"9" * 500 + b"\n2004-01-01 12:00:00,x,4\n"
    records = read_records("depresjon", data)
    assert records[0] is None
    assert records[1] is not None
    mapping = CsvMapping(timestamp="t", columns={"v": "steps"}, time_format="epoch_s")
    records = read_records("generic_csv", b"t,v\n1," + b"9" * 500 + b"\n5,6\n", mapping=mapping)
    assert records[0] is None
    assert records[1] is not None
