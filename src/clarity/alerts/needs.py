"""What a rule needs to be evaluated, and which events can change its outcome (pure).

The alert service loads only what the applicable rules read: the biometric streams of
``threshold_duration`` leaves, the daily metrics of ``baseline_deviation`` leaves (computed
from the ``activity_counts`` stream), the instruments of the assessment leaves and, for
``missing_data`` leaves, the time of each stream's latest sample. ``all``/``any`` are
walked down to their leaves.

:func:`lookback_seconds` is how much history before a moment t the condition reads to be
decided at t: a hold reads its duration plus one allowed gap, a baseline its baseline and
test windows (plus the day a night needs to become final), a composition its widest part
plus its ``within`` window. Assessment leaves read the instrument's whole (bounded) history
and missing-data leaves only the latest sample time, so neither adds a window.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final

from clarity.rules.conditions import (
    ANY_STREAM,
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
from clarity.rules.durations import duration_seconds
from clarity.rules.schema import Rule

DAY: Final = 86400
#: The stream daily metrics are computed from.
DAILY_SOURCE_STREAM: Final = "activity_counts"
#: A night's value is final 36 h after the local midnight starting its day.
_FINAL_LAG_DAYS: Final = 2


def leaves(condition: Condition) -> Iterator[Condition]:
    """The single conditions of a (possibly composite) condition, depth first."""
    if isinstance(condition, AllOf | AnyOf):
        for part in condition.conditions:
            yield from leaves(part)
    else:
        yield condition


def lookback_seconds(condition: Condition) -> float:
    """History before a moment that deciding the condition at that moment reads."""
    if isinstance(condition, ThresholdDuration):
        return float(duration_seconds(condition.duration) + duration_seconds(condition.max_gap))
    if isinstance(condition, BaselineDeviation):
        return float((condition.baseline_days + condition.of_last + _FINAL_LAG_DAYS) * DAY)
    if isinstance(condition, AllOf | AnyOf):
        within = duration_seconds(condition.within) if condition.within else 0
        return float(max(lookback_seconds(c) for c in condition.conditions) + within)
    return 0.0


def has_missing_data(rule: Rule) -> bool:
    """Whether the rule watches for silence: such rules are evaluated by the periodic
    sweep, since no event arrives when data stops."""
    return any(isinstance(leaf, MissingData) for leaf in leaves(rule.condition))


def missing_streams(rule: Rule) -> frozenset[str] | None:
    """The streams the rule's missing-data leaves watch; None for any stream."""
    names: set[str] = set()
    for leaf in leaves(rule.condition):
        if isinstance(leaf, MissingData):
            if leaf.streams == (ANY_STREAM,):
                return None
            names.update(leaf.streams)
    return frozenset(names)


def touched_by_batch(rule: Rule, streams: Iterable[str]) -> bool:
    """Whether newly stored samples of ``streams`` can change what the rule decides."""
    arrived = set(streams)
    for leaf in leaves(rule.condition):
        if isinstance(leaf, ThresholdDuration) and leaf.signal in arrived:
            return True
        if isinstance(leaf, BaselineDeviation) and DAILY_SOURCE_STREAM in arrived:
            return True
    return False


def touched_by_assessment(rule: Rule, instrument_id: str) -> bool:
    """Whether a new response to ``instrument_id`` can change what the rule decides."""
    return any(
        isinstance(leaf, ScoreThreshold | InstrumentItem | Trend)
        and leaf.instrument == instrument_id
        for leaf in leaves(rule.condition)
    )


@dataclass
class Needs:
    """The data to load for a set of rules: streams and daily metrics each from an epoch
    time on, the instruments, and the streams whose latest sample time is wanted
    (``last_seen_any``: every stream)."""

    streams: dict[str, float] = field(default_factory=dict)
    daily: set[str] = field(default_factory=set)
    daily_from: float | None = None
    instruments: set[str] = field(default_factory=set)
    last_seen: set[str] = field(default_factory=set)
    last_seen_any: bool = False

    def add(self, rule: Rule, start: float) -> None:
        """What evaluating ``rule`` from epoch time ``start`` on reads."""
        self._add(rule.condition, start)

    def _add(self, condition: Condition, start: float) -> None:
        if isinstance(condition, AllOf | AnyOf):
            within = duration_seconds(condition.within) if condition.within else 0
            for part in condition.conditions:
                self._add(part, start - within)
            return
        since = start - lookback_seconds(condition)
        if isinstance(condition, ThresholdDuration):
            current = self.streams.get(condition.signal)
            self.streams[condition.signal] = since if current is None else min(current, since)
        elif isinstance(condition, BaselineDeviation):
            self.daily.add(condition.signal)
            self.daily_from = since if self.daily_from is None else min(self.daily_from, since)
        elif isinstance(condition, ScoreThreshold | InstrumentItem | Trend):
            self.instruments.add(condition.instrument)
        elif isinstance(condition, MissingData):
            if condition.streams == (ANY_STREAM,):
                self.last_seen_any = True
            else:
                self.last_seen.update(condition.streams)

    @property
    def empty(self) -> bool:
        return not (
            self.streams or self.daily or self.instruments or self.last_seen or self.last_seen_any
        )
