"""Sleep/wake scoring of 1-minute wrist-actigraphy activity counts.

Pure numpy: every function takes a 1-D array of activity counts, one value per
1-minute epoch, ``NaN`` marking a missing epoch, and returns a float array of the
same length holding ``1.0`` (sleep), ``0.0`` (wake) or ``NaN`` (unknown).

Missing data is never scored as sleep. An epoch is unknown when any epoch its
scoring window reads is missing. Epochs near the ends of the recording, whose
window runs past the first or last epoch, are handled by ``edge``:

* ``"nan"`` (default): they are unknown, because part of their window was not
  recorded. This is the honest choice and is what the tests pin down.
* ``"zero"``: the recording is padded with zero counts, the convention the
  ActiGraph ActiLife software uses (as documented for the ``actigraph.sleepr`` R
  package, "The time series of activity counts is padded with zeros as necessary,
  at the beginning and at the end").

pyActigraphy (Hammad et al., ghammad/pyActigraphy, ``sleep/scoring_base.py``) uses
pandas ``rolling`` windows: an incomplete window gives ``NaN``, and ``NaN < threshold``
is ``False``, so it silently scores those edge epochs (and every epoch near a gap)
as wake. We return ``NaN`` instead.

Algorithms (publication, coefficients, differences from pyActigraphy in each
docstring):

* :func:`cole_kripke` - Cole, Kripke, Gruen, Mullaney & Gillin (1992), Sleep 15(5):461-469,
  doi:10.1093/sleep/15.5.461.
* :func:`sadeh` - Sadeh, Sharkey & Carskadon (1994), Sleep 17(3):201-207,
  doi:10.1093/sleep/17.3.201.
* :func:`oakley` - Oakley (1997), Mini Mitter technical report, as implemented in the
  Actiwatch/Actiware software.
* :func:`webster_rescore` - Webster, Kripke, Messin, Mullaney & Wyborney (1982),
  Sleep 5(4):389-399, doi:10.1093/sleep/5.4.389.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

SLEEP: Final = 1.0
WAKE: Final = 0.0

Edge = Literal["nan", "zero"]


# --------------------------------------------------------------------------- helpers


def as_counts(counts: npt.ArrayLike) -> FloatArray:
    """Validate activity counts: a 1-D float array, finite or ``NaN``, never negative."""
    x = np.asarray(counts, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"activity counts must be one-dimensional, got shape {x.shape}")
    if np.isinf(x).any():
        raise ValueError("activity counts must be finite (use NaN for missing epochs)")
    if (x < 0).any():  # NaN compares False
        raise ValueError("activity counts must not be negative")
    return x


def as_states(states: npt.ArrayLike) -> FloatArray:
    """Validate a sleep/wake series: 1-D, values 1.0 (sleep), 0.0 (wake) or ``NaN``."""
    s = np.asarray(states, dtype=np.float64)
    if s.ndim != 1:
        raise ValueError(f"sleep/wake states must be one-dimensional, got shape {s.shape}")
    known = s[~np.isnan(s)]
    if not np.isin(known, (SLEEP, WAKE)).all():
        raise ValueError("sleep/wake states must be 1 (sleep), 0 (wake) or NaN (unknown)")
    return s


def _pad(x: FloatArray, before: int, after: int, edge: Edge) -> FloatArray:
    if edge not in ("nan", "zero"):
        raise ValueError(f"edge must be 'nan' or 'zero', got {edge!r}")
    fill = np.nan if edge == "nan" else 0.0
    return np.concatenate([np.full(before, fill), x, np.full(after, fill)])


def weighted_window_sum(
    x: FloatArray, weights: npt.ArrayLike, before: int, edge: Edge = "nan"
) -> FloatArray:
    """``out[t] = sum_j weights[j] * x[t - before + j]``, ``NaN`` if any read epoch is ``NaN``.

    ``weights`` runs from the oldest epoch (``t - before``) to the newest. Computed as
    one correlation plus a running count of missing epochs, no Python loop.
    """
    w = np.asarray(weights, dtype=np.float64)
    after = w.size - 1 - before
    if before < 0 or after < 0:
        raise ValueError("window offset outside the weights")
    if x.size == 0:
        return np.empty(0)
    padded = _pad(x, before, after, edge)
    missing = np.isnan(padded)
    out = np.correlate(np.where(missing, 0.0, padded), w, mode="valid")
    missing_so_far = np.concatenate(([0], np.cumsum(missing, dtype=np.int64)))
    out[missing_so_far[w.size :] > missing_so_far[: -w.size]] = np.nan
    return out


def _rolling_sample_sd(padded: FloatArray, width: int) -> FloatArray:
    """Sample SD (``ddof=1``) of every window ``padded[t : t + width]``; ``NaN`` if it has one.

    Two passes over ``width`` shifted views (mean, then squared deviations): the same
    arithmetic as ``std(ddof=1)`` per window, without a Python loop or a strided reduction.
    """
    n = padded.size - width + 1
    if n <= 0:
        return np.empty(0)
    shifted = [padded[k : k + n] for k in range(width)]
    mean = sum(shifted[1:], start=shifted[0]) / width
    squares = sum(((v - mean) ** 2 for v in shifted[1:]), start=(shifted[0] - mean) ** 2)
    return np.asarray(np.sqrt(squares / (width - 1)), dtype=np.float64)


def _threshold(values: FloatArray, sleep_if: np.ufunc, threshold: float) -> FloatArray:
    """1.0 where ``sleep_if(values, threshold)``, 0.0 elsewhere, ``NaN`` where values are."""
    with np.errstate(invalid="ignore"):
        out = np.where(sleep_if(values, threshold), SLEEP, WAKE)
    out[np.isnan(values)] = np.nan
    return out


# --------------------------------------------------------------------------- Cole-Kripke


@dataclass(frozen=True, slots=True)
class ColeKripkeSet:
    """One of the published Cole-Kripke (1992) 1-minute parameter sets.

    ``weights`` apply to ``A-4, A-3, A-2, A-1, A0, A+1, A+2``; the per-minute value ``A``
    is what ``reduction`` says (the same device sampled, summarised per minute).
    """

    scale: float
    weights: tuple[float, float, float, float, float, float, float]
    reduction: str


#: Cole et al. (1992), Table/Appendix of 1-minute scoring equations (p. 466). The
#: ``"mean"`` set is the one also used by ActiLife; the others are as reproduced by
#: independent secondary implementations (we did not have the paper's PDF).
COLE_KRIPKE_1992: Final[dict[str, ColeKripkeSet]] = {
    "mean": ColeKripkeSet(0.001, (106, 54, 58, 76, 230, 74, 67), "mean activity per minute"),
    "max10s_overlap": ColeKripkeSet(
        0.00001, (404, 598, 326, 441, 1408, 508, 350), "maximum 10-s overlapping epoch per minute"
    ),
    "max10s_nonoverlap": ColeKripkeSet(
        0.00001,
        (550, 378, 413, 699, 1736, 287, 309),
        "maximum 10-s non-overlapping epoch per minute",
    ),
    "max30s_nonoverlap": ColeKripkeSet(
        0.0001, (50, 30, 14, 28, 121, 8, 50), "maximum 30-s non-overlapping epoch per minute"
    ),
}

CKVariant = Literal["mean", "max10s_overlap", "max10s_nonoverlap", "max30s_nonoverlap"]


def cole_kripke_index(
    counts: npt.ArrayLike,
    *,
    variant: CKVariant = "mean",
    divisor: float = 1.0,
    cap: float | None = None,
    edge: Edge = "nan",
) -> FloatArray:
    """Cole-Kripke index ``D`` per epoch (sleep when ``D < 1``); see :func:`cole_kripke`."""
    x = as_counts(counts)
    if divisor <= 0:
        raise ValueError("divisor must be positive")
    try:
        params = COLE_KRIPKE_1992[variant]
    except KeyError:
        raise ValueError(f"unknown Cole-Kripke variant {variant!r}") from None
    a = x / divisor
    if cap is not None:
        a = np.minimum(a, cap)  # NaN stays NaN
    return params.scale * weighted_window_sum(a, params.weights, before=4, edge=edge)


def cole_kripke(
    counts: npt.ArrayLike,
    *,
    variant: CKVariant = "mean",
    threshold: float = 1.0,
    divisor: float = 1.0,
    cap: float | None = None,
    edge: Edge = "nan",
) -> FloatArray:
    """Cole-Kripke (1992) sleep/wake scoring of 1-minute epochs.

    Cole RJ, Kripke DF, Gruen W, Mullaney DJ, Gillin JC. Automatic sleep/wake
    identification from wrist activity. Sleep 1992;15(5):461-469.

    ``D = P * (W-4*A-4 + W-3*A-3 + W-2*A-2 + W-1*A-1 + W0*A0 + W+1*A+1 + W+2*A+2)``;
    the epoch is sleep if ``D < threshold`` (1 in the paper), wake otherwise. With the
    default ``variant="mean"`` (the paper's 1-minute "mean activity" equation):
    ``D = 0.001 * (106*A-4 + 54*A-3 + 58*A-2 + 76*A-1 + 230*A0 + 74*A+1 + 67*A+2)``.
    The other 1-minute equations of the paper are in :data:`COLE_KRIPKE_1992`
    (``max10s_overlap``: P = 0.00001, 404 598 326 441 1408 508 350; ``max10s_nonoverlap``:
    P = 0.00001, 550 378 413 699 1736 287 309; ``max30s_nonoverlap``: P = 0.0001,
    50 30 14 28 121 8 50); they expect per-minute maxima of sub-minute epochs, so pass
    those as ``counts``.

    ``A = min(counts / divisor, cap)``. Defaults (``divisor=1``, no cap) use the counts
    as given. ActiLife's variant divides by 100 and caps at 300 (``divisor=100,
    cap=300``).

    Differences from pyActigraphy (read in ghammad/pyActigraphy ``sleep/scoring_base.py``
    and its later ``CK(settings=...)``; nothing copied):

    * Older pyActigraphy ``CK()`` defaults to P = 0.00001 with rounded weights
      400 600 300 400 1400 500 350, which is none of the paper's sets (closest to
      ``max10s_overlap``).
    * Later pyActigraphy ``CK(settings=...)``: ``"mean"`` divides the per-minute count sum
      by 30 (its comment: weights derived for the mean of 2-s epochs); reproduce it with
      ``divisor=30``. Its ``"10sec_max_overlap"`` weights read 50 30 300 400 1400 500 350,
      ``"10sec_max_non_overlap"`` ends with 300 (paper: 309) and ``"30sec_max_non_overlap"``
      (its default) has 12 where the paper has 121. Its default also applies Webster's
      rescoring; here that is the separate :func:`webster_rescore`.
    * pyActigraphy scores epochs with an incomplete window as wake; see the module
      docstring for our ``edge`` handling.
    """
    d = cole_kripke_index(counts, variant=variant, divisor=divisor, cap=cap, edge=edge)
    return _threshold(d, np.less, threshold)


# --------------------------------------------------------------------------- Sadeh


def sadeh_index(
    counts: npt.ArrayLike,
    *,
    lg_epoch: Literal["current", "next"] = "current",
    cap: float | None = None,
    edge: Edge = "nan",
) -> FloatArray:
    """Sadeh (1994) probability-of-sleep index ``PS`` per epoch; see :func:`sadeh`."""
    x = as_counts(counts)
    if lg_epoch not in ("current", "next"):
        raise ValueError(f"lg_epoch must be 'current' or 'next', got {lg_epoch!r}")
    if cap is not None:
        x = np.minimum(x, cap)
    n = x.size
    if n == 0:
        return np.empty(0)
    mean = weighted_window_sum(x, np.full(11, 1.0 / 11.0), before=5, edge=edge)
    with np.errstate(invalid="ignore"):
        in_band = np.where(np.isnan(x), np.nan, ((x >= 50) & (x < 100)).astype(np.float64))
    nat = weighted_window_sum(in_band, np.ones(11), before=5, edge=edge)
    # NaN anywhere in the window gives NaN
    sd = _rolling_sample_sd(_pad(x, 5, 0, edge), 6)
    lg_source = x if lg_epoch == "current" else _pad(x, 0, 1, edge)[1:]
    lg = np.log(lg_source + 1.0)
    return 7.601 - 0.065 * mean - 1.08 * nat - 0.056 * sd - 0.703 * lg


def sadeh(
    counts: npt.ArrayLike,
    *,
    threshold: float = 0.0,
    lg_epoch: Literal["current", "next"] = "current",
    cap: float | None = None,
    edge: Edge = "nan",
) -> FloatArray:
    """Sadeh (1994) sleep/wake scoring of 1-minute epochs.

    Sadeh A, Sharkey KM, Carskadon MA. Activity-based sleep-wake identification: an
    empirical test of methodological issues. Sleep 1994;17(3):201-207.

    ``PS = 7.601 - 0.065*MEAN - 1.08*NAT - 0.056*SD - 0.703*LG``; sleep if
    ``PS >= threshold`` (0 in the paper), wake otherwise, where

    * MEAN: mean count of the 11-epoch window centred on the epoch (5 before, 5 after);
    * NAT: number of epochs in that window with ``50 <= count < 100``;
    * SD: standard deviation (sample, ``ddof=1``, as in pandas/R) of the 6 epochs ending
      at the current one (5 before + current);
    * LG: ``ln(count + 1)`` of the current epoch (``lg_epoch="current"``, the paper).

    ActiLife's variant caps counts at 300 and uses ``threshold=-4`` (as documented for
    ``actigraph.sleepr``): ``cap=300, threshold=-4``.

    Differences from pyActigraphy ``Sadeh()`` (ghammad/pyActigraphy
    ``sleep/scoring_base.py``; nothing copied), whose docstring states the paper's
    definitions but whose code does:

    * LG from the *next* epoch (``shift(-1)``); reproduce with ``lg_epoch="next"``;
    * NAT with ``50 < count < 100`` (excludes exactly 50);
    * sleep when ``PS > 0`` (strict; the paper's ``PS >= 0`` is kept here);
    * incomplete windows (first/last 5 epochs, epochs near gaps) scored as wake.
    """
    ps = sadeh_index(counts, lg_epoch=lg_epoch, cap=cap, edge=edge)
    return _threshold(ps, np.greater_equal, threshold)


# --------------------------------------------------------------------------- Oakley

#: Actiwatch/Actiware wake-threshold settings (activity counts) for Oakley scoring.
OAKLEY_THRESHOLDS: Final[dict[str, float]] = {"low": 20.0, "medium": 40.0, "high": 80.0}

#: Oakley weights for 1-minute epochs, ``A-2 .. A+2``.
OAKLEY_WEIGHTS_1MIN: Final = (1 / 25, 1 / 5, 1.0, 1 / 5, 1 / 25)


def actiware_automatic_threshold(counts: npt.ArrayLike) -> float:
    """Actiware's "automatic" wake threshold for 1-minute epochs.

    As described in the Actiwatch Communication and Sleep Analysis Software manual
    (quoted in pyActigraphy): (sum of counts) / (minutes scored MOBILE) x 0.88888, an
    epoch being MOBILE when its count is at least the number of 15-s intervals in it
    (4 for a 1-minute epoch). Missing epochs are ignored.
    """
    x = as_counts(counts)
    valid = x[~np.isnan(x)]
    mobile_minutes = int((valid >= 4).sum())
    if mobile_minutes == 0:
        raise ValueError("no mobile epochs: the automatic threshold is undefined")
    return float(valid.sum() / mobile_minutes * 0.88888)


def oakley_index(counts: npt.ArrayLike, *, edge: Edge = "nan") -> FloatArray:
    """Oakley total activity count per epoch (sleep when ``<= threshold``); see :func:`oakley`."""
    x = as_counts(counts)
    return weighted_window_sum(x, OAKLEY_WEIGHTS_1MIN, before=2, edge=edge)


def oakley(
    counts: npt.ArrayLike,
    *,
    threshold: float | Literal["low", "medium", "high", "automatic"] = "medium",
    edge: Edge = "nan",
) -> FloatArray:
    """Oakley (1997) / Actiwatch sleep/wake scoring of 1-minute epochs.

    Oakley NR. Validation with polysomnography of the Sleepwatch sleep/wake scoring
    algorithm used by the Actiwatch activity monitoring system. Technical report,
    Mini Mitter Co., Bend, OR, 1997; as implemented in Actiware.

    Total activity ``T = A-2/25 + A-1/5 + A0 + A+1/5 + A+2/25`` (1-minute epochs); the
    epoch is wake if ``T > threshold`` and sleep otherwise. Thresholds: ``"low"`` 20,
    ``"medium"`` 40 (default), ``"high"`` 80, ``"automatic"`` (see
    :func:`actiware_automatic_threshold`) or a number.

    Difference from pyActigraphy ``Oakley()`` (same weights, default 40): it scores sleep
    when ``T < threshold`` (strict) although its docstring says ``<=``; we follow the
    Actiware rule (wake only *above* the threshold), so ``T == threshold`` is sleep.
    Incomplete windows are unknown here, wake there.
    """
    if isinstance(threshold, str):
        if threshold == "automatic":
            value = actiware_automatic_threshold(counts)
        elif threshold in OAKLEY_THRESHOLDS:
            value = OAKLEY_THRESHOLDS[threshold]
        else:
            raise ValueError(f"unknown Oakley threshold {threshold!r}")
    else:
        value = float(threshold)
    total = oakley_index(counts, edge=edge)
    return _threshold(total, np.less_equal, value)


# --------------------------------------------------------------------------- Webster


@dataclass(frozen=True, slots=True)
class Runs:
    """Run-length encoding of a sleep/wake series (``value`` -1 marks unknown runs)."""

    start: npt.NDArray[np.intp]
    length: npt.NDArray[np.intp]
    value: npt.NDArray[np.int8]


def runs_of(states: FloatArray) -> Runs:
    """Run-length encode ``states`` (1 sleep, 0 wake, ``NaN`` unknown -> -1)."""
    code = np.where(np.isnan(states), -1, states).astype(np.int8)
    if code.size == 0:
        empty = np.empty(0, dtype=np.intp)
        return Runs(empty, empty, np.empty(0, dtype=np.int8))
    start = np.flatnonzero(np.concatenate([[True], code[1:] != code[:-1]]))
    length = np.diff(np.append(start, code.size))
    return Runs(start.astype(np.intp), length.astype(np.intp), code[start])


def _mark(
    n: int, start: npt.NDArray[np.intp], count: npt.NDArray[np.intp]
) -> npt.NDArray[np.bool_]:
    """Boolean mask with ``[start[i], start[i] + count[i])`` set, via a difference array."""
    delta = np.bincount(start, minlength=n + 1) - np.bincount(start + count, minlength=n + 1)
    return np.cumsum(delta[:n]) > 0


def webster_rescore(states: npt.ArrayLike) -> FloatArray:
    """Webster et al. (1982) rescoring rules for 1-minute sleep/wake series.

    Webster JB, Kripke DF, Messin S, Mullaney DJ, Wyborney G. An activity-based sleep
    monitor system for ambulatory use. Sleep 1982;5(4):389-399 (rules as restated by
    Cole et al. 1992):

    a. after at least 4 minutes scored wake, the next 1 minute scored sleep -> wake;
    b. after at least 10 minutes scored wake, the next 3 minutes scored sleep -> wake;
    c. after at least 15 minutes scored wake, the next 4 minutes scored sleep -> wake;
    d. a sleep bout of 6 minutes or less surrounded by at least 10 minutes of wake on
       each side -> wake;
    e. a sleep bout of 10 minutes or less surrounded by at least 20 minutes of wake on
       each side -> wake.

    Rules a-c read the input scores (the longest qualifying rule wins; a sleep bout
    shorter than the minutes to rescore becomes wake entirely); rules d-e then read the
    result of a-c. "Wake" means contiguous epochs scored wake: an unknown (``NaN``) epoch
    or the start/end of the series interrupts a wake run, so a sleep bout beside missing
    data or a series edge is not "surrounded". ``NaN`` epochs stay ``NaN``.
    """
    s = as_states(states).copy()
    n = s.size
    r = runs_of(s)
    if r.start.size < 2:
        return s
    prev_value = np.concatenate([[-1], r.value[:-1]])
    prev_length = np.concatenate([[0], r.length[:-1]])
    is_sleep = r.value == 1
    after_wake = is_sleep & (prev_value == 0)
    k = np.select([prev_length >= 15, prev_length >= 10, prev_length >= 4], [4, 3, 1], 0)
    k = np.where(after_wake, np.minimum(k, r.length), 0).astype(np.intp)
    s[_mark(n, r.start, k)] = WAKE

    r = runs_of(s)
    if r.start.size < 3:
        return s
    prev_value = np.concatenate([[-1], r.value[:-1]])
    prev_length = np.concatenate([[0], r.length[:-1]])
    next_value = np.concatenate([r.value[1:], [-1]])
    next_length = np.concatenate([r.length[1:], [0]])
    surrounded = (r.value == 1) & (prev_value == 0) & (next_value == 0)
    around = np.minimum(prev_length, next_length)
    rule_d = surrounded & (r.length <= 6) & (around >= 10)
    rule_e = surrounded & (r.length <= 10) & (around >= 20)
    flip = rule_d | rule_e
    s[_mark(n, r.start[flip], r.length[flip])] = WAKE
    return s
