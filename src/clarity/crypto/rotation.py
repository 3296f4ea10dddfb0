"""Re-encrypt every encrypted column under the newest key (``clarity keys rotate``).

Columns are found by their type (:class:`EncryptedText`, :class:`EncryptedDate`) in the
metadata, so a column added later is rotated without anyone remembering to list it. Raw
stored strings are read and written as plain text (``type_coerce``): values are decrypted
and re-sealed in memory, never logged, and each batch commits on its own so an interrupted
run resumes where it stopped. Blind indexes made with an older index key are recomputed.
Only counts are reported.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, Text, and_, select, type_coerce, update
from sqlalchemy.ext.asyncio import AsyncEngine

from clarity.crypto.fields import BlindIndex, CryptoError, Keyring, kid_of
from clarity.crypto.types import EncryptedDate, EncryptedText
from clarity.database import Base
from clarity.migrations import metadata  # noqa: F401 - every table, encrypted ones included


@dataclass(frozen=True)
class BlindIndexColumn:
    """An index column, the encrypted column it is computed from, and its context."""

    table: str
    index_column: str
    source_column: str
    context: Callable[[dict[str, Any]], str]


# The blind indexes of the schema (see clarity.patients.service for how they are made).
BLIND_INDEXES = [
    BlindIndexColumn(
        "patients", "mrn_index", "mrn", lambda row: f"patients.mrn:{row['organization_id']}"
    ),
]


@dataclass
class RotationReport:
    stale: Counter[str] = field(default_factory=Counter)  # "table.column kid" -> values
    rotated: Counter[str] = field(default_factory=Counter)  # "table.column" -> values
    failed: list[str] = field(default_factory=list)  # "table.column pk=..." (no values)

    @property
    def clean(self) -> bool:
        return not self.stale and not self.failed


def encrypted_columns(table: Table) -> list[Any]:
    return [c for c in table.columns if isinstance(c.type, EncryptedText | EncryptedDate)]


async def rotate(
    engine: AsyncEngine,
    keyring: Keyring,
    blind_index: BlindIndex,
    *,
    check_only: bool = False,
    batch: int = 500,
    on_progress: Callable[[str, int], None] | None = None,
) -> RotationReport:
    """Rotate (or, with ``check_only``, count) values not under the newest keys."""
    report = RotationReport()
    indexes = {(b.table, b.index_column): b for b in BLIND_INDEXES}
    for table in Base.metadata.sorted_tables:
        columns = encrypted_columns(table)
        if not columns:
            continue
        pk = list(table.primary_key.columns)
        extra = [table.c[i.index_column] for i in BLIND_INDEXES if i.table == table.name]
        if "organization_id" in table.c and extra:
            extra.append(table.c.organization_id)
        selected = [*pk, *[type_coerce(c, Text).label(c.name) for c in columns], *extra]
        offset = 0
        while True:
            async with engine.begin() as conn:
                rows = (
                    (
                        await conn.execute(
                            select(*selected).order_by(*pk).limit(batch).offset(offset)
                        )
                    )
                    .mappings()
                    .all()
                )
                for row in rows:
                    values = _rotate_row(table, columns, row, keyring, report, check_only)
                    for (tname, index_name), spec in indexes.items():
                        if tname != table.name:
                            continue
                        token = row[index_name]
                        if token is not None and blind_index.needs_rotation(token):
                            report.stale[f"{tname}.{index_name} {token.partition(':')[0]}"] += 1
                            if not check_only:
                                source: Any = table.c[spec.source_column].type
                                plain = keyring.decrypt(row[spec.source_column], source.context)
                                values[index_name] = blind_index.compute(
                                    plain, spec.context(dict(row))
                                )
                                report.rotated[f"{tname}.{index_name}"] += 1
                    if values and not check_only:
                        where = and_(*[col == row[col.name] for col in pk])
                        await conn.execute(update(table).where(where).values(**values))
            if on_progress is not None:
                on_progress(table.name, offset + len(rows))
            if len(rows) < batch:
                break
            offset += batch
    return report


def _rotate_row(
    table: Table,
    columns: list[Any],
    row: Any,
    keyring: Keyring,
    report: RotationReport,
    check_only: bool,
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for column in columns:
        raw = row[column.name]
        if raw is None or not keyring.needs_rotation(raw):
            continue
        name = f"{table.name}.{column.name}"
        report.stale[f"{name} {kid_of(raw)}"] += 1
        if check_only:
            continue
        try:
            values[column.name] = type_coerce(keyring.rotate(raw, column.type.context), Text)
        except CryptoError as exc:
            pk = ",".join(str(row[c.name]) for c in table.primary_key.columns)
            report.failed.append(f"{name} pk={pk}: {type(exc).__name__}")
            continue
        report.rotated[name] += 1
    return values
