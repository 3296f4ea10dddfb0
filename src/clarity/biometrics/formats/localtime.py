"""Wall-clock times of a file to UTC, in file order.

Formats whose times carry no offset give each row's local time as seconds since
1970-01-01 00:00 *local*; :func:`to_utc` converts them with
:func:`clarity.actigraphy.series.local_to_utc` — the same rule the Depresjon reader uses, so
an import and :func:`~clarity.actigraphy.readers.read_depresjon_csv` agree to the second:
a wall-clock time repeated when daylight saving ends is the second occurrence when the file
has already passed it; a time skipped when daylight saving starts takes the offset before
the change. Rows are converted in batches (streaming), each batch seeded with the latest
time seen before it, which is all that rule needs of the past.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np

from clarity.actigraphy.series import local_to_utc, zone
from clarity.biometrics.formats import ImportOptions, OptionsError, Record

BATCH = 1024
# local_to_utc consults the zone once per hour between a batch's first and last time; a
# batch is cut before it would span more than this.
MAX_BATCH_SPAN = 14 * 86_400
_EPOCH_ORDINAL = datetime(1970, 1, 1).toordinal()
_LAST_YEAR = 9998  # local_to_utc looks up to two hours past a time

# One row of a file: its local time (None: its records need no conversion) and its records
# in order; None alone stands for one unreadable record.
Row = tuple[int | None, Sequence[Record | None]] | None


def timezone_of(options: ImportOptions, default: str | None, format_name: str) -> ZoneInfo:
    """The zone of the file's wall-clock times: the option, else the format's default."""
    name = options.timezone or default
    if name is None:
        raise OptionsError(
            f"{format_name} files hold local times without an offset: give a timezone "
            "(an IANA zone such as Europe/Oslo)"
        )
    try:
        return zone(name)
    except ValueError:
        raise OptionsError(f"unknown IANA time zone {name!r}") from None


def local_seconds(moment: datetime) -> int | None:
    """Seconds since 1970-01-01 00:00 on the same wall clock for a naive ``moment``; None
    past what converts."""
    if moment.year > _LAST_YEAR:
        return None
    days = moment.toordinal() - _EPOCH_ORDINAL
    return days * 86_400 + moment.hour * 3600 + moment.minute * 60 + moment.second


def utc_from_seconds(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def to_utc(rows: Iterable[Row], tz: ZoneInfo) -> Iterator[Record | None]:
    """Records of ``rows`` in order, each with ``ts`` set to its row's time as aware UTC."""
    pending: list[Row] = []
    seconds: list[int] = []
    low = high = 0
    latest: int | None = None  # the latest local time of the batches already converted
    for row in rows:
        local = None if row is None else row[0]
        if local is not None:
            if seconds:
                if local < low:
                    low = local
                elif local > high:
                    high = local
                if high - low > MAX_BATCH_SPAN or len(seconds) >= BATCH:
                    # convert what waits, then start a batch with this row
                    yield from _convert(pending, seconds, latest, tz)
                    latest = max(seconds) if latest is None else max(latest, max(seconds))
                    pending, seconds = [], []
                    low = high = local
            else:
                low = high = local
            seconds.append(local)
        if not seconds:  # nothing waits for conversion: no need to hold the row
            yield from _finished(row)
        else:
            pending.append(row)
    if seconds:
        yield from _convert(pending, seconds, latest, tz)
    else:
        for row in pending:
            yield from _finished(row)


def _finished(row: Row) -> Iterator[Record | None]:
    if row is None:
        yield None
    else:
        yield from row[1]


def _convert(
    pending: list[Row],
    seconds: list[int],
    latest: int | None,
    tz: ZoneInfo,
) -> Iterator[Record | None]:
    local = np.asarray(seconds, dtype=np.int64)
    if latest is None:
        utc = local_to_utc(local, tz)
    else:
        # Only whether a time is at or before the latest one seen matters, so the seed is
        # clamped into the batch's range (keeping local_to_utc's hourly grid short).
        seed = min(max(latest, int(local.min()) - 1), int(local.max()))
        utc = local_to_utc(np.concatenate((np.array([seed], dtype=np.int64), local)), tz)[1:]
    converted = iter(utc.tolist())
    for row in pending:
        if row is None:
            yield None
            continue
        local_time, records = row
        if local_time is None:
            yield from records
            continue
        ts = utc_from_seconds(next(converted))
        for record in records:
            if record is not None:
                record["ts"] = ts
            yield record
