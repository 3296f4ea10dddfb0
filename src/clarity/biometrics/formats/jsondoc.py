"""Whole-document JSON for the formats whose files are bounded (a Fitbit day file, a FHIR
Bundle, an Open mHealth array): read at most :data:`MAX_JSON_BYTES`, parse, and turn JSON
errors into :class:`FormatError` naming the line, never the text; and ISO 8601 times with
an offset, the kind these formats use."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, BinaryIO

from clarity.biometrics.formats import FormatError

MAX_JSON_BYTES = 256 * 1024 * 1024


def load_json(file: BinaryIO, what: str) -> Any:
    """The file's JSON document; ``what`` names the format in errors."""
    data = file.read(MAX_JSON_BYTES + 1)
    if len(data) > MAX_JSON_BYTES:
        raise FormatError(
            f"{what} file is larger than {MAX_JSON_BYTES // (1024 * 1024)} MiB; split it"
        )
    return parse_json(data, what)


def parse_json(data: bytes | str, what: str) -> Any:
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise FormatError(f"not {what}: invalid JSON at line {exc.lineno}") from None
    except (ValueError, RecursionError):  # not UTF-8, nesting or a number beyond limits
        raise FormatError(f"not {what}: unreadable JSON text") from None


def aware_time(value: object) -> datetime | None:
    """An ISO 8601 date-time with a zone (``Z`` or an offset), else None."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def number(value: object) -> float | None:
    """A JSON number (not a boolean), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return float(value)
    except OverflowError:
        return None
