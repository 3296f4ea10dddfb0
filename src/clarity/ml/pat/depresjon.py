"""Depresjon as PAT training data: one-week windows per person, labelled by group.

Depresjon (Garcia-Ceja E, et al. MMSys '18, 2018, doi:10.1145/3204949.3208125): 23 people in
a depressive episode (``condition_*``, label 1) and 32 controls (``control_*``, label 0), each
with about two weeks or more of one-minute Actiwatch counts. Every recording holds at least
one complete week after its first local midnight, so no Depresjon window needs padding.
Numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from clarity.actigraphy.readers import depresjon_files, read_depresjon_csv
from clarity.ml.pat.config import WEEK_MINUTES
from clarity.ml.pat.weeks import weeks_from_series


@dataclass(frozen=True)
class WeekDataset:
    """Rows are windows: raw counts (``NaN`` = missing), subject id and the subject's label."""

    counts: NDArray[np.float64]
    subjects: NDArray[np.str_]
    labels: NDArray[np.float64]
    starts: NDArray[np.datetime64]

    def __post_init__(self) -> None:
        n = self.counts.shape[0]
        if self.counts.shape != (n, WEEK_MINUTES):
            raise ValueError(f"counts must be windows x {WEEK_MINUTES}")
        if self.subjects.shape != (n,) or self.labels.shape != (n,) or self.starts.shape != (n,):
            raise ValueError("one subject, label and start per window")

    @property
    def subject_ids(self) -> NDArray[np.str_]:
        return np.unique(self.subjects)

    def subject_labels(self) -> dict[str, int]:
        return {
            s: int(y) for s, y in zip(self.subjects.tolist(), self.labels.tolist(), strict=True)
        }


def label_of(path: Path) -> int:
    """1 for a ``condition_*`` file (depressive episode), 0 for ``control_*``."""
    group = path.stem.rsplit("_", 1)[0]
    if group not in ("condition", "control"):
        raise ValueError(f"{path.name} is neither a condition nor a control file")
    return 1 if group == "condition" else 0


def depresjon_weeks(
    root: Path | None = None,
    *,
    step_days: int = 1,
    max_weeks_per_subject: int | None = 7,
) -> WeekDataset:
    """All week windows of Depresjon (read from the shared data folder unless ``root``).

    ``max_weeks_per_subject`` (default 7, one start per weekday on average) keeps the long
    control recordings (up to five weeks) from outweighing the rest in compute; every subject
    still weighs the same in training loss and metrics.
    """
    counts: list[NDArray[np.float64]] = []
    subjects: list[str] = []
    labels: list[float] = []
    starts: list[np.datetime64] = []
    for path in depresjon_files(root):
        label = label_of(path)
        for week in weeks_from_series(
            read_depresjon_csv(path), step_days=step_days, max_weeks=max_weeks_per_subject
        ):
            counts.append(week.counts)
            subjects.append(path.stem)
            labels.append(float(label))
            starts.append(week.start)
    if not counts:
        raise ValueError("no week windows found")
    return WeekDataset(
        np.stack(counts),
        np.asarray(subjects, dtype=np.str_),
        np.asarray(labels, dtype=np.float64),
        np.asarray(starts, dtype="datetime64[s]"),
    )
