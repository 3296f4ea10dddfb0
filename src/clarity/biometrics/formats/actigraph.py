"""``actigraph_csv``: ActiGraph ActiLife epoch CSV exports (count data, not raw acceleration).

Layout (ActiLife 5/6): a header block opened by ``------------ Data File Created By ActiGraph
... date format M/d/yyyy ...`` (the date format varies with the PC's locale: ``dd/MM/yyyy``
and others), with ``Start Time``, ``Start Date`` and ``Epoch Period (hh:mm:ss)`` lines, closed
by a line of dashes; then either a column row (``Date,Time,Axis1,Axis2,Axis3,Steps,Lux,
Inclinometer ...,Vector Magnitude``, spelt with or without spaces or dots) or headerless epoch
rows (``Axis1,Axis2,Axis3,...``).

Maps ``Axis1`` to ``activity_counts`` (``{count}`` per epoch): the vertical axis, which is
what single-axis actigraphs such as the Actiwatch count, so these counts sit with Depresjon's
in one stream (the other axes and the vector magnitude are ignored); ``Steps`` to ``steps``
and ``Lux`` to ``light`` (lx) where a column row names them (headerless rows: ``Axis1``
only, since their other columns depend on the device mode). Inclinometer columns are ignored.
Raw exports (``Epoch Period 00:00:00``, ``Accelerometer X`` columns) are refused.

Times: ActiGraph devices keep the clock they were initialised with and log epochs back to
back, never stepping for daylight saving; so the start (local, ``timezone`` required) is
converted to UTC once and each row's time is that plus its offset from the start (its own
``Date``/``Time`` where the file has them, else its epoch number). Default source:
``actigraph``.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import BinaryIO

import numpy as np

from clarity.actigraphy.series import local_to_utc
from clarity.biometrics.formats import Format, FormatError, ImportOptions, Record
from clarity.biometrics.formats.localtime import local_seconds, timezone_of, utc_from_seconds
from clarity.biometrics.formats.text import bounded_lines, text_lines

NAME = "actigraph_csv"
DEFAULT_SOURCE = "actigraph"
DEFAULT_DATE_FORMAT = "M/d/yyyy"  # ActiLife's own default, for headers that do not say
MAX_HEADER_LINES = 20

_FIRST_LINE = re.compile(r"-+\s*Data (?:Table )?File Created By ActiGraph\b", re.IGNORECASE)
_DATE_FORMAT = re.compile(r"date format\s+(\S+)", re.IGNORECASE)
_START_TIME = re.compile(r"Start Time\s+(\d{1,2}):(\d{2})(?::(\d{2}))?", re.IGNORECASE)
_START_DATE = re.compile(r"Start Date\s+(\S+)", re.IGNORECASE)
_EPOCH = re.compile(r"Epoch Period \(hh:mm:ss\)\s+(\d{1,2}):(\d{2}):(\d{2})", re.IGNORECASE)
_DASHES = re.compile(r"-{10,}")
_TIME = re.compile(r"(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?")
_DATE_PARTS = re.compile(r"[/.\-]")
_THOUSANDS = re.compile(r"[0-9]{1,3}(?:,[0-9]{3})+")

# Column (lower case, without spaces, dots or underscores) -> (stream, unit).
_COLUMNS = {
    "axis1": ("activity_counts", "{count}"),
    "steps": ("steps", "{steps}"),
    "lux": ("light", "lx"),
}


@dataclass(frozen=True)
class DateFormat:
    """The order of day, month and year in the header's .NET-style pattern (``M/d/yyyy``)."""

    order: tuple[str, str, str]  # a permutation of "d", "M", "y"

    @staticmethod
    def parse(pattern: str) -> DateFormat:
        fields = [part[0] for part in re.findall(r"d+|M+|y+", pattern)]
        if sorted(fields) != ["M", "d", "y"]:
            raise FormatError("ActiGraph header has a date format this reader does not know")
        return DateFormat((fields[0], fields[1], fields[2]))

    def date(self, text: str) -> tuple[int, int, int] | None:
        """``(year, month, day)``, or None when ``text`` does not fit the format."""
        parts = _DATE_PARTS.split(text.strip())
        if len(parts) != 3 or not all(p.isdigit() and p.isascii() for p in parts):
            return None
        by_field = dict(zip(self.order, (int(p) for p in parts), strict=True))
        year = by_field["y"] + (2000 if by_field["y"] < 100 else 0)
        return year, by_field["M"], by_field["d"]


@dataclass(frozen=True)
class Header:
    date_format: DateFormat
    start: datetime  # local wall clock
    epoch_seconds: int


def read(file: BinaryIO, options: ImportOptions) -> Iterator[Record | None]:
    tz = timezone_of(options, None, NAME)
    source = options.source or DEFAULT_SOURCE
    with text_lines(file) as text:
        lines = bounded_lines(text)
        header = _header(lines)
        start_local = local_seconds(header.start)
        if start_local is None:
            raise FormatError("ActiGraph header has a start date this reader cannot place")
        start_utc = int(local_to_utc(np.array([start_local], dtype=np.int64), tz)[0])
        rows = csv.reader(lines)
        first = next(rows, None)
        columns: dict[str, int] = {}
        if first is not None and any(c.isalpha() for c in "".join(first)):
            columns = _columns(first)
            first = None
        epoch = 0
        for row in _chain(first, rows):
            if not any(cell.strip() for cell in row):
                continue
            epoch_ts = utc_from_seconds(start_utc + epoch * header.epoch_seconds)
            if columns:
                yield from _with_header(
                    row, columns, header, start_local, start_utc, epoch_ts, source
                )
            else:
                stream, unit = _COLUMNS["axis1"]
                yield _record(stream, unit, row[0], epoch_ts, source)
            epoch += 1


def _chain(first: list[str] | None, rows: Iterator[list[str]]) -> Iterator[list[str]]:
    if first is not None:
        yield first
    yield from rows


def _header(lines: Iterator[str]) -> Header:
    first = next(lines, "")
    if not _FIRST_LINE.match(first.strip()):
        raise FormatError(
            "not an ActiGraph ActiLife CSV: the first line must be the "
            "'------------ Data File Created By ActiGraph ...' header"
        )
    found = _DATE_FORMAT.search(first)
    date_format = DateFormat.parse(found.group(1) if found else DEFAULT_DATE_FORMAT)
    start_time: tuple[int, int, int] | None = None
    start_date: tuple[int, int, int] | None = None
    epoch: int | None = None
    for _ in range(MAX_HEADER_LINES):
        line = next(lines, None)
        if line is None:
            break
        text = line.strip()
        if _DASHES.fullmatch(text):
            if start_time is None or start_date is None or epoch is None:
                raise FormatError(
                    "ActiGraph header lacks a readable Start Time, Start Date or Epoch Period"
                )
            if epoch == 0:
                raise FormatError(
                    "ActiGraph raw-data export (epoch 00:00:00): export epoch counts instead"
                )
            try:
                start = datetime(*start_date, *start_time)
            except ValueError:
                raise FormatError("ActiGraph header has an impossible start date") from None
            return Header(date_format, start, epoch)
        if match := _START_TIME.match(text):
            hour, minute, second = match.groups()
            start_time = (int(hour), int(minute), int(second or 0))
        elif match := _START_DATE.match(text):
            start_date = date_format.date(match.group(1))
        elif match := _EPOCH.match(text):
            hours, minutes, seconds = (int(part) for part in match.groups())
            epoch = hours * 3600 + minutes * 60 + seconds
    raise FormatError("ActiGraph header block does not end with a line of dashes")


def _columns(names: list[str]) -> dict[str, int]:
    """Column positions by normalised name (first of duplicates)."""
    positions: dict[str, int] = {}
    for index, name in enumerate(names):
        positions.setdefault(re.sub(r"[\s._]", "", name).lower(), index)
    if "axis1" not in positions:
        if "accelerometerx" in positions:
            raise FormatError("ActiGraph raw-data export (Accelerometer X): export epoch counts")
        raise FormatError("ActiGraph CSV column row has no Axis1 column")
    if ("date" in positions) != ("time" in positions):
        raise FormatError("ActiGraph CSV column row has a Date column without a Time one")
    return positions


def _number(text: str) -> float | int | None:
    """A cell's number; ``1,250`` is 1250 (older ActiLife versions quoted counts with
    thousands separators; all three mapped columns are whole counts)."""
    if _THOUSANDS.fullmatch(text):
        text = text.replace(",", "")
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if value.is_integer() else value


def _record(stream: str, unit: str, cell: str, ts: datetime, source: str) -> Record | None:
    value = _number(cell.strip())
    if value is None:
        return None
    return {"stream": stream, "ts": ts, "value": value, "unit": unit, "source": source}


def _with_header(
    row: list[str],
    columns: dict[str, int],
    header: Header,
    start_local: int,
    start_utc: int,
    epoch_ts: datetime,
    source: str,
) -> Iterator[Record | None]:
    """The row's records; its time from its Date/Time cells where the file has them."""
    if len(row) <= max(columns.values()):
        yield None
        return
    ts: datetime | None = epoch_ts
    if "date" in columns:
        ts = _row_time(row[columns["date"]], row[columns["time"]], header, start_local, start_utc)
    if ts is None:
        yield None
        return
    for name, (stream, unit) in _COLUMNS.items():
        if name in columns:
            yield _record(stream, unit, row[columns[name]], ts, source)


def _row_time(
    date_text: str, time_text: str, header: Header, start_local: int, start_utc: int
) -> datetime | None:
    day = header.date_format.date(date_text)
    clock = _TIME.fullmatch(time_text.strip())
    if day is None or clock is None:
        return None
    hour, minute, second, fraction = clock.groups()
    try:
        moment = datetime(*day, int(hour), int(minute), int(second))
    except ValueError:
        return None
    local = local_seconds(moment)
    if local is None:
        return None
    micros = int((fraction or "0").ljust(6, "0"))
    return utc_from_seconds(start_utc + local - start_local) + timedelta(microseconds=micros)


FORMAT = Format(
    name=NAME,
    description="ActiGraph ActiLife epoch CSV: Axis1 counts, steps and lux",
    read=read,
    needs_timezone=True,
)
