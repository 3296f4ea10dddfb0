"""``generic_csv``: any CSV with a header row, mapped by ``options.mapping`` (CsvMapping).

Maps each column named in ``mapping.columns`` to its stream, one record per non-empty cell
(empty cells are no records), at the time in the ``mapping.timestamp`` column; values in
``mapping.units[stream]`` (converted to the catalogue's unit where it is a known other one,
e.g. ``degF``), or no unit when the mapping gives none. Every other column is ignored.

Times by ``mapping.time_format``: ``iso`` (ISO 8601; without an offset it is read in
``options.timezone``, and is ``None`` when none is given), ``epoch_s``/``epoch_ms`` (Unix
time, UTC), or a ``strptime`` pattern (with ``%z`` it carries its offset; without, it needs
``options.timezone``). Local times are converted across daylight-saving changes like
Depresjon's. A row whose time cannot be read is one ``None``; a cell that is no number is a
``None`` in its place (streams with codes, such as ``sleep_stage``, also take their labels).
A header without a mapped column is a :class:`FormatError` naming the column (a column name
from the mapping, not data). Rows are streamed with the csv module. Default source:
``generic_csv``.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import BinaryIO
from zoneinfo import ZoneInfo

from clarity.biometrics.formats import (
    CsvMapping,
    Format,
    FormatError,
    ImportOptions,
    OptionsError,
    Record,
)
from clarity.biometrics.formats.localtime import Row, local_seconds, timezone_of, to_utc
from clarity.biometrics.formats.text import OVERLONG, bounded_lines, text_lines
from clarity.biometrics.formats.units import catalogue_unit
from clarity.biometrics.streams import stream_types

NAME = "generic_csv"
DEFAULT_SOURCE = "generic_csv"
EPOCH_SCALES = {"epoch_s": 1.0, "epoch_ms": 1000.0}
MAX_TIME_LENGTH = 64


def read(file: BinaryIO, options: ImportOptions) -> Iterator[Record | None]:
    mapping = _checked(options.mapping)
    zone = timezone_of(options, None, NAME) if options.timezone else None
    pattern = mapping.time_format
    if pattern not in ("iso", *EPOCH_SCALES) and "%z" not in pattern and zone is None:
        raise OptionsError(
            f"time format {pattern!r} has no offset (%z): give a timezone for its local times"
        )
    source = options.source or DEFAULT_SOURCE
    with text_lines(file) as text:
        rows = csv.reader(bounded_lines(text), delimiter=mapping.delimiter)
        header = next(rows, None)
        if header is None:
            raise FormatError("the CSV file is empty: it needs a header row")
        names = [name.strip() for name in header]
        positions: dict[str, int] = {}
        for column in (mapping.timestamp, *mapping.columns):
            if names.count(column) != 1:
                problem = "has no" if column not in names else "has more than one"
                raise FormatError(f"the CSV header {problem} column {column!r} (from the mapping)")
            positions[column] = names.index(column)
        converted = (_row(row, mapping, positions, zone, source) for row in _rows(rows))
        yield from to_utc(converted, zone or ZoneInfo("UTC"))


def _checked(mapping: CsvMapping | None) -> CsvMapping:
    if mapping is None:
        raise OptionsError("generic_csv needs a mapping (timestamp column, value columns)")
    if not mapping.columns:
        raise OptionsError("the mapping names no value columns")
    known = stream_types()
    for stream in mapping.columns.values():
        if stream not in known:
            raise OptionsError(f"the mapping names an unknown stream {stream!r}")
    if len(mapping.delimiter) != 1:
        raise OptionsError("the delimiter must be one character")
    return mapping


def _rows(rows: Iterator[list[str]]) -> Iterator[list[str] | None]:
    """Non-blank rows; a row the csv module cannot split (a field past its size limit) or
    an overlong line is None."""
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except csv.Error:
            yield None
            continue
        if row == [OVERLONG]:
            yield None
        elif any(cell.strip() for cell in row):
            yield row


def _row(
    row: list[str] | None,
    mapping: CsvMapping,
    positions: dict[str, int],
    zone: ZoneInfo | None,
    source: str,
) -> Row:
    if row is None:
        return None
    moment = _time(_cell(row, positions[mapping.timestamp]), mapping.time_format)
    if moment is None:
        return None
    local: int | None = None
    ts: datetime | None = moment
    if moment.tzinfo is None:
        if zone is None:
            return None
        local, ts = local_seconds(moment), None
        if local is None:
            return None
    records: list[Record | None] = []
    for column, stream in mapping.columns.items():
        text = _cell(row, positions[column]).strip()
        if text:
            records.append(_record(stream, text, mapping.units.get(stream), ts, source))
    return local, records


def _cell(row: list[str], index: int) -> str:
    return row[index] if index < len(row) else ""


def _time(text: str, time_format: str) -> datetime | None:
    text = text.strip()
    if not text or len(text) > MAX_TIME_LENGTH:
        return None
    try:
        if time_format == "iso":
            return datetime.fromisoformat(text)
        scale = EPOCH_SCALES.get(time_format)
        if scale is not None:
            seconds = float(text) / scale
            return datetime.fromtimestamp(seconds, UTC) if math.isfinite(seconds) else None
        return datetime.strptime(text, time_format)
    except (ValueError, OverflowError, OSError):
        return None


def _record(
    stream: str, text: str, unit: str | None, ts: datetime | None, source: str
) -> Record | None:
    try:
        value = float(text)
    except ValueError:
        if stream_types()[stream].codes:  # a label such as "deep"; check_sample decodes it
            return {"stream": stream, "ts": ts, "value": text, "unit": unit, "source": source}
        return None
    value, unit = catalogue_unit(stream, unit, value)
    return {"stream": stream, "ts": ts, "value": value, "unit": unit, "source": source}


FORMAT = Format(
    name=NAME,
    description="Any CSV with a header row, mapped column by column onto streams",
    read=read,
    needs_mapping=True,
)
