"""Depression predictions for one patient: the promoted model on their latest valid week.

The window is the most recent span of 7 valid days (16 h or more worn) among the local
days from :data:`LOOKBACK_DAYS` before the patient's last activity sample to it, found and
turned into features by the code that built the training rows. The prediction, the audit
record and the ``prediction.created`` event are written in one transaction: all or none.
Every call, refused or not, leaves one audit record (``prediction.create``); a listing
leaves ``prediction.list``.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from datetime import datetime, time, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from clarity.actigraphy.features import DEFAULT_SETTINGS
from clarity.analytics.service import STREAM, load_activity
from clarity.audit.service import record
from clarity.biometrics.models import BiometricSample
from clarity.errors import AppError
from clarity.logging import get_logger
from clarity.ml.boosted import BoostedModel
from clarity.ml.dataset import WINDOW_VALID_DAYS, LatestWeek
from clarity.ml.registry import DEPRESSION_CLASSIFIER
from clarity.ml.registry.artifact import ArtifactError
from clarity.ml.registry.models import ModelVersion
from clarity.ml.registry.service import ServedModel, card_path, promoted_model
from clarity.outbox.service import enqueue
from clarity.patients.access import PatientContext
from clarity.predictions import compute
from clarity.predictions.models import DepressionPrediction
from clarity.predictions.schemas import DepressionPredictionOut, PredictionRequest
from clarity.predictions.served import boosted_model
from clarity.runtime import Runtime

log = get_logger(__name__)

TOPIC: Final = "prediction.created"
#: Local days read, ending on the day of the last sample (a week may have gaps).
LOOKBACK_DAYS: Final = 28
NO_MODEL: Final = (
    "No depression model has been promoted; an administrator runs `clarity ml train` then "
    f"`clarity ml promote {DEPRESSION_CLASSIFIER} N`."
)

UNPACKABLE: Final = (
    "The promoted depression model cannot be unpacked and verified on this server (its "
    "stored files do not match their SHA-256, or the model cache folder cannot be written), "
    "so it is not served; see the server log."
)


def _audit(
    session: AsyncSession,
    ctx: PatientContext,
    action: str,
    details: dict[str, Any],
    *,
    outcome: str = "success",
) -> None:
    if ctx.via_break_glass:
        details = {**details, "break_glass": True}
    record(
        session,
        action,
        outcome=outcome,
        resource_type="patient",
        resource_id=ctx.patient.id,
        severity="high" if ctx.via_break_glass else "info",
        details=details,
    )


async def _refuse(
    session: AsyncSession, ctx: PatientContext, error: AppError, **details: Any
) -> AppError:
    """Audit the refusal (its code and counts, never data) and end the transaction."""
    _audit(session, ctx, "prediction.create", {"reason": error.code, **details}, outcome="failure")
    await session.commit()
    return error


async def _recent_activity(
    session: AsyncSession, ctx: PatientContext, source: str | None
) -> tuple[list[datetime], list[float], int]:
    """Activity counts of the :data:`LOOKBACK_DAYS` local days ending with the last sample."""
    s = BiometricSample
    latest = select(func.max(s.ts)).where(s.patient_id == ctx.patient.id, s.stream == STREAM)
    if source is not None:
        latest = latest.where(s.source == source)
    last: datetime | None = await session.scalar(latest)
    if last is None:
        return [], [], 0
    zone = ZoneInfo(ctx.patient.timezone)
    first_day = last.astimezone(zone).date() - timedelta(days=LOOKBACK_DAYS - 1)
    start = datetime.combine(first_day, time(), tzinfo=zone)
    return await load_activity(session, ctx.patient.id, start, None, source)


def _week(stamps: list[datetime], values: list[float], timezone: str) -> LatestWeek:
    if len(stamps) < 2:
        return LatestWeek((), None)
    seconds = [int(t.timestamp()) for t in stamps]
    return compute.prepare(compute.series_of(seconds, values, timezone))


def _insufficient(week: LatestWeek, samples: int, source: str | None) -> AppError:
    """422 naming the valid days found, the 7 needed, and each day's wear."""
    found, needed = week.valid_days, WINDOW_VALID_DAYS
    hours = DEFAULT_SETTINGS.min_wear_hours
    if samples == 0:
        where = "for this patient" if source is None else "from this source"
        detail = f"No actigraphy (activity counts) is stored {where}; {needed} valid days "
        detail += f"({hours:g} h or more worn) are needed."
    elif found < needed:
        detail = f"{found} valid days of actigraphy in the {LOOKBACK_DAYS} days up to the last "
        detail += f"sample; {needed} are needed (a valid day has {hours:g} h or more worn)."
    else:
        detail = f"{found} valid days, but no span of {needed} of them keeps {needed} valid "
        detail += "days when analysed on its own (non-wear at its edges); wear more days."
    days = [
        {
            "date": d.date.isoformat(),
            "valid": d.valid,
            "wear_hours": round(d.values["wear_hours"], 1),
        }
        for d in week.days
    ]
    return AppError(
        422,
        "insufficient_actigraphy",
        detail,
        extra={
            "valid_days": found,
            "required": needed,
            "lookback_days": LOOKBACK_DAYS,
            "min_wear_hours": hours,
            "days": days,
        },
    )


def _classification(probability: float, threshold: float | None) -> str | None:
    if threshold is None:
        return None
    return "resembles_depressed_group" if probability >= threshold else "resembles_control_group"


def to_out(row: DepressionPrediction, label: str) -> DepressionPredictionOut:
    explanation = row.explanation
    return DepressionPredictionOut.model_validate(
        {
            "id": row.id,
            "patient_id": row.patient_id,
            "created_at": row.created_at,
            "created_by": row.created_by,
            "probability": row.probability,
            "interval": {
                "low": row.interval_low,
                "high": row.interval_high,
                "level": row.interval_level,
                "method": "bootstrap-ensemble",
            },
            "threshold": row.threshold,
            "classification": _classification(row.probability, row.threshold),
            "model": {
                "name": row.model_name,
                "version": row.model_version,
                "label": label,
                "card_url": card_path(row.model_name, row.model_version),
            },
            "top_features": explanation["top"],
            "explanation": {
                "units": explanation["units"],
                "baseline": explanation["baseline"],
                "margin": explanation["margin"],
            },
            "window": {
                "start": row.window_start,
                "end": row.window_end,
                "timezone": row.timezone,
            },
            "valid_days": row.valid_days,
            "input_fingerprint": row.input_fingerprint,
        }
    )


def _row(
    ctx: PatientContext, served: ServedModel, model: BoostedModel, scored: compute.Scored
) -> DepressionPrediction:
    threshold = model.threshold
    return DepressionPrediction(
        id=uuid.uuid4(),
        patient_id=ctx.patient.id,
        model_version_id=served.id,
        model_name=served.name,
        model_version=served.version,
        input_fingerprint=scored.fingerprint,
        window_start=scored.window.start,
        window_end=scored.window.end,
        timezone=ctx.patient.timezone,
        valid_days=scored.window.valid_days,
        probability=scored.probability,
        interval_low=scored.interval[0],
        interval_high=scored.interval[1],
        interval_level=model.config.interval_level,
        threshold=threshold if math.isfinite(threshold) else None,  # NaN: the model has none
        explanation=scored.explanation.as_dict(),
        created_by=ctx.principal.user_id,
    )


async def create(
    runtime: Runtime, session: AsyncSession, ctx: PatientContext, body: PredictionRequest
) -> DepressionPredictionOut:
    """Predict from the latest valid week; 503 without a servable promoted model, 422
    ``insufficient_actigraphy`` (or ``multiple_sources`` / ``unusable_series``)."""
    try:
        served = await promoted_model(
            session, DEPRESSION_CLASSIFIER, runtime.settings.model_cache_dir
        )
    except (ArtifactError, OSError) as exc:
        log.error("predictions.model_unpack_failed", error=type(exc).__name__)
        error = AppError(503, "model_unavailable", UNPACKABLE)
        raise await _refuse(session, ctx, error) from None
    if served is None:
        raise await _refuse(session, ctx, AppError(503, "no_promoted_model", NO_MODEL))
    try:
        model = await boosted_model(served)
    except AppError as exc:
        raise await _refuse(session, ctx, exc, model_version=served.version) from None

    stamps, values, sources = await _recent_activity(session, ctx, body.source)
    await session.commit()  # ends the read: the session is idle while computing
    if sources > 1:
        error = AppError(
            422,
            "multiple_sources",
            f"The patient's recent activity counts come from {sources} devices; "
            "choose one with the source field.",
        )
        raise await _refuse(session, ctx, error)
    try:
        week = await asyncio.to_thread(_week, stamps, values, ctx.patient.timezone)
    except ValueError as exc:  # an epoch that does not divide a minute, two samples per epoch
        raise await _refuse(session, ctx, AppError(422, "unusable_series", str(exc))) from None
    if week.window is None:
        error = _insufficient(week, len(stamps), body.source)
        raise await _refuse(session, ctx, error, valid_days=week.valid_days)
    scored = await asyncio.to_thread(compute.score, model, week.window)

    row = _row(ctx, served, model, scored)
    session.add(row)
    await session.flush()
    _audit(
        session,
        ctx,
        "prediction.create",
        {"prediction_id": str(row.id), "model": served.name, "model_version": served.version},
    )
    enqueue(
        session,
        TOPIC,
        {
            "organization_id": str(ctx.principal.organization_id),
            "patient_id": str(row.patient_id),
            "prediction_id": str(row.id),
            "model_version_id": str(served.id),
            "model_name": served.name,
            "model_version": served.version,
        },
        key=str(row.patient_id),
    )
    await session.commit()
    runtime.outbox.notify()
    return to_out(row, served.label)


async def history(
    session: AsyncSession, ctx: PatientContext, *, limit: int, offset: int
) -> tuple[list[DepressionPredictionOut], int]:
    """The patient's stored predictions, newest first (audited as ``prediction.list``)."""
    where = DepressionPrediction.patient_id == ctx.patient.id
    ids = select(DepressionPrediction.id).where(where).subquery()
    total = await session.scalar(select(func.count()).select_from(ids)) or 0
    rows = (
        await session.execute(
            select(DepressionPrediction, ModelVersion.label)
            .join(ModelVersion, ModelVersion.id == DepressionPrediction.model_version_id)
            .where(where)
            .order_by(DepressionPrediction.created_at.desc(), DepressionPrediction.id)
            .limit(limit)
            .offset(offset)
        )
    ).all()
    _audit(
        session,
        ctx,
        "prediction.list",
        {"count": len(rows), "ids": [str(row.id) for row, _ in rows]},
    )
    await session.commit()
    return [to_out(row, label) for row, label in rows], total
