"""Epoch-level actigraphy time series: regularisation, resampling and local-day handling.

An :class:`EpochSeries` holds activity counts per epoch with UTC timestamps (``datetime64[s]``)
and the IANA time zone of the wearer, which decides where local days begin and end (midnight
on the wall clock, so a day is 23 or 25 hours long across a daylight-saving change).

Missing epochs are ``NaN`` and are never treated as zero: regularisation fills gaps with
``NaN``, resampling reports a coarse bin as ``NaN`` when too little of it was observed, and
coverage counts only observed epochs. Pure computation: numpy and the standard library only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]
DatetimeArray = NDArray[np.datetime64]

SECONDS_PER_DAY = 86_400
_UNIX_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_NAIVE_EPOCH = dt.datetime(1970, 1, 1)


class InsufficientData(ValueError):
    """The data given cannot support the requested computation; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``, or ``ValueError`` naming it when it is unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA time zone {name!r}") from exc


def _offset_at_utc(seconds: int, tz: ZoneInfo) -> int:
    instant = _UNIX_EPOCH + dt.timedelta(seconds=seconds)
    offset = instant.astimezone(tz).utcoffset()
    return 0 if offset is None else int(offset.total_seconds())


def _offset_at_local(seconds: int, tz: ZoneInfo, fold: int) -> int:
    wall = (_NAIVE_EPOCH + dt.timedelta(seconds=seconds)).replace(tzinfo=tz, fold=fold)
    offset = wall.utcoffset()
    return 0 if offset is None else int(offset.total_seconds())


# The zone is consulted once per whole hour (UTC hours for utc_offsets, wall-clock hours for
# local_to_utc), and those hourly offsets are memoised in blocks of _BLOCK_HOURS: they are
# facts about the zone, not about a recording, so every series in that zone and period
# reuses them. Hours outside what datetime can represent are clamped to its range.
_BLOCK_HOURS = 1024
_FIRST_HOUR = (dt.datetime(1, 1, 2) - _NAIVE_EPOCH) // dt.timedelta(hours=1)
_LAST_HOUR = (dt.datetime(9999, 12, 30) - _NAIVE_EPOCH) // dt.timedelta(hours=1)


def _block_hours(block: int) -> list[int]:
    hours = np.arange(block * _BLOCK_HOURS, (block + 1) * _BLOCK_HOURS, dtype=np.int64)
    return [int(h) * 3600 for h in np.clip(hours, _FIRST_HOUR, _LAST_HOUR).tolist()]


def _frozen(values: list[int]) -> IntArray:
    array = np.array(values, dtype=np.int64)
    array.flags.writeable = False
    return array


@lru_cache(maxsize=512)
def _utc_hour_block(tz: ZoneInfo, block: int) -> IntArray:
    return _frozen([_offset_at_utc(s, tz) for s in _block_hours(block)])


@lru_cache(maxsize=512)
def _local_hour_block(tz: ZoneInfo, block: int) -> tuple[IntArray, IntArray]:
    starts = _block_hours(block)
    fold0 = _frozen([_offset_at_local(s, tz, 0) for s in starts])
    fold1 = _frozen([_offset_at_local(s, tz, 1) for s in starts])
    return fold0, fold1


def _hourly(blocks: Callable[[int], IntArray], first: int, last: int) -> IntArray:
    """The per-hour values of hours ``first .. last`` (inclusive) from memoised blocks."""
    b0, b1 = first // _BLOCK_HOURS, last // _BLOCK_HOURS
    joined = blocks(b0) if b0 == b1 else np.concatenate([blocks(b) for b in range(b0, b1 + 1)])
    offset = b0 * _BLOCK_HOURS
    return joined[first - offset : last - offset + 1]


def utc_offsets(utc_seconds: IntArray, tz: ZoneInfo) -> IntArray:
    """UTC offset in seconds (local = UTC + offset) at each UTC instant, vectorised.

    The zone is consulted once per hour of the covered range (memoised per zone); only hours
    in which the offset changes are resolved instant by instant.
    """
    if utc_seconds.size == 0:
        return np.zeros(0, dtype=np.int64)
    first = int(utc_seconds.min()) // 3600
    at_hour = _hourly(lambda b: _utc_hour_block(tz, b), first, int(utc_seconds.max()) // 3600 + 1)
    if at_hour.min() == at_hour.max():  # one offset over the whole range
        return np.full(utc_seconds.shape, at_hour[0], dtype=np.int64)
    index = utc_seconds // 3600 - first
    offsets = at_hour[index]
    changing = offsets != at_hour[index + 1]
    if changing.any():
        offsets[changing] = [_offset_at_utc(int(s), tz) for s in utc_seconds[changing]]
    return np.asarray(offsets, dtype=np.int64)


def local_to_utc(local_seconds: IntArray, tz: ZoneInfo) -> IntArray:
    """Convert wall-clock seconds (naive, since 1970-01-01 00:00 local) to UTC seconds.

    Wall-clock times that occur twice (the hour repeated when daylight saving ends) are
    resolved by order: a time at or before one already seen in the sequence is taken as the
    second occurrence (PEP 495 ``fold=1``). Times that do not exist (skipped when daylight
    saving starts) take the offset in force before the change (PEP 495 ``fold=0``).
    """
    if local_seconds.size == 0:
        return np.zeros(0, dtype=np.int64)
    hours = local_seconds // 3600
    first = int(hours.min())
    last = int(hours.max()) + 1
    fold0 = _hourly(lambda b: _local_hour_block(tz, b)[0], first, last)
    fold1 = _hourly(lambda b: _local_hour_block(tz, b)[1], first, last)
    index = hours - first
    offsets = fold0[index]
    # an hour is regular when both readings agree at its start and at its end; comparing
    # fold=1 readings too catches a change in the middle of an hour (St John's, 00:01)
    irregular = (offsets != fold0[index + 1]) | (offsets != fold1[index])
    irregular |= fold1[index] != fold1[index + 1]
    if irregular.any():
        previous_max = np.maximum.accumulate(local_seconds)
        repeated = np.zeros(local_seconds.shape, dtype=np.bool_)
        repeated[1:] = local_seconds[1:] <= previous_max[:-1]
        positions = np.flatnonzero(irregular)
        offsets[positions] = [
            _offset_at_local(int(local_seconds[i]), tz, 1 if repeated[i] else 0) for i in positions
        ]
    return np.asarray(local_seconds - offsets, dtype=np.int64)


def _as_utc_seconds(timestamps: ArrayLike) -> IntArray:
    array = np.asarray(timestamps)
    if array.dtype.kind != "M":
        raise TypeError("timestamps must be numpy datetime64 values (UTC)")
    seconds = array.astype("datetime64[s]")
    if array.size and np.any(seconds.astype(array.dtype) != array):
        raise ValueError("timestamps must fall on whole seconds")
    return seconds.astype(np.int64)


@dataclass(frozen=True)
class DayCoverage:
    """How much of one local calendar day was observed."""

    date: dt.date
    expected_epochs: int
    observed_epochs: int
    epoch_seconds: int

    @property
    def fraction(self) -> float:
        return self.observed_epochs / self.expected_epochs if self.expected_epochs else 0.0

    @property
    def observed_hours(self) -> float:
        return self.observed_epochs * self.epoch_seconds / 3600.0

    @property
    def day_hours(self) -> float:
        return self.expected_epochs * self.epoch_seconds / 3600.0


@dataclass(frozen=True)
class DaySeries:
    """The epochs of one local calendar day."""

    date: dt.date
    series: EpochSeries


@dataclass(frozen=True, eq=False)
class EpochSeries:
    """Activity counts per epoch.

    ``timestamps``: start of each epoch, ``datetime64[s]`` in UTC, strictly increasing.
    ``counts``: float counts, ``NaN`` where the epoch was not observed; never negative.
    ``epoch_seconds``: the nominal epoch length. ``timezone``: IANA name of the wearer's zone.
    """

    timestamps: DatetimeArray
    counts: FloatArray
    epoch_seconds: int
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        seconds = _as_utc_seconds(self.timestamps)
        counts = np.asarray(self.counts, dtype=np.float64)
        if seconds.ndim != 1 or counts.ndim != 1:
            raise ValueError("timestamps and counts must be one-dimensional")
        if seconds.shape != counts.shape:
            raise ValueError(
                f"{seconds.size} timestamps but {counts.size} counts: they must be equal in number"
            )
        if int(self.epoch_seconds) != self.epoch_seconds or self.epoch_seconds <= 0:
            raise ValueError("epoch_seconds must be a positive whole number of seconds")
        if seconds.size > 1 and np.any(np.diff(seconds) <= 0):
            first = int(np.flatnonzero(np.diff(seconds) <= 0)[0]) + 1
            raise ValueError(f"timestamps must be strictly increasing (epoch {first} is not)")
        if np.any(np.isinf(counts)):
            raise ValueError("counts must be finite or NaN")
        if np.any(counts < 0):
            raise ValueError("counts must not be negative")
        zone(self.timezone)
        counts = counts.copy()
        counts.flags.writeable = False
        stamps = seconds.astype("datetime64[s]")
        stamps.flags.writeable = False
        object.__setattr__(self, "timestamps", stamps)
        object.__setattr__(self, "counts", counts)
        object.__setattr__(self, "epoch_seconds", int(self.epoch_seconds))

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_datetimes(
        cls,
        timestamps: Sequence[dt.datetime],
        counts: ArrayLike,
        *,
        epoch_seconds: int | None = None,
        timezone: str = "UTC",
    ) -> EpochSeries:
        """Build from timezone-aware datetimes (naive ones are refused)."""
        if any(t.tzinfo is None or t.utcoffset() is None for t in timestamps):
            raise ValueError("timestamps must be timezone-aware datetimes")
        seconds = np.array(
            [round((t - _UNIX_EPOCH).total_seconds()) for t in timestamps], dtype=np.int64
        )
        return cls.from_utc_seconds(seconds, counts, epoch_seconds=epoch_seconds, timezone=timezone)

    @classmethod
    def from_utc_seconds(
        cls,
        seconds: ArrayLike,
        counts: ArrayLike,
        *,
        epoch_seconds: int | None = None,
        timezone: str = "UTC",
    ) -> EpochSeries:
        """Build from integer seconds since 1970-01-01 UTC; the epoch is inferred if omitted."""
        utc = np.asarray(seconds, dtype=np.int64)
        epoch = infer_epoch_seconds(utc) if epoch_seconds is None else epoch_seconds
        return cls(utc.astype("datetime64[s]"), np.asarray(counts, np.float64), epoch, timezone)

    # ----------------------------------------------------------------- basic views
    def __len__(self) -> int:
        return int(self.counts.size)

    @property
    def tzinfo(self) -> ZoneInfo:
        return zone(self.timezone)

    @property
    def utc_seconds(self) -> IntArray:
        return self.timestamps.astype(np.int64)

    @property
    def local_seconds(self) -> IntArray:
        """Wall-clock seconds since 1970-01-01 00:00 local time, per epoch."""
        utc = self.utc_seconds
        return np.asarray(utc + utc_offsets(utc, self.tzinfo), dtype=np.int64)

    @property
    def observed(self) -> BoolArray:
        return np.asarray(~np.isnan(self.counts), dtype=np.bool_)

    @property
    def is_regular(self) -> bool:
        """Whether consecutive epochs are exactly one epoch apart (no gaps in the index)."""
        return bool(np.all(np.diff(self.utc_seconds) == self.epoch_seconds))

    def with_counts(self, counts: ArrayLike) -> EpochSeries:
        return EpochSeries(
            self.timestamps, np.asarray(counts, np.float64), self.epoch_seconds, self.timezone
        )

    def masked(self, mask: ArrayLike) -> EpochSeries:
        """A copy whose counts are ``NaN`` wherever ``mask`` is true (e.g. non-wear)."""
        flags = np.asarray(mask, dtype=np.bool_)
        if flags.shape != self.counts.shape:
            raise ValueError("mask must have one value per epoch")
        return self.with_counts(np.where(flags, np.nan, self.counts))

    # ----------------------------------------------------------------- regularity
    def regularize(self) -> EpochSeries:
        """Place every sample on a fixed grid of ``epoch_seconds``; gaps become ``NaN``.

        The grid is anchored at whole multiples of the epoch since 1970-01-01 UTC (minute
        epochs fall on whole minutes); each sample goes to the grid epoch containing it. Two
        samples in one grid epoch are refused: summing them is :meth:`resample`'s job.
        """
        utc = self.utc_seconds
        if utc.size == 0:
            return self
        epoch = self.epoch_seconds
        if utc[0] % epoch == 0 and self.is_regular:
            return self  # already on the grid: regularising would copy it unchanged
        slots = utc // epoch
        start = int(slots[0])
        index = slots - start
        if index.size > 1 and np.any(np.diff(index) == 0):
            at = int(np.flatnonzero(np.diff(index) == 0)[0]) + 1
            raise ValueError(
                f"samples {at - 1} and {at} fall in the same {epoch}-s epoch; "
                "use resample() to combine samples"
            )
        counts = np.full(int(index[-1]) + 1, np.nan)
        counts[index] = self.counts
        grid = (start + np.arange(counts.size, dtype=np.int64)) * epoch
        return EpochSeries(grid.astype("datetime64[s]"), counts, epoch, self.timezone)

    def resample(
        self,
        epoch_seconds: int,
        *,
        how: Literal["sum", "mean"] = "sum",
        min_coverage: float = 1.0,
    ) -> EpochSeries:
        """Aggregate to a coarser epoch that is a whole multiple of the current one.

        Bins are aligned with the local wall clock of the first sample (hourly bins start on
        the hour, daily bins at local midnight). ``how="sum"`` gives the total counts of the
        observed epochs of a bin, ``how="mean"`` their mean count per original epoch. A bin
        whose observed fraction of epochs is below ``min_coverage`` is ``NaN``; missing
        epochs are never counted as zero (with ``min_coverage < 1`` a ``sum`` is a sum of what
        was observed, not an estimate of the whole bin: use ``mean`` for that).
        """
        if epoch_seconds <= 0 or epoch_seconds % self.epoch_seconds:
            raise ValueError(
                f"new epoch {epoch_seconds} s must be a positive multiple of {self.epoch_seconds} s"
            )
        if not 0.0 < min_coverage <= 1.0:
            raise ValueError("min_coverage must be in (0, 1]")
        if len(self) == 0:
            return EpochSeries(self.timestamps, self.counts, epoch_seconds, self.timezone)
        regular = self.regularize()
        utc = regular.utc_seconds
        first_local = int(utc[0] + utc_offsets(utc[:1], self.tzinfo)[0])
        origin = int(utc[0]) - first_local % epoch_seconds
        per_bin = epoch_seconds // self.epoch_seconds
        # epoch i of the regular series falls in bin (i + lead) // per_bin
        lead = (int(utc[0]) - origin) // self.epoch_seconds
        n_bins = (utc.size - 1 + lead) // per_bin + 1
        observed = regular.observed
        if observed.all():  # bins are contiguous runs of epochs: sum each run
            starts = np.maximum(np.arange(n_bins, dtype=np.int64) * per_bin - lead, 0)
            n_obs = np.diff(np.append(starts, utc.size))
            totals = np.add.reduceat(regular.counts, starts)
        else:
            bins = np.repeat(np.arange(n_bins, dtype=np.int64), per_bin)[lead : lead + utc.size]
            n_obs = np.bincount(bins[observed], minlength=n_bins)
            totals = np.bincount(bins[observed], weights=regular.counts[observed], minlength=n_bins)
        enough = n_obs >= min_coverage * per_bin - 1e-9
        enough &= n_obs > 0
        if how == "sum":
            values = np.where(enough, totals, np.nan)
        elif how == "mean":
            values = np.where(enough, totals / np.maximum(n_obs, 1), np.nan)
        else:
            raise ValueError(f"unknown aggregation {how!r}")
        stamps = origin + np.arange(n_bins, dtype=np.int64) * epoch_seconds
        return EpochSeries(stamps.astype("datetime64[s]"), values, epoch_seconds, self.timezone)

    # ----------------------------------------------------------------- local days
    def local_day_numbers(self) -> IntArray:
        """Local calendar day of each epoch, as days since 1970-01-01."""
        return np.asarray(self.local_seconds // SECONDS_PER_DAY, dtype=np.int64)

    def day_bounds(self, first_day: int, last_day: int) -> IntArray:
        """UTC seconds of local midnight for days ``first_day .. last_day + 1``."""
        midnights = np.arange(first_day, last_day + 2, dtype=np.int64) * SECONDS_PER_DAY
        return local_to_utc(midnights, self.tzinfo)

    def split_days(self) -> list[DaySeries]:
        """The series cut at local midnights, one :class:`DaySeries` per day with epochs."""
        if len(self) == 0:
            return []
        days = self.local_day_numbers()
        cuts = np.flatnonzero(np.diff(days)) + 1
        starts = np.concatenate(([0], cuts))
        ends = np.concatenate((cuts, [days.size]))
        return [
            DaySeries(
                _date(int(days[s])),
                EpochSeries(
                    self.timestamps[s:e], self.counts[s:e], self.epoch_seconds, self.timezone
                ),
            )
            for s, e in zip(starts.tolist(), ends.tolist(), strict=True)
        ]

    def coverage_by_day(self, valid: ArrayLike | None = None) -> list[DayCoverage]:
        """Observed epochs per local day against the epochs the day holds.

        A day's expected epochs follow its real length (23 or 25 hours across a clock
        change). ``valid`` (one flag per epoch, e.g. ``~nonwear``) further restricts which
        observed epochs count. Every day from the first to the last epoch is listed.
        """
        if len(self) == 0:
            return []
        days = self.local_day_numbers()
        counted = self.observed
        if valid is not None:
            flags = np.asarray(valid, dtype=np.bool_)
            if flags.shape != counted.shape:
                raise ValueError("valid must have one value per epoch")
            counted = counted & flags
        first, last = int(days[0]), int(days[-1])
        bounds = self.day_bounds(first, last)
        lengths = np.diff(bounds)
        observed = np.bincount(days[counted] - first, minlength=last - first + 1)
        return [
            DayCoverage(
                date=_date(first + i),
                expected_epochs=int(lengths[i] // self.epoch_seconds),
                observed_epochs=int(observed[i]),
                epoch_seconds=self.epoch_seconds,
            )
            for i in range(last - first + 1)
        ]


def _date(day_number: int) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(days=day_number)


def infer_epoch_seconds(utc_seconds: IntArray) -> int:
    """The most common positive spacing between consecutive timestamps."""
    if utc_seconds.size < 2:
        raise InsufficientData("at least two timestamps are needed to infer the epoch length")
    steps = np.diff(utc_seconds)
    steps = steps[steps > 0]
    if steps.size == 0:
        raise ValueError("timestamps never increase: cannot infer the epoch length")
    values, counts = np.unique(steps, return_counts=True)
    return int(values[int(np.argmax(counts))])
