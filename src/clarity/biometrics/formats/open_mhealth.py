"""``open_mhealth``: Open mHealth data points, as a JSON array or NDJSON (one per line).

A data point is ``{"header": {"schema_id": {"namespace": "omh", "name": ..., "version":
...}, ...}, "body": {...}}`` (openmhealth.org schemas). Maps, by schema name: ``heart-rate``
(``body.heart_rate`` {value, unit ``beats/min``}) -> ``heart_rate``; ``step-count``
(``body.step_count``: a number in 1.x/2.x, {value, unit ``steps``} in 3.x) -> ``steps``;
``oxygen-saturation`` (``body.oxygen_saturation`` {value, unit ``%``}) -> ``spo2``;
``respiratory-rate`` (``body.respiratory_rate`` {value, unit ``breaths/min``}) ->
``respiratory_rate``. Time: ``body.effective_time_frame.date_time``, else the
``time_interval``'s ``start_date_time``, else its ``end_date_time`` less its ``duration``;
a date with a part of day only is no sample time (``None``).

Skipped and counted in ``skipped``: other schemas (``sleep-episode`` has no stages,
``body-temperature`` is core temperature, not skin), namespaces other than ``omh``, and data
points with a ``descriptive_statistic`` (an average or maximum over a period is not a
measurement). ``header.acquisition_provenance`` is not read: every sample gets
``options.source``, default ``open_mhealth``.

NDJSON is streamed line by line; a JSON array is read whole into memory (bounded by
:data:`~clarity.biometrics.formats.jsondoc.MAX_JSON_BYTES`) — use NDJSON for big files.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import BinaryIO

from clarity.biometrics.formats import (
    Format,
    FormatError,
    ImportOptions,
    Record,
    Records,
    SkipCounts,
)
from clarity.biometrics.formats.jsondoc import MAX_JSON_BYTES, aware_time, number, parse_json
from clarity.biometrics.formats.text import bounded_lines, text_lines
from clarity.biometrics.formats.units import catalogue_unit

NAME = "open_mhealth"
DEFAULT_SOURCE = "open_mhealth"
WHAT = "Open mHealth data points"
NAMESPACE = "omh"

# schema name -> (body field, stream, unit when the field is a bare number)
SCHEMAS = {
    "heart-rate": ("heart_rate", "heart_rate", "beats/min"),
    "step-count": ("step_count", "steps", "steps"),
    "oxygen-saturation": ("oxygen_saturation", "spo2", "%"),
    "respiratory-rate": ("respiratory_rate", "respiratory_rate", "breaths/min"),
}
DURATION_SECONDS = {"ms": 0.001, "sec": 1, "s": 1, "min": 60, "h": 3600, "d": 86_400, "wk": 604_800}
_NAME = re.compile(r"[a-z0-9-]{1,40}")


def read(file: BinaryIO, options: ImportOptions) -> Records:
    skipped = SkipCounts()
    return Records(_records(file, options.source or DEFAULT_SOURCE, skipped), skipped)


def _records(file: BinaryIO, source: str, skipped: SkipCounts) -> Iterator[Record | None]:
    for point in _points(file):
        record = _record(point, source)
        if isinstance(record, str):
            skipped.skip(record)
        else:
            yield record


def _points(file: BinaryIO) -> Iterator[object]:
    """The data points: all of a JSON array, or each line of NDJSON (a line that is no JSON
    is a None point)."""
    with text_lines(file) as text:
        lines = bounded_lines(text)
        first = ""
        for line in lines:
            first = line.strip()
            if first:
                break
        if not first:
            raise FormatError(f"not {WHAT}: the file is empty")
        if first.startswith("["):
            rest = text.read(MAX_JSON_BYTES)
            if text.read(1):
                raise FormatError(f"{WHAT} array too large: use NDJSON")
            document = parse_json(first + "\n" + rest, WHAT)
            if not isinstance(document, list):
                raise FormatError(f"not {WHAT}: neither a JSON array nor NDJSON")
            yield from document
            return
        try:
            head = json.loads(first)
        except ValueError:
            head = None
        if not isinstance(head, dict):
            raise FormatError(f"not {WHAT}: neither a JSON array nor NDJSON (one object a line)")
        yield head
        yield from _ndjson(lines)


def _ndjson(lines: Iterable[str]) -> Iterator[object]:
    for line in lines:
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except (ValueError, RecursionError):
            yield None


def _record(point: object, source: str) -> Record | str | None:
    """A record, None (malformed), or why it maps to no stream (the kind to count)."""
    header = point.get("header") if isinstance(point, dict) else None
    schema = header.get("schema_id") if isinstance(header, dict) else None
    body = point.get("body") if isinstance(point, dict) else None
    if not isinstance(schema, dict) or not isinstance(body, dict):
        return None
    namespace, name = schema.get("namespace"), schema.get("name")
    if namespace != NAMESPACE:
        return "namespace"
    mapping = SCHEMAS.get(name) if isinstance(name, str) else None
    if mapping is None:
        return f"omh:{name}" if isinstance(name, str) and _NAME.fullmatch(name) else "omh"
    if "descriptive_statistic" in body:
        return f"omh:{name}:statistic"
    field, stream, bare_unit = mapping
    raw = body.get(field)
    value: float | None
    unit: object
    if isinstance(raw, dict):
        value, unit = number(raw.get("value")), raw.get("unit")
    else:
        value, unit = number(raw), bare_unit
    ts = _time(body.get("effective_time_frame"))
    if value is None or ts is None or not isinstance(unit, str):
        return None
    value, checked_unit = catalogue_unit(stream, unit, value)
    return {"stream": stream, "ts": ts, "value": value, "unit": checked_unit, "source": source}


def _time(frame: object) -> datetime | None:
    if not isinstance(frame, dict):
        return None
    if "date_time" in frame:
        return aware_time(frame["date_time"])
    interval = frame.get("time_interval")
    if not isinstance(interval, dict):
        return None
    if "start_date_time" in interval:
        return aware_time(interval["start_date_time"])
    end = aware_time(interval.get("end_date_time"))
    duration = interval.get("duration")
    if end is None or not isinstance(duration, dict):
        return None
    amount, unit = number(duration.get("value")), duration.get("unit")
    scale = DURATION_SECONDS.get(unit) if isinstance(unit, str) else None
    if amount is None or scale is None:
        return None
    try:
        return end - timedelta(seconds=amount * scale)
    except OverflowError:
        return None


FORMAT = Format(
    name=NAME,
    description="Open mHealth data points (JSON array or NDJSON): heart rate, steps, SpO2",
    read=read,
)
