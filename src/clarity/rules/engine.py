"""The rule engine: is a rule's condition true for a patient now, and what would it have
fired over a period (pure: no web, no database, no clock; the caller passes the time).

* :func:`evaluate` answers the candidate :class:`Firing` at ``now`` (the condition holds,
  with its evidence) or None. Cooldown is the caller's: check the candidate with
  :func:`clarity.rules.cooldown.admits` against the last firing of its dedup key.
* :func:`replay` fires every episode of ``[start, end]`` in time order, honouring cooldown
  and deduplication from a given last firing per key; the alert service calls it over the
  span of newly arrived data so that an episode inside an uploaded batch fires at the
  moment it happened.
* :func:`dry_run` is :func:`replay` from the beginning of the data with no earlier
  firings, reporting the firings inside ``[start, end]``: "what would this rule have fired
  for this patient over the last N days, and when".

Replays are exact rather than stepped: each kind computes the time intervals during which
its condition holds (see :mod:`clarity.rules.episodes`), which is the same as evaluating at
every reading, response, day boundary and cooldown expiry. They assume each reading was
known at its own timestamp (each daily value at its ``final_at``).

A rule out of its scope for the patient, or disabled (for that patient, by an override),
never fires. Per-patient overrides are applied first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from clarity.rules.assessment_rules import assessment_episodes, assessment_now
from clarity.rules.baseline_rules import baseline_episodes, baseline_now
from clarity.rules.composite_rules import composite_episodes
from clarity.rules.conditions import (
    AllOf,
    AnyOf,
    BaselineDeviation,
    Condition,
    InstrumentItem,
    MissingData,
    ScoreThreshold,
    ThresholdDuration,
    Trend,
)
from clarity.rules.cooldown import LastFiring, earliest_firing
from clarity.rules.durations import duration_seconds
from clarity.rules.episodes import Episodes
from clarity.rules.evidence import Evidence, Firing
from clarity.rules.schema import Rule
from clarity.rules.signals import PatientSignals, epoch, from_epoch
from clarity.rules.stream_rules import (
    missing_episodes,
    missing_now,
    threshold_episodes,
    threshold_now,
)


def episodes_of(condition: Condition, signals: PatientSignals, until: float) -> Episodes:
    """The episodes of ``condition`` in the patient's data up to ``until``."""
    if isinstance(condition, ThresholdDuration):
        return threshold_episodes(condition, signals, until)
    if isinstance(condition, MissingData):
        return missing_episodes(condition, signals, until)
    if isinstance(condition, BaselineDeviation):
        return baseline_episodes(condition, signals, until)
    if isinstance(condition, ScoreThreshold | InstrumentItem | Trend):
        return assessment_episodes(condition, signals, until)
    if isinstance(condition, AllOf | AnyOf):
        return composite_episodes(condition, signals, until, episodes_of)
    raise TypeError(f"unknown condition kind {type(condition).__name__}")


def _holding(
    condition: Condition, signals: PatientSignals, now: float
) -> tuple[float, Evidence] | None:
    if isinstance(condition, ThresholdDuration):
        return threshold_now(condition, signals, now)
    if isinstance(condition, MissingData):
        return missing_now(condition, signals, now)
    if isinstance(condition, BaselineDeviation):
        return baseline_now(condition, signals, now)
    if isinstance(condition, ScoreThreshold | InstrumentItem | Trend):
        return assessment_now(condition, signals, now)
    found = episodes_of(condition, signals, now)
    k = found.at(now)
    return None if k is None else (float(found.starts[k]), found.explain(k, now))


def _applicable(rule: Rule, signals: PatientSignals) -> Rule | None:
    if not rule.scope.covers(signals.patient_id, signals.organization_id):
        return None
    effective = rule.for_patient(signals.patient_id)
    return effective if effective.enabled else None


def _firing(
    rule: Rule, signals: PatientSignals, at: float, start: float, evidence: Evidence
) -> Firing:
    return Firing(
        rule_id=rule.id,
        rule_version=rule.version,
        rule_name=rule.name,
        severity=rule.severity,
        patient_id=signals.patient_id,
        organization_id=signals.organization_id,
        dedup_key=rule.dedup_for(signals.patient_id, signals.organization_id),
        fired_at=from_epoch(at),
        episode_start=from_epoch(start),
        summary=evidence.summary,
        evidence=evidence,
    )


def evaluate(rule: Rule, signals: PatientSignals, now: dt.datetime) -> Firing | None:
    """The firing candidate if the rule's condition holds at ``now``, using only data
    timestamped at or before ``now``; cooldown is not applied (see the module doc)."""
    effective = _applicable(rule, signals)
    if effective is None:
        return None
    at = epoch(now)
    holding = _holding(effective.condition, signals, at)
    if holding is None:
        return None
    start, evidence = holding
    return _firing(effective, signals, at, start, evidence)


@dataclass(frozen=True)
class Replay:
    firings: list[Firing]
    last: dict[str, LastFiring] = field(default_factory=dict)


def replay(
    rule: Rule,
    signals: PatientSignals,
    start: dt.datetime,
    end: dt.datetime,
    last: Mapping[str, LastFiring] | None = None,
) -> Replay:
    """Everything the rule fires in ``[start, end]`` given the last firing per dedup key
    before ``start``; answers the firings and the updated last firings."""
    return _replay(rule, signals, epoch(start), epoch(end), dict(last or {}))


def _replay(
    rule: Rule, signals: PatientSignals, start: float, end: float, last: dict[str, LastFiring]
) -> Replay:
    effective = _applicable(rule, signals)
    if effective is None or end < start:
        return Replay([], last)
    key = effective.dedup_for(signals.patient_id, signals.organization_id)
    cooldown = float(duration_seconds(effective.cooldown))
    previous = last.get(key)
    fired_at = epoch(previous.fired_at) if previous else None
    fired_episode = epoch(previous.episode_start) if previous else None
    found = episodes_of(effective.condition, signals, end)
    firings: list[Firing] = []
    for k in range(len(found)):
        begin, stop = float(found.starts[k]), float(found.ends[k])
        if stop <= start or begin > end:
            continue
        when = earliest_firing(fired_at, fired_episode, begin, cooldown)
        if when is None:
            continue
        when = max(when, start)
        if when >= stop or when > end:
            continue
        firings.append(_firing(effective, signals, when, begin, found.explain(k, when)))
        fired_at, fired_episode = when, begin
    if firings:
        newest = firings[-1]
        last[key] = LastFiring(newest.fired_at, newest.episode_start)
    return Replay(firings, last)


def dry_run(
    rule: Rule, signals: PatientSignals, start: dt.datetime, end: dt.datetime
) -> list[Firing]:
    """What the rule would have fired for this patient in ``[start, end]``, and when, had
    it been running since the patient's data began (earlier firings count for cooldown)."""
    begin = epoch(start)
    everything = _replay(rule, signals, float("-inf"), epoch(end), {})
    return [f for f in everything.firings if epoch(f.fired_at) >= begin]
