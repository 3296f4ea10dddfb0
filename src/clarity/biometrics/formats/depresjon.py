"""``depresjon``: Actiwatch CSVs in the Depresjon layout (``timestamp,date,activity``).

Maps each data row's ``activity`` to ``activity_counts`` (``{count}`` per epoch) at its
``timestamp``; ignores the ``date`` column and any trailing columns (empty-header or not).
Timestamps are wall-clock times in either Depresjon style (``2003-05-07 12:00:00`` or
``23/4/2003 12:10``, day first), read in ``Europe/Oslo`` unless ``timezone`` says otherwise
and converted to UTC across daylight-saving changes exactly as
:func:`clarity.actigraphy.readers.read_depresjon_csv` does (same parser, same
:func:`~clarity.actigraphy.series.local_to_utc` rule). One record per non-blank data row, in
file order: a row with too few fields, an unreadable or impossible timestamp, or an activity
that is not a whole non-negative count is yielded as ``None``. Default source: ``actiwatch``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from functools import lru_cache
from typing import BinaryIO

from clarity.actigraphy.readers import DEPRESJON_TIMEZONE, parse_depresjon_timestamp
from clarity.biometrics.formats import Format, FormatError, ImportOptions, Record
from clarity.biometrics.formats.localtime import Row, local_seconds, timezone_of, to_utc
from clarity.biometrics.formats.text import bounded_lines, text_lines

NAME = "depresjon"
DEFAULT_SOURCE = "actiwatch"
STREAM = "activity_counts"
UNIT = "{count}"


def read(file: BinaryIO, options: ImportOptions) -> Iterator[Record | None]:
    tz = timezone_of(options, DEPRESJON_TIMEZONE, NAME)
    source = options.source or DEFAULT_SOURCE
    with text_lines(file) as text:
        lines = bounded_lines(text)
        header = [name.strip().lower() for name in next(lines, "").rstrip("\n").split(",")]
        for needed in ("timestamp", "activity"):
            if header.count(needed) != 1:
                raise FormatError(
                    "not a Depresjon/Actiwatch CSV: the first line must be a header with one "
                    f"'{needed}' column (timestamp,date,activity)"
                )
        ts_col, act_col = header.index("timestamp"), header.index("activity")
        rows = (_row(line, ts_col, act_col, source) for line in lines if line.strip())
        yield from to_utc(rows, tz)


def _row(line: str, ts_col: int, act_col: int, source: str) -> Row:
    fields = line.rstrip("\n").split(",")
    if len(fields) <= max(ts_col, act_col):
        return None
    iso = parse_depresjon_timestamp(fields[ts_col].strip())
    raw = fields[act_col].strip()
    if iso is None or not raw.isdigit() or not raw.isascii():
        return None
    local = _iso_seconds(iso)
    if local is None:
        return None
    record: Record = {
        "stream": STREAM,
        "ts": None,
        "value": int(raw),
        "unit": UNIT,
        "source": source,
    }
    return local, (record,)


def _iso_seconds(iso: str) -> int | None:
    """Local seconds of ``YYYY-MM-DDTHH:MM:SS``; None for a date or time that does not exist."""
    day = _day_seconds(iso[:10])
    hour, minute, second = int(iso[11:13]), int(iso[14:16]), int(iso[17:19])
    if day is None or hour > 23 or minute > 59 or second > 59:
        return None
    return day + hour * 3600 + minute * 60 + second


@lru_cache(maxsize=64)
def _day_seconds(text: str) -> int | None:
    try:
        return local_seconds(datetime.fromisoformat(text))
    except ValueError:  # a date that does not exist (31 April)
        return None


FORMAT = Format(
    name=NAME,
    description="Actiwatch activity counts in the Depresjon CSV layout (timestamp,date,activity)",
    read=read,
)
