"""Feature vectors of all 55 Depresjon recordings: shape, finite values, valid days.

Depresjon: Garcia-Ceja E, et al. MMSys '18, 2018, doi:10.1145/3204949.3208125. The expected
number of valid days is recounted here from the file itself: minutes per local calendar date
(the date part of each row's wall-clock timestamp), less the minutes flagged as non-wear,
at least 16 hours.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from clarity.actigraphy.features import (
    DAY_FEATURE_NAMES,
    FEATURE_NAMES,
    analyse,
)
from clarity.actigraphy.readers import (
    SharedDataMissing,
    depresjon_dir,
    depresjon_files,
    read_depresjon_csv,
)

_ISO_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_DMY_DATE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")
RHYTHM = (
    "interdaily_stability",
    "intradaily_variability",
    "relative_amplitude",
    "l5",
    "m10",
    "cosinor_mesor",
    "cosinor_amplitude",
    "cosinor_acrophase_hours",
    "k_ra",
    "k_ar",
    "sleep_regularity_index",
)


def _files() -> list[Path]:
    try:
        root = depresjon_dir()
    except SharedDataMissing as exc:
        pytest.skip(f"Depresjon data set not available: {exc}")
    return depresjon_files(root)


def _row_dates(path: Path) -> list[str]:
    """The local calendar date of each data row, read from its timestamp text."""
    dates: list[str] = []
    for line in path.read_text(encoding="utf-8-sig").splitlines()[1:]:
        if not line.strip():
            continue
        stamp = line.split(",")[0].strip()
        iso = _ISO_DATE.match(stamp)
        if iso:
            y, m, d = iso.groups()
        else:
            dmy = _DMY_DATE.match(stamp)
            assert dmy, path.name
            d, m, y = dmy.groups()
        dates.append(f"{int(y):04d}-{int(m):02d}-{int(d):02d}")
    return dates


def test_every_recording_gives_a_full_documented_feature_vector() -> None:
    files = _files()
    assert len(files) == 55
    for path in files:
        name = path.name
        analysis = analyse(read_depresjon_csv(path))
        features = analysis.features

        # valid days, recounted from the file's own wall-clock dates
        dates = _row_dates(path)
        assert len(dates) == analysis.nonwear.size, name  # gap-free: one epoch per row
        worn = Counter(
            d for d, off in zip(dates, analysis.nonwear.tolist(), strict=True) if not off
        )
        expected = sum(minutes >= 16 * 60 for minutes in worn.values())
        assert features.values["valid_days"] == expected, name
        assert [d.date.isoformat() for d in features.days] == sorted(set(dates)), name
        assert sum(d.valid for d in features.days) == expected, name

        vector = features.vector()
        assert vector.shape == (len(FEATURE_NAMES),), name
        assert expected >= 13, name  # every Depresjon recording has two weeks of wear
        for metric in RHYTHM:
            assert math.isfinite(features.values[metric]), (name, metric)
        assert 0 <= features.values["interdaily_stability"] <= 1, name
        assert 0 < features.values["wear_fraction"] <= 1, name
        # a NaN always comes with its reason, and only then
        nans = {n for n in FEATURE_NAMES if math.isnan(features.values[n])}
        assert nans == set(features.missing), name
        assert not np.any(np.isinf(vector)), name
        for day in features.days:
            assert day.vector().shape == (len(DAY_FEATURE_NAMES),)
            assert {n for n in DAY_FEATURE_NAMES if math.isnan(day.values[n])} == set(
                day.missing
            ), (name, day.date)
            if day.valid:
                assert day.values["wear_hours"] >= 16, (name, day.date)
                assert math.isfinite(day.values["total_counts"]), (name, day.date)
        assert int(np.isfinite(vector).sum()) >= len(FEATURE_NAMES) - 20, name
