"""The alert service's pure parts: what a rule needs and which events touch it, daily
metrics in the patient's zone, the escalation policy, episode identity across windows,
"an episode fires once", and grouping a patient's queued events."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import deque
from typing import Any

import numpy as np
import pytest

from clarity.alerts.daily import daily_series
from clarity.alerts.escalation import MAX_LEVEL, EscalationPolicy
from clarity.alerts.needs import (
    Needs,
    has_missing_data,
    lookback_seconds,
    missing_streams,
    touched_by_assessment,
    touched_by_batch,
)
from clarity.alerts.raising import Subject, Task, already_fired, replay_task
from clarity.alerts.runner import MAX_GROUP, take_group
from clarity.rules import (
    LastFiring,
    PatientSignals,
    Rule,
    Stream,
    default_pack,
    validate_rule,
)
from clarity.rules.signals import epoch

PATIENT = uuid.UUID("8c0e5a1e-7a7e-4a8e-9a51-3d7f6c1f2b11")
ORG = uuid.UUID("1b4e28ba-2fa1-4d2b-883f-0016d3cca427")
SUBJECT = Subject(ORG, PATIENT, "UTC")
T0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)


def rule(condition: dict[str, Any], **changes: Any) -> Rule:
    data = {
        "id": "rule-x",
        "name": "R",
        "severity": "high",
        "cooldown": "0s",
        "condition": condition,
    }
    result = validate_rule({**data, **changes})
    assert isinstance(result, Rule), result
    return result


HOLD = {"kind": "threshold_duration", "signal": "heart_rate", "op": ">", "value": 120,
        "duration": "10m"}  # fmt: skip
SLEEP = {"kind": "baseline_deviation", "signal": "total_sleep_minutes", "direction": "below",
         "sd": 2, "hits": 3, "of_last": 4}  # fmt: skip
ITEM9 = {"kind": "instrument_item", "instrument": "phq9", "item": "phq9_9", "op": ">=", "value": 1}
GAP = {"kind": "missing_data", "streams": ["heart_rate", "steps"], "duration": "48h"}


def test_lookbacks_and_needs_walk_compositions() -> None:
    composite = rule({"kind": "all", "conditions": [HOLD, SLEEP, ITEM9], "within": "1d"})
    assert lookback_seconds(rule(HOLD).condition) == 600 + 120
    assert lookback_seconds(rule(SLEEP).condition) == (28 + 4 + 2) * 86400
    assert lookback_seconds(rule(ITEM9).condition) == 0
    assert lookback_seconds(composite.condition) == (28 + 4 + 2) * 86400 + 86400

    needs = Needs()
    needs.add(composite, 1_000_000.0)
    assert needs.streams == {"heart_rate": 1_000_000.0 - 86400 - 720}
    assert needs.daily == {"total_sleep_minutes"}
    assert needs.daily_from == 1_000_000.0 - 86400 - (34 * 86400)
    assert needs.instruments == {"phq9"}
    assert not needs.last_seen_any

    gaps = Needs()
    gaps.add(rule(GAP), 0.0)
    assert gaps.last_seen == {"heart_rate", "steps"}
    gaps.add(rule({**GAP, "streams": ["any"]}), 0.0)
    assert gaps.last_seen_any


def test_which_events_touch_which_rules() -> None:
    composite = rule({"kind": "any", "conditions": [HOLD, ITEM9]})
    assert touched_by_batch(composite, ["heart_rate"])
    assert not touched_by_batch(composite, ["steps"])
    assert touched_by_assessment(composite, "phq9")
    assert not touched_by_assessment(composite, "gad7")
    assert touched_by_batch(rule(SLEEP), ["activity_counts"])
    assert not touched_by_batch(rule(SLEEP), ["heart_rate"])
    assert has_missing_data(rule(GAP))
    assert missing_streams(rule(GAP)) == {"heart_rate", "steps"}
    assert missing_streams(rule({**GAP, "streams": ["any"]})) is None
    pack = {r.id: r for r in default_pack()}
    assert has_missing_data(pack["wearable-data-gap"])
    assert not any(has_missing_data(r) for i, r in pack.items() if i != "wearable-data-gap")


def test_daily_metrics_follow_the_patients_days() -> None:
    # Five days of minute counts: active 08:00-22:00 local time in New York, still at night.
    zone = "America/New_York"
    start = dt.datetime(2026, 3, 2, 5, 0, tzinfo=dt.UTC)  # local midnight (EST, UTC-5)
    stamps = [start + dt.timedelta(minutes=m) for m in range(5 * 1440)]
    local_hours = [((m // 60) % 24) for m in range(5 * 1440)]
    # Asleep, not off: a movement every seventh minute at night (90 zero minutes in a row
    # would be non-wear).
    values = [
        300.0 if 8 <= hour < 22 else (0.0 if m % 7 else 60.0) for m, hour in enumerate(local_hours)
    ]
    series = daily_series(stamps, values, zone, {"total_counts", "total_sleep_minutes"})
    counts = series["total_counts"]
    assert counts.first_day == dt.date(2026, 3, 2)
    assert counts.values.size == 5
    assert np.all(counts.values > 14 * 60 * 300.0)
    # A day's activity is final at its local end; a night's sleep at noon the next day.
    assert counts.final_at[0] == epoch(dt.datetime(2026, 3, 3, 5, 0, tzinfo=dt.UTC))
    sleep = series["total_sleep_minutes"]
    assert sleep.first_day == dt.date(2026, 3, 2)
    assert np.all((sleep.values > 480) & (sleep.values < 600))  # asleep 22:00 to 08:00
    assert sleep.final_at[0] == epoch(dt.datetime(2026, 3, 3, 17, 0, tzinfo=dt.UTC))
    assert daily_series(stamps[:1], values[:1], zone, {"total_counts"}) == {}


def test_escalation_policy() -> None:
    policy = EscalationPolicy.parse("critical=15m, high=1h")
    assert policy.after == {"critical": dt.timedelta(minutes=15), "high": dt.timedelta(hours=1)}
    assert policy.due_level("critical", T0, T0 + dt.timedelta(minutes=14)) == 0
    assert policy.due_level("critical", T0, T0 + dt.timedelta(minutes=44)) == 2
    assert policy.due_level("critical", T0, T0 + dt.timedelta(days=1)) == MAX_LEVEL
    assert policy.due_level("warning", T0, T0 + dt.timedelta(days=1)) == 0
    assert EscalationPolicy.parse("").after == {}
    for bad in ("urgent=5m", "critical=5 minutes", "high=0m"):
        with pytest.raises(ValueError, match="escalation policy"):
            EscalationPolicy.parse(bad)


def _hold_signals(minutes_above: range) -> PatientSignals:
    readings = [
        (T0 + dt.timedelta(minutes=m), 130.0 if m in minutes_above else 80.0) for m in range(120)
    ]
    return PatientSignals(PATIENT, ORG, streams={"heart_rate": Stream.of(readings)})


def test_a_window_starting_inside_an_episode_does_not_fire_it_again() -> None:
    hold = rule(HOLD, cooldown="10m")
    # A long hold; an earlier evaluation saw it only from minute 30 and fired at 40.
    previous = LastFiring(T0 + dt.timedelta(minutes=40), T0 + dt.timedelta(minutes=40))
    # Now the data is read from 12 minutes before that firing (the window reaches back to
    # it): the hold seems to be reached at minute 38, yet the firing is recognised.
    window = PatientSignals(
        PATIENT,
        ORG,
        streams={"heart_rate": Stream.of([
            (T0 + dt.timedelta(minutes=m), 130.0 if m < 100 else 80.0) for m in range(28, 120)
        ])},
    )  # fmt: skip
    now = T0 + dt.timedelta(hours=2)
    assert (
        replay_task(Task(hold, T0 + dt.timedelta(minutes=45)), window, SUBJECT, previous, now) == []
    )
    # A new hold after the first ended does fire.
    later = PatientSignals(
        PATIENT,
        ORG,
        streams={"heart_rate": Stream.of([
            (T0 + dt.timedelta(minutes=m), 130.0 if m < 60 or m >= 80 else 80.0)
            for m in range(28, 120)
        ])},
    )  # fmt: skip
    fired = replay_task(Task(hold, T0 + dt.timedelta(minutes=45)), later, SUBJECT, previous, now)
    assert [f.fired_at for f in fired] == [T0 + dt.timedelta(minutes=90)]


def test_an_episode_fires_once_even_when_a_cooldown_moves() -> None:
    hold = rule(HOLD, cooldown="1h")
    signals = _hold_signals(range(20, 100))  # reached at minute 30
    firing = replay_task(Task(hold, T0), signals, SUBJECT, None, T0 + dt.timedelta(hours=2))[0]
    assert firing.fired_at == T0 + dt.timedelta(minutes=30)
    same_start = LastFiring(T0 + dt.timedelta(minutes=50), firing.episode_start)
    assert already_fired(firing, [same_start])
    inside = LastFiring(T0 + dt.timedelta(minutes=30), T0 + dt.timedelta(minutes=5))
    assert already_fired(firing, [inside])
    later = LastFiring(T0 + dt.timedelta(minutes=31), T0 + dt.timedelta(minutes=31))
    assert not already_fired(firing, [later])
    assert not already_fired(firing, [])


def _event(patient: str, n: int) -> dict[str, Any]:
    return {"organization_id": "org", "patient_id": patient, "event_id": str(n)}


def test_grouping_keeps_each_patients_order() -> None:
    backlog = deque([_event("a", 1), _event("b", 2), _event("a", 3), {"bad": 1}, _event("b", 4)])
    assert [e["event_id"] for e in take_group(backlog)] == ["1", "3"]
    assert [e["event_id"] for e in take_group(backlog)] == ["2", "4"]
    assert take_group(backlog) == [{"bad": 1}]
    assert not backlog
    many = deque(_event("a", n) for n in range(MAX_GROUP + 5))
    assert len(take_group(many)) == MAX_GROUP
    assert len(many) == 5
