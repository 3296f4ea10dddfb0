"""Episodes of the biometric-stream kinds: ``threshold_duration`` and ``missing_data``.

**Held for a duration** (exact, sample by sample): a *run* is a maximal sequence of
consecutive readings that all satisfy ``value op threshold`` with no two neighbours more
than ``max_gap`` apart (default 2 min; use the device's epoch plus some slack). A run
holds the condition once its readings span ``duration``: from the first reading at or
after ``run start + duration`` until the next reading breaks it (fails the comparison), or
until ``max_gap`` after the run's last reading when nothing more arrives (data that stale
no longer shows the condition). With one reading a minute, "above 120 for 10 minutes"
needs eleven readings, minute 0 to minute 10, and fires at minute 10; a reading missing
for longer than ``max_gap`` restarts the count.

**Missing data**: no reading from the listed streams (or any stream) for ``duration``:
true from ``last reading + duration`` until the next reading. ``last_seen`` supplies the
last reading when it predates the loaded window. A patient with no reading ever is not
"missing data": the rule watches a stream that has started, not enrolment.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from clarity.biometrics.streams import stream_types
from clarity.rules.conditions import ANY_STREAM, MissingData, ThresholdDuration
from clarity.rules.durations import duration_seconds, format_seconds
from clarity.rules.episodes import Episodes, compare, compare_one, empty
from clarity.rules.evidence import Evidence, Observation
from clarity.rules.signals import FloatArray, PatientSignals, Stream, from_epoch

_BACK_CHUNK: Final = 256


def _unit(signal: str) -> str:
    unit = stream_types()[signal].unit
    return f" {unit}" if unit else ""


def _hold_evidence(
    cond: ThresholdDuration, stream: Stream, first: int, last: int, at: float
) -> Evidence:
    """The run ``first..last`` as seen at ``at`` (readings after ``at`` left out)."""
    ts, values = stream.ts, stream.values
    last = min(last, int(np.searchsorted(ts, at, side="right")) - 1)
    run = values[first : last + 1]
    held = float(ts[last] - ts[first])
    unit = _unit(cond.signal)
    lo, hi = float(run.min()), float(run.max())
    return Evidence(
        kind=cond.kind,
        summary=(
            f"{cond.signal} {cond.op} {cond.value:g}{unit} for {format_seconds(held)} "
            f"(required {cond.duration}; readings {lo:g} to {hi:g}{unit})"
        ),
        facts={
            "threshold": cond.value,
            "held_seconds": held,
            "required_seconds": duration_seconds(cond.duration),
            "readings": int(run.size),
            "min": lo,
            "max": hi,
        },
        observations=(
            Observation("first reading of the run", from_epoch(float(ts[first])), float(run[0])),
            Observation("latest reading", from_epoch(float(ts[last])), float(run[-1])),
        ),
    )


def threshold_episodes(cond: ThresholdDuration, signals: PatientSignals, until: float) -> Episodes:
    stream = signals.streams.get(cond.signal)
    if stream is None:
        return empty()
    stream = stream.upto(until)
    ts, n = stream.ts, stream.ts.size
    ok = compare(stream.values, cond.op, cond.value)
    if n == 0 or not ok.any():
        return empty()
    duration, gap = duration_seconds(cond.duration), duration_seconds(cond.max_gap)
    link = ok[1:] & ok[:-1] & (np.diff(ts) <= gap)
    begins, finishes = ok.copy(), ok.copy()
    begins[1:] &= ~link
    finishes[:-1] &= ~link
    first, last = np.flatnonzero(begins), np.flatnonzero(finishes)
    long_enough = ts[last] - ts[first] >= duration
    first, last = first[long_enough], last[long_enough]
    reach = np.searchsorted(ts, ts[first] + duration, side="left")
    following = np.where(last + 1 < n, ts[np.minimum(last + 1, n - 1)], np.inf)
    ends = np.minimum(following, ts[last] + gap)

    def explain(k: int, at: float) -> Evidence:
        return _hold_evidence(cond, stream, int(first[k]), int(last[k]), at)

    return Episodes(ts[reach], ends, explain)


def threshold_now(
    cond: ThresholdDuration, signals: PatientSignals, now: float
) -> tuple[float, Evidence] | None:
    """The episode holding at ``now`` and its evidence, reading backwards from ``now`` only
    as far as the current run goes (cost grows with the run, not with the history)."""
    stream = signals.streams.get(cond.signal)
    if stream is None:
        return None
    ts, values = stream.ts, stream.values
    latest = int(np.searchsorted(ts, now, side="right")) - 1
    gap = duration_seconds(cond.max_gap)
    if latest < 0 or now - ts[latest] >= gap:
        return None
    if not compare_one(float(values[latest]), cond.op, cond.value):
        return None
    first, size = latest, _BACK_CHUNK
    while first > 0:
        lo = max(0, first - size)
        linked = compare(values[lo:first], cond.op, cond.value) & (
            np.diff(ts[lo : first + 1]) <= gap
        )
        broken = np.flatnonzero(~linked)
        if broken.size:
            first = lo + int(broken[-1]) + 1
            break
        first, size = lo, size * 2
    duration = duration_seconds(cond.duration)
    if ts[latest] - ts[first] < duration:
        return None
    reach = int(np.searchsorted(ts, ts[first] + duration, side="left"))
    return float(ts[reach]), _hold_evidence(cond, stream, first, latest, now)


def _reading_times(cond: MissingData, signals: PatientSignals, until: float) -> FloatArray:
    names = list(signals.streams) if cond.streams == (ANY_STREAM,) else list(cond.streams)
    parts = [signals.streams[s].upto(until).ts for s in names if s in signals.streams]
    seen = [
        t
        for s, t in signals.last_seen.items()
        if t <= until and (cond.streams == (ANY_STREAM,) or s in cond.streams)
    ]
    parts.append(np.asarray(seen, dtype=np.float64))
    return np.unique(np.concatenate(parts))


def _gap_evidence(cond: MissingData, last: float, at: float) -> Evidence:
    which = "any stream" if cond.streams == (ANY_STREAM,) else ", ".join(cond.streams)
    silent = max(0.0, at - last)
    return Evidence(
        kind=cond.kind,
        summary=(
            f"No data from {which} for {format_seconds(round(silent))} (limit {cond.duration})"
        ),
        facts={"silent_seconds": silent, "limit_seconds": duration_seconds(cond.duration)},
        observations=(Observation("last reading", from_epoch(last), None),),
    )


def missing_episodes(cond: MissingData, signals: PatientSignals, until: float) -> Episodes:
    times = _reading_times(cond, signals, until)
    if times.size == 0:
        return empty()
    limit = duration_seconds(cond.duration)
    following = np.append(times[1:], np.inf)
    silent = following - times > limit
    lasts = times[silent]

    def explain(k: int, at: float) -> Evidence:
        return _gap_evidence(cond, float(lasts[k]), at)

    return Episodes(lasts + limit, following[silent], explain)


def missing_now(
    cond: MissingData, signals: PatientSignals, now: float
) -> tuple[float, Evidence] | None:
    """The gap at ``now`` from the latest reading of each stream (no sort of the history)."""
    names = list(signals.streams) if cond.streams == (ANY_STREAM,) else list(cond.streams)
    latest = -np.inf
    for name in names:
        stream = signals.streams.get(name)
        if stream is not None and stream.ts.size:
            k = int(np.searchsorted(stream.ts, now, side="right")) - 1
            if k >= 0:
                latest = max(latest, float(stream.ts[k]))
    for name, t in signals.last_seen.items():
        if t <= now and (cond.streams == (ANY_STREAM,) or name in cond.streams):
            latest = max(latest, t)
    limit = duration_seconds(cond.duration)
    if not np.isfinite(latest) or now - latest < limit:
        return None
    return latest + limit, _gap_evidence(cond, latest, now)
