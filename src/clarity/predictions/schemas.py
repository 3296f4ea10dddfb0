"""Request and response bodies of the depression prediction API."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

DISCLAIMER: Final = (
    "Not a diagnostic device. This is a research model's estimate from wrist actigraphy "
    "alone, trained on a small public data set (Depresjon); it does not diagnose depression "
    "and must not replace clinical assessment. Read the model card before relying on it."
)

Classification = Literal["resembles_depressed_group", "resembles_control_group"]


class PredictionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str | None = Field(
        default=None,
        max_length=128,
        description="The device whose activity counts to use; needed when several are stored.",
    )


class ModelRef(BaseModel):
    name: str
    version: int
    label: str = Field(description="What the model is and what it was trained on.")
    card_url: str = Field(description="The model card: data, evaluation, limits.")


class Interval(BaseModel):
    low: float
    high: float
    level: float = Field(description="Share of the bootstrap ensemble's estimates inside.")
    method: str = Field(
        description="bootstrap-ensemble: how much the estimate depends on which people were "
        "in training; not a coverage guarantee."
    )


class Contribution(BaseModel):
    feature: str = Field(description="The engine's feature id.")
    label: str = Field(description="The feature in plain words.")
    value: float | None = Field(description="Its value over the window; null if missing.")
    contribution: float = Field(description="Its share of the margin, in log-odds (TreeSHAP).")
    direction: Literal["raises", "lowers", "no effect"]


class ExplanationBasis(BaseModel):
    method: Literal["TreeSHAP"] = "TreeSHAP"
    units: str
    baseline: float = Field(description="The margin before any feature (training average).")
    margin: float = Field(description="Baseline plus every contribution, before calibration.")


class Window(BaseModel):
    start: date = Field(description="First valid day (local date, inclusive).")
    end: date = Field(description="Seventh valid day (local date, inclusive).")
    timezone: str = Field(description="The patient's IANA zone the days are local to.")


class DepressionPredictionOut(BaseModel):
    id: uuid.UUID
    patient_id: uuid.UUID
    created_at: datetime
    created_by: uuid.UUID | None
    probability: float = Field(description="Calibrated probability of the depressed group.")
    interval: Interval
    threshold: float | None = Field(description="The model's decision threshold, if any.")
    classification: Classification | None = Field(
        description="Which training group the probability is nearer at the threshold; a "
        "resemblance, not a diagnosis."
    )
    model: ModelRef
    top_features: list[Contribution]
    explanation: ExplanationBasis
    window: Window
    valid_days: int = Field(description="Valid days in the window (16 h or more worn).")
    input_fingerprint: str = Field(description="SHA-256 of the feature vector and window.")
    disclaimer: str = DISCLAIMER


class DepressionPredictionPage(BaseModel):
    items: list[DepressionPredictionOut] = Field(description="Newest first.")
    total: int
    limit: int
    offset: int
