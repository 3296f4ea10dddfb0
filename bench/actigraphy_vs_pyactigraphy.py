"""Clarity's actigraphy engine against pyActigraphy on the 55 Depresjon recordings.

Times IS + IV, L5 + M10 and Cole-Kripke (no rescoring) over all files, reading excluded,
best of ``--repeat`` runs. pyActigraphy (GPL-3) runs as a subprocess in ``.parity-venv``
(``scripts/pyactigraphy-fixtures`` makes it) and times only its own computation, on the
same whole-hour trimmed series; ratios are pyActigraphy's time over Clarity's, measured in
this one run. Run: ``.venv/bin/python bench/actigraphy_vs_pyactigraphy.py``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from clarity.actigraphy.readers import depresjon_files, read_depresjon_csv
from clarity.actigraphy.rhythm import interdaily_stability, intradaily_variability, l5_m10
from clarity.actigraphy.series import EpochSeries
from clarity.actigraphy.sleep import cole_kripke

REPO = Path(__file__).resolve().parents[1]
PARITY_PYTHON = REPO / ".parity-venv" / "bin" / "python"


def _trimmed(series: EpochSeries) -> EpochSeries:
    minute = int(series.local_seconds[0] // 60 % 60)
    skip = (60 - minute) % 60
    n = (len(series) - skip) // 60 * 60
    s = slice(skip, skip + n)
    return EpochSeries(series.timestamps[s], series.counts[s], 60, series.timezone)


def clarity_times(repeat: int) -> dict[str, float]:
    data = [_trimmed(read_depresjon_csv(p)) for p in depresjon_files()]
    tasks: dict[str, Callable[[EpochSeries], object]] = {
        "IS_IV": lambda x: (
            interdaily_stability(x, convention="pyactigraphy"),
            intradaily_variability(x, convention="pyactigraphy"),
        ),
        "L5_M10": l5_m10,
        "CK": lambda x: cole_kripke(x.counts, divisor=30),
    }
    best: dict[str, float] = {}
    for _ in range(repeat):
        for name, fn in tasks.items():
            t0 = time.perf_counter()
            for x in data:
                fn(x)
            elapsed = time.perf_counter() - t0
            best[name] = min(best.get(name, elapsed), elapsed)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not PARITY_PYTHON.exists():
        sys.exit("no .parity-venv: run scripts/pyactigraphy-fixtures first")
    ours = clarity_times(args.repeat)
    script = REPO / "scripts" / "pyactigraphy_fixtures.py"
    out = subprocess.run(
        [PARITY_PYTHON, script, "--bench", "--repeat", str(args.repeat)],
        check=True,
        capture_output=True,
        text=True,
    )
    theirs = json.loads(out.stdout.strip().splitlines()[-1])["seconds"]
    print(f"55 Depresjon recordings, best of {args.repeat}")
    print(f"{'metric':<8} {'Clarity s':>10} {'pyActigraphy s':>15} {'ratio':>8}")
    for name, mine in ours.items():
        print(f"{name:<8} {mine:>10.3f} {theirs[name]:>15.3f} {theirs[name] / mine:>7.1f}x")


if __name__ == "__main__":
    main()
