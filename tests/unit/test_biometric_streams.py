"""Stream types and per-sample validation (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from clarity.biometrics.streams import (
    FUTURE_SKEW,
    Reason,
    Rejection,
    Sample,
    check_sample,
    parse_time,
    stream_types,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def row(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "stream": "heart_rate",
        "ts": "2026-03-01T11:00:00Z",
        "value": 72,
        "source": "watch-1",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def test_every_stream_type_is_defined_with_a_ucum_unit_and_range() -> None:
    types = stream_types()
    assert set(types) == {
        "activity_counts",
        "steps",
        "heart_rate",
        "resting_heart_rate",
        "hrv_rmssd",
        "hrv_sdnn",
        "sleep_stage",
        "spo2",
        "skin_temperature",
        "respiratory_rate",
        "light",
        "generic",
    }
    assert types["heart_rate"].unit == "/min"
    assert types["spo2"].unit == "%"
    assert types["skin_temperature"].unit == "Cel"
    assert types["light"].unit == "lx"
    assert types["hrv_rmssd"].unit == "ms"
    assert types["sleep_stage"].codes == {"wake": 0, "light": 1, "deep": 2, "rem": 3}
    for name, stream in types.items():
        if name != "generic":
            assert stream.unit is not None
            assert stream.minimum is not None
            assert stream.maximum is not None
            assert stream.minimum < stream.maximum


def test_a_good_row_becomes_a_sample_in_utc() -> None:
    checked = check_sample(0, row(ts="2026-03-01T13:00:00+02:00", unit="bpm"), NOW)
    assert checked == Sample("heart_rate", datetime(2026, 3, 1, 11, 0, tzinfo=UTC), 72.0, "watch-1")


@pytest.mark.parametrize(
    ("overrides", "reason", "field"),
    [
        ({"stream": None}, Reason.missing_field, "stream"),
        ({"ts": None}, Reason.missing_field, "ts"),
        ({"value": None}, Reason.missing_field, "value"),
        ({"source": None}, Reason.missing_field, "source"),
        ({"stream": "mood"}, Reason.unknown_stream, "stream"),
        ({"stream": 5}, Reason.unknown_stream, "stream"),
        ({"ts": "2026-03-01T11:00:00"}, Reason.bad_format, "ts"),
        ({"ts": "yesterday"}, Reason.bad_format, "ts"),
        ({"ts": 1767225600}, Reason.bad_format, "ts"),
        ({"ts": "2026-03-02T11:00:00Z"}, Reason.future_time, "ts"),
        ({"source": ""}, Reason.bad_format, "source"),
        ({"source": "x" * 129}, Reason.bad_format, "source"),
        ({"unit": "ms"}, Reason.unknown_unit, "unit"),
        ({"value": "fast"}, Reason.bad_format, "value"),
        ({"value": True}, Reason.bad_format, "value"),
        ({"value": 19}, Reason.out_of_range, "value"),
        ({"value": 251}, Reason.out_of_range, "value"),
        ({"stream": "spo2", "value": 101, "unit": "%"}, Reason.out_of_range, "value"),
        ({"stream": "sleep_stage", "value": "nap"}, Reason.bad_format, "value"),
        ({"stream": "sleep_stage", "value": 1.5}, Reason.out_of_range, "value"),
    ],
)
def test_rejections_name_the_reason_and_field(
    overrides: dict[str, Any], reason: Reason, field: str
) -> None:
    base = row()
    for key, value in overrides.items():
        if value is None:
            base.pop(key)
        else:
            base[key] = value
    assert check_sample(7, base, NOW) == Rejection(7, reason, field)


def test_not_an_object_is_bad_format() -> None:
    assert check_sample(3, ["heart_rate"], NOW) == Rejection(3, Reason.bad_format, None)
    assert check_sample(4, None, NOW) == Rejection(4, Reason.bad_format, None)


def test_small_clock_skew_is_allowed() -> None:
    ahead = (NOW + FUTURE_SKEW - timedelta(seconds=1)).isoformat()
    assert isinstance(check_sample(0, row(ts=ahead), NOW), Sample)
    beyond = (NOW + FUTURE_SKEW + timedelta(seconds=1)).isoformat()
    assert check_sample(0, row(ts=beyond), NOW) == Rejection(0, Reason.future_time, "ts")


def test_sleep_stages_are_stored_as_codes() -> None:
    for label, code in (("wake", 0), ("Light", 1), ("deep", 2), ("REM", 3)):
        checked = check_sample(0, row(stream="sleep_stage", value=label), NOW)
        assert isinstance(checked, Sample)
        assert checked.value == code
    numeric = check_sample(0, row(stream="sleep_stage", value=2), NOW)
    assert isinstance(numeric, Sample)
    assert numeric.value == 2.0


def test_generic_streams_take_any_unit_and_any_finite_value() -> None:
    checked = check_sample(0, row(stream="generic", unit="mmol/L", value=-1e9), NOW)
    assert isinstance(checked, Sample)
    assert checked.value == -1e9


def test_parse_time() -> None:
    assert parse_time("2026-03-01T11:00:00Z") == datetime(2026, 3, 1, 11, tzinfo=UTC)
    assert parse_time("2026-03-01T11:00:00") is None
    assert parse_time("x" * 100) is None
    assert parse_time(None) is None
