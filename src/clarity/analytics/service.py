"""Actigraphy analytics for one patient: load the stored activity counts, compute, cache.

Cache validity: the key includes a fingerprint of the batches that could hold samples in
the range - their number and latest ``received_at`` among the patient's batches with
``first_ts <= end`` and ``last_ts >= start`` (an index range on
``ix_biometric_batches_patient_last_ts``). Any upload that stores a sample in the range adds
such a batch, so the next call misses the cache and recomputes. The fingerprint is read
*before* the samples: an upload landing in between is then at worst recomputed once more,
never hidden. The patient's zone, the range, the source and every setting are in the key
too. Cached results are sealed with the field-encryption keyring (they are health data).

Every call, hit or miss, refusal or not, leaves one audit record (``actigraphy.read``).
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

import orjson
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from clarity.actigraphy.features import FeatureSettings
from clarity.analytics.compute import compute, settings_payload
from clarity.analytics.schemas import (
    ConventionParam,
    Nights,
    NonwearParam,
    SleepAlgorithmParam,
    Summary,
)
from clarity.audit.service import record
from clarity.biometrics.models import BiometricBatch, BiometricSample
from clarity.crypto.fields import CryptoError
from clarity.database import utcnow
from clarity.errors import AppError
from clarity.patients.access import PatientContext
from clarity.runtime import Runtime

STREAM: Final = "activity_counts"
CACHE_VERSION: Final = "actigraphy:v1:"
CACHE_TTL_SECONDS: Final = 24 * 3600
CACHE_CONTEXT: Final = "cache.actigraphy"
#: About 13 months of minute epochs: a longer range must be asked for in parts.
MAX_SAMPLES: Final = 600_000

View = Literal["summary", "nights"]


@dataclass(frozen=True)
class Query:
    start: datetime | None
    end: datetime | None
    source: str | None
    settings: FeatureSettings


def _check_range(query: Query) -> None:
    for name, value in (("start", query.start), ("end", query.end)):
        if value is not None and value.utcoffset() is None:
            raise AppError(
                422, "timezone_required", f"{name} must carry a time zone, e.g. ...T00:00:00Z."
            )
    if query.start is not None and query.end is not None and query.start >= query.end:
        raise AppError(422, "invalid_range", "start must be before end.")


async def _fingerprint(session: AsyncSession, patient_id: Any, query: Query) -> list[Any]:
    """Number and latest arrival of the batches overlapping the range (see module doc)."""
    statement = select(func.count(), func.max(BiometricBatch.received_at)).where(
        BiometricBatch.patient_id == patient_id, BiometricBatch.last_ts.is_not(None)
    )
    if query.start is not None:
        statement = statement.where(BiometricBatch.last_ts >= query.start)
    if query.end is not None:
        statement = statement.where(BiometricBatch.first_ts <= query.end)
    count, latest = (await session.execute(statement)).one()
    return [int(count), None if latest is None else latest.isoformat()]


def _cache_key(patient_id: Any, timezone: str, query: Query, fingerprint: list[Any]) -> str:
    parts = [
        str(patient_id),
        timezone,
        None if query.start is None else query.start.isoformat(),
        None if query.end is None else query.end.isoformat(),
        query.source,
        settings_payload(query.settings),
        fingerprint,
    ]
    return CACHE_VERSION + hashlib.sha256(orjson.dumps(parts)).hexdigest()


async def _load(
    session: AsyncSession, patient_id: Any, query: Query
) -> tuple[list[datetime], list[float], int]:
    return await load_activity(session, patient_id, query.start, query.end, query.source)


async def load_activity(
    session: AsyncSession,
    patient_id: Any,
    start: datetime | None,
    end: datetime | None,
    source: str | None = None,
) -> tuple[list[datetime], list[float], int]:
    """Activity counts of ``[start, end)``, ordered by time, and how many devices they came
    from (shared with the alert rules' daily metrics); 422 beyond :data:`MAX_SAMPLES`."""
    s = BiometricSample
    statement = select(s.ts, s.value, s.source).where(
        s.patient_id == patient_id, s.stream == STREAM
    )
    if start is not None:
        statement = statement.where(s.ts >= start)
    if end is not None:
        statement = statement.where(s.ts < end)
    if source is not None:
        statement = statement.where(s.source == source)
    rows = (await session.execute(statement.order_by(s.ts, s.source).limit(MAX_SAMPLES + 1))).all()
    if len(rows) > MAX_SAMPLES:
        raise AppError(
            422,
            "range_too_long",
            f"The range holds more than {MAX_SAMPLES} samples; ask for a shorter one "
            "with start and end.",
        )
    sources = len({row.source for row in rows})
    return [row.ts for row in rows], [row.value for row in rows], sources


def _audit(session: AsyncSession, ctx: PatientContext, view: View, cached: bool) -> None:
    details: dict[str, object] = {"view": view, "cached": cached}
    if ctx.via_break_glass:
        details["break_glass"] = True
    record(
        session,
        "actigraphy.read",
        resource_type="patient",
        resource_id=ctx.patient.id,
        severity="high" if ctx.via_break_glass else "info",
        details=details,
    )


async def _cached(runtime: Runtime, key: str) -> dict[str, Any] | None:
    sealed = await runtime.cache.get(key)
    if sealed is None:
        return None
    try:
        payload: dict[str, Any] = orjson.loads(runtime.keyring.decrypt(sealed, CACHE_CONTEXT))
    except (CryptoError, orjson.JSONDecodeError):
        return None  # sealed under a retired key, or damaged: recompute
    return payload


async def result(
    runtime: Runtime, session: AsyncSession, ctx: PatientContext, query: Query, view: View
) -> tuple[dict[str, Any], bool]:
    """The computed payload for the range (from the cache when still valid), and whether it
    came from the cache. Audits and commits; the session is idle during the computation."""
    _check_range(query)
    patient_id, timezone = ctx.patient.id, ctx.patient.timezone
    key = _cache_key(patient_id, timezone, query, await _fingerprint(session, patient_id, query))
    payload = await _cached(runtime, key)
    if payload is not None:
        _audit(session, ctx, view, cached=True)
        await session.commit()
        return payload, True
    _audit(session, ctx, view, cached=False)
    stamps, values, sources = await _load(session, patient_id, query)
    await session.commit()  # writes the audit record and ends the read before computing
    payload = await asyncio.to_thread(compute, stamps, values, sources, timezone, query.settings)
    payload["computed_at"] = utcnow().isoformat()
    sealed = runtime.keyring.encrypt(orjson.dumps(payload).decode(), CACHE_CONTEXT)
    await runtime.cache.set(key, sealed, ttl=CACHE_TTL_SECONDS)
    return payload, False


def _range(payload: dict[str, Any], query: Query, timezone: str) -> dict[str, Any]:
    return {
        "start": query.start,
        "end": query.end,
        "first_sample": payload["first_sample"],
        "last_sample": payload["last_sample"],
        "samples": payload["samples"],
        "timezone": timezone,
    }


def _refuse_if_unusable(payload: dict[str, Any]) -> None:
    error = payload.get("error")
    if error is not None:
        raise AppError(422, error["code"], error["detail"])


async def summary(
    runtime: Runtime, session: AsyncSession, ctx: PatientContext, query: Query
) -> Summary:
    """Per-range rhythm, sleep and feature summary, or 422 ``insufficient_data`` naming the
    first metric the data cannot support (and every other one in ``failures``)."""
    payload, cached = await result(runtime, session, ctx, query, "summary")
    _refuse_if_unusable(payload)
    refusal = payload.get("summary_error")
    if refusal is not None:
        raise AppError(
            422,
            "insufficient_data",
            f"Too little data for {refusal['metric']}: {refusal['reason']}.",
            extra=refusal,
        )
    return Summary.model_validate(
        {
            **payload["summary"],
            "range": _range(payload, query, ctx.patient.timezone),
            "settings": settings_payload(query.settings),
            "computed_at": payload["computed_at"],
            "cached": cached,
        }
    )


async def nights(
    runtime: Runtime, session: AsyncSession, ctx: PatientContext, query: Query
) -> Nights:
    """Every local noon-to-noon night the range touches, scored or with the reason why not."""
    payload, cached = await result(runtime, session, ctx, query, "nights")
    _refuse_if_unusable(payload)
    return Nights.model_validate(
        {
            "range": _range(payload, query, ctx.patient.timezone),
            "settings": settings_payload(query.settings),
            "computed_at": payload["computed_at"],
            "cached": cached,
            "nights": payload["nights"],
        }
    )


def make_query(
    start: datetime | None,
    end: datetime | None,
    source: str | None,
    algorithm: SleepAlgorithmParam,
    webster: bool,
    nonwear: NonwearParam,
    convention: ConventionParam,
) -> Query:
    settings = FeatureSettings(
        sleep_algorithm=algorithm,
        webster_rescoring=webster,
        nonwear_algorithm=nonwear,
        convention=convention,
    )
    return Query(start, end, source, settings)
