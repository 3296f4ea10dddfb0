"""Versioned definitions of clinical assessment instruments (pure: no web, no database).

Each instrument lives in one JSON file under ``instruments/`` so that a clinician or
reviewer can check item wording, cut-points and sources without reading code, and so that
a change to a cut-point is a reviewed data change with its own version number. Files are
validated here, on first use, and a malformed file fails loudly with its name and the
offending field rather than producing wrong scores later.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Mapping
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

INSTRUMENTS_PACKAGE = "clarity.assessments"
INSTRUMENTS_DIR = "instruments"

Code = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_]{0,63}$")]
LoincCode = Annotated[str, Field(pattern=r"^[0-9]{1,7}-[0-9]$")]
Text = Annotated[str, Field(min_length=1)]


class _Model(BaseModel):
    # Strict: a "3" or 3.0 in a data file is a typo, not a value to coerce.
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class Citation(_Model):
    """Where a rule comes from, so every number in a file can be traced to a publication."""

    authors: Text
    year: int
    title: Text
    journal: str | None = None
    doi: str | None = None
    url: str | None = None


class AnswerOption(_Model):
    value: int
    label: Text


class Item(_Model):
    id: Code
    text: Text
    options: Annotated[tuple[AnswerOption, ...], Field(min_length=2)]

    @model_validator(mode="after")
    def _unique_values(self) -> Item:
        values = [o.value for o in self.options]
        if len(set(values)) != len(values):
            raise ValueError(f"item {self.id}: answer option values must be unique")
        return self

    @property
    def allowed_values(self) -> frozenset[int]:
        return frozenset(o.value for o in self.options)

    @property
    def min_value(self) -> int:
        return min(o.value for o in self.options)

    @property
    def max_value(self) -> int:
        return max(o.value for o in self.options)


class ScoreRange(_Model):
    min: int
    max: int


class Transform(_Model):
    """A published linear rescaling of the raw total (WHO-5: raw x 4 = percentage)."""

    code: Code
    label: Text
    multiplier: Annotated[int, Field(ge=1)]


class Scoring(_Model):
    method: Literal["sum"]
    transform: Transform | None = None


class Prorating(_Model):
    """Scoring with missing items, only where the instrument's own rules allow it.

    The prorated total is the mean of the answered items times the number of items,
    rounded to the nearest integer with halves rounded up.
    """

    max_missing_items: Annotated[int, Field(ge=1)]
    rounding: Literal["nearest_half_up"]
    source: Citation


class SeverityBand(_Model):
    """One band of the raw total; both edges are inclusive."""

    min: int
    max: int
    code: Code
    label: Text


class Severity(_Model):
    bands: Annotated[tuple[SeverityBand, ...], Field(min_length=1)]
    source: Citation
    note: str | None = None


class Loinc(_Model):
    """LOINC codes, filled in only where they were checked against a named source."""

    panel: LoincCode | None
    total_score: LoincCode | None
    verified_source: str | None
    note: str | None = None

    @model_validator(mode="after")
    def _codes_need_a_source(self) -> Loinc:
        if (self.panel or self.total_score) and not self.verified_source:
            raise ValueError("verified_source is required when a LOINC code is given")
        return self


class ReliableChange(_Model):
    """Smallest change treated as real rather than measurement noise (|change| >= threshold)."""

    threshold: Annotated[float, Field(gt=0)]
    scale: Literal["total", "transformed"]
    source: Citation
    note: str | None = None


class SafetyRule(_Model):
    """Raise a safety signal when one item's answer reaches a value, whatever the total."""

    code: Code
    item_id: Code
    flag_when_at_least: int
    message: Text


class Instrument(_Model):
    schema_version: Literal[1]
    id: Annotated[str, Field(pattern=r"^[a-z0-9]{2,32}$")]
    abbreviation: Text
    name: Text
    version: Annotated[str, Field(pattern=r"^[0-9]+\.[0-9]+\.[0-9]+$")]
    respondent: Literal["self", "clinician"]
    timeframe: str | None
    higher_is_worse: bool
    items: Annotated[tuple[Item, ...], Field(min_length=1)]
    score_range: ScoreRange
    scoring: Scoring
    prorating: Prorating | None
    severity: Severity
    loinc: Loinc
    reliable_change: ReliableChange | None
    safety_rules: tuple[SafetyRule, ...]
    citation: Citation
    notes: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Instrument:
        ids = [item.id for item in self.items]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"items: duplicate item id(s) {', '.join(dupes)}")

        lo = sum(item.min_value for item in self.items)
        hi = sum(item.max_value for item in self.items)
        if (self.score_range.min, self.score_range.max) != (lo, hi):
            raise ValueError(
                f"score_range: {self.score_range.min}-{self.score_range.max} does not match "
                f"the items, whose answers sum to {lo}-{hi}"
            )

        self._check_bands()

        by_id = {item.id: item for item in self.items}
        for n, rule in enumerate(self.safety_rules):
            item = by_id.get(rule.item_id)
            if item is None:
                raise ValueError(f"safety_rules[{n}]: unknown item_id {rule.item_id}")
            if not item.min_value < rule.flag_when_at_least <= item.max_value:
                raise ValueError(
                    f"safety_rules[{n}]: flag_when_at_least must lie above the lowest and "
                    f"within the answers of item {rule.item_id}"
                )

        if self.prorating and self.prorating.max_missing_items >= len(self.items):
            raise ValueError("prorating.max_missing_items must be less than the number of items")

        rc = self.reliable_change
        if rc and rc.scale == "transformed" and self.scoring.transform is None:
            raise ValueError("reliable_change.scale is 'transformed' but scoring has no transform")
        return self

    def _check_bands(self) -> None:
        bands = self.severity.bands
        codes = [b.code for b in bands]
        if len(set(codes)) != len(codes):
            raise ValueError("severity.bands: band codes must be unique")
        for n, band in enumerate(bands):
            if band.min > band.max:
                raise ValueError(f"severity.bands[{n}]: min is above max")
            if n and band.min != bands[n - 1].max + 1:
                raise ValueError(
                    f"severity.bands[{n}]: must start one above the previous band's max "
                    "(bands are inclusive, ordered, without gaps or overlaps)"
                )
        if bands[0].min != self.score_range.min or bands[-1].max != self.score_range.max:
            raise ValueError("severity.bands: must cover score_range exactly")

    @property
    def item_ids(self) -> tuple[str, ...]:
        return tuple(item.id for item in self.items)

    def item(self, item_id: str) -> Item:
        for item in self.items:
            if item.id == item_id:
                return item
        raise KeyError(item_id)

    def band_for(self, total: int) -> SeverityBand:
        """The band whose inclusive edges hold the raw total."""
        for band in self.severity.bands:
            if band.min <= total <= band.max:
                return band
        raise ValueError(f"{self.id}: total is outside the score range")

    def transformed(self, total: int) -> int | None:
        transform = self.scoring.transform
        return None if transform is None else total * transform.multiplier


class InstrumentDefinitionError(ValueError):
    """A data file that does not describe a valid instrument; names the file and fields."""

    def __init__(self, source: str, problems: Iterable[str]) -> None:
        self.source = source
        self.problems = tuple(problems)
        super().__init__(f"invalid instrument definition {source}: " + "; ".join(self.problems))


class UnknownInstrumentError(LookupError):
    def __init__(self, instrument_id: str) -> None:
        self.instrument_id = instrument_id
        super().__init__(f"no assessment instrument with id {instrument_id!r}")


def _field(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(file)"


def parse_instrument(data: str | bytes, source: str) -> Instrument:
    """Validate one instrument definition; errors name ``source`` and each bad field."""
    try:
        return Instrument.model_validate_json(data)
    except ValidationError as exc:
        problems = [f"{_field(err['loc'])}: {err['msg']}" for err in exc.errors()]
        raise InstrumentDefinitionError(source, problems) from None


def load_instrument_file(path: Path | Traversable) -> Instrument:
    """Load one JSON file; its name must be ``<id>.json`` so files are easy to find."""
    instrument = parse_instrument(path.read_bytes(), path.name)
    if path.name != f"{instrument.id}.json":
        raise InstrumentDefinitionError(
            path.name, [f"id: file must be named {instrument.id}.json after its id"]
        )
    return instrument


class Catalog(Mapping[str, Instrument]):
    """Instruments by id, read from one directory of JSON files."""

    def __init__(self, instruments: Iterable[Instrument]) -> None:
        by_id: dict[str, Instrument] = {}
        for instrument in instruments:
            if instrument.id in by_id:
                raise InstrumentDefinitionError(
                    f"{instrument.id}.json", [f"id: {instrument.id} is defined twice"]
                )
            by_id[instrument.id] = instrument
        self._by_id = dict(sorted(by_id.items()))

    @classmethod
    def from_directory(cls, directory: Path | Traversable) -> Catalog:
        files = sorted(
            (p for p in directory.iterdir() if p.is_file() and p.name.endswith(".json")),
            key=lambda p: p.name,
        )
        return cls(load_instrument_file(p) for p in files)

    def __getitem__(self, instrument_id: str) -> Instrument:
        try:
            return self._by_id[instrument_id]
        except KeyError:
            raise UnknownInstrumentError(instrument_id) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_id)

    def __len__(self) -> int:
        return len(self._by_id)


@functools.cache
def default_catalog() -> Catalog:
    """The instruments shipped with Clarity, validated once on first use."""
    return Catalog.from_directory(resources.files(INSTRUMENTS_PACKAGE) / INSTRUMENTS_DIR)


def list_instruments() -> list[Instrument]:
    """All shipped instruments, ordered by id."""
    return list(default_catalog().values())


def get_instrument(instrument_id: str) -> Instrument:
    """One shipped instrument; ``UnknownInstrumentError`` if there is none with that id."""
    return default_catalog()[instrument_id]
