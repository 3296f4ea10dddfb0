"""Reference values from pyActigraphy for the Depresjon recordings (a separate program).

pyActigraphy (Hammad G, et al., ghammad/pyActigraphy) is GPL-3: this script runs with the
interpreter of ``.parity-venv`` (made by ``scripts/pyactigraphy-fixtures``), never inside
Clarity, and nothing of pyActigraphy is copied into ``src/``. It writes
``tests/fixtures/pyactigraphy/depresjon.json``, read by
``tests/integration/test_actigraphy_parity.py``.

Input to pyActigraphy, per recording:

* the CSV's counts as a float ``pandas.Series`` at ``freq='1min'`` indexed by the first
  local timestamp plus one minute per row: the wall-clock offset at the start is held fixed,
  so a spring clock change (five recordings) does not open a one-hour hole; the script
  checks that the rows are otherwise one minute apart;
* trimmed to whole hours (from the first row at minute 0, to the last complete hour), so
  that pyActigraphy's hourly bins (``resample(origin='start')``) and Clarity's (on the hour)
  are the same bins and none is partial;
* loaded into ``pyActigraphy.io.BaseRaw`` (the base of every reader; the readers for
  device files build exactly this: a 1-min-frequency Series plus start time, period and
  frequency).

``python scripts/pyactigraphy_fixtures.py --bench`` is instead pyActigraphy's side of
``bench/actigraphy.py`` (the metric set of :data:`BENCH_METRICS` over the 55 files, reading
and building the ``BaseRaw`` objects untimed), driven pass by pass over stdin (see
:func:`bench`).
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import time
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

warnings.simplefilter("ignore")  # pandas deprecations inside pyActigraphy ('5H', ...)

import pyActigraphy  # noqa: E402
from pyActigraphy.io import BaseRaw  # noqa: E402

if not hasattr(np, "float"):
    # pyActigraphy 1.2.2 Oakley() builds its weights with np.float, removed in numpy 1.24
    np.float = float  # type: ignore[attr-defined]

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "depresjon"
OUT = REPO / "tests" / "fixtures" / "pyactigraphy" / "depresjon.json"
TZ = "Europe/Oslo"

PARAMS: dict[str, Any] = {
    "input": (
        "counts as float pandas.Series, freq='1min', index = first local timestamp + i min "
        "(offset at start held fixed), trimmed to whole hours; pyActigraphy.io.BaseRaw("
        "format='Pandas', frequency=1min, start_time=index[0], period=index[-1]-index[0])"
    ),
    "IS": {"freq": "1H", "binarize": [False, True], "threshold": 4},
    "IV": {"freq": "1H", "binarize": [False, True], "threshold": 4},
    "L5_M10_RA": {
        "function": "_lmx via L5/M10/RA; onsets from metrics._lmx (same call the methods make)",
        "binarize": [False, True],
        "threshold": 4,
    },
    "kRA_kAR": {
        "threshold": 4,
        "start": None,
        "period": None,
        "frac": 0.3,
        "it": 0,
        "logit": False,
        "pRA_pAR": "pRA(4)/pAR(4): p(t) and weight^2 = N_t + N_t+1 for t = 1..8",
    },
    "CK": {
        "settings": "mean",
        "threshold": 1.0,
        "rescoring": [False, True],
        "note": (
            "the default settings='30sec_max_non_overlap' raises ValueError on 60-s data "
            "(needs <= 30-s epochs); 'mean' is the only setting defined for 1-min counts"
        ),
    },
    "Sadeh": {"offset": 7.601, "weights": [-0.065, -1.08, -0.056, -0.703], "threshold": 0.0},
    "Oakley": {"threshold": 40},
    "Cosinor": {
        "class": "pyActigraphy.analysis.Cosinor().fit(raw.data, params)",
        "method": "leastsq",
        "fixed_period": "Period=1440 (epochs) vary=False; other initial values default",
        "free_period": "default Parameters (Period initial 1440, free)",
    },
    "sleep_encoding": (
        "per-epoch 1 sleep / 0 wake as base64(zlib(numpy.packbits(states))); "
        "day_minutes: sleep epochs per calendar day of the index (resample('1D').sum())"
    ),
}


def read_counts(path: Path) -> tuple[pd.Series, pd.Timestamp, int]:
    """The counts on a regular 1-min index, the first local timestamp, and clock changes."""
    frame = pd.read_csv(path, usecols=["timestamp", "activity"], dtype={"timestamp": str})
    text = frame["timestamp"].str.strip()
    if text.str.contains("/").any():
        stamps = pd.to_datetime(text, format="%d/%m/%Y %H:%M")
    else:
        stamps = pd.to_datetime(text, format="ISO8601")
    steps = stamps.diff().dropna()
    minute = pd.Timedelta("1min")
    odd = steps[steps != minute]
    if not odd.isin([pd.Timedelta("61min"), pd.Timedelta("-59min")]).all():
        raise SystemExit(f"{path.name}: rows are not one minute apart")
    index = pd.date_range(stamps.iloc[0], periods=len(stamps), freq="1min")
    counts = pd.Series(frame["activity"].to_numpy(dtype=float), index=index, name="activity")
    return counts, stamps.iloc[0], int(odd.size)


def trimmed(counts: pd.Series) -> tuple[pd.Series, int]:
    skip = (60 - counts.index[0].minute) % 60
    n = (len(counts) - skip) // 60 * 60
    return counts.iloc[skip : skip + n].copy(), skip


def raw_of(data: pd.Series, name: str) -> BaseRaw:
    data.index.freq = "1min"
    return BaseRaw(
        name=name,
        uuid=name,
        format="Pandas",
        axial_mode=None,
        start_time=data.index[0],
        period=data.index[-1] - data.index[0],
        frequency=pd.Timedelta("1min"),
        data=data,
        light=None,
    )


def r(value: float, digits: int = 10) -> float | None:
    value = float(value)
    return None if not np.isfinite(value) else float(f"{value:.{digits}g}")


def hours(delta: pd.Timedelta) -> float:
    return round((delta / pd.Timedelta("1h")) % 24, 6)


def sleep_entry(states: pd.Series) -> dict[str, Any]:
    bits = states.to_numpy(dtype=np.uint8)
    days = states.resample("1D").sum()
    return {
        "fraction": r(bits.mean(), 8),
        "day_minutes": [int(v) for v in days.to_numpy()],
        "states": base64.b64encode(zlib.compress(np.packbits(bits).tobytes(), 9)).decode(),
    }


def rhythm(raw: BaseRaw, binarize: bool) -> dict[str, Any]:
    from pyActigraphy.metrics.metrics import _lmx

    data = raw.binarized_data(4) if binarize else raw.data
    l5_at, l5 = _lmx(data, "5H", lowest=True)
    m10_at, m10 = _lmx(data, "10H", lowest=False)
    out = {
        "IS": r(raw.IS(freq="1H", binarize=binarize, threshold=4)),
        "IV": r(raw.IV(freq="1H", binarize=binarize, threshold=4)),
        "RA": r(raw.RA(binarize=binarize, threshold=4)),
        "L5": r(raw.L5(binarize=binarize, threshold=4)),
        "M10": r(raw.M10(binarize=binarize, threshold=4)),
        "L5_onset_h": hours(l5_at),
        "M10_onset_h": hours(m10_at),
    }
    assert out["L5"] == r(l5)
    assert out["M10"] == r(m10)
    return out


def fragmentation(raw: BaseRaw) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, k_fn, p_fn in (("RA", raw.kRA, raw.pRA), ("AR", raw.kAR, raw.pAR)):
        try:
            out[f"k{name}"] = r(k_fn(4))
        except ValueError as exc:  # LOWESS region search finds no constant region
            out[f"k{name}"] = None
            out[f"k{name}_error"] = str(exc)
        prob, weights = p_fn(4)
        ts = [t for t in range(1, 9) if t in prob.index and t in weights.index]
        out[f"p{name}"] = {str(t): [r(prob[t]), round(float(weights[t]) ** 2)] for t in ts}
    return out


def cosinor(raw: BaseRaw, start: pd.Timestamp) -> dict[str, Any]:
    from pyActigraphy.analysis import Cosinor

    model = Cosinor()
    fixed = model.fit_initial_params.copy()
    fixed["Period"].set(value=1440, vary=False)
    out: dict[str, Any] = {}
    for key, params in (("fixed_24h", fixed), ("free_period", None)):
        fit = model.fit(raw.data, params=params)
        p = fit.params
        period = float(p["Period"].value)
        # M + A cos(2 pi x / T + phi), x in epochs from the first one: the peak is at
        # x = -phi T / (2 pi) minutes after the start (mod T)
        peak_min = (-float(p["Acrophase"].value) * period / (2 * np.pi)) % period
        clock = start.hour + start.minute / 60 + peak_min / 60
        out[key] = {
            "mesor": r(p["Mesor"].value),
            "amplitude": r(p["Amplitude"].value),
            "acrophase_rad": r(p["Acrophase"].value),
            "period_min": r(period),
            "acrophase_h": round(clock % 24, 6),
            "success": bool(fit.success),
        }
    return out


def entry(path: Path) -> dict[str, Any]:
    counts, first_local, changes = read_counts(path)
    data, skip = trimmed(counts)
    offset = first_local.tz_localize(TZ).utcoffset()
    raw = raw_of(data, path.stem)
    ck0 = raw.CK(settings="mean", threshold=1.0, rescoring=False)
    ck1 = raw.CK(settings="mean", threshold=1.0, rescoring=True)
    return {
        "file": f"{path.parent.name}/{path.name}",
        "rows": len(counts),
        "clock_changes": changes,
        "first_local": str(first_local),
        "utc_offset_h": int(offset / pd.Timedelta("1h")),
        "skip": skip,
        "n_epochs": len(data),
        "raw": rhythm(raw, binarize=False),
        "binarized": rhythm(raw, binarize=True),
        "fragmentation": fragmentation(raw),
        "cosinor": cosinor(raw, data.index[0]),
        "CK": sleep_entry(ck0),
        "CK_rescored": sleep_entry(ck1),
        "Sadeh": sleep_entry(raw.Sadeh()),
        "Oakley": sleep_entry(raw.Oakley(threshold=40)),
    }


def files() -> list[Path]:
    out: list[Path] = []
    for group in ("condition", "control"):
        found = (DATA / group).glob(f"{group}_*.csv")
        out.extend(sorted(found, key=lambda p: int(p.stem.rsplit("_", 1)[1])))
    return out


def _k_or_none(fn: Any) -> float | None:
    try:
        return float(fn(4))
    except ValueError:  # LOWESS region search finds no constant region
        return None


def _bench_metrics() -> dict[str, Any]:
    """The metric set of ``bench/actigraphy.py``, each the cheapest pyActigraphy call for it."""
    from pyActigraphy.analysis import Cosinor
    from pyActigraphy.metrics.metrics import _lmx

    model = Cosinor()
    fixed = model.fit_initial_params.copy()
    fixed["Period"].set(value=1440, vary=False)

    def l5_m10_ra(x: BaseRaw) -> tuple[float, float, float, Any, Any]:
        # L5() and M10() each make one _lmx call; RA() would repeat both, so RA is derived
        l5_at, l5 = _lmx(x.data, "5H", lowest=True)
        m10_at, m10 = _lmx(x.data, "10H", lowest=False)
        return l5, m10, (m10 - l5) / (m10 + l5), l5_at, m10_at

    return {
        "IS": lambda x: x.IS(freq="1H", binarize=False),
        "IV": lambda x: x.IV(freq="1H", binarize=False),
        "L5_M10_RA": l5_m10_ra,
        "cosinor": lambda x: model.fit(x.data, params=fixed),
        "kRA_kAR": lambda x: (_k_or_none(x.kRA), _k_or_none(x.kAR)),
        "CK": lambda x: x.CK(settings="mean", threshold=1.0, rescoring=False),
        "CK_Webster": lambda x: x.CK(settings="mean", threshold=1.0, rescoring=True),
        "Sadeh": lambda x: x.Sadeh(),
        "Oakley": lambda x: x.Oakley(threshold=40),
        "SRI": lambda x: x.SleepRegularityIndex(
            algo="CK", settings="mean", threshold=1.0, rescoring=False
        ),
    }


BENCH_METRICS = (
    "IS", "IV", "L5_M10_RA", "cosinor", "kRA_kAR", "CK", "CK_Webster", "Sadeh", "Oakley", "SRI"
)  # fmt: skip


def bench() -> None:
    """Answer ``bench/actigraphy.py`` line by line, so that both sides' passes interleave.

    Prints ``{"files": N}`` once the recordings are loaded, then for each line read:
    ``pass`` - compute every metric for every recording once, print the seconds per metric;
    ``values`` - print the last pass's IS, IV, L5, M10, RA and SRI per recording. Ends at EOF.
    """
    raws = [raw_of(trimmed(read_counts(p)[0])[0], p.stem) for p in files()]
    metrics = _bench_metrics()
    assert tuple(metrics) == BENCH_METRICS
    results: dict[str, list[Any]] = {}
    print(json.dumps({"files": len(raws)}), flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "pass":
            seconds: dict[str, float] = {}
            for name, fn in metrics.items():
                t0 = time.perf_counter()
                results[name] = [fn(x) for x in raws]
                seconds[name] = time.perf_counter() - t0
            print(json.dumps({"seconds": seconds}), flush=True)
        elif command == "values":
            values = {
                "IS": [r(v) for v in results["IS"]],
                "IV": [r(v) for v in results["IV"]],
                "L5": [r(v[0]) for v in results["L5_M10_RA"]],
                "M10": [r(v[1]) for v in results["L5_M10_RA"]],
                "RA": [r(v[2]) for v in results["L5_M10_RA"]],
                "SRI": [r(v) for v in results["SRI"]],
            }
            print(json.dumps({"values": values}), flush=True)
        else:
            raise SystemExit(f"unknown bench command {command!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--bench", action="store_true", help="pyActigraphy's side of bench/actigraphy.py"
    )
    args = parser.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"Depresjon data not found at {DATA}")
    if args.bench:
        bench()
        return
    recordings = {}
    for path in files():
        recordings[path.stem] = entry(path)
        print(path.stem, file=sys.stderr)
    doc = {
        "source": "pyActigraphy (ghammad/pyActigraphy, GPL-3), run as a separate program",
        "pyActigraphy": pyActigraphy.__version__,
        "pandas": pd.__version__,
        "numpy": np.__version__,
        "generated_by": "scripts/pyactigraphy-fixtures",
        "parameters": PARAMS,
        "recordings": recordings,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(doc, separators=(",", ":")) + "\n")
    print(f"wrote {OUT.relative_to(REPO)} ({OUT.stat().st_size // 1024} KiB)", file=sys.stderr)


if __name__ == "__main__":
    main()
