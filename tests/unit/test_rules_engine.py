"""The rule engine on prepared series whose firings were worked out by hand."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clarity.rules import (
    AssessmentHistory,
    DailySeries,
    LastFiring,
    PatientSignals,
    Rule,
    Stream,
    admits,
    dry_run,
    evaluate,
    replay,
    validate_rule,
)
from clarity.rules.engine import episodes_of
from clarity.rules.signals import final_at_local

T0 = dt.datetime(2025, 3, 3, 8, 0, tzinfo=dt.UTC)
PATIENT = uuid.UUID("8c0e5a1e-7a7e-4a8e-9a51-3d7f6c1f2b11")
ORG = uuid.UUID("1b4e28ba-2fa1-4d2b-883f-0016d3cca427")


def minute(n: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=n)


def hour(n: float) -> dt.datetime:
    return T0 + dt.timedelta(hours=n)


def day(n: float) -> dt.datetime:
    return T0 + dt.timedelta(days=n)


def make_rule(condition: Mapping[str, Any], **changes: Any) -> Rule:
    data: dict[str, Any] = {
        "id": "test-rule",
        "name": "Test rule",
        "severity": "high",
        "cooldown": "0s",
        "condition": dict(condition),
    }
    data.update(changes)
    rule = validate_rule(data)
    assert isinstance(rule, Rule), rule
    return rule


HR_HIGH = {
    "kind": "threshold_duration",
    "signal": "heart_rate",
    "op": ">",
    "value": 120,
    "duration": "10m",
}


def hr_minutes(values: Mapping[int, float]) -> Stream:
    """Heart rate at the given minutes after T0."""
    return Stream.of((minute(m), v) for m, v in sorted(values.items()))


def signals(**parts: Any) -> PatientSignals:
    return PatientSignals(patient_id=PATIENT, organization_id=ORG, **parts)


def fired_times(
    rule: Rule, sig: PatientSignals, start: dt.datetime, end: dt.datetime
) -> list[dt.datetime]:
    return [f.fired_at for f in dry_run(rule, sig, start, end)]


def high_run(first: int, last: int, before: int = 30) -> dict[int, float]:
    """80 /min for ``before`` minutes, then 130 /min from minute ``first`` to ``last``."""
    values = {m: 80.0 for m in range(first - before, first)}
    values.update({m: 130.0 for m in range(first, last + 1)})
    return values


# threshold held for a duration ------------------------------------------------------


def test_heart_rate_above_120_for_9_minutes_does_not_fire() -> None:
    sig = signals(streams={"heart_rate": hr_minutes(high_run(0, 9))})
    rule = make_rule(HR_HIGH)
    assert fired_times(rule, sig, minute(-60), minute(60)) == []
    assert all(evaluate(rule, sig, minute(m)) is None for m in range(-30, 20))


def test_heart_rate_above_120_for_10_minutes_fires_at_minute_10() -> None:
    sig = signals(streams={"heart_rate": hr_minutes(high_run(0, 10))})
    rule = make_rule(HR_HIGH)
    assert fired_times(rule, sig, minute(-60), minute(60)) == [minute(10)]
    assert evaluate(rule, sig, minute(9.99)) is None
    firing = evaluate(rule, sig, minute(10))
    assert firing is not None
    assert firing.episode_start == minute(10)
    assert firing.fired_at == minute(10)
    assert firing.evidence.facts["held_seconds"] == 600
    assert firing.evidence.facts["min"] == 130
    assert firing.evidence.observations[0].at == minute(0)
    assert (
        firing.summary == "heart_rate > 120 /min for 10m (required 10m; readings 130 to 130 /min)"
    )
    # Still holding one minute later (within the 2 min tolerance), stale after it.
    assert evaluate(rule, sig, minute(11.9)) is not None
    assert evaluate(rule, sig, minute(12)) is None


def test_a_gap_longer_than_the_tolerance_restarts_the_hold() -> None:
    values = high_run(0, 5)
    values.update({m: 130.0 for m in range(9, 19)})  # minutes 6-8 missing: a 4 min gap
    sig = signals(streams={"heart_rate": hr_minutes(values)})
    rule = make_rule(HR_HIGH)
    assert fired_times(rule, sig, minute(-60), minute(60)) == []
    values[19] = 130.0  # minute 9 to minute 19: ten minutes
    sig = signals(streams={"heart_rate": hr_minutes(values)})
    assert fired_times(rule, sig, minute(-60), minute(60)) == [minute(19)]


def test_a_gap_within_the_tolerance_does_not_break_the_hold() -> None:
    values = high_run(0, 10)
    del values[5]  # minutes 4 and 6 are 2 min apart: allowed
    sig = signals(streams={"heart_rate": hr_minutes(values)})
    assert fired_times(make_rule(HR_HIGH), sig, minute(-60), minute(60)) == [minute(10)]


def test_one_reading_below_the_threshold_breaks_the_hold() -> None:
    values = high_run(0, 15)
    values[7] = 120.0  # not above 120
    sig = signals(streams={"heart_rate": hr_minutes(values)})
    assert fired_times(make_rule(HR_HIGH), sig, minute(-60), minute(60)) == []
    values[18] = 130.0
    values[17] = values[16] = 130.0
    sig = signals(streams={"heart_rate": hr_minutes(values)})
    assert fired_times(make_rule(HR_HIGH), sig, minute(-60), minute(60)) == [minute(18)]


def test_one_long_run_is_one_episode_and_fires_once() -> None:
    sig = signals(streams={"heart_rate": hr_minutes(high_run(0, 180))})
    rule = make_rule(HR_HIGH, cooldown="30m")
    assert fired_times(rule, sig, minute(-60), minute(300)) == [minute(10)]


def test_evaluate_ignores_readings_after_now() -> None:
    sig = signals(streams={"heart_rate": hr_minutes(high_run(0, 10))})
    rule = make_rule(HR_HIGH)
    firing = evaluate(rule, sig, minute(10))
    assert firing is not None
    later = signals(streams={"heart_rate": hr_minutes({**high_run(0, 10), 11: 60.0, 12: 60.0})})
    again = evaluate(rule, later, minute(10))
    assert again is not None
    assert again.evidence == firing.evidence


@settings(max_examples=80, deadline=None)
@given(
    values=st.lists(st.sampled_from([125.0, 130.0, 100.0, float("nan")]), min_size=1, max_size=60),
    steps=st.lists(st.sampled_from([60, 30, 90, 120, 121, 400]), min_size=60, max_size=60),
)
def test_fast_evaluation_agrees_with_the_episode_replay(
    values: list[float], steps: list[int]
) -> None:
    """``evaluate`` reads backwards from now; the replay computes whole episodes. Both must
    give the same answer at every moment, for any series."""
    ts = T0.timestamp() + np.cumsum(steps[: len(values)]).astype(np.float64)
    sig = signals(streams={"heart_rate": Stream(ts, np.array(values))})
    rule = make_rule({**HR_HIGH, "duration": "3m"})
    found = episodes_of(rule.condition, sig, float(ts[-1]) + 1000)
    for t in np.concatenate([ts, ts + 1, ts + 119, ts + 120]):
        now = dt.datetime.fromtimestamp(float(t), dt.UTC)
        fast = evaluate(rule, sig, now)
        k = found.at(float(t))
        if k is None:
            assert fast is None
        else:
            assert fast is not None
            assert fast.episode_start.timestamp() == found.starts[k]


# baseline deviation ---------------------------------------------------------------

NIGHT_FINAL = final_at_local(dt.UTC, 36)  # noon of the morning after the night
SLEEP_COLLAPSE = {
    "kind": "baseline_deviation",
    "signal": "total_sleep_minutes",
    "direction": "below",
    "sd": 2,
    "baseline_days": 28,
    "min_baseline_days": 14,
    "hits": 3,
    "of_last": 4,
}
FIRST_NIGHT = dt.date(2025, 1, 1)


def nights(values: Sequence[float]) -> DailySeries:
    """One value per night from FIRST_NIGHT (NaN: no value that night)."""
    return DailySeries.of(
        {FIRST_NIGHT + dt.timedelta(days=n): v for n, v in enumerate(values) if not np.isnan(v)},
        NIGHT_FINAL,
    )


def final_of(night: int) -> dt.datetime:
    return NIGHT_FINAL(FIRST_NIGHT + dt.timedelta(days=night))


NORMAL = [400.0, 440.0] * 14  # mean 420, sample SD 20.37: the limit is 379.3


def test_sleep_three_of_four_nights_below_two_sd_fires_when_the_third_is_final() -> None:
    sig = signals(daily={"total_sleep_minutes": nights([*NORMAL, 300, 300, 410, 300])})
    rule = make_rule(SLEEP_COLLAPSE)
    assert fired_times(rule, sig, final_of(0), final_of(40)) == [final_of(31)]
    firing = evaluate(rule, sig, final_of(31))
    assert firing is not None
    facts = firing.evidence.facts
    assert facts["baseline_mean"] == pytest.approx(420.0)
    assert facts["baseline_sd"] == pytest.approx(float(np.std(NORMAL, ddof=1)))
    assert facts["baseline_days_used"] == 28
    assert facts["hits"] == 3
    assert facts["day"] == "2025-02-01"
    assert [o.value for o in firing.evidence.observations] == [300, 300, 410, 300]
    assert evaluate(rule, sig, final_of(31) - dt.timedelta(seconds=1)) is None


def test_sleep_two_of_four_nights_below_does_not_fire() -> None:
    sig = signals(daily={"total_sleep_minutes": nights([*NORMAL, 300, 410, 410, 300])})
    assert fired_times(make_rule(SLEEP_COLLAPSE), sig, final_of(0), final_of(40)) == []


def test_missing_nights_are_not_hits() -> None:
    sig = signals(daily={"total_sleep_minutes": nights([*NORMAL, 300, float("nan"), 300, 410])})
    assert fired_times(make_rule(SLEEP_COLLAPSE), sig, final_of(0), final_of(40)) == []


def test_insufficient_baseline_history_never_fires() -> None:
    """Ten baseline nights (fewer than min_baseline_days 14) before a collapse: no guess."""
    sig = signals(daily={"total_sleep_minutes": nights([*NORMAL[:10], 100, 100, 100, 100])})
    rule = make_rule(SLEEP_COLLAPSE)
    assert fired_times(rule, sig, final_of(0), final_of(30)) == []
    assert evaluate(rule, sig, final_of(13)) is None
    # With the minimum lowered to ten it fires on night 13, the first whose baseline (the
    # nights before its 4-night window) holds ten values.
    loose = make_rule({**SLEEP_COLLAPSE, "min_baseline_days": 10})
    assert fired_times(loose, sig, final_of(0), final_of(30)) == [final_of(13)]


def test_a_flat_baseline_has_no_spread_and_does_not_fire() -> None:
    """28 identical nights: SD 0, no usable limit, although nights 28-30 already make 3 of 4.
    (Night 32's baseline takes in night 28 and so has a spread again.)"""
    sig = signals(daily={"total_sleep_minutes": nights([420.0] * 28 + [100, 100, 100, 100])})
    rule = make_rule(SLEEP_COLLAPSE)
    assert fired_times(rule, sig, final_of(0), final_of(31)) == []
    assert fired_times(rule, sig, final_of(0), final_of(40)) == [final_of(32)]


def test_a_continuing_collapse_is_one_episode_and_ends_when_data_stops() -> None:
    sig = signals(daily={"total_sleep_minutes": nights([*NORMAL, 300, 300, 300, 300, 300])})
    rule = make_rule(SLEEP_COLLAPSE)
    assert fired_times(rule, sig, final_of(0), final_of(60)) == [final_of(30)]
    assert evaluate(rule, sig, final_of(32)) is not None
    # Nights after the last value count as missing: one leaves 3 of 4, two leave 2 of 4.
    assert evaluate(rule, sig, final_of(33)) is not None
    assert evaluate(rule, sig, final_of(34)) is None


def test_above_baseline_direction() -> None:
    rule = make_rule({**SLEEP_COLLAPSE, "direction": "above", "hits": 2, "of_last": 2})
    sig = signals(daily={"total_sleep_minutes": nights([*NORMAL, 600, 600])})
    assert fired_times(rule, sig, final_of(0), final_of(40)) == [final_of(29)]


# assessments ----------------------------------------------------------------------


def phq9(rows: Sequence[tuple[dt.datetime, Mapping[str, int]]]) -> AssessmentHistory:
    return AssessmentHistory.of([(t, sum(a.values()), a) for t, a in rows])


def phq9_answers(total: int, item9: int = 0) -> dict[str, int]:
    """Answers with the given total and item 9 answer (filling items 1-8 in turn)."""
    answers = {f"phq9_{n}": 0 for n in range(1, 10)}
    answers["phq9_9"] = item9
    remaining = total - item9
    for n in range(1, 9):
        take = min(3, remaining)
        answers[f"phq9_{n}"] = take
        remaining -= take
    assert remaining == 0
    return answers


TREND_UP = {"kind": "trend", "instrument": "phq9", "direction": "up", "delta": 5}


def test_trend_up_by_five_fires_and_by_four_does_not() -> None:
    rule = make_rule(TREND_UP)
    plus5 = signals(
        assessments={"phq9": phq9([(day(0), phq9_answers(8)), (day(14), phq9_answers(13))])}
    )
    plus4 = signals(
        assessments={"phq9": phq9([(day(0), phq9_answers(8)), (day(14), phq9_answers(12))])}
    )
    assert fired_times(rule, plus5, day(-1), day(30)) == [day(14)]
    assert fired_times(rule, plus4, day(-1), day(30)) == []
    firing = evaluate(rule, plus5, day(20))
    assert firing is not None
    assert firing.evidence.facts["change"] == 5
    assert "rose by 5" in firing.summary


def test_trend_down_and_the_first_response_never_fires() -> None:
    rule = make_rule({**TREND_UP, "direction": "down"})
    sig = signals(
        assessments={
            "phq9": phq9(
                [
                    (day(0), phq9_answers(20)),
                    (day(7), phq9_answers(14)),
                    (day(14), phq9_answers(18)),
                ]
            )
        }
    )
    assert fired_times(rule, sig, day(-1), day(30)) == [day(7)]
    first_only = signals(assessments={"phq9": phq9([(day(0), phq9_answers(24))])})
    assert fired_times(make_rule(TREND_UP), first_only, day(-1), day(30)) == []


ITEM9 = {"kind": "instrument_item", "instrument": "phq9", "item": "phq9_9", "op": ">=", "value": 1}


def test_item_9_answered_1_fires_and_0_does_not() -> None:
    sig = signals(
        assessments={
            "phq9": phq9(
                [
                    (day(0), phq9_answers(6, 0)),
                    (day(7), phq9_answers(6, 1)),
                    (day(14), phq9_answers(6, 0)),
                ]
            )
        }
    )
    rule = make_rule(ITEM9)
    assert fired_times(rule, sig, day(-1), day(30)) == [day(7)]
    firing = evaluate(rule, sig, day(8))
    assert firing is not None
    assert firing.summary == "PHQ-9 item phq9_9 answered 1 (threshold >= 1)"
    assert evaluate(rule, sig, day(14)) is None  # the next response replaced it


def test_score_threshold_20_fires_and_19_does_not() -> None:
    rule = make_rule({"kind": "score_threshold", "instrument": "phq9", "op": ">=", "value": 20})
    sig = signals(
        assessments={"phq9": phq9([(day(0), phq9_answers(19)), (day(7), phq9_answers(20))])}
    )
    assert fired_times(rule, sig, day(-1), day(30)) == [day(7)]
    firing = evaluate(rule, sig, day(7))
    assert firing is not None
    assert firing.evidence.facts["band"] == "Severe"


def test_max_age_bounds_how_long_a_response_counts() -> None:
    rule = make_rule({**ITEM9, "max_age": "3d"})
    sig = signals(assessments={"phq9": phq9([(day(0), phq9_answers(6, 2))])})
    assert evaluate(rule, sig, day(2.9)) is not None
    assert evaluate(rule, sig, day(3)) is None


# missing data ---------------------------------------------------------------------

GAP = {"kind": "missing_data", "streams": ["any"], "duration": "48h"}


def test_missing_data_fires_exactly_48_hours_after_the_last_reading() -> None:
    sig = signals(streams={"heart_rate": hr_minutes({0: 70.0, 1: 71.0, 2: 72.0})})
    rule = make_rule(GAP)
    last = minute(2)
    assert evaluate(rule, sig, last + dt.timedelta(hours=48, seconds=-1)) is None
    firing = evaluate(rule, sig, last + dt.timedelta(hours=48))
    assert firing is not None
    assert firing.episode_start == last + dt.timedelta(hours=48)
    assert firing.evidence.observations[0].at == last
    assert fired_times(rule, sig, minute(0), day(10)) == [last + dt.timedelta(hours=48)]


def test_missing_data_counts_every_listed_stream_and_last_seen() -> None:
    steps = Stream.of([(hour(30), 1000.0)])
    sig = signals(streams={"heart_rate": hr_minutes({0: 70.0}), "steps": steps})
    assert fired_times(make_rule(GAP), sig, minute(0), day(10)) == [hour(78)]
    only_hr = make_rule({**GAP, "streams": ["heart_rate"]})
    assert fired_times(only_hr, sig, minute(0), day(10)) == [hour(48)]
    older = signals(last_seen={"heart_rate": day(-1).timestamp()})
    assert fired_times(make_rule(GAP), older, day(-2), day(10)) == [day(1)]


def test_missing_data_each_gap_is_its_own_episode_and_no_data_ever_is_not_a_gap() -> None:
    readings = {0: 70.0, 60 * 72: 70.0}  # a 72 h gap, then a reading, then silence
    sig = signals(streams={"heart_rate": hr_minutes(readings)})
    assert fired_times(make_rule(GAP), sig, minute(0), day(10)) == [hour(48), hour(120)]
    assert fired_times(make_rule(GAP), signals(), minute(0), day(10)) == []


# compositions ---------------------------------------------------------------------


def item9_then_hr(hr_start_minute: int) -> PatientSignals:
    return signals(
        assessments={"phq9": phq9([(day(0), phq9_answers(6, 1)), (day(1), phq9_answers(6, 0))])},
        streams={"heart_rate": hr_minutes(high_run(hr_start_minute, hr_start_minute + 10))},
    )


def test_all_within_a_window() -> None:
    """Item 9 was positive from day 0 until the next response on day 1; the heart-rate hold
    completes on day 3 at 10 minutes past: within 7 days of item 9 holding, not within 1."""
    sig = item9_then_hr(3 * 1440)
    wide = make_rule({"kind": "all", "within": "7d", "conditions": [ITEM9, HR_HIGH]})
    narrow = make_rule({"kind": "all", "within": "1d", "conditions": [ITEM9, HR_HIGH]})
    assert fired_times(wide, sig, day(-1), day(20)) == [minute(3 * 1440 + 10)]
    assert fired_times(narrow, sig, day(-1), day(20)) == []
    firing = evaluate(wide, sig, minute(3 * 1440 + 10))
    assert firing is not None
    assert [p.kind for p in firing.evidence.parts] == ["instrument_item", "threshold_duration"]
    assert firing.summary.startswith("All of within 7d: PHQ-9 item phq9_9 answered 1")


def test_all_without_a_window_needs_both_at_once() -> None:
    both = make_rule({"kind": "all", "conditions": [ITEM9, HR_HIGH]})
    assert fired_times(both, item9_then_hr(3 * 1440), day(-1), day(20)) == []
    assert fired_times(both, item9_then_hr(600), day(-1), day(20)) == [minute(610)]


def test_any_fires_on_the_first_part() -> None:
    either = make_rule({"kind": "any", "conditions": [ITEM9, HR_HIGH]})
    assert fired_times(either, item9_then_hr(3 * 1440), day(-1), day(20)) == [
        day(0),
        minute(3 * 1440 + 10),
    ]


# cooldown, deduplication, dry run and replay -------------------------------------------

SEVERE = {"kind": "score_threshold", "instrument": "phq9", "op": ">=", "value": 20}


def severe_series() -> PatientSignals:
    rows = [
        (hour(0), 22),
        (hour(6), 23),  # in cooldown until hour 24, still the latest then: fires at 24
        (hour(30), 21),  # held back until hour 48...
        (hour(40), 5),  # ...but replaced at hour 40 by a mild score: never fires
        (hour(72), 24),  # cooldown since hour 24 is over: fires at once
        (hour(80), 23),  # held back until hour 96, still the latest then: fires at 96
    ]
    return signals(assessments={"phq9": phq9([(t, phq9_answers(total)) for t, total in rows])})


def test_dry_run_honours_the_cooldown() -> None:
    rule = make_rule(SEVERE, cooldown="24h")
    firings = dry_run(rule, severe_series(), hour(-1), hour(200))
    assert [f.fired_at for f in firings] == [hour(0), hour(24), hour(72), hour(96)]
    assert [f.episode_start for f in firings] == [hour(0), hour(6), hour(72), hour(80)]
    assert {f.dedup_key for f in firings} == {f"test-rule:{PATIENT}"}


def test_dry_run_window_reports_only_its_period_with_earlier_cooldowns() -> None:
    rule = make_rule(SEVERE, cooldown="24h")
    assert [f.fired_at for f in dry_run(rule, severe_series(), hour(50), hour(200))] == [
        hour(72),
        hour(96),
    ]
    assert [f.fired_at for f in dry_run(rule, severe_series(), hour(60), hour(90))] == [hour(72)]


def test_without_cooldown_every_episode_fires_at_its_start() -> None:
    rule = make_rule(SEVERE)
    assert fired_times(rule, severe_series(), hour(-1), hour(200)) == [
        hour(0),
        hour(6),
        hour(30),
        hour(72),
        hour(80),
    ]


def test_replay_in_pieces_equals_one_dry_run() -> None:
    """The service replays each new span of data carrying the last firing per key."""
    rule = make_rule(SEVERE, cooldown="24h")
    sig = severe_series()
    last: dict[str, LastFiring] = {}
    pieces: list[dt.datetime] = []
    edges = [hour(-1), hour(3), hour(20), hour(31), hour(75), hour(90), hour(200)]
    for start, end in itertools.pairwise(edges):
        result = replay(rule, sig, start, end, last)
        pieces.extend(f.fired_at for f in result.firings)
        last = result.last
    assert pieces == [hour(0), hour(24), hour(72), hour(96)]


def test_admits_is_the_cooldown_rule() -> None:
    cooldown = dt.timedelta(hours=24)
    assert admits(None, hour(0), hour(0), cooldown)
    last = LastFiring(fired_at=hour(0), episode_start=hour(0))
    assert not admits(last, hour(0), hour(100), cooldown)  # same episode: never again
    assert not admits(last, hour(6), hour(23), cooldown)
    assert admits(last, hour(6), hour(24), cooldown)
    # A window that starts inside a long episode sees it begin later than it did; a firing
    # at or after that visible start still belongs to it.
    seen_late = LastFiring(fired_at=hour(10), episode_start=hour(0))
    assert not admits(seen_late, hour(5), hour(100), cooldown)
    assert admits(seen_late, hour(11), hour(34), cooldown)


# scope, overrides, time zones --------------------------------------------------------------


def test_scope_and_overrides_apply_per_patient() -> None:
    sig = signals(streams={"heart_rate": hr_minutes({m: 125.0 for m in range(0, 20)})})
    other = PatientSignals(patient_id=uuid.uuid4(), organization_id=ORG, streams=sig.streams)
    rule = make_rule(
        HR_HIGH,
        overrides=[{"patient_id": str(PATIENT), "params": {"condition.value": 125}}],
    )
    assert fired_times(rule, sig, minute(0), minute(60)) == []  # 125 is not above 125
    assert fired_times(rule, other, minute(0), minute(60)) == [minute(10)]
    scoped = make_rule(HR_HIGH, scope={"level": "patient", "patient_id": str(PATIENT)})
    assert fired_times(scoped, other, minute(0), minute(60)) == []
    assert fired_times(scoped, sig, minute(0), minute(60)) == [minute(10)]
    clinic = make_rule(
        HR_HIGH, scope={"level": "organization", "organization_id": str(uuid.uuid4())}
    )
    assert evaluate(clinic, sig, minute(15)) is None
    muted = make_rule(
        HR_HIGH, overrides=[{"patient_id": str(PATIENT), "params": {"enabled": False}}]
    )
    assert evaluate(muted, sig, minute(15)) is None
    assert evaluate(muted, other, minute(15)) is not None


def test_naive_datetimes_are_refused() -> None:
    rule = make_rule(HR_HIGH)
    with pytest.raises(ValueError, match="time zone"):
        evaluate(rule, signals(), dt.datetime(2025, 1, 1))


def test_unsorted_series_are_refused() -> None:
    with pytest.raises(ValueError, match="sorted"):
        Stream(np.array([2.0, 1.0]), np.array([1.0, 1.0]))


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(
        st.sampled_from([400.0, 410.0, 420.0, 440.0, 300.0, 150.0, float("nan")]),
        min_size=1,
        max_size=50,
    ),
    hits=st.integers(1, 3),
)
def test_fast_baseline_evaluation_agrees_with_the_episode_replay(
    values: list[float], hits: int
) -> None:
    rule = make_rule({**SLEEP_COLLAPSE, "min_baseline_days": 5, "hits": hits, "of_last": 3})
    sig = signals(daily={"total_sleep_minutes": nights(values)})
    end = final_of(len(values) + 5).timestamp()
    found = episodes_of(rule.condition, sig, end)
    series = sig.daily["total_sleep_minutes"]
    times = [*series.final_at.tolist(), *(final_of(len(values) + n).timestamp() for n in range(5))]
    for t in [x + d for x in times for d in (-1.0, 0.0, 3600.0)]:
        fast = evaluate(rule, sig, dt.datetime.fromtimestamp(t, dt.UTC))
        k = found.at(t)
        assert (fast is None) == (k is None)
        if fast is not None and k is not None:
            assert fast.episode_start.timestamp() == found.starts[k]


@settings(max_examples=60, deadline=None)
@given(
    totals=st.lists(st.sampled_from([0, 4, 9, 15, 16, 24]), min_size=1, max_size=12),
    gaps=st.lists(st.integers(1, 20), min_size=12, max_size=12),
    kind=st.sampled_from(["trend", "score", "item"]),
)
def test_fast_assessment_evaluation_agrees_with_the_episode_replay(
    totals: list[int], gaps: list[int], kind: str
) -> None:
    conditions: dict[str, dict[str, Any]] = {
        "trend": {**TREND_UP, "max_age": "5d"},
        "score": {"kind": "score_threshold", "instrument": "phq9", "op": ">=", "value": 15},
        "item": {**ITEM9, "value": 2},
    }
    rule = make_rule(conditions[kind])
    times = [day(float(sum(gaps[: n + 1]))) for n in range(len(totals))]
    item9 = [min(3, t // 8) for t in totals]
    sig = signals(
        assessments={
            "phq9": phq9(
                [(t, phq9_answers(v, i)) for t, v, i in zip(times, totals, item9, strict=True)]
            )
        }
    )
    found = episodes_of(rule.condition, sig, day(400).timestamp())
    for moment in [t + dt.timedelta(days=d) for t in times for d in (-0.5, 0, 4.9, 5, 6)]:
        fast = evaluate(rule, sig, moment)
        k = found.at(moment.timestamp())
        assert (fast is None) == (k is None)
        if fast is not None and k is not None:
            assert fast.episode_start.timestamp() == found.starts[k]
