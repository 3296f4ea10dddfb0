"""File formats that wearable data can be imported from (pure: no web or database imports).

A reader takes an open binary file and :class:`ImportOptions` and yields *records*: dicts
shaped like the ingestion API's samples, ``{"stream", "ts", "value", "unit", "source"}``,
where ``ts`` may be an aware :class:`~datetime.datetime` instead of ISO text. A record the
reader cannot make sense of is yielded as ``None`` (it is counted as rejected,
``bad_format``, at its position), so that one bad line never stops an import and the
positions of records are stable: resuming an import skips the first *n* records.

Readers stream: they read the file object they are given, in order, once, and never hold
the whole file (Apple Health exports are gigabytes) — except JSON documents that are bounded
by nature (a Fitbit day file, a FHIR Bundle, an Open mHealth array), read whole up to
:data:`~clarity.biometrics.formats.jsondoc.MAX_JSON_BYTES`. Validation of units, ranges and times
is not theirs: :func:`clarity.biometrics.streams.check_sample` does it for every record.
Error messages never quote the file's content.

What a file holds that maps to no stream (an Apple Health ``Workout``, a FHIR Observation
with an unknown code) is neither a record nor an error: readers that skip such things return
:class:`Records`, whose ``skipped`` counts them by kind, for the caller to report.

The formats (``--format`` names), one line each; each module's docstring says more:

- ``depresjon`` (depresjon.py): activity -> activity_counts; date and extra columns ignored.
- ``actigraph_csv`` (actigraph.py): Axis1 -> activity_counts, Steps, Lux -> light; other
  axes, vector magnitude, inclinometer ignored; raw (g) exports refused.
- ``apple_health`` (apple_health.py): heart rate, resting HR, HRV SDNN, steps, SpO2,
  respiratory rate, wrist temperature, sleep stages; other types, InBed/unspecified sleep,
  workouts, summaries, correlations skipped; ``Me`` and source names never read.
- ``fitbit_json`` (fitbit.py): heart_rate, resting_heart_rate, steps, sleep (stages) files;
  confidence, classic sleep, short wakes ignored; other files (calories, ...) refused.
- ``fhir_observations`` (fhir.py): Observations with LOINC 8867-4, 40443-4, 9279-1,
  59408-5/2708-6, 80404-7, 55423-8; other codes and resources skipped.
- ``open_mhealth`` (open_mhealth.py): heart-rate, step-count, oxygen-saturation,
  respiratory-rate data points; other schemas and descriptive statistics skipped.
- ``generic_csv`` (generic_csv.py): the mapped columns; other columns and empty cells ignored.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

Record = dict[str, Any]

# Distinct kinds counted in Records.skipped; further kinds are counted under OTHER_KIND, so
# that a hostile file cannot grow the counter without bound.
MAX_SKIPPED_KINDS = 64
OTHER_KIND = "other"


class FormatError(ValueError):
    """The file is not in the format asked for at all (wrong header, not XML, ...).

    Raised before or instead of yielding records, or at the point where a file turns out to
    be broken part-way (truncated XML or JSON; the message then names the line); the message
    says what was expected and never quotes the file's content."""


class OptionsError(FormatError):
    """The options do not suit the format: a missing or unknown time zone, a mapping naming
    an unknown stream, a file kind the format does not know. Raised before any record."""


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
    times carry no offset); ``mapping``: the column mapping (generic CSV only); ``kind``:
    which of a format's files this is where the content cannot tell (Fitbit ``steps``)."""

    source: str | None = None
    timezone: str | None = None
    mapping: CsvMapping | None = None
    kind: str | None = None


class SkipCounts(Counter[str]):
    """Things a file held that map to no stream, by kind (a type name, never a value)."""

    def skip(self, kind: str) -> None:
        if kind not in self and len(self) >= MAX_SKIPPED_KINDS:
            kind = OTHER_KIND
        self[kind] += 1


class Records(Iterator[Record | None]):
    """A reader's records, with :attr:`skipped`: what the file held that maps to no stream
    (complete once the records are exhausted)."""

    def __init__(self, records: Iterator[Record | None], skipped: SkipCounts) -> None:
        self._records = records
        self.skipped = skipped

    def __iter__(self) -> Records:
        return self

    def __next__(self) -> Record | None:
        return next(self._records)

    def close(self) -> None:
        """Stop reading early (releases the generator and what it holds)."""
        close = getattr(self._records, "close", None)
        if close is not None:
            close()


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
