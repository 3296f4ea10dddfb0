"""File formats that wearable data can be imported from (pure: no web or database imports).

A reader takes an open binary file and :class:`ImportOptions` and yields *records*: dicts
shaped like the ingestion API's samples, ``{"stream", "ts", "value", "unit", "source"}``,
where ``ts`` may be an aware :class:`~datetime.datetime` instead of ISO text. A record the
reader cannot make sense of is yielded as ``None`` (it is counted as rejected,
``bad_format``, at its position), so that one bad line never stops an import and the
positions of records are stable: resuming an import skips the first *n* records.

Readers stream: they read the file object they are given, in order, once, and never hold
the whole file (Apple Health exports are gigabytes). Validation of units, ranges and times
is not theirs: :func:`clarity.biometrics.streams.check_sample` does it for every record.
Error messages never quote the file's content.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

Record = dict[str, Any]


class FormatError(ValueError):
    """The file is not in the format asked for at all (wrong header, not XML, ...).

    Raised before or instead of yielding records; the message says what was expected and
    never quotes the file's content."""


@dataclass(frozen=True)
class CsvMapping:
    """How a generic CSV maps onto streams.

    ``timestamp``: the column holding the time; ``time_format``: ``iso`` (ISO 8601, with or
    without offset), ``epoch_s``/``epoch_ms`` (Unix time) or a ``strptime`` pattern;
    ``columns``: value column -> stream name; ``units``: stream -> unit of its values.
    Times without an offset are read in :attr:`ImportOptions.timezone`.
    """

    timestamp: str
    columns: dict[str, str]
    time_format: str = "iso"
    units: dict[str, str] = field(default_factory=dict)
    delimiter: str = ","


@dataclass(frozen=True)
class ImportOptions:
    """``source``: the device or app label stored with every sample (each format has a
    default); ``timezone``: IANA zone of local wall-clock times in the file (formats whose
    times carry no offset); ``mapping``: the column mapping (generic CSV only)."""

    source: str | None = None
    timezone: str | None = None
    mapping: CsvMapping | None = None


Reader = Callable[[BinaryIO, ImportOptions], Iterator[Record | None]]


@dataclass(frozen=True)
class Format:
    name: str  # as given to --format and the API
    description: str
    read: Reader
    needs_mapping: bool = False
    needs_timezone: bool = False  # local times, and no default zone


def formats() -> dict[str, Format]:
    """Every supported format by name (imported here to keep module import light)."""
    from clarity.biometrics.formats.registry import FORMATS

    return FORMATS


def get_format(name: str) -> Format:
    """The format called ``name``; ``KeyError`` naming the known ones otherwise."""
    known = formats()
    if name not in known:
        raise KeyError(f"unknown format {name!r}; known: {', '.join(sorted(known))}")
    return known[name]
