"""Clarity's actigraphy engine against pyActigraphy: the full metric set on 55 recordings.

For each of the 55 Depresjon recordings both sides compute the metric set that both have:
IS, IV (hourly, counts), L5 + M10 with onsets + RA, the 24-h cosinor, kRA/kAR (threshold
4), Cole-Kripke ("mean" settings), Cole-Kripke + Webster rescoring, Sadeh, Oakley (40)
and the Sleep Regularity Index of the Cole-Kripke scores. pyActigraphy 1.2.2 (GPL-3) runs
as a separate program with ``.parity-venv``'s interpreter (``scripts/pyactigraphy-fixtures``
makes the venv; ``scripts/pyactigraphy_fixtures.py --bench`` is its side), never imported.

Honest timing: file reading and building the in-memory series (Clarity's ``EpochSeries``,
pyActigraphy's ``BaseRaw``) are excluded on both sides; the same whole-hour trimmed series
at the file's starting clock offset (as in the parity tests) go to both. A pass computes
every metric for all 55 recordings, each metric timed on its own. Both sides run in this
one invocation on the same machine, their passes alternating (Clarity, pyActigraphy,
Clarity, ...) so that a change in the machine's load hits both: ``--warmup`` untimed passes
each, then ``--repeat`` timed passes each. Reported: the median pass per metric, the total
(the median over passes of the sum of all metrics), and the ratio pyActigraphy / Clarity.
IS, IV, L5, M10 and RA are cross-checked between the two sides (relative 1e-6), so both did
the same work. Clarity keeps no result between calls; the only thing it memoises is the
hourly UTC offsets of a time zone (facts about the zone, shared by all recordings).

Clarity-only metrics with no pyActigraphy counterpart (non-wear, wear coverage, per-night
rest interval and sleep metrics) are timed and printed apart, outside the ratio.

    .venv/bin/python bench/actigraphy.py [--repeat 3] [--warmup 1] [--clarity-only]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from clarity.actigraphy.nights import sleep_regularity_index, summarize_nights
from clarity.actigraphy.nonwear import choi_nonwear, troiano_nonwear, valid_days
from clarity.actigraphy.readers import depresjon_files, read_depresjon_csv
from clarity.actigraphy.rhythm import (
    cosinor,
    fragmentation,
    interdaily_stability,
    intradaily_variability,
    l5_m10,
)
from clarity.actigraphy.series import EpochSeries
from clarity.actigraphy.sleep import cole_kripke, oakley, sadeh, webster_rescore

REPO = Path(__file__).resolve().parents[1]
PARITY_PYTHON = REPO / ".parity-venv" / "bin" / "python"
PARITY_SCRIPT = REPO / "scripts" / "pyactigraphy_fixtures.py"
GOAL = 20.0

Task = Callable[[EpochSeries], object]


def _as_pyactigraphy_sees_it(series: EpochSeries) -> EpochSeries:
    """Trimmed to whole local hours, in the fixed zone of the file's starting UTC offset."""
    offset = int(series.local_seconds[0] - series.utc_seconds[0])
    hours, rest = divmod(offset, 3600)
    if rest:
        raise ValueError("the starting offset is not a whole number of hours")
    zone = "Etc/UTC" if hours == 0 else f"Etc/GMT{-hours:+d}"  # POSIX sign: Etc/GMT-2 = UTC+2
    fixed = EpochSeries(series.timestamps, series.counts, series.epoch_seconds, zone)
    minute = int(fixed.local_seconds[0] // 60 % 60)
    skip = (60 - minute) % 60
    n = (len(fixed) - skip) // 60 * 60
    part = slice(skip, skip + n)
    return EpochSeries(fixed.timestamps[part], fixed.counts[part], 60, zone)


def _l5_m10_ra(x: EpochSeries) -> tuple[float, float, float, float, float]:
    profile = l5_m10(x)
    return (
        profile.l5,
        profile.m10,
        profile.relative_amplitude,
        profile.l5_onset_hours,
        profile.m10_onset_hours,
    )


def _ck(x: EpochSeries) -> Any:
    return cole_kripke(x.counts, divisor=30)


def _nights(x: EpochSeries) -> object:
    start = x.timestamps[0].astype(dt.datetime).replace(tzinfo=dt.UTC)
    return summarize_nights(x.counts, _ck(x), start, tz=x.tzinfo)


def _wear(x: EpochSeries) -> object:
    return valid_days(x, choi_nonwear(x))


#: Same names, same order, same settings as ``BENCH_METRICS`` in the pyActigraphy script.
SHARED: dict[str, Task] = {
    "IS": lambda x: interdaily_stability(x, convention="pyactigraphy"),
    "IV": lambda x: intradaily_variability(x, convention="pyactigraphy"),
    "L5_M10_RA": _l5_m10_ra,
    "cosinor": cosinor,
    "kRA_kAR": lambda x: fragmentation(x, threshold=4),
    "CK": _ck,
    "CK_Webster": lambda x: webster_rescore(_ck(x)),
    "Sadeh": lambda x: sadeh(x.counts, lg_epoch="next"),
    "Oakley": lambda x: oakley(x.counts, threshold=40),
    "SRI": lambda x: sleep_regularity_index(_ck(x)),
}

CLARITY_ONLY: dict[str, Task] = {
    "Troiano non-wear": troiano_nonwear,
    "Choi non-wear + valid days": _wear,
    "nights (rest interval, sleep metrics)": _nights,
}


def time_pass(
    tasks: dict[str, Task], data: list[EpochSeries]
) -> tuple[dict[str, float], dict[str, list[Any]]]:
    """Seconds per task for one pass over all recordings, and the results."""
    seconds: dict[str, float] = {}
    results: dict[str, list[Any]] = {}
    for name, fn in tasks.items():
        t0 = time.perf_counter()
        results[name] = [fn(x) for x in data]
        seconds[name] = time.perf_counter() - t0
    return seconds, results


class PyActigraphy:
    """pyActigraphy's side: ``scripts/pyactigraphy_fixtures.py --bench`` in ``.parity-venv``."""

    def __init__(self) -> None:
        if not PARITY_PYTHON.exists():
            sys.exit("no .parity-venv: run scripts/pyactigraphy-fixtures --help first to make it")
        self.errors = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - open while it runs
        self.process = subprocess.Popen(
            [str(PARITY_PYTHON), str(PARITY_SCRIPT), "--bench"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.errors,
            text=True,
        )
        self.files = int(self._read()["files"])

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.errors.seek(0)
            sys.exit(f"pyActigraphy side stopped:\n{self.errors.read()[-3000:]}")
        doc: dict[str, Any] = json.loads(line)
        return doc

    def ask(self, command: str) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=60)
        self.errors.close()


def _median(passes: list[dict[str, float]], name: str) -> float:
    return float(statistics.median(p[name] for p in passes))


def _total(passes: list[dict[str, float]]) -> float:
    return float(statistics.median(sum(p.values()) for p in passes))


def cross_check(ours: dict[str, list[Any]], theirs: dict[str, list[Any]]) -> list[str]:
    """Disagreements on IS, IV, L5, M10, RA (relative 1e-6); empty when both agree."""
    mine = {
        "IS": ours["IS"],
        "IV": ours["IV"],
        "L5": [v[0] for v in ours["L5_M10_RA"]],
        "M10": [v[1] for v in ours["L5_M10_RA"]],
        "RA": [v[2] for v in ours["L5_M10_RA"]],
    }
    bad = []
    for key, values in mine.items():
        for i, (a, b) in enumerate(zip(values, theirs[key], strict=True)):
            if b is None or not math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-12):
                bad.append(f"{key} of recording {i}: {a} vs {b}")
    return bad


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed passes per side")
    parser.add_argument("--warmup", type=int, default=1, help="untimed passes per side first")
    parser.add_argument("--clarity-only", action="store_true", help="skip pyActigraphy")
    args = parser.parse_args()
    if args.repeat < 1 or args.warmup < 0:
        parser.error("need --repeat >= 1 and --warmup >= 0")
    data = [_as_pyactigraphy_sees_it(read_depresjon_csv(p)) for p in depresjon_files()]
    other = None if args.clarity_only else PyActigraphy()
    if other is not None and other.files != len(data):
        sys.exit(f"pyActigraphy read {other.files} files, Clarity {len(data)}")
    ours: list[dict[str, float]] = []
    theirs: list[dict[str, float]] = []
    extra: list[dict[str, float]] = []
    results: dict[str, list[Any]] = {}
    for rep in range(args.warmup + args.repeat):
        seconds, results = time_pass(SHARED, data)
        extra_seconds, _ = time_pass(CLARITY_ONLY, data)
        their_seconds = None if other is None else other.ask("pass")["seconds"]
        if rep >= args.warmup:
            ours.append(seconds)
            extra.append(extra_seconds)
            if their_seconds is not None:
                theirs.append(their_seconds)

    print(
        f"{len(data)} Depresjon recordings; reading excluded on both sides; "
        f"median of {args.repeat} alternating passes per side after {args.warmup} warm-up"
    )
    print(f"{'metric':<12} {'Clarity ms':>11} {'pyActigraphy ms':>16} {'ratio':>8}")
    for name in SHARED:
        mine = _median(ours, name) * 1000
        if other is None:
            print(f"{name:<12} {mine:>11.1f}")
            continue
        if list(theirs[0]) != list(SHARED):
            sys.exit(f"metric sets differ: {list(theirs[0])} vs {list(SHARED)}")
        their = _median(theirs, name) * 1000
        print(f"{name:<12} {mine:>11.1f} {their:>16.1f} {their / mine:>7.1f}x")
    total = _total(ours) * 1000
    if other is None:
        print(f"{'total':<12} {total:>11.1f}")
    else:
        their_total = _total(theirs) * 1000
        ratio = their_total / total
        print(f"{'total':<12} {total:>11.1f} {their_total:>16.1f} {ratio:>7.1f}x")
        verdict = "met" if ratio >= GOAL else "NOT met"
        print(f"goal >= {GOAL:.0f}x over the full metric set: {verdict}")
        values = other.ask("values")["values"]
        other.close()
        bad = cross_check(results, values)
        sri_gap = max(abs(a - b) for a, b in zip(results["SRI"], values["SRI"], strict=True))
        print(
            "cross-check IS/IV/L5/M10/RA: "
            + ("all agree" if not bad else f"{len(bad)} differ, e.g. {bad[:3]}")
            + f"; SRI (edge epochs differ by design) max |diff| {sri_gap:.2f}"
        )
    print("Clarity only (no pyActigraphy counterpart; not in the ratio):")
    for name in CLARITY_ONLY:
        print(f"  {name:<38} {_median(extra, name) * 1000:>8.1f} ms")


if __name__ == "__main__":
    main()
