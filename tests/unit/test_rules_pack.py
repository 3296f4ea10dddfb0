"""The default clinical rule pack: it validates, is documented, and each rule fires on a
crafted positive case and stays silent on a near-miss."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest

from clarity.rules import (
    AssessmentHistory,
    DailySeries,
    PatientSignals,
    Rule,
    Stream,
    default_pack,
    dry_run,
)
from clarity.rules.pack import PackError, pack_version, parse_pack
from clarity.rules.signals import final_at_local

T0 = dt.datetime(2025, 3, 3, 8, 0, tzinfo=dt.UTC)
PATIENT = uuid.uuid4()
DOCS = Path(__file__).resolve().parents[2] / "docs" / "rules.md"
EXPECTED_IDS = [
    "phq9-item9-positive",
    "phq9-severe",
    "gad7-severe",
    "asrm-possible-mania",
    "resting-tachycardia-sustained",
    "sleep-collapse",
    "activity-collapse",
    "wearable-data-gap",
]


def rule(rule_id: str) -> Rule:
    return next(r for r in default_pack() if r.id == rule_id)


def at(days: float = 0, hours: float = 0) -> dt.datetime:
    return T0 + dt.timedelta(days=days, hours=hours)


def fires(rule_id: str, signals: PatientSignals) -> list[dt.datetime]:
    return [f.fired_at for f in dry_run(rule(rule_id), signals, at(-60), at(60))]


def patient(**parts: object) -> PatientSignals:
    return PatientSignals(patient_id=PATIENT, **parts)  # type: ignore[arg-type]


def responses(instrument: str, rows: list[Mapping[str, int]]) -> PatientSignals:
    """One response a week, answers as given."""
    history = AssessmentHistory.of([(at(7 * n), sum(a.values()), a) for n, a in enumerate(rows)])
    return patient(assessments={instrument: history})


def spread(prefix: str, count: int, total: int, top: int) -> dict[str, int]:
    """Answers for items ``prefix_1..count`` adding up to ``total`` (at most ``top`` each)."""
    answers = {}
    for n in range(1, count + 1):
        answers[f"{prefix}_{n}"] = min(top, total)
        total -= answers[f"{prefix}_{n}"]
    assert total == 0
    return answers


def test_pack_validates_with_unique_ids_sources_and_rationales() -> None:
    pack = default_pack()
    assert [r.id for r in pack] == EXPECTED_IDS
    for r in pack:
        assert r.source
        assert r.rationale
        assert r.scope.level == "all"
        assert r.enabled
    assert pack_version() == "1.0.0"


def test_pack_severities_and_cut_offs_match_the_sources() -> None:
    assert rule("phq9-item9-positive").severity == "critical"
    assert rule("phq9-item9-positive").cooldown == "0s"
    assert rule("phq9-severe").condition.value == 20  # type: ignore[union-attr]
    assert rule("gad7-severe").condition.value == 15  # type: ignore[union-attr]
    assert rule("asrm-possible-mania").condition.value == 6  # type: ignore[union-attr]
    assert rule("resting-tachycardia-sustained").condition.value == 100  # type: ignore[union-attr]


def test_every_pack_rule_is_documented_with_its_source() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for r in default_pack():
        assert f"`{r.id}`" in text, r.id
    for citation in ["Kroenke", "Spitzer", "Altman", "Simon", "Jackson", "Burton", "Löwe"]:
        assert citation in text


def test_a_broken_pack_fails_loudly_naming_rule_and_field() -> None:
    broken = {"rules": [default_pack()[0].model_dump(mode="json") | {"cooldown": "soon"}]}
    with pytest.raises(PackError, match=r"rules\[0\]\.cooldown"):
        parse_pack(broken)
    twice = {"rules": [r.model_dump(mode="json") for r in default_pack()[:1] * 2]}
    with pytest.raises(PackError, match="appears twice"):
        parse_pack(twice)


def test_phq9_item9_positive() -> None:
    positive = responses(
        "phq9", [spread("phq9", 8, 4, 3) | {"phq9_9": 0}, spread("phq9", 8, 4, 3) | {"phq9_9": 1}]
    )
    negative = responses("phq9", [spread("phq9", 9, 20, 3) | {"phq9_9": 0}])
    assert fires("phq9-item9-positive", positive) == [at(7)]
    assert fires("phq9-item9-positive", negative) == []


def test_phq9_severe() -> None:
    assert fires("phq9-severe", responses("phq9", [spread("phq9", 9, 20, 3)])) == [at(0)]
    assert fires("phq9-severe", responses("phq9", [spread("phq9", 9, 19, 3)])) == []


def test_gad7_severe() -> None:
    assert fires("gad7-severe", responses("gad7", [spread("gad7", 7, 15, 3)])) == [at(0)]
    assert fires("gad7-severe", responses("gad7", [spread("gad7", 7, 14, 3)])) == []


def test_asrm_possible_mania() -> None:
    assert fires("asrm-possible-mania", responses("asrm", [spread("asrm", 5, 6, 4)])) == [at(0)]
    assert fires("asrm-possible-mania", responses("asrm", [spread("asrm", 5, 5, 4)])) == []


def resting(readings: list[tuple[dt.datetime, float]]) -> PatientSignals:
    return patient(streams={"resting_heart_rate": Stream.of(readings)})


def test_sustained_resting_tachycardia_needs_three_consecutive_days() -> None:
    calm = [(at(d, 7), 64.0) for d in range(-5, 0)]
    three = [(at(0, 7), 104.0), (at(1, 6), 108.0), (at(2, 7.5), 103.0)]
    assert fires("resting-tachycardia-sustained", resting(calm + three)) == [at(2, 7.5)]
    two = [(at(0, 7), 104.0), (at(1, 6), 108.0), (at(2, 7), 96.0)]
    assert fires("resting-tachycardia-sustained", resting(calm + two)) == []
    missed_day = [(at(0, 7), 104.0), (at(1, 7), 108.0), (at(3, 7), 103.0), (at(4, 7), 105.0)]
    assert fires("resting-tachycardia-sustained", resting(calm + missed_day)) == []
    at_100 = [(at(d, 7), 100.0) for d in range(5)]  # tachycardia is *above* 100
    assert fires("resting-tachycardia-sustained", resting(calm + at_100)) == []


def daily(signal: str, values: list[float], final_hours: float) -> PatientSignals:
    first = (T0 - dt.timedelta(days=40)).date()
    final = final_at_local(dt.UTC, final_hours)
    series = DailySeries.of({first + dt.timedelta(days=n): v for n, v in enumerate(values)}, final)
    return patient(daily={signal: series})


def noisy(mean: float, sd: float, days: int, seed: int) -> list[float]:
    """A deterministic, ordinary-looking baseline (normal scatter, fixed seed)."""
    return list(np.random.default_rng(seed).normal(mean, sd, days))


def test_sleep_collapse_against_baseline() -> None:
    base = noisy(420, 25, 28, seed=1)
    collapsed = daily("total_sleep_minutes", [*base, 250, 260, 400, 240], final_hours=36)
    assert len(fires("sleep-collapse", collapsed)) == 1
    ordinary = daily("total_sleep_minutes", [*base, *noisy(420, 25, 10, seed=2)], final_hours=36)
    assert fires("sleep-collapse", ordinary) == []
    too_short = daily("total_sleep_minutes", [*base[:10], 250, 260, 240, 230], final_hours=36)
    assert fires("sleep-collapse", too_short) == []


def test_activity_collapse_against_baseline() -> None:
    base = noisy(300_000, 40_000, 28, seed=3)
    collapsed = daily("total_counts", [*base, 90_000, 120_000, 100_000], final_hours=24)
    assert len(fires("activity-collapse", collapsed)) == 1
    ordinary = daily("total_counts", [*base, *noisy(300_000, 40_000, 10, seed=4)], final_hours=24)
    assert fires("activity-collapse", ordinary) == []


def test_wearable_data_gap() -> None:
    minutes = [at(hours=m / 60) for m in range(0, 600)]
    worn = patient(streams={"heart_rate": Stream.of((t, 70.0) for t in minutes)})
    assert fires("wearable-data-gap", worn) == [minutes[-1] + dt.timedelta(hours=48)]
    steady = [at(hours=h) for h in range(-24 * 50, 24 * 60, 12)]
    synced = patient(streams={"steps": Stream.of((t, 100.0) for t in steady)})
    assert fires("wearable-data-gap", synced) == []
