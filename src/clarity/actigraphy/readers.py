"""Readers for actigraphy files, starting with the Depresjon data set.

Depresjon (Garcia-Ceja E, Riegler M, Jakobsen P, et al. "Depresjon: A Motor Activity Database
of Depression Episodes in Unipolar and Bipolar Patients." MMSys '18, 2018.
doi:10.1145/3204949.3208125) holds one CSV per person with columns ``timestamp,date,activity``:
Actiwatch AW4 counts per one-minute epoch. Timestamps come in two styles,
``2003-05-07 12:00:00`` and ``23/4/2003 12:10`` (day first), and some files carry trailing
columns with an empty header, which are ignored.

The timestamps are local wall-clock times in Norway: recordings that span the spring clock
change jump by 61 minutes at 02:00, so they are read in ``Europe/Oslo`` and converted to UTC,
where the series is gap-free. Error messages name the file and line, never a value from it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from clarity.actigraphy.series import EpochSeries, infer_epoch_seconds, local_to_utc, zone

DEPRESJON_TIMEZONE = "Europe/Oslo"
SHARED_DATA_ENV = "CLARITY_SHARED_DATA"

_ISO = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})[ T](\d{1,2}):(\d{2})(?::(\d{2}))?")
_DMY = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4}) (\d{1,2}):(\d{2})(?::(\d{2}))?")
# Already in the normal form but for the separator: the common case, returned without parsing.
_CANONICAL = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}:[0-9]{2}")
_FORMATS = "'YYYY-MM-DD HH:MM:SS' or 'D/M/YYYY H:MM'"


class ActigraphyFileError(ValueError):
    """A file that cannot be read as actigraphy; names the file and, where known, the line."""

    def __init__(self, path: Path, reason: str, line: int | None = None) -> None:
        where = f"{path}" if line is None else f"{path}, line {line}"
        super().__init__(f"{where}: {reason}")
        self.path = path
        self.line = line
        self.reason = reason


class SharedDataMissing(FileNotFoundError):
    """The shared data folder, or a data set inside it, is not where it was looked for."""


def shared_data_dir() -> Path:
    """The shared data folder: ``$CLARITY_SHARED_DATA``, else ``shared/data`` beside the repo."""
    configured = os.environ.get(SHARED_DATA_ENV)
    if configured:
        return Path(configured)
    repo_root = Path(__file__).resolve().parents[3]
    return repo_root.parent / "shared" / "data"


def depresjon_dir() -> Path:
    """The Depresjon folder (holding ``condition/`` and ``control/``), or a clear error."""
    root = shared_data_dir() / "depresjon"
    if not (root / "condition").is_dir() or not (root / "control").is_dir():
        raise SharedDataMissing(
            f"Depresjon data not found at {root} (expected condition/ and control/ inside); "
            f"set {SHARED_DATA_ENV} to the shared data folder that contains depresjon/"
        )
    return root


def depresjon_files(root: Path | None = None) -> list[Path]:
    """Every per-person CSV of Depresjon: condition files, then control files, by number."""
    base = depresjon_dir() if root is None else root

    def number(path: Path) -> int:
        return int(path.stem.rsplit("_", 1)[-1])

    files: list[Path] = []
    for group in ("condition", "control"):
        files.extend(sorted((base / group).glob(f"{group}_*.csv"), key=number))
    return files


def parse_depresjon_timestamp(text: str) -> str | None:
    """ISO-8601 text (naive, wall clock) for a Depresjon timestamp, or ``None`` when it matches
    neither style (shared with the ``depresjon`` import format)."""
    if _CANONICAL.fullmatch(text):
        return f"{text[:10]}T{text[11:]}"
    match = _ISO.fullmatch(text)
    if match:
        year, month, day, hour, minute, second = match.groups()
    else:
        match = _DMY.fullmatch(text)
        if not match:
            return None
        day, month, year, hour, minute, second = match.groups()
    return (
        f"{int(year):04d}-{int(month):02d}-{int(day):02d}"
        f"T{int(hour):02d}:{int(minute):02d}:{int(second or 0):02d}"
    )


def read_depresjon_csv(path: str | Path, *, timezone: str = DEPRESJON_TIMEZONE) -> EpochSeries:
    """Read one Depresjon CSV into an :class:`EpochSeries` (UTC timestamps, float counts).

    ``timezone`` is the zone the wall-clock timestamps were written in (Norway's by default).
    Raises :class:`ActigraphyFileError` naming the file and line for any row that is not a
    valid timestamp with a non-negative whole activity count.
    """
    file = Path(path)
    tz = zone(timezone)
    try:
        text = file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ActigraphyFileError(file, f"cannot be read ({type(exc).__name__})") from exc
    lines = text.splitlines()
    if not lines:
        raise ActigraphyFileError(file, "is empty")
    header = [name.strip().lower() for name in lines[0].split(",")]
    for needed in ("timestamp", "activity"):
        if header.count(needed) != 1:
            raise ActigraphyFileError(file, f"header must have one '{needed}' column", line=1)
    ts_col, act_col = header.index("timestamp"), header.index("activity")
    width = max(ts_col, act_col) + 1

    stamps: list[str] = []
    activity: list[int] = []
    line_numbers: list[int] = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split(",")
        if len(fields) < width:
            raise ActigraphyFileError(file, f"has {len(fields)} fields, needs {width}", number)
        iso = parse_depresjon_timestamp(fields[ts_col].strip())
        if iso is None:
            raise ActigraphyFileError(file, f"timestamp is not {_FORMATS}", number)
        raw = fields[act_col].strip()
        if not raw.isdigit():
            raise ActigraphyFileError(file, "activity is not a non-negative whole count", number)
        stamps.append(iso)
        activity.append(int(raw))
        line_numbers.append(number)
    if not stamps:
        raise ActigraphyFileError(file, "has no data rows")

    try:
        local = np.array(stamps, dtype="datetime64[s]")
    except ValueError:
        for iso, number in zip(stamps, line_numbers, strict=True):
            try:
                np.datetime64(iso, "s")
            except ValueError:
                raise ActigraphyFileError(file, "timestamp is not a real date", number) from None
        raise
    utc = local_to_utc(local.astype(np.int64), tz)
    steps = np.diff(utc)
    if np.any(steps <= 0):
        at = int(np.flatnonzero(steps <= 0)[0]) + 1
        raise ActigraphyFileError(
            file, "timestamp does not come after the previous row's", line_numbers[at]
        )
    epoch = infer_epoch_seconds(utc) if utc.size > 1 else 60
    return EpochSeries(
        utc.astype("datetime64[s]"), np.asarray(activity, dtype=np.float64), epoch, timezone
    )
