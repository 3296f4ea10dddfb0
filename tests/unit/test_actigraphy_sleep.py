"""Sleep/wake scoring: worked examples computed by hand from the published equations.

Cole et al. 1992 (Sleep 15:461): D = 0.001(106A-4 + 54A-3 + 58A-2 + 76A-1 + 230A0 + 74A+1
+ 67A+2), sleep if D < 1. Sadeh et al. 1994 (Sleep 17:201): PS = 7.601 - 0.065 MEAN -
1.08 NAT - 0.056 SD - 0.703 LG, sleep if PS >= 0. Oakley 1997 / Actiware: T = A-2/25 +
A-1/5 + A0 + A+1/5 + A+2/25, wake if T > threshold (20/40/80). Webster et al. 1982 (Sleep
5:389) rescoring rules a-e. Depresjon: Garcia-Ceja et al., MMSys '18,
doi:10.1145/3204949.3208125.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from clarity.actigraphy.sleep import (
    actiware_automatic_threshold,
    cole_kripke,
    cole_kripke_index,
    oakley,
    oakley_index,
    sadeh,
    sadeh_index,
    webster_rescore,
)

nan = math.nan


def assert_states(actual: np.ndarray, expected: list[float]) -> None:
    np.testing.assert_array_equal(actual, np.array(expected, dtype=float))


# --------------------------------------------------------------------------- Cole-Kripke


def test_cole_kripke_worked_example() -> None:
    counts = [0, 0, 0, 0, 5, 0, 0, 0, 0, 0]
    d = cole_kripke_index(counts)
    # Window A-4..A+2 complete only for t = 4..7 (edge="nan").
    assert np.isnan(d[:4]).all()
    assert np.isnan(d[8:]).all()
    assert d[4] == pytest.approx(0.001 * 230 * 5)  # 1.15: the burst itself
    assert d[5] == pytest.approx(0.001 * 76 * 5)  # 0.38: one minute after
    assert d[6] == pytest.approx(0.001 * 58 * 5)  # 0.29
    assert d[7] == pytest.approx(0.001 * 54 * 5)  # 0.27
    assert_states(cole_kripke(counts), [nan] * 4 + [0, 1, 1, 1] + [nan, nan])


def test_cole_kripke_all_weights() -> None:
    counts = [1, 2, 3, 4, 5, 6, 7]
    expected = 0.001 * (106 * 1 + 54 * 2 + 58 * 3 + 76 * 4 + 230 * 5 + 74 * 6 + 67 * 7)
    d = cole_kripke_index(counts)
    assert d[4] == pytest.approx(expected)  # 2.755
    assert cole_kripke(counts)[4] == 0.0


def test_cole_kripke_zero_padding_at_the_edges() -> None:
    # ActiLife convention: missing neighbours beyond the record count as 0.
    d = cole_kripke_index([0, 0, 5], edge="zero")
    np.testing.assert_allclose(d, [0.001 * 67 * 5, 0.001 * 74 * 5, 0.001 * 230 * 5])
    assert_states(cole_kripke([0, 0, 5], edge="zero"), [1, 1, 0])


def test_cole_kripke_threshold_is_strict() -> None:
    # D == threshold is wake ("sleep if D < 1").
    d = cole_kripke_index([0, 0, 0, 0, 5, 0, 0])[4]
    assert cole_kripke([0, 0, 0, 0, 5, 0, 0], threshold=d)[4] == 0.0
    assert cole_kripke([0, 0, 0, 0, 5, 0, 0], threshold=d + 1e-9)[4] == 1.0


def test_cole_kripke_divisor_and_cap() -> None:
    counts = [0, 0, 0, 0, 50_000, 0, 0]
    # ActiLife: /100, capped at 300 -> A0 = 300 -> D = 0.23 * 300
    assert cole_kripke_index(counts, divisor=100, cap=300)[4] == pytest.approx(0.23 * 300)
    # pyActigraphy "mean" setting divides the minute's count by 30
    assert cole_kripke_index([0, 0, 0, 0, 30, 0, 0], divisor=30)[4] == pytest.approx(0.23)


def test_cole_kripke_other_published_variants() -> None:
    counts = [1, 0, 0, 0, 0, 0, 0]  # only A-4 for t = 4
    assert cole_kripke_index(counts, variant="max10s_overlap")[4] == pytest.approx(404e-5)
    assert cole_kripke_index(counts, variant="max10s_nonoverlap")[4] == pytest.approx(550e-5)
    assert cole_kripke_index(counts, variant="max30s_nonoverlap")[4] == pytest.approx(50e-4)
    with pytest.raises(ValueError, match="variant"):
        cole_kripke(counts, variant="nope")  # type: ignore[arg-type]


def test_missing_epoch_makes_its_window_unknown_never_sleep() -> None:
    counts = np.zeros(20)
    counts[10] = np.nan
    states = cole_kripke(counts)
    # t reads t-4..t+2, so t = 8..14 read epoch 10
    assert np.isnan(states[8:15]).all()
    assert (states[4:8] == 1).all()
    assert (states[15:18] == 1).all()
    assert not (states[np.isnan(counts)] == 1).any()


def test_bad_counts_rejected() -> None:
    with pytest.raises(ValueError, match="negative"):
        cole_kripke([0, -1, 0])
    with pytest.raises(ValueError, match="finite"):
        sadeh([0, math.inf])
    with pytest.raises(ValueError, match="one-dimensional"):
        oakley([[0, 1], [2, 3]])
    with pytest.raises(ValueError, match="edge"):
        cole_kripke([0] * 10, edge="mirror")  # type: ignore[arg-type]


def test_empty_input() -> None:
    assert cole_kripke([]).size == 0
    assert sadeh([]).size == 0
    assert oakley([]).size == 0


# --------------------------------------------------------------------------- Sadeh


def test_sadeh_worked_example() -> None:
    counts = [0, 0, 0, 0, 0, 60, 0, 0, 0, 0, 0]
    mean = 60 / 11
    nat = 1  # 50 <= 60 < 100
    sd = math.sqrt((5 * 10**2 + 50**2) / 5)  # last 6 = [0,0,0,0,0,60], mean 10, ddof=1
    lg = math.log(61)
    expected = 7.601 - 0.065 * mean - 1.08 * nat - 0.056 * sd - 0.703 * lg  # 1.905
    ps = sadeh_index(counts)
    assert ps[5] == pytest.approx(expected)
    assert np.isnan(np.delete(ps, 5)).all()  # only t = 5 has a full window
    assert_states(sadeh(counts), [nan] * 5 + [1] + [nan] * 5)


def test_sadeh_lg_epoch_next_reproduces_pyactigraphy_shift() -> None:
    counts = [0, 0, 0, 0, 0, 60, 0, 0, 0, 0, 0]
    sd = math.sqrt(600)
    expected = 7.601 - 0.065 * 60 / 11 - 1.08 - 0.056 * sd - 0.703 * math.log(1)
    assert sadeh_index(counts, lg_epoch="next")[5] == pytest.approx(expected)


def test_sadeh_wake_example_and_nat_band() -> None:
    ps = sadeh_index([80] * 11)[5]
    assert ps == pytest.approx(7.601 - 0.065 * 80 - 1.08 * 11 - 0 - 0.703 * math.log(81))
    assert sadeh([80] * 11)[5] == 0.0
    # NAT counts 50 <= count < 100: 50 is in, 49 and 100 are out (pyActigraphy drops 50).
    base = 7.601 - 0.703 * math.log(51) - 0.065 * 50
    assert sadeh_index([50] * 11)[5] == pytest.approx(base - 1.08 * 11)
    assert sadeh_index([49] * 11)[5] == pytest.approx(7.601 - 0.065 * 49 - 0.703 * math.log(50))
    assert sadeh_index([100] * 11)[5] == pytest.approx(7.601 - 0.065 * 100 - 0.703 * math.log(101))


def test_sadeh_threshold_is_inclusive() -> None:
    # All zeros: PS = 7.601 exactly; "sleep if PS >= threshold".
    assert sadeh([0] * 11, threshold=7.601)[5] == 1.0
    assert sadeh([0] * 11, threshold=7.6011)[5] == 0.0


def test_sadeh_zero_padding_and_missing() -> None:
    states = sadeh([0] * 3, edge="zero")
    assert_states(states, [1, 1, 1])
    counts = np.zeros(30)
    counts[15] = np.nan
    ps = sadeh_index(counts)
    # MEAN/NAT windows (t-5..t+5) and SD window (t-5..t) read epoch 15 for t = 10..20
    assert np.isnan(ps[10:21]).all()
    assert not np.isnan(ps[5:10]).any()
    assert not np.isnan(ps[21:25]).any()


def test_sadeh_actilife_cap() -> None:
    capped = sadeh_index([1000] * 11, cap=300)[5]
    assert capped == pytest.approx(7.601 - 0.065 * 300 - 0.703 * math.log(301))


# --------------------------------------------------------------------------- Oakley


def test_oakley_worked_example() -> None:
    counts = [10, 50, 30, 50, 10]
    total = 10 / 25 + 50 / 5 + 30 + 50 / 5 + 10 / 25  # 50.8
    assert oakley_index(counts)[2] == pytest.approx(total)
    assert oakley(counts)[2] == 0.0  # medium 40
    assert oakley(counts, threshold="high")[2] == 1.0  # 80
    assert oakley(counts, threshold=50.8)[2] == 1.0  # wake only above the threshold
    assert_states(oakley(counts), [nan, nan, 0, nan, nan])


def test_oakley_threshold_levels() -> None:
    assert oakley([0, 0, 40, 0, 0])[2] == 1.0  # T == 40: not above medium
    assert oakley([0, 0, 41, 0, 0])[2] == 0.0
    assert oakley([0, 0, 21, 0, 0], threshold="low")[2] == 0.0
    assert oakley([0, 0, 20, 0, 0], threshold="low")[2] == 1.0
    assert oakley([100, 0, 0, 0, 0])[2] == 1.0  # 100/25 = 4
    with pytest.raises(ValueError, match="threshold"):
        oakley([0] * 5, threshold="extreme")  # type: ignore[arg-type]


def test_oakley_zero_padding() -> None:
    assert_states(oakley([0, 45, 0], edge="zero"), [1, 0, 1])  # 45/5 = 9 beside it


def test_actiware_automatic_threshold() -> None:
    counts = [0, 0, 10, 20, 2, 3, 5, nan]
    # sum 40 over 3 mobile minutes (count >= 4), times 0.88888
    assert actiware_automatic_threshold(counts) == pytest.approx(40 / 3 * 0.88888)
    with pytest.raises(ValueError, match="mobile"):
        actiware_automatic_threshold([0, 1, 3])
    states = oakley([0, 0, 11, 0, 0, 20, 10], threshold="automatic")  # threshold 11.11
    assert states[2] == 1.0


# --------------------------------------------------------------------------- Webster


def webster(seq: Sequence[float]) -> list[float]:
    return [float(v) for v in webster_rescore(seq)]


def test_webster_rule_a() -> None:
    assert webster([0] * 4 + [1] * 5) == [0] * 5 + [1] * 4
    assert webster([0] * 3 + [1] * 5) == [0] * 3 + [1] * 5  # 3 minutes of wake: no


def test_webster_rule_b() -> None:
    assert webster([0] * 10 + [1] * 8) == [0] * 13 + [1] * 5
    assert webster([0] * 9 + [1] * 8) == [0] * 10 + [1] * 7  # only rule a


def test_webster_rule_c() -> None:
    assert webster([0] * 15 + [1] * 8) == [0] * 19 + [1] * 4
    assert webster([0] * 14 + [1] * 8) == [0] * 17 + [1] * 5  # only rule b


def test_webster_rule_d() -> None:
    # a-c: the 9-minute bout loses 3 -> 6 minutes between 13 and 10(+3) minutes of wake
    seq = [1] * 30 + [0] * 10 + [1] * 9 + [0] * 10 + [1] * 30
    assert webster(seq) == [1] * 30 + [0] * 32 + [1] * 27
    # 8 minutes of wake after (9 after rule a on the next bout): not surrounded by 10
    seq = [1] * 30 + [0] * 10 + [1] * 9 + [0] * 8 + [1] * 30
    assert webster(seq) == [1] * 30 + [0] * 13 + [1] * 6 + [0] * 9 + [1] * 29


def test_webster_rule_e() -> None:
    # c: the 14-minute bout loses 4 -> 10 minutes between 24 and 24 minutes of wake
    seq = [1] * 30 + [0] * 20 + [1] * 14 + [0] * 20 + [1] * 30
    assert webster(seq) == [1] * 30 + [0] * 58 + [1] * 26
    # 15 wake after (+4 from rule c) = 19 < 20: the 10-minute bout stays
    seq = [1] * 30 + [0] * 20 + [1] * 14 + [0] * 15 + [1] * 30
    assert webster(seq) == [1] * 30 + [0] * 24 + [1] * 10 + [0] * 19 + [1] * 26


def test_webster_missing_interrupts_wake() -> None:
    out = webster_rescore([0] * 10 + [nan] + [1] * 5)
    np.testing.assert_array_equal(out, [0] * 10 + [nan] + [1] * 5)
    # a short bout beside missing data is not "surrounded"
    seq = [0] * 25 + [1] * 10 + [nan] + [0] * 25
    out = webster_rescore(seq)
    np.testing.assert_array_equal(out, [0] * 29 + [1] * 6 + [nan] + [0] * 25)
    with pytest.raises(ValueError, match="sleep"):
        webster_rescore([0, 2, 1])


# --------------------------------------------------------------------------- Depresjon


def shared_data() -> Path:
    default = Path(__file__).resolve().parents[2].parent / "shared" / "data"
    return Path(os.environ.get("CLARITY_SHARED_DATA", str(default)))


def read_depresjon(path: Path) -> tuple[datetime, np.ndarray]:
    """Tiny reader for the test: both timestamp styles, gaps become NaN."""
    stamps: list[datetime] = []
    values: list[float] = []
    for line in path.read_text().splitlines()[1:]:
        fields = line.split(",")
        text = fields[0].strip()
        fmt = "%Y-%m-%d %H:%M:%S" if "-" in text else "%d/%m/%Y %H:%M"
        stamps.append(datetime.strptime(text, fmt))
        values.append(float(fields[2]))
    t0 = stamps[0]
    index = np.array([int((t - t0).total_seconds() // 60) for t in stamps])
    counts = np.full(index.max() + 1, np.nan)
    counts[index] = values
    return t0, counts


DEPRESJON_FILES = ["condition/condition_1.csv", "control/control_1.csv", "control/control_5.csv"]


def depresjon(name: str) -> tuple[datetime, np.ndarray]:
    path = shared_data() / "depresjon" / name
    if not path.exists():
        pytest.skip(f"Depresjon data not found at {path} (set CLARITY_SHARED_DATA)")
    return read_depresjon(path)


@pytest.mark.parametrize("name", DEPRESJON_FILES)
def test_depresjon_more_sleep_at_night_than_by_day(name: str) -> None:
    t0, counts = depresjon(name)
    assert counts.size > 10 * 1440
    minute_of_day = (t0.hour * 60 + t0.minute + np.arange(counts.size)) % 1440
    night = (minute_of_day >= 60) & (minute_of_day < 300)  # 01:00-05:00
    day = (minute_of_day >= 600) & (minute_of_day < 1080)  # 10:00-18:00
    for states in (
        cole_kripke(counts),
        cole_kripke(counts, divisor=30),
        sadeh(counts),
        oakley(counts),
        webster_rescore(oakley(counts)),
    ):
        at_night, by_day = np.nanmean(states[night]), np.nanmean(states[day])
        assert at_night > by_day + 0.1, (name, at_night, by_day)
        assert not (states[np.isnan(counts)] == 1).any()
