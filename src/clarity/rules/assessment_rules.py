"""Episodes of the assessment kinds: ``score_threshold``, ``instrument_item`` and ``trend``.

Each qualifying response is its own episode: it starts when the response was administered
and lasts until the next response of the same instrument replaces it (or ``max_age``
after it, when the rule sets one). Two severe responses in a row are therefore two
episodes (two firings, subject to the cooldown), while one response never fires twice.

``trend`` compares a response's total with the immediately previous response's total:
``up`` fires when it rose by at least ``delta``, ``down`` when it fell by at least ``delta``
(the PHQ-9's own minimal important change is 5 points: Löwe et al., Med Care
2004;42(12):1194-1201). The first response has no previous one and never fires.
"""

from __future__ import annotations

import numpy as np

from clarity.assessments.catalog import default_catalog
from clarity.rules.conditions import InstrumentItem, ScoreThreshold, Trend
from clarity.rules.durations import duration_seconds
from clarity.rules.episodes import BoolArray, Episodes, compare, compare_one, empty
from clarity.rules.evidence import Evidence, Observation
from clarity.rules.signals import AssessmentHistory, PatientSignals, from_epoch

AssessmentCondition = ScoreThreshold | InstrumentItem | Trend


def _qualifying(cond: AssessmentCondition, history: AssessmentHistory, n: int) -> BoolArray:
    totals = history.totals[:n]
    if isinstance(cond, ScoreThreshold):
        return compare(totals, cond.op, cond.value)
    if isinstance(cond, InstrumentItem):
        answers = history.items.get(cond.item)
        if answers is None:
            return np.zeros(n, dtype=np.bool_)
        return compare(answers[:n], cond.op, cond.value)
    change = np.diff(totals)
    moved = change >= cond.delta if cond.direction == "up" else change <= -cond.delta
    return np.concatenate([[False], moved])


def _evidence(cond: AssessmentCondition, history: AssessmentHistory, i: int) -> Evidence:
    instrument = default_catalog()[cond.instrument]
    name, at = instrument.abbreviation, from_epoch(float(history.submitted_at[i]))
    total = float(history.totals[i])
    if isinstance(cond, ScoreThreshold):
        band = next(
            (b.label for b in instrument.severity.bands if b.min <= total <= b.max), "no band"
        )
        return Evidence(
            kind=cond.kind,
            summary=f"{name} total {total:g} ({band}; threshold {cond.op} {cond.value:g})",
            facts={"total": total, "threshold": cond.value, "band": band},
            observations=(Observation(f"{name} total", at, total),),
        )
    if isinstance(cond, InstrumentItem):
        answer = float(history.items[cond.item][i])
        return Evidence(
            kind=cond.kind,
            summary=(
                f"{name} item {cond.item} answered {answer:g} (threshold {cond.op} {cond.value:g})"
            ),
            facts={"answer": answer, "threshold": cond.value, "item": cond.item},
            observations=(Observation(f"{name} {cond.item}", at, answer),),
        )
    before = float(history.totals[i - 1])
    verb = "rose" if cond.direction == "up" else "fell"
    return Evidence(
        kind=cond.kind,
        summary=(
            f"{name} total {verb} by {abs(total - before):g} since the previous response "
            f"({before:g} to {total:g}; threshold {cond.delta:g})"
        ),
        facts={"previous_total": before, "total": total, "change": total - before},
        observations=(
            Observation(f"{name} total", from_epoch(float(history.submitted_at[i - 1])), before),
            Observation(f"{name} total", at, total),
        ),
    )


def assessment_episodes(
    cond: AssessmentCondition, signals: PatientSignals, until: float
) -> Episodes:
    history = signals.assessments.get(cond.instrument)
    if history is None:
        return empty()
    times = history.submitted_at
    n = int(np.searchsorted(times, until, side="right"))
    if n == 0:
        return empty()
    rows = np.flatnonzero(_qualifying(cond, history, n))
    following = np.append(times[1:n], np.inf)[rows]
    starts = times[rows]
    if cond.max_age is not None:
        following = np.minimum(following, starts + duration_seconds(cond.max_age))

    def explain(k: int, at: float) -> Evidence:
        return _evidence(cond, history, int(rows[k]))

    return Episodes(starts, following, explain)


def _row_qualifies(cond: AssessmentCondition, history: AssessmentHistory, i: int) -> bool:
    total = float(history.totals[i])
    if isinstance(cond, ScoreThreshold):
        return compare_one(total, cond.op, cond.value)
    if isinstance(cond, InstrumentItem):
        answers = history.items.get(cond.item)
        return answers is not None and compare_one(float(answers[i]), cond.op, cond.value)
    if i == 0:
        return False
    change = total - float(history.totals[i - 1])
    return change >= cond.delta if cond.direction == "up" else change <= -cond.delta


def assessment_now(
    cond: AssessmentCondition, signals: PatientSignals, now: float
) -> tuple[float, Evidence] | None:
    """The episode holding at ``now``: only the latest response at or before ``now``."""
    history = signals.assessments.get(cond.instrument)
    if history is None:
        return None
    i = int(np.searchsorted(history.submitted_at, now, side="right")) - 1
    if i < 0:
        return None
    start = float(history.submitted_at[i])
    if cond.max_age is not None and now - start >= duration_seconds(cond.max_age):
        return None
    if not _row_qualifies(cond, history, i):
        return None
    return start, _evidence(cond, history, i)
