"""Psychiatric medication catalogue, dose units and frequencies (pure: no web, no database).

The data live in ``medications.json`` beside this module (shipped as package data). It is
loaded and validated with Pydantic on first use and cached; a malformed catalogue fails
loudly at that point rather than giving wrong answers later.

Lookups are forgiving about spelling that carries no meaning: case, surrounding and repeated
whitespace, '.' (``b.i.d.``), '-' and '_' (``Adzenys XR-ODT``), and Unicode compatibility forms
(``µg``). A medication may be named by its generic name, a synonym or a brand name; a
trailing salt or ester word (``quetiapine fumarate``, ``haloperidol decanoate``) is dropped
when the full name is not known, since the catalogue is at ingredient level. An unknown name
raises :class:`UnknownTermError`, which carries the closest known names so that an API can
answer "did you mean ...". The message does not repeat the input: free text typed into a
medication field is not guaranteed to be free of PHI.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from functools import cache
from importlib import resources
from typing import Annotated, Generic, Literal, Protocol, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

CATALOGUE_RESOURCE = "medications.json"
MAX_SUGGESTIONS = 5
SUGGESTION_CUTOFF = 0.6

# Salt and ester words that name a form of an ingredient rather than the ingredient.
SALT_WORDS = frozenset(
    {
        "acetate",
        "besylate",
        "bitartrate",
        "bromide",
        "carbonate",
        "chloride",
        "citrate",
        "decanoate",
        "dimesylate",
        "fumarate",
        "hcl",
        "hydrobromide",
        "hydrochloride",
        "lauroxil",
        "maleate",
        "mesylate",
        "palmitate",
        "pamoate",
        "phosphate",
        "potassium",
        "sodium",
        "succinate",
        "sulfate",
        "tartrate",
    }
)

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
RxCUI = Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]{0,9}$")]
UnitKind = Literal["mass", "volume", "amount of substance", "mass per body mass", "count"]
PeriodUnit = Literal["h", "d", "wk", "mo"]
EventTiming = Literal["MORN", "EVE", "HS"]


def normalize_term(text: str) -> str:
    """The lookup key of a name: NFKC, case-folded, '.' removed, '-'/'_' and runs of
    whitespace turned into one space, trimmed."""
    folded = unicodedata.normalize("NFKC", text).casefold().replace(".", "")
    return re.sub(r"[\s_\-]+", " ", folded).strip()


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Medication(_Frozen):
    """One ingredient (or a fixed combination) as a prescriber would name it."""

    generic_name: Name
    drug_class: Name
    rxcui: RxCUI | None = Field(
        description="RxNorm ingredient RxCUI; null where it was not verified"
    )
    rxcui_sources: tuple[Name, ...] = ()
    brands: tuple[Name, ...] = ()
    synonyms: tuple[Name, ...] = ()

    @model_validator(mode="after")
    def _rxcui_has_sources(self) -> Self:
        if (self.rxcui is None) != (not self.rxcui_sources):
            raise ValueError(
                f"{self.generic_name}: an RxCUI needs its sources, and sources need an RxCUI"
            )
        return self

    @property
    def names(self) -> tuple[str, ...]:
        """Every name this medication answers to: generic, synonyms, brands."""
        return (self.generic_name, *self.synonyms, *self.brands)


class Unit(_Frozen):
    """A unit a dose may be stated in."""

    code: Name
    display: Name
    kind: UnitKind
    ucum: Name | None = None
    synonyms: tuple[Name, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return (self.code, *self.synonyms)


class Frequency(_Frozen):
    """How often a dose is taken, shaped like FHIR ``Timing.repeat``.

    ``frequency`` times per ``period`` ``period_unit``; all three are null for doses that
    have no schedule (as needed, single dose). ``when`` is a FHIR EventTiming code.
    """

    code: Name
    display: Name
    frequency: int | None = Field(default=None, ge=1)
    period: float | None = Field(default=None, gt=0)
    period_unit: PeriodUnit | None = None
    when: EventTiming | None = None
    as_needed: bool = False
    synonyms: tuple[Name, ...] = ()

    @model_validator(mode="after")
    def _schedule_is_complete(self) -> Self:
        parts = (self.frequency, self.period, self.period_unit)
        if any(part is None for part in parts) and any(part is not None for part in parts):
            raise ValueError(f"{self.code}: frequency, period and period_unit go together")
        return self

    @property
    def names(self) -> tuple[str, ...]:
        return (self.code, *self.synonyms)


class _Named(Protocol):
    @property
    def names(self) -> tuple[str, ...]: ...


def _index(kind: str, entries: tuple[_Named, ...]) -> dict[str, int]:
    """Map every normalised name to its entry's position; refuse a name used twice."""
    index: dict[str, int] = {}
    for position, entry in enumerate(entries):
        for name in entry.names:
            key = normalize_term(name)
            if not key:
                raise ValueError(f"{kind} {name!r} is empty once normalised")
            if index.get(key, position) != position:
                raise ValueError(f"{kind} name {name!r} is used by two entries")
            index[key] = position
    return index


class Catalogue(_Frozen):
    """The whole data file, checked for internal consistency."""

    about: str
    version: Name
    rxcui_sources: dict[str, str]
    drug_classes: tuple[Name, ...]
    medications: tuple[Medication, ...]
    units: tuple[Unit, ...]
    frequencies: tuple[Frequency, ...]

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        classes = set(self.drug_classes)
        if len(classes) != len(self.drug_classes):
            raise ValueError("drug_classes lists a class twice")
        for medication in self.medications:
            if medication.drug_class not in classes:
                raise ValueError(
                    f"{medication.generic_name}: unknown drug class {medication.drug_class!r}"
                )
            unknown = set(medication.rxcui_sources) - set(self.rxcui_sources)
            if unknown:
                raise ValueError(
                    f"{medication.generic_name}: unknown RxCUI sources {sorted(unknown)}"
                )
        rxcuis = [m.rxcui for m in self.medications if m.rxcui is not None]
        if len(rxcuis) != len(set(rxcuis)):
            raise ValueError("two medications share an RxCUI")
        _index("medication", self.medications)
        _index("unit", self.units)
        _index("frequency", self.frequencies)
        return self


class UnknownTermError(LookupError):
    """A name that is not in the catalogue; ``suggestions`` holds the closest known names."""

    def __init__(self, kind: str, suggestions: tuple[str, ...]) -> None:
        self.kind = kind
        self.suggestions = suggestions
        message = f"unknown {kind}"
        if suggestions:
            message += "; did you mean: " + ", ".join(suggestions) + "?"
        super().__init__(message)


_T = TypeVar("_T", Medication, Unit, Frequency)


class _Lookup(Generic[_T]):
    """Name -> entry, with close-match suggestions for names that are not known."""

    def __init__(self, kind: str, entries: tuple[_T, ...], strip_salts: bool = False) -> None:
        self.kind = kind
        self.entries: tuple[_T, ...] = entries
        self.strip_salts = strip_salts
        self.index = _index(kind, entries)
        self.display: dict[str, str] = {
            normalize_term(n): n for entry in entries for n in entry.names
        }

    def find(self, name: str) -> _T:
        key = normalize_term(name)
        position = self.index.get(key)
        if position is None and self.strip_salts:
            words = key.split(" ")
            while len(words) > 1 and words[-1] in SALT_WORDS and position is None:
                words.pop()
                position = self.index.get(" ".join(words))
        if position is None:
            raise UnknownTermError(self.kind, self.suggest(key))
        return self.entries[position]

    def suggest(self, key: str) -> tuple[str, ...]:
        matches = difflib.get_close_matches(
            key, list(self.index), n=MAX_SUGGESTIONS, cutoff=SUGGESTION_CUTOFF
        )
        return tuple(self.display[match] for match in matches)


@cache
def catalogue() -> Catalogue:
    """The validated catalogue, loaded from package data on first use."""
    text = resources.files("clarity.clinical").joinpath(CATALOGUE_RESOURCE).read_text("utf-8")
    return Catalogue.model_validate_json(text)


@cache
def _medication_lookup() -> _Lookup[Medication]:
    return _Lookup("medication", catalogue().medications, strip_salts=True)


@cache
def _unit_lookup() -> _Lookup[Unit]:
    return _Lookup("unit", catalogue().units)


@cache
def _frequency_lookup() -> _Lookup[Frequency]:
    return _Lookup("frequency", catalogue().frequencies)


def medications() -> tuple[Medication, ...]:
    """Every medication in the catalogue, in catalogue order."""
    return catalogue().medications


def lookup(name: str) -> Medication:
    """The medication called ``name`` (generic name, synonym or brand, any case).

    Raises :class:`UnknownTermError` with the closest known names when there is none.
    """
    return _medication_lookup().find(name)


def lookup_rxcui(rxcui: str) -> Medication | None:
    """The medication with this verified RxNorm ingredient RxCUI, if the catalogue has it."""
    wanted = rxcui.strip()
    return next((m for m in catalogue().medications if m.rxcui == wanted), None)


def lookup_unit(name: str) -> Unit:
    """The dose unit called ``name`` (``"mg"``, ``"mcg"``, ``"µg"``, ``"drops"``...)."""
    return _unit_lookup().find(name)


def lookup_frequency(name: str) -> Frequency:
    """The dose frequency called ``name`` (``"BID"``, ``"b.i.d."``, ``"at bedtime"``...)."""
    return _frequency_lookup().find(name)
