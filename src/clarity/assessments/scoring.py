"""Scoring and trends for assessment instruments (pure: no web, no database).

Scoring follows the instrument's data file exactly: every item must be answered with one
of its listed values unless the file carries a published prorating rule. Errors name the
item ids involved and never the answers, so a message can be logged or returned to a
client without leaking what the patient reported.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from clarity.assessments.catalog import Instrument

_SAFE_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")

Direction = Literal["improved", "worsened", "unchanged"]


class AnswerError(ValueError):
    """An answer set that cannot be scored. Names item ids only, never answer values."""

    def __init__(self, instrument_id: str, item_ids: Sequence[str], problem: str) -> None:
        self.instrument_id = instrument_id
        self.item_ids = tuple(item_ids)
        if not self.item_ids:
            where = "an unrecognised item id"
        elif len(self.item_ids) == 1:
            where = f"item {self.item_ids[0]}"
        else:
            where = "items " + ", ".join(self.item_ids)
        super().__init__(f"{instrument_id}: {where} {problem}")


class MissingAnswerError(AnswerError):
    pass


class InvalidAnswerError(AnswerError):
    pass


class UnknownItemError(AnswerError):
    pass


@dataclass(frozen=True)
class ItemScore:
    item_id: str
    value: int | None  # None only for an item left out under a published prorating rule
    imputed: bool


@dataclass(frozen=True)
class SafetyFlag:
    code: str
    item_id: str
    message: str


@dataclass(frozen=True)
class ScoreResult:
    instrument_id: str
    instrument_version: str
    total: int
    transformed_total: int | None
    severity_code: str
    severity_label: str
    safety_signal: bool
    safety_flags: tuple[SafetyFlag, ...]
    items: tuple[ItemScore, ...]
    answered: int
    prorated: bool


def _check_answers(instrument: Instrument, answers: Mapping[str, int]) -> None:
    known = set(instrument.item_ids)
    unknown = [k for k in answers if k not in known]
    if unknown:
        # Keys come from the caller: echo them only if they look like ids.
        named = sorted(str(k) for k in unknown if isinstance(k, str) and _SAFE_ID.match(k))
        raise UnknownItemError(
            instrument.id, named if len(named) == len(unknown) else [], "is not in this instrument"
        )
    for item in instrument.items:
        if item.id not in answers:
            continue
        value = answers[item.id]
        if type(value) is not int:  # bool, float and str are not answers
            raise InvalidAnswerError(instrument.id, [item.id], "must be an integer answer value")
        if value not in item.allowed_values:
            raise InvalidAnswerError(
                instrument.id,
                [item.id],
                f"is out of range (allowed {item.min_value}-{item.max_value})",
            )


def score(instrument: Instrument, answers: Mapping[str, int]) -> ScoreResult:
    """Total, severity band, safety signal and item detail for one completed instrument.

    Raises ``UnknownItemError``, ``InvalidAnswerError`` or ``MissingAnswerError``; a missing
    item is accepted only under the instrument's own prorating rule, and never an item that
    a safety rule reads, because an unanswered safety item must not read as "no risk".
    """
    _check_answers(instrument, answers)

    missing = [i for i in instrument.item_ids if i not in answers]
    safety_items = {r.item_id for r in instrument.safety_rules}
    rule = instrument.prorating
    if missing and (
        rule is None
        or len(missing) > rule.max_missing_items
        or any(i in safety_items for i in missing)
    ):
        if rule is None:
            problem = "not answered; this instrument is scored only when complete"
        elif any(i in safety_items for i in missing):
            problem = "not answered; a safety item cannot be prorated"
        else:
            problem = f"not answered; at most {rule.max_missing_items} may be missing"
        raise MissingAnswerError(instrument.id, missing, problem)

    answered = len(instrument.items) - len(missing)
    raw_sum = sum(answers[i] for i in instrument.item_ids if i in answers)
    if missing:
        n = len(instrument.items)
        # mean x n, rounded half up, in integers so no float error moves a band edge
        total = (2 * raw_sum * n + answered) // (2 * answered)
    else:
        total = raw_sum

    band = instrument.band_for(total)
    flags = tuple(
        SafetyFlag(code=r.code, item_id=r.item_id, message=r.message)
        for r in instrument.safety_rules
        if answers[r.item_id] >= r.flag_when_at_least
    )
    items = tuple(
        ItemScore(item_id=i, value=answers.get(i), imputed=i not in answers)
        for i in instrument.item_ids
    )
    return ScoreResult(
        instrument_id=instrument.id,
        instrument_version=instrument.version,
        total=total,
        transformed_total=instrument.transformed(total),
        severity_code=band.code,
        severity_label=band.label,
        safety_signal=bool(flags),
        safety_flags=flags,
        items=items,
        answered=answered,
        prorated=bool(missing),
    )


def is_reliable_change(instrument: Instrument, change: int) -> bool | None:
    """Whether a change in raw total reaches the instrument's published threshold.

    None when the instrument defines no threshold: "not reliable" would be a claim the
    sources do not support.
    """
    rc = instrument.reliable_change
    if rc is None:
        return None
    size = abs(change)
    if rc.scale == "transformed":
        size = abs(instrument.transformed(change) or 0)
    return size >= rc.threshold


def _direction(instrument: Instrument, change: int) -> Direction:
    if change == 0:
        return "unchanged"
    better = change < 0 if instrument.higher_is_worse else change > 0
    return "improved" if better else "worsened"


@dataclass(frozen=True)
class TrendPoint:
    at: datetime
    total: int
    transformed_total: int | None
    change_from_previous: int | None
    change_from_baseline: int | None
    direction_from_previous: Direction | None
    direction_from_baseline: Direction | None
    reliable_from_previous: bool | None
    reliable_from_baseline: bool | None


def trend(instrument: Instrument, observations: Iterable[tuple[datetime, int]]) -> list[TrendPoint]:
    """Change from the previous and from the first (baseline) total, oldest first.

    Changes are in raw-total units; "reliable" uses the instrument's threshold on the
    scale its source defines (WHO-5: percentage points).
    """
    points = list(observations)
    for n, (at, total) in enumerate(points):
        if not isinstance(at, datetime):
            raise ValueError(f"{instrument.id}: observation {n} needs a datetime")
        if type(total) is not int or not (
            instrument.score_range.min <= total <= instrument.score_range.max
        ):
            raise ValueError(
                f"{instrument.id}: observation {n} total is not an integer within "
                f"{instrument.score_range.min}-{instrument.score_range.max}"
            )
    if len({p[0].tzinfo is None for p in points}) > 1:
        raise ValueError(f"{instrument.id}: observation times mix naive and timezone-aware")
    points.sort(key=lambda p: p[0])
    for a, b in itertools.pairwise(points):
        if a[0] == b[0]:
            raise ValueError(f"{instrument.id}: two observations share one time")

    out: list[TrendPoint] = []
    for n, (at, total) in enumerate(points):
        d_prev = None if n == 0 else total - points[n - 1][1]
        d_base = None if n == 0 else total - points[0][1]
        out.append(
            TrendPoint(
                at=at,
                total=total,
                transformed_total=instrument.transformed(total),
                change_from_previous=d_prev,
                change_from_baseline=d_base,
                direction_from_previous=None if d_prev is None else _direction(instrument, d_prev),
                direction_from_baseline=None if d_base is None else _direction(instrument, d_base),
                reliable_from_previous=None
                if d_prev is None
                else is_reliable_change(instrument, d_prev),
                reliable_from_baseline=None
                if d_base is None
                else is_reliable_change(instrument, d_base),
            )
        )
    return out
