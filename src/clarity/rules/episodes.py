"""Episodes: the half-open time intervals ``[start, end)`` during which a condition holds.

Every condition kind turns a patient's signals into sorted, non-overlapping episodes; the
engine needs nothing else. "True at t" is "t lies in an episode"; a firing happens at the
start of an episode (or when a cooldown ends inside it); ``all``/``any`` are intersections
and unions, and a ``within`` window stretches each episode's end by the window (the
condition "was true at some moment in the last W"). Times are epoch seconds; an episode
still open at the end of the data ends at ``inf``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from clarity.rules.evidence import Evidence
from clarity.rules.signals import FloatArray

BoolArray = npt.NDArray[np.bool_]
Explain = Callable[[int, float], Evidence]

_OPS: Final = {">": np.greater, ">=": np.greater_equal, "<": np.less, "<=": np.less_equal}
_SCALAR_OPS: Final = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}


def compare(values: FloatArray, op: str, threshold: float) -> BoolArray:
    """``values op threshold`` element-wise; ``NaN`` (no value) is never true."""
    result: BoolArray = _OPS[op](values, threshold)
    return result


def compare_one(value: float, op: str, threshold: float) -> bool:
    """``value op threshold`` for one number; ``NaN`` is never true."""
    return bool(_SCALAR_OPS[op](value, threshold))


def _no_evidence(index: int, at: float) -> Evidence:
    raise IndexError(index)


@dataclass(frozen=True, eq=False)
class Episodes:
    """``explain(k, t)`` describes episode ``k`` as seen at time ``t`` (inside it, or at
    most a ``within`` window after its end)."""

    starts: FloatArray
    ends: FloatArray
    explain: Explain

    def __len__(self) -> int:
        return int(self.starts.size)

    def at(self, t: float) -> int | None:
        """The episode holding at ``t``, if any."""
        k = int(np.searchsorted(self.starts, t, side="right")) - 1
        return k if k >= 0 and t < self.ends[k] else None

    def latest_within(self, t: float, window: float) -> int | None:
        """The latest episode that held at some moment of ``(t - window, t]``."""
        k = int(np.searchsorted(self.starts, t, side="right")) - 1
        return k if k >= 0 and self.ends[k] + window > t else None


def empty() -> Episodes:
    return Episodes(np.empty(0), np.empty(0), _no_evidence)


def merge(starts: FloatArray, ends: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Union of intervals sorted by start: overlapping ones fuse, touching ones stay apart
    (so that two consecutive responses remain two episodes)."""
    if starts.size <= 1:
        return starts, ends
    out_s: list[float] = []
    out_e: list[float] = []
    cur_s, cur_e = float(starts[0]), float(ends[0])
    for s, e in zip(starts[1:].tolist(), ends[1:].tolist(), strict=True):
        if s < cur_e:
            cur_e = max(cur_e, e)
        else:
            out_s.append(cur_s)
            out_e.append(cur_e)
            cur_s, cur_e = s, e
    out_s.append(cur_s)
    out_e.append(cur_e)
    return np.array(out_s), np.array(out_e)


def intersect(
    a: tuple[FloatArray, FloatArray], b: tuple[FloatArray, FloatArray]
) -> tuple[FloatArray, FloatArray]:
    """Intersection of two sorted, non-overlapping interval lists (two-pointer sweep)."""
    a_s, a_e = a[0].tolist(), a[1].tolist()
    b_s, b_e = b[0].tolist(), b[1].tolist()
    out_s: list[float] = []
    out_e: list[float] = []
    i = j = 0
    while i < len(a_s) and j < len(b_s):
        lo, hi = max(a_s[i], b_s[j]), min(a_e[i], b_e[j])
        if lo < hi:
            out_s.append(lo)
            out_e.append(hi)
        if a_e[i] <= b_e[j]:
            i += 1
        else:
            j += 1
    return np.array(out_s, dtype=np.float64), np.array(out_e, dtype=np.float64)


def union(parts: Sequence[tuple[FloatArray, FloatArray]]) -> tuple[FloatArray, FloatArray]:
    starts = np.concatenate([p[0] for p in parts])
    ends = np.concatenate([p[1] for p in parts])
    order = np.argsort(starts, kind="stable")
    return merge(starts[order], ends[order])
