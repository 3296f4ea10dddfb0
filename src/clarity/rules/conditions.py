"""The conditions a rule can test, one Pydantic model per ``kind`` (pure: no web, no DB).

Cross-field checks are field validators reading the fields declared before them, so an
error names the exact field at fault (``condition.value``, not ``condition``). Messages
never contain the submitted value.

Kinds:

* ``threshold_duration``: a biometric stream compared with a value, held continuously for
  ``duration``; readings more than ``max_gap`` apart break the hold.
* ``baseline_deviation``: a daily metric ``sd`` standard deviations below/above the
  patient's own mean of the ``baseline_days`` before the test window, on ``hits`` of the
  last ``of_last`` days.
* ``trend``: an instrument's total moved by at least ``delta`` since the previous response.
* ``instrument_item`` / ``score_threshold``: one answer, or the total, of the latest response
  compared with a value.
* ``missing_data``: no sample from the listed streams for ``duration``.
* ``all`` / ``any``: every / at least one sub-condition true, optionally ``within`` a window.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from clarity.assessments.catalog import Instrument, default_catalog
from clarity.biometrics.streams import stream_types
from clarity.rules.durations import check_duration, duration_seconds
from clarity.rules.signals import DAILY_SIGNALS

Op = Literal[">", ">=", "<", "<="]
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
MAX_DEPTH: Final = 3
ANY_STREAM: Final = "any"


def _positive_duration(text: str) -> str:
    problem = check_duration(text, allow_zero=False)
    if problem:
        raise PydanticCustomError("invalid_duration", problem)
    return text


def _any_duration(text: str) -> str:
    problem = check_duration(text, allow_zero=True)
    if problem:
        raise PydanticCustomError("invalid_duration", problem)
    return text


Duration = Annotated[str, Field(max_length=16), AfterValidator(_positive_duration)]
Cooldown = Annotated[str, Field(max_length=16), AfterValidator(_any_duration)]


def _stream(name: str) -> str:
    if name not in stream_types():
        raise PydanticCustomError("unknown_signal", "is not a known biometric stream")
    return name


def _stream_or_any(name: str) -> str:
    return name if name == ANY_STREAM else _stream(name)


def _daily(name: str) -> str:
    if name not in DAILY_SIGNALS:
        raise PydanticCustomError("unknown_signal", "is not a known daily metric")
    return name


def _instrument_id(name: str) -> str:
    # Iterating: the catalog's lookup raises its own error, not KeyError, so ``in`` would.
    if name not in frozenset(default_catalog()):
        raise PydanticCustomError("unknown_instrument", "is not a known instrument")
    return name


StreamName = Annotated[str, Field(max_length=32), AfterValidator(_stream)]
DailySignal = Annotated[str, Field(max_length=64), AfterValidator(_daily)]
InstrumentId = Annotated[str, Field(max_length=32), AfterValidator(_instrument_id)]


def _instrument(info: ValidationInfo) -> Instrument | None:
    """The instrument named earlier in the same condition, if that field was valid."""
    name = info.data.get("instrument")
    return default_catalog()[name] if isinstance(name, str) else None


class _Condition(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ThresholdDuration(_Condition):
    kind: Literal["threshold_duration"]
    signal: StreamName
    op: Op
    value: Number
    duration: Duration
    max_gap: Duration = "2m"

    @field_validator("max_gap")
    @classmethod
    def _gap_within_duration(cls, gap: str, info: ValidationInfo) -> str:
        duration = info.data.get("duration")
        if isinstance(duration, str) and duration_seconds(gap) > duration_seconds(duration):
            raise PydanticCustomError(
                "gap_exceeds_duration",
                "must not be longer than duration (a hold needs readings inside it)",
            )
        return gap


class BaselineDeviation(_Condition):
    kind: Literal["baseline_deviation"]
    signal: DailySignal
    direction: Literal["below", "above"]
    sd: Annotated[Number, Field(gt=0, le=10)]
    baseline_days: Annotated[StrictInt, Field(ge=7, le=365)] = 28
    min_baseline_days: Annotated[StrictInt, Field(ge=3, le=365)] = 14
    hits: Annotated[StrictInt, Field(ge=1, le=31)]
    of_last: Annotated[StrictInt, Field(ge=1, le=31)]

    @field_validator("min_baseline_days")
    @classmethod
    def _min_within_window(cls, value: int, info: ValidationInfo) -> int:
        window = info.data.get("baseline_days")
        if isinstance(window, int) and value > window:
            raise PydanticCustomError("out_of_range", "must not exceed baseline_days")
        return value

    @field_validator("of_last")
    @classmethod
    def _hits_within_window(cls, value: int, info: ValidationInfo) -> int:
        hits = info.data.get("hits")
        if isinstance(hits, int) and hits > value:
            raise PydanticCustomError("out_of_range", "must be at least hits")
        return value


class Trend(_Condition):
    kind: Literal["trend"]
    instrument: InstrumentId
    direction: Literal["up", "down"]
    delta: Annotated[Number, Field(gt=0)]
    max_age: Duration | None = None

    @field_validator("delta")
    @classmethod
    def _delta_within_range(cls, delta: float, info: ValidationInfo) -> float:
        instrument = _instrument(info)
        if instrument and delta > instrument.score_range.max - instrument.score_range.min:
            raise PydanticCustomError("out_of_range", "is larger than the instrument's range")
        return delta


class InstrumentItem(_Condition):
    kind: Literal["instrument_item"]
    instrument: InstrumentId
    item: Annotated[str, Field(max_length=64)]
    op: Op
    value: Number
    max_age: Duration | None = None

    @field_validator("item")
    @classmethod
    def _known_item(cls, item: str, info: ValidationInfo) -> str:
        instrument = _instrument(info)
        if instrument and item not in instrument.item_ids:
            raise PydanticCustomError("unknown_item", "is not an item of this instrument")
        return item

    @field_validator("value")
    @classmethod
    def _within_answers(cls, value: float, info: ValidationInfo) -> float:
        instrument, item = _instrument(info), info.data.get("item")
        if instrument and isinstance(item, str):
            answers = instrument.item(item)
            if not answers.min_value <= value <= answers.max_value:
                raise PydanticCustomError("out_of_range", "is outside this item's answers")
        return value


class ScoreThreshold(_Condition):
    kind: Literal["score_threshold"]
    instrument: InstrumentId
    op: Op
    value: Number
    max_age: Duration | None = None

    @field_validator("value")
    @classmethod
    def _within_range(cls, value: float, info: ValidationInfo) -> float:
        instrument = _instrument(info)
        if instrument and not (instrument.score_range.min <= value <= instrument.score_range.max):
            raise PydanticCustomError("out_of_range", "is outside the instrument's score range")
        return value


class MissingData(_Condition):
    kind: Literal["missing_data"]
    streams: Annotated[
        tuple[Annotated[str, Field(max_length=32), AfterValidator(_stream_or_any)], ...],
        Field(min_length=1, max_length=16),
    ]
    duration: Duration

    @field_validator("streams")
    @classmethod
    def _any_alone(cls, streams: tuple[str, ...]) -> tuple[str, ...]:
        if ANY_STREAM in streams and len(streams) > 1:
            raise PydanticCustomError("invalid_streams", "'any' must be the only entry")
        if len(set(streams)) != len(streams):
            raise PydanticCustomError("invalid_streams", "must not repeat a stream")
        return streams


class AllOf(_Condition):
    kind: Literal["all"]
    conditions: Annotated[tuple[Condition, ...], Field(max_length=8)]
    within: Duration | None = None

    @field_validator("conditions")
    @classmethod
    def _shallow(cls, conditions: tuple[Condition, ...]) -> tuple[Condition, ...]:
        return _check_depth(conditions)


class AnyOf(_Condition):
    kind: Literal["any"]
    conditions: Annotated[tuple[Condition, ...], Field(max_length=8)]
    within: Duration | None = None

    @field_validator("conditions")
    @classmethod
    def _shallow(cls, conditions: tuple[Condition, ...]) -> tuple[Condition, ...]:
        return _check_depth(conditions)


Condition = Annotated[
    ThresholdDuration
    | BaselineDeviation
    | Trend
    | InstrumentItem
    | ScoreThreshold
    | MissingData
    | AllOf
    | AnyOf,
    Field(discriminator="kind"),
]

KINDS: Final = frozenset(
    {
        "threshold_duration",
        "baseline_deviation",
        "trend",
        "instrument_item",
        "score_threshold",
        "missing_data",
        "all",
        "any",
    }
)


def depth(condition: Condition) -> int:
    """Nesting depth: 1 for a single condition, 2 for a composition of single ones."""
    if isinstance(condition, AllOf | AnyOf):
        return 1 + max(depth(c) for c in condition.conditions)
    return 1


def _check_depth(conditions: tuple[Condition, ...]) -> tuple[Condition, ...]:
    # Counted here rather than with min_length, which would also count (and report) the
    # parts that failed validation.
    if len(conditions) < 2:
        raise PydanticCustomError("too_short", "needs at least 2 conditions")
    if 1 + max(depth(c) for c in conditions) > MAX_DEPTH:
        raise PydanticCustomError("too_deep", "compositions may be nested at most 3 levels deep")
    return conditions


AllOf.model_rebuild()
AnyOf.model_rebuild()
