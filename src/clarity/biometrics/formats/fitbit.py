"""``fitbit_json``: the per-day/per-month JSON files of a Fitbit account export (Google
Takeout ``Fitbit/Global Export Data``).

Maps ``heart_rate-*.json`` (``[{"dateTime": "01/05/24 09:30:00", "value": {"bpm": 70,
"confidence": 2}}]``) to ``heart_rate``; ``resting_heart_rate-*.json`` (``{"dateTime": ...,
"value": {"date": "01/05/24", "value": 61.4, "error": 6.1}}``) to ``resting_heart_rate``
(a value of 0 is Fitbit's "no estimate that day": skipped); ``steps-*.json`` (``{"dateTime":
..., "value": "12"}``) to ``steps``; and ``sleep-*.json`` logs of type ``stages`` to
``sleep_stage`` from ``levels.data`` (wake/light/deep/rem, one record at the start of each
level interval). Ignored and counted in ``skipped``: heart-rate confidence, ``classic`` sleep
logs (asleep/restless/awake are no stages), ``levels.shortData`` (short wakes overlaid on
the stages), and resting heart rate 0.

The kind of file comes from its content, except that plain-number files (steps, but also
calories, distance, altitude, ...) look alike: for those the ``kind`` option (``steps``)
decides, else the file name (``steps-2024-01-05.json``) where the file object has one.
Times are local wall-clock times without an offset (``MM/DD/YY HH:MM:SS``; sleep uses
``2024-01-05T23:30:00.000``): ``timezone`` is required. Default source: ``fitbit``.

These files are one day or month each (a few MB at most), so each is read whole into memory
(bounded by :data:`~clarity.biometrics.formats.jsondoc.MAX_JSON_BYTES`) rather than parsed
as a stream.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, BinaryIO

from clarity.biometrics.formats import (
    Format,
    FormatError,
    ImportOptions,
    OptionsError,
    Record,
    Records,
    SkipCounts,
)
from clarity.biometrics.formats.jsondoc import load_json, number
from clarity.biometrics.formats.localtime import Row, local_seconds, timezone_of, to_utc

NAME = "fitbit_json"
DEFAULT_SOURCE = "fitbit"
WHAT = "a Fitbit export JSON file"
KINDS = ("heart_rate", "resting_heart_rate", "steps", "sleep")
STAGE_CODES = {"wake": 0, "light": 1, "deep": 2, "rem": 3}  # as streams.json codes them
_US_TIME = re.compile(r"(\d{2})/(\d{2})/(\d{2}) (\d{2}):(\d{2}):(\d{2})")
_FILE_KIND = re.compile(r"([a-z_]+)-\d{4}-\d{2}-\d{2}\.json")


def read(file: BinaryIO, options: ImportOptions) -> Records:
    skipped = SkipCounts()
    return Records(_records(file, options, skipped), skipped)


def _records(
    file: BinaryIO, options: ImportOptions, skipped: SkipCounts
) -> Iterator[Record | None]:
    tz = timezone_of(options, None, NAME)
    if options.kind is not None and options.kind not in KINDS:
        raise OptionsError(f"unknown Fitbit file kind; known: {', '.join(KINDS)}")
    document = load_json(file, WHAT)
    if not isinstance(document, list):
        raise FormatError(f"not {WHAT}: the file must hold a JSON array")
    kind = options.kind or _detect(document, getattr(file, "name", None))
    source = options.source or DEFAULT_SOURCE
    rows = _ROWS[kind](document, source, skipped)
    yield from to_utc(rows, tz)


def _detect(document: list[Any], file_name: object) -> str:
    """The file's kind from its first well-formed item (or its name, for plain numbers)."""
    for item in document:
        if not isinstance(item, dict):
            continue
        if "levels" in item:
            return "sleep"
        value = item.get("value")
        if isinstance(value, dict):
            if "bpm" in value:
                return "heart_rate"
            if "date" in value and "value" in value:
                return "resting_heart_rate"
        elif isinstance(value, str | int | float) and "dateTime" in item:
            named = _FILE_KIND.fullmatch(os.path.basename(str(file_name or "")))
            if named and named.group(1) in KINDS:
                return named.group(1)
            raise OptionsError(
                "this Fitbit file holds plain numbers (steps, calories, distance, ...): "
                "give kind='steps' if it is a steps file"
            )
    raise FormatError(f"not {WHAT}: no heart-rate, resting heart-rate, steps or sleep items")


def _local(text: object) -> int | None:
    """Local seconds of ``MM/DD/YY HH:MM:SS`` or ISO ``YYYY-MM-DDTHH:MM:SS[.fff]``."""
    if not isinstance(text, str) or len(text) > 32:
        return None
    try:
        match = _US_TIME.fullmatch(text)
        if match:
            month, day, year, hour, minute, second = (int(part) for part in match.groups())
            moment = datetime(2000 + year, month, day, hour, minute, second)
        else:
            moment = datetime.fromisoformat(text)
            if moment.tzinfo is not None:
                return None
    except ValueError:
        return None
    return local_seconds(moment)


def _point(stream: str, unit: str, when: object, value: float | None, source: str) -> Row:
    local = _local(when)
    if local is None or value is None:
        return None
    return local, ({"stream": stream, "ts": None, "value": value, "unit": unit, "source": source},)


def _field(item: object, key: str) -> Any:
    return item.get(key) if isinstance(item, dict) else None


def _heart_rate(document: list[Any], source: str, skipped: SkipCounts) -> Iterator[Row]:
    for item in document:
        bpm = number(_field(_field(item, "value"), "bpm"))
        yield _point("heart_rate", "/min", _field(item, "dateTime"), bpm, source)


def _resting(document: list[Any], source: str, skipped: SkipCounts) -> Iterator[Row]:
    for item in document:
        rate = number(_field(_field(item, "value"), "value"))
        if rate == 0:
            skipped.skip("resting_heart_rate_none")
            continue
        yield _point("resting_heart_rate", "/min", _field(item, "dateTime"), rate, source)


def _steps(document: list[Any], source: str, skipped: SkipCounts) -> Iterator[Row]:
    for item in document:
        raw = _field(item, "value")
        count = float(raw) if isinstance(raw, str) and raw.isascii() and raw.isdigit() else None
        if count is None and not isinstance(raw, str):
            count = number(raw)
        yield _point("steps", "{steps}", _field(item, "dateTime"), count, source)


def _sleep(document: list[Any], source: str, skipped: SkipCounts) -> Iterator[Row]:
    for log in document:
        data = _field(_field(log, "levels"), "data")
        if not isinstance(data, list):
            yield None
            continue
        if _field(log, "type") != "stages":
            skipped.skip("sleep_classic")
            continue
        if _field(_field(log, "levels"), "shortData"):
            skipped.skip("sleep_short_wake")
        for entry in data:
            level = _field(entry, "level")
            code = STAGE_CODES.get(level) if isinstance(level, str) else None
            value = None if code is None else float(code)
            yield _point("sleep_stage", "{stage}", _field(entry, "dateTime"), value, source)


_ROWS: dict[str, Callable[[list[Any], str, SkipCounts], Iterator[Row]]] = {
    "heart_rate": _heart_rate,
    "resting_heart_rate": _resting,
    "steps": _steps,
    "sleep": _sleep,
}

FORMAT = Format(
    name=NAME,
    description="Fitbit export JSON: heart rate, resting heart rate, steps, sleep stages",
    read=read,
    needs_timezone=True,
)
