"""Every Depresjon recording parses and yields finite, in-range rhythm metrics.

Depresjon: Garcia-Ceja E, et al. MMSys '18, 2018, doi:10.1145/3204949.3208125 (real minute
actigraphy of 23 patients and 32 controls, read from ../shared/data beside the repo).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from clarity.actigraphy.nonwear import choi_nonwear, troiano_nonwear, valid_days
from clarity.actigraphy.readers import (
    SharedDataMissing,
    depresjon_dir,
    depresjon_files,
    read_depresjon_csv,
)
from clarity.actigraphy.rhythm import (
    cosinor,
    daily_summaries,
    fragmentation,
    interdaily_stability,
    intradaily_variability,
    l5_m10,
)


def _files() -> list[Path]:
    try:
        root = depresjon_dir()
    except SharedDataMissing as exc:
        pytest.skip(f"Depresjon data set not available: {exc}")
    return depresjon_files(root)


def _data_lines(path: Path) -> int:
    with path.open(encoding="utf-8") as handle:
        return sum(1 for line in handle if line.strip()) - 1


def test_all_55_recordings_are_present() -> None:
    files = _files()
    assert len(files) == 55
    assert sum(f.parent.name == "condition" for f in files) == 23
    assert sum(f.parent.name == "control" for f in files) == 32


def test_every_recording_parses_and_gives_metrics_in_range() -> None:
    for path in _files():
        series = read_depresjon_csv(path)
        name = path.name
        assert len(series) == _data_lines(path), name
        assert series.epoch_seconds == 60, name
        # local wall-clock stamps (61-min jumps at the spring clock change) are gap-free in UTC
        assert series.is_regular, name
        assert np.all(np.isfinite(series.counts)), name

        is_ = interdaily_stability(series)
        iv = intradaily_variability(series)
        profile = l5_m10(series)
        fit = cosinor(series)
        frag = fragmentation(series, threshold=4)
        assert 0.0 <= is_ <= 1.0, name
        assert math.isfinite(iv), name
        assert iv >= 0.0, name
        assert 0.0 <= profile.relative_amplitude <= 1.0, name
        assert 0.0 <= profile.l5_onset_hours < 24.0, name
        assert 0.0 <= profile.m10_onset_hours < 24.0, name
        assert profile.l5 <= profile.m10, name
        assert math.isfinite(fit.mesor), name
        assert fit.amplitude >= 0.0, name
        assert 0.0 <= fit.acrophase_hours < 24.0, name
        assert 0.0 <= fit.r_squared <= 1.0, name
        assert 0.0 <= fit.p_value <= 1.0, name
        assert 0.0 < frag.k_ra <= 1.0, name
        assert 0.0 < frag.k_ar <= 1.0, name

        troiano = troiano_nonwear(series)
        choi = choi_nonwear(series)
        assert troiano.shape == choi.shape == series.counts.shape
        assert np.all(series.counts[troiano] <= 100), name
        edges = np.diff(np.concatenate(([0], choi.astype(np.int8), [0])))
        runs = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
        assert np.all(runs >= 90), name
        days = valid_days(series, choi, min_wear_hours=10)
        assert all(0.0 <= d.wear_hours <= 25.0 for d in days), name
        summaries = daily_summaries(series, sedentary_below_cpm=100, active_from_cpm=2020)
        assert sum(s.observed_epochs for s in summaries) == len(series), name
        assert sum(s.total_counts for s in summaries) == pytest.approx(float(series.counts.sum()))
