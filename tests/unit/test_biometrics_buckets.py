"""Local days, offset spans and epoch grids for biometric buckets (pure)."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clarity.biometrics.buckets import (
    DAY_SECONDS,
    US,
    LocalDay,
    clip,
    day_bounds,
    epochs_between,
    expected_epochs,
    from_us,
    local_days,
    offset_spans,
    span_case,
    to_us,
)

OSLO = ZoneInfo("Europe/Oslo")


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def days_of(zone: ZoneInfo, start: datetime, end: datetime) -> list[LocalDay]:
    return local_days(zone, to_us(start), to_us(end))


def test_microseconds_round_trip() -> None:
    moment = utc(2026, 3, 29, 1, 0, 0) + timedelta(microseconds=7)
    assert from_us(to_us(moment)) == moment
    assert to_us(utc(1970, 1, 1)) == 0
    assert to_us(utc(1969, 12, 31, 23, 59, 59)) == -US


def test_offset_spans_find_the_spring_transition_to_the_second() -> None:
    spans = offset_spans(OSLO, to_us(utc(2026, 3, 28)), to_us(utc(2026, 3, 31)))
    assert [(from_us(s.start_us), from_us(s.end_us), s.offset_s) for s in spans] == [
        (utc(2026, 3, 28), utc(2026, 3, 29, 1), 3600),
        (utc(2026, 3, 29, 1), utc(2026, 3, 31), 7200),
    ]


def test_offset_spans_without_a_transition_is_one_span() -> None:
    spans = offset_spans(OSLO, to_us(utc(2026, 6, 1)), to_us(utc(2026, 7, 1)))
    assert len(spans) == 1
    assert spans[0].offset_s == 7200
    assert offset_spans(OSLO, 5, 5) == []


def test_a_year_in_oslo_has_two_transitions() -> None:
    spans = offset_spans(OSLO, to_us(utc(2026, 1, 1)), to_us(utc(2027, 1, 1)))
    assert [from_us(s.start_us) for s in spans[1:]] == [
        utc(2026, 3, 29, 1),
        utc(2026, 10, 25, 1),
    ]
    boundaries, offsets = span_case(spans)
    assert boundaries == [to_us(utc(2026, 3, 29, 1)), to_us(utc(2026, 10, 25, 1))]
    assert offsets == [3600, 7200, 3600]


def test_spring_forward_day_has_23_hours_and_fall_back_day_25() -> None:
    spring = days_of(OSLO, utc(2026, 3, 27, 23), utc(2026, 3, 30, 22))
    assert [(d.day, d.seconds / 3600) for d in spring] == [
        (date(2026, 3, 28), 24),
        (date(2026, 3, 29), 23),
        (date(2026, 3, 30), 24),
    ]
    assert from_us(spring[1].start_us) == utc(2026, 3, 28, 23)
    assert from_us(spring[1].end_us) == utc(2026, 3, 29, 22)
    autumn = days_of(OSLO, utc(2026, 10, 24, 22), utc(2026, 10, 25, 23))
    assert [(d.day, d.seconds / 3600) for d in autumn] == [(date(2026, 10, 25), 25)]


def test_days_are_clipped_to_the_range() -> None:
    days = days_of(OSLO, utc(2026, 1, 5, 11, 30), utc(2026, 1, 6, 2))
    assert [d.day for d in days] == [date(2026, 1, 5), date(2026, 1, 6)]
    assert from_us(days[0].start_us) == utc(2026, 1, 5, 11, 30)
    assert from_us(days[0].end_us) == utc(2026, 1, 5, 23)
    assert days[1].seconds == 3 * 3600


def test_day_bounds_follow_local_midnight() -> None:
    assert day_bounds(OSLO, date(2026, 3, 29)) == (utc(2026, 3, 28, 23), utc(2026, 3, 29, 22))
    assert day_bounds(OSLO, date(2026, 10, 25)) == (utc(2026, 10, 24, 22), utc(2026, 10, 25, 23))
    assert day_bounds(ZoneInfo("UTC"), date(2026, 1, 1)) == (utc(2026, 1, 1), utc(2026, 1, 2))


def test_a_midnight_that_does_not_exist_starts_the_day_at_the_transition() -> None:
    # Brazil began DST at 00:00 on 2018-11-04: the clocks went from 23:59:59 to 01:00.
    sao_paulo = ZoneInfo("America/Sao_Paulo")
    start, _ = day_bounds(sao_paulo, date(2018, 11, 4))
    assert start == utc(2018, 11, 4, 3)
    days = days_of(sao_paulo, utc(2018, 11, 3, 3), utc(2018, 11, 5, 2))
    assert [(d.day, d.seconds / 3600) for d in days] == [
        (date(2018, 11, 3), 24),
        (date(2018, 11, 4), 23),
    ]
    assert days[1].start_us == to_us(start)


def test_a_skipped_date_has_no_day() -> None:
    # Samoa moved across the date line: 29 December 2011 was followed by the 31st.
    days = days_of(ZoneInfo("Pacific/Apia"), utc(2011, 12, 29, 10), utc(2011, 12, 31, 10))
    assert [(d.day, d.seconds / 3600) for d in days] == [
        (date(2011, 12, 29), 24),
        (date(2011, 12, 31), 24),
    ]


def test_zones_with_quarter_hour_offsets() -> None:
    kathmandu = ZoneInfo("Asia/Kathmandu")  # UTC+05:45
    days = days_of(kathmandu, utc(2026, 1, 4, 18, 15), utc(2026, 1, 6, 18, 15))
    assert [(d.day, d.seconds) for d in days] == [
        (date(2026, 1, 5), DAY_SECONDS),
        (date(2026, 1, 6), DAY_SECONDS),
    ]


def test_epochs_between_counts_epoch_starts_inside_the_interval() -> None:
    assert epochs_between(0, 60 * US, 60) == 1
    assert epochs_between(1, 60 * US, 60) == 0
    assert epochs_between(0, 60 * US + 1, 60) == 2
    assert epochs_between(-60 * US, 0, 60) == 1
    assert epochs_between(10, 5, 60) == 0


@pytest.mark.parametrize(
    ("day", "expected"),
    [(date(2026, 3, 28), 1440), (date(2026, 3, 29), 1380), (date(2026, 10, 25), 1500)],
)
def test_expected_minute_epochs_per_oslo_day(day: date, expected: int) -> None:
    start, end = day_bounds(OSLO, day)
    (local,) = days_of(OSLO, start, end)
    assert local.day == day
    assert expected_epochs(local, 60) == expected
    assert expected_epochs(local, 30) == 2 * expected


def test_clip_cuts_a_run_at_the_days_ends() -> None:
    first, second = days_of(OSLO, utc(2026, 1, 4, 23), utc(2026, 1, 6, 23))
    run = (to_us(utc(2026, 1, 5, 22)), to_us(utc(2026, 1, 6, 1)))
    assert clip(run, first) == [(run[0], to_us(utc(2026, 1, 5, 23)))]
    assert clip(run, second) == [(to_us(utc(2026, 1, 5, 23)), run[1])]
    assert clip((0, 1), first) == []


ZONES = [
    "UTC",
    "Europe/Oslo",
    "America/New_York",
    "America/Sao_Paulo",
    "Australia/Lord_Howe",  # half-hour DST shift
    "Asia/Kathmandu",
    "Asia/Beirut",  # autumn shift at midnight
    "Pacific/Apia",  # skipped 2011-12-30 entirely
]


@settings(max_examples=60, deadline=None)
@given(
    zone_name=st.sampled_from(ZONES),
    start=st.datetimes(min_value=datetime(2009, 1, 1), max_value=datetime(2027, 12, 1)),
    hours=st.integers(min_value=1, max_value=24 * 9),
)
def test_days_agree_with_zoneinfo_at_every_quarter_hour(
    zone_name: str, start: datetime, hours: int
) -> None:
    zone = ZoneInfo(zone_name)
    begin = start.replace(tzinfo=UTC)
    end = begin + timedelta(hours=hours)
    days = days_of(zone, begin, end)
    # The days tile the range, in order, without overlap.
    pieces = [piece for day in days for piece in day.pieces]
    assert pieces[0][0] == to_us(begin)
    assert pieces[-1][1] == to_us(end)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(pieces))
    assert [d.day for d in days] == sorted({d.day for d in days})
    # Every instant lies in the day named by its local date.
    moment = begin
    while moment < end:
        expected = moment.astimezone(zone).date()
        (holder,) = [d for d in days if any(s <= to_us(moment) < e for s, e in d.pieces)]
        assert holder.day == expected, (zone_name, moment)
        moment += timedelta(minutes=15)
    # A whole day inside the range starts at its local midnight.
    for day in days[1:-1]:
        assert from_us(day.start_us) == day_bounds(zone, day.day)[0], (zone_name, day.day)
