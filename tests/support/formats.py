"""Running a file-format reader over bytes or a fixture file in tests."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from clarity.biometrics.formats import ImportOptions, Record, get_format

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "formats"


def read_records(name: str, data: bytes | Path, **options: Any) -> list[Record | None]:
    """Every record the format ``name`` yields for ``data`` (bytes, or a file to open)."""
    fmt = get_format(name)
    if isinstance(data, Path):
        with data.open("rb") as handle:
            return list(fmt.read(handle, ImportOptions(**options)))
    return list(fmt.read(io.BytesIO(data), ImportOptions(**options)))


def fixture(name: str) -> Path:
    return FIXTURES / name


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0
) -> datetime:
    """An aware UTC datetime, for expected record times."""
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)
