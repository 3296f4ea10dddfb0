"""Streamed exports of a patient's samples: NDJSON (one stream), CSV and Parquet (several).

Rows are read in keyset pages, each page in its own short database session, and encoded
page by page (in a worker thread, so the event loop keeps serving), so neither the range
nor a database connection is held for the length of the download. Parquet is written with
``pyarrow.parquet.ParquetWriter`` one row group per page into a sink that is drained after
each page: the file's footer, which lists the row groups, is written last.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from enum import StrEnum

import anyio.to_thread
import orjson
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from clarity.biometrics.queries import Position, SampleRow, Window, sample_pages
from clarity.biometrics.schemas import unit_of
from clarity.database import Database

EXPORT_PAGE = 20_000
CSV_COLUMNS = ("stream", "ts", "value", "unit", "source")
PARQUET_SCHEMA = pa.schema(
    [
        pa.field("stream", pa.string(), nullable=False),
        pa.field("ts", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("value", pa.float64(), nullable=False),
        pa.field("unit", pa.string()),
        pa.field("source", pa.string(), nullable=False),
    ]
)


class ExportFormat(StrEnum):
    csv = "csv"
    parquet = "parquet"


MEDIA_TYPES = {
    ExportFormat.csv: "text/csv; charset=utf-8",
    ExportFormat.parquet: "application/vnd.apache.parquet",
}


def filename(patient_id: uuid.UUID, start: datetime, end: datetime, fmt: ExportFormat) -> str:
    """The internal patient id and the UTC dates of the range: no name, no MRN."""
    return f"biometrics-{patient_id}-{start:%Y%m%d}-{end:%Y%m%d}.{fmt.value}"


def iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def ndjson_page(stream: str, rows: list[SampleRow]) -> bytes:
    unit = unit_of(stream)
    option = orjson.OPT_UTC_Z | orjson.OPT_APPEND_NEWLINE
    return b"".join(
        orjson.dumps(
            {
                "stream": stream,
                "ts": row.ts,
                "value": row.value,
                "unit": unit,
                "source": row.source,
            },
            option=option,
        )
        for row in rows
    )


def csv_page(stream: str, rows: list[SampleRow]) -> bytes:
    unit = unit_of(stream) or ""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerows((stream, iso(row.ts), repr(row.value), unit, row.source) for row in rows)
    return out.getvalue().encode()


async def ndjson_chunks(
    db: Database, organization_id: uuid.UUID, window: Window, after: Position | None = None
) -> AsyncIterator[bytes]:
    """One stream's samples as NDJSON lines ``{stream, ts, value, unit, source}``."""
    async for rows in sample_pages(db, organization_id, window, EXPORT_PAGE, after):
        yield await anyio.to_thread.run_sync(ndjson_page, window.stream, rows)


async def csv_chunks(
    db: Database, organization_id: uuid.UUID, windows: list[Window]
) -> AsyncIterator[bytes]:
    """A header, then each window's samples (stream by stream, in time order)."""
    yield (",".join(CSV_COLUMNS) + "\n").encode()
    for window in windows:
        async for rows in sample_pages(db, organization_id, window, EXPORT_PAGE):
            yield await anyio.to_thread.run_sync(csv_page, window.stream, rows)


class _Sink(io.RawIOBase):
    """A write-only file that keeps what was written until it is drained."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        chunk = bytes(data)
        self._parts.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def drain(self) -> bytes:
        data, self._parts = b"".join(self._parts), []
        return data


def _arrow_page(stream: str, rows: list[SampleRow]) -> pa.Table:
    unit = unit_of(stream)
    return pa.table(
        {
            "stream": pa.array([stream] * len(rows), pa.string()),
            "ts": pa.array([row.ts for row in rows], pa.timestamp("us", tz="UTC")),
            "value": pa.array([row.value for row in rows], pa.float64()),
            "unit": pa.array([unit] * len(rows), pa.string()),
            "source": pa.array([row.source for row in rows], pa.string()),
        },
        schema=PARQUET_SCHEMA,
    )


def _write(writer: pq.ParquetWriter, stream: str, rows: list[SampleRow]) -> None:
    writer.write_table(_arrow_page(stream, rows))


async def parquet_chunks(
    db: Database, organization_id: uuid.UUID, windows: list[Window]
) -> AsyncIterator[bytes]:
    """A Parquet file (zstd), one row group per page, sent as each row group is written."""
    sink = _Sink()
    writer = pq.ParquetWriter(sink, PARQUET_SCHEMA, compression="zstd")
    try:
        for window in windows:
            async for rows in sample_pages(db, organization_id, window, EXPORT_PAGE):
                await anyio.to_thread.run_sync(_write, writer, window.stream, rows)
                yield sink.drain()
        writer.close()
        yield sink.drain()
    finally:
        if writer.is_open:
            writer.close()
