"""Monthly partitions of ``biometric_samples`` on PostgreSQL, kept ahead of time.

Migration 0005 creates a partition per month around the day it ran, plus a default
partition for anything outside them. Time moves on and old recordings get imported, so
:func:`maintain` (run at start-up, daily by the server, and by ``clarity partitions``):

- creates the partitions of the coming months, so new samples never pile up in the default
  partition;
- moves every month found in the default partition (e.g. a 2003 recording imported today)
  into a partition of its own: a new table is filled from the default partition, those rows
  are deleted from it and the table is attached, in one transaction, so "one patient, one
  stream, a time range" always prunes to the right month.

Concurrent runs (several servers) serialise on an advisory lock. SQLite has no partitions:
everything here is a no-op there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

SCHEMA = "biometric_partitions"
DEFAULT = f"{SCHEMA}.biometric_samples_default"
MONTHS_AHEAD = 24
_LOCK_KEY = 0x6269_6F6D  # "biom": one advisory lock for partition maintenance


@dataclass
class MaintenanceReport:
    created: list[str] = field(default_factory=list)
    moved_rows: int = 0


def month_start(year: int, month: int) -> datetime:
    """The first instant (UTC) of a month; ``month`` may run past 12 or below 1."""
    year, month = year + (month - 1) // 12, (month - 1) % 12 + 1
    return datetime(year, month, 1, tzinfo=UTC)


def partition_name(start: datetime) -> str:
    return f"biometric_samples_{start:%Y_%m}"


async def _existing(conn: AsyncConnection) -> set[str]:
    rows = await conn.execute(
        text(
            "SELECT c.relname FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent "
            "WHERE p.relname = 'biometric_samples'"
        )
    )
    return {str(name) for (name,) in rows}


async def _create(conn: AsyncConnection, start: datetime, report: MaintenanceReport) -> None:
    """Create the month starting at ``start``, moving its rows out of the default partition."""
    end = month_start(start.year, start.month + 1)
    table = f"{SCHEMA}.{partition_name(start)}"
    bounds = {"start": start, "end": end}
    await conn.execute(
        text(
            f"CREATE TABLE {table} "
            "(LIKE biometric_samples INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
        )
    )
    moved = await conn.execute(
        text(
            f"WITH gone AS (DELETE FROM {DEFAULT} WHERE ts >= :start AND ts < :end RETURNING *) "  # noqa: S608
            f"INSERT INTO {table} SELECT * FROM gone"
        ),
        bounds,
    )
    report.moved_rows += int(moved.rowcount)
    await conn.execute(
        text(
            f"ALTER TABLE biometric_samples ATTACH PARTITION {table} "
            f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
        )
    )
    report.created.append(partition_name(start))


async def maintain(
    conn: AsyncConnection, now: datetime | None = None, months_ahead: int = MONTHS_AHEAD
) -> MaintenanceReport:
    """Create missing partitions up to ``months_ahead`` and split the default partition by
    month. Runs inside the caller's transaction; the caller commits."""
    report = MaintenanceReport()
    if conn.dialect.name != "postgresql":
        return report
    await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
    now = now or datetime.now(UTC)
    existing = await _existing(conn)
    wanted = [month_start(now.year, now.month + offset) for offset in range(months_ahead + 1)]
    stranded = await conn.execute(
        text(
            f"SELECT DISTINCT date_trunc('month', ts AT TIME ZONE 'UTC') FROM {DEFAULT}"  # noqa: S608
        )
    )
    wanted += [month.replace(tzinfo=UTC) for (month,) in stranded]
    for start in sorted(set(wanted)):
        if partition_name(start) not in existing:
            await _create(conn, start, report)
    return report
