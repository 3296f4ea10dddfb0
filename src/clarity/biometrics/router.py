"""Biometric endpoints (thin): ingestion of a JSON or NDJSON batch of wearable samples, and
reading (raw samples, aggregates, latest values, coverage, streamed export).

Reads need ``patients:read`` on the patient and leave one audit record each (what was
asked for, never values). Streamed responses are audited and the request's session
committed before the first byte; the stream then reads page by page in short sessions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession

from clarity.auth.dependencies import RuntimeDep, SessionDep
from clarity.auth.permissions import Permission
from clarity.biometrics import export, queries, service
from clarity.biometrics.buckets import BUCKET_SECONDS, Bucket, from_us
from clarity.biometrics.schemas import (
    DEFAULT_EPOCH_SECONDS,
    DEFAULT_GAP_MINUTES,
    DEFAULT_PAGE,
    MAX_BUCKETS,
    MAX_COVERAGE_EPOCHS,
    MAX_PAGE,
    MAX_RANGE_DAYS,
    AggregatesOut,
    BatchIn,
    BucketOut,
    CoverageDayOut,
    CoverageOut,
    GapOut,
    LatestOut,
    Receipt,
    SampleOut,
    SamplePage,
    field_error,
    invalid,
    parse_range,
    parse_stream,
    parse_streams,
    unit_of,
)
from clarity.biometrics.service import NDJSON_TYPES
from clarity.patients.access import PatientContext, patient_scope
from clarity.patients.service import audit_patient

router = APIRouter(prefix="/patients/{patient_id}/biometrics", tags=["biometrics"])

Uploader = Annotated[PatientContext, patient_scope(Permission.biometrics_write)]

_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": BatchIn.model_json_schema()},
            "application/x-ndjson": {
                "schema": {
                    "type": "string",
                    "description": 'First line {"client_batch_id": "..."}, then one sample '
                    "object per line.",
                }
            },
        },
    }
}


@router.post(
    "",
    response_model=Receipt,
    status_code=status.HTTP_201_CREATED,
    openapi_extra=_BODY_DOC,
    responses={200: {"model": Receipt, "description": "A resend: the original receipt."}},
)
async def ingest_biometrics(
    request: Request, response: Response, ctx: Uploader, runtime: RuntimeDep, session: SessionDep
) -> Receipt:
    """Upload up to 100,000 samples. Rows are validated one by one: good rows are kept and
    each rejected row is named with a reason. Resending a ``client_batch_id`` returns the
    original receipt (200) and stores nothing; a sample already stored (same stream, ts and
    source) counts as a duplicate. Requires the patient's consent to wearable data."""
    upload = service.parse_upload(request.headers.get("content-type", ""), await request.body())
    receipt, created = await service.ingest(runtime.outbox, session, ctx, upload)
    if not created:
        response.status_code = status.HTTP_200_OK
    return receipt


# --- reading ------------------------------------------------------------------------------

Reader = Annotated[PatientContext, patient_scope(Permission.patients_read)]
StreamParam = Annotated[
    str, Query(max_length=32, description="A catalogue stream, e.g. heart_rate.")
]
StartParam = Annotated[
    str, Query(max_length=40, description="ISO 8601 with a zone, e.g. 2026-01-05T00:00:00Z.")
]
EndParam = Annotated[
    str,
    Query(
        max_length=40,
        description=f"ISO 8601 with a zone; exclusive; at most {MAX_RANGE_DAYS} days after start.",
    ),
]
_NDJSON_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {
            "application/x-ndjson": {
                "schema": {
                    "type": "string",
                    "description": "With Accept: application/x-ndjson, the whole range, one "
                    "sample {stream, ts, value, unit, source} per line.",
                }
            }
        }
    }
}


def _wants_ndjson(request: Request) -> bool:
    accepted = request.headers.get("accept", "").split(",")
    return any(part.split(";", 1)[0].strip().lower() in NDJSON_TYPES for part in accepted)


def _zone(ctx: PatientContext) -> ZoneInfo:
    return ZoneInfo(ctx.patient.timezone)


def _audit_read(
    session: AsyncSession, ctx: PatientContext, view: str, details: dict[str, object]
) -> None:
    audit_patient(session, ctx, "biometrics.read", {"view": view, **details})


def _range_details(stream: str, start: datetime, end: datetime) -> dict[str, object]:
    return {"stream": stream, "start": start.isoformat(), "end": end.isoformat()}


@router.get("/samples", response_model=SamplePage, responses=_NDJSON_DOC)
async def read_samples(
    request: Request,
    ctx: Reader,
    runtime: RuntimeDep,
    session: SessionDep,
    stream: StreamParam,
    start: StartParam,
    end: EndParam,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
) -> Response | SamplePage:
    """Raw samples of one stream in ``[start, end)``, ordered by time then source, a page at
    a time: pass ``next_cursor`` back as ``cursor`` until it is null. With ``Accept:
    application/x-ndjson`` the whole range (from ``cursor``, if given) is streamed instead."""
    window = queries.Window(ctx.patient.id, parse_stream(stream), *parse_range(start, end))
    after = None if cursor is None else queries.decode_cursor(cursor)
    if cursor is not None and (after is None or not window.start <= after.ts < window.end):
        raise invalid([field_error("cursor", "not a cursor of this range")])
    details = _range_details(window.stream, window.start, window.end)
    if _wants_ndjson(request):
        _audit_read(session, ctx, "samples", {**details, "streamed": True})
        await session.commit()  # audited, and the connection released, before streaming
        return StreamingResponse(
            export.ndjson_chunks(runtime.db, ctx.patient.organization_id, window, after),
            media_type="application/x-ndjson",
        )
    rows = await queries.sample_page(session, window, after, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    _audit_read(session, ctx, "samples", {**details, "count": len(rows)})
    await session.commit()
    return SamplePage(
        stream=window.stream,
        unit=unit_of(window.stream),
        start=window.start,
        end=window.end,
        items=[SampleOut(ts=r.ts, value=r.value, source=r.source) for r in rows],
        next_cursor=(
            queries.encode_cursor(queries.Position(rows[-1].ts, rows[-1].source)) if more else None
        ),
    )


@router.get("/aggregates", response_model=AggregatesOut)
async def read_aggregates(
    ctx: Reader,
    session: SessionDep,
    stream: StreamParam,
    start: StartParam,
    end: EndParam,
    bucket: Annotated[Bucket, Query(description="1min, 5min, 1h or 1day (local days).")],
) -> AggregatesOut:
    """Count, mean, min, max and sum of one stream per bucket, computed by the database.
    Buckets of 1min, 5min and 1h are aligned on UTC multiples of their width; 1day buckets
    run from local midnight to local midnight in the patient's time zone (23 or 25 hours
    where daylight saving time starts or ends). Buckets without samples are left out."""
    window = queries.Window(ctx.patient.id, parse_stream(stream), *parse_range(start, end))
    span = (window.end - window.start).total_seconds()
    if span / BUCKET_SECONDS[bucket] > MAX_BUCKETS:
        raise invalid([field_error("bucket", f"more than {MAX_BUCKETS} buckets: widen it")])
    rows = await queries.aggregates(session, window, bucket, _zone(ctx))
    _audit_read(
        session,
        ctx,
        "aggregates",
        {**_range_details(window.stream, window.start, window.end), "bucket": bucket.value},
    )
    await session.commit()
    return AggregatesOut(
        stream=window.stream,
        unit=unit_of(window.stream),
        bucket=bucket,
        timezone=ctx.patient.timezone,
        start=window.start,
        end=window.end,
        buckets=[
            BucketOut(
                start=r.start,
                end=r.end,
                count=r.count,
                mean=r.mean,
                min=r.min,
                max=r.max,
                sum=r.sum,
            )
            for r in rows
        ],
    )


@router.get("/latest", response_model=list[LatestOut])
async def read_latest(ctx: Reader, session: SessionDep) -> list[LatestOut]:
    """The newest sample of every stream that has one (one row per stream; two sources at
    the same instant: the last source in sort order)."""
    rows = await queries.latest(session, ctx.patient.id)
    _audit_read(session, ctx, "latest", {"streams": [r.stream for r in rows]})
    await session.commit()
    return [
        LatestOut(stream=r.stream, ts=r.ts, value=r.value, source=r.source, unit=unit_of(r.stream))
        for r in rows
    ]


@router.get("/coverage", response_model=CoverageOut)
async def read_coverage(
    ctx: Reader,
    session: SessionDep,
    stream: StreamParam,
    start: StartParam,
    end: EndParam,
    epoch_seconds: Annotated[
        int | None,
        Query(
            ge=1,
            le=86_400,
            description="Epoch length. Default: 60 for activity_counts, steps and "
            "heart_rate, 30 for sleep_stage; required for other streams.",
        ),
    ] = None,
    gap_minutes: Annotated[
        int, Query(ge=1, le=MAX_RANGE_DAYS * 1440, description="Report gaps longer than this.")
    ] = DEFAULT_GAP_MINUTES,
) -> CoverageOut:
    """Per local day of the patient: how many epochs were expected (the day's length over
    the epoch, so 23 or 25 hours on DST days), how many hold at least one sample, and the
    runs of missing epochs longer than ``gap_minutes``, including a run from the start of
    the day (or range) to the first sample and from the last sample to the end."""
    window = queries.Window(ctx.patient.id, parse_stream(stream), *parse_range(start, end))
    epoch = epoch_seconds or DEFAULT_EPOCH_SECONDS.get(window.stream)
    if epoch is None:
        raise invalid([field_error("epoch_seconds", "required for this stream")])
    if (window.end - window.start).total_seconds() / epoch > MAX_COVERAGE_EPOCHS:
        raise invalid([field_error("epoch_seconds", "too many epochs in the range")])
    days = await queries.coverage(session, window, _zone(ctx), epoch, gap_minutes)
    _audit_read(
        session,
        ctx,
        "coverage",
        {**_range_details(window.stream, window.start, window.end), "epoch_seconds": epoch},
    )
    await session.commit()
    expected = sum(d.expected for d in days)
    present = sum(d.present for d in days)
    return CoverageOut(
        stream=window.stream,
        timezone=ctx.patient.timezone,
        start=window.start,
        end=window.end,
        epoch_seconds=epoch,
        gap_minutes=gap_minutes,
        expected=expected,
        present=present,
        fraction=present / expected if expected else 0.0,
        days=[
            CoverageDayOut(
                date=d.day.day,
                start=from_us(d.day.start_us),
                end=from_us(d.day.end_us),
                hours=d.day.seconds / 3600,
                expected=d.expected,
                present=d.present,
                fraction=d.present / d.expected if d.expected else 0.0,
                gaps=[GapOut(start=g.start, end=g.end, minutes=g.minutes) for g in d.gaps],
            )
            for d in days
        ],
    )


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={200: {"content": {media: {} for media in export.MEDIA_TYPES.values()}}},
)
async def export_samples(
    ctx: Reader,
    runtime: RuntimeDep,
    session: SessionDep,
    start: StartParam,
    end: EndParam,
    format: Annotated[export.ExportFormat, Query(description="csv or parquet.")],
    streams: Annotated[
        str | None,
        Query(max_length=400, description="Comma-separated streams; all when absent."),
    ] = None,
) -> StreamingResponse:
    """Every sample of the chosen streams in ``[start, end)`` as CSV (columns stream, ts,
    value, unit, source) or Parquet, streamed page by page: months of minute data download
    without a timeout and without the server holding them in memory."""
    names = parse_streams(streams)
    window_start, window_end = parse_range(start, end)
    windows = [queries.Window(ctx.patient.id, n, window_start, window_end) for n in names]
    _audit_read(
        session,
        ctx,
        "export",
        {
            "format": format.value,
            "streams": names,
            "start": window_start.isoformat(),
            "end": window_end.isoformat(),
        },
    )
    await session.commit()  # audited, and the connection released, before streaming
    chunks = (export.csv_chunks if format is export.ExportFormat.csv else export.parquet_chunks)(
        runtime.db, ctx.patient.organization_id, windows
    )
    name = export.filename(ctx.patient.id, window_start, window_end, format)
    return StreamingResponse(
        chunks,
        media_type=export.MEDIA_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
