"""Response bodies of the read-only model registry API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel


class MetricOut(BaseModel):
    """A subject-level metric with its 95% bootstrap interval over subjects."""

    value: float | None
    ci_low: float | None
    ci_high: float | None


class ModelVersionOut(BaseModel):
    id: uuid.UUID
    name: str
    version: int
    kind: str
    label: str
    status: str
    created_at: datetime
    created_by: str
    promoted_at: datetime | None
    promoted_by: str | None
    code_version: str
    data_fingerprint: str
    artifact_sha256: str
    artifact_bytes: int
    card_path: str
    # Headline subject-level metrics (the card has the full table and its protocol).
    summary: dict[str, MetricOut]


class ModelVersionDetail(ModelVersionOut):
    params: dict[str, Any]
    metrics: dict[str, Any]


class ModelVersionList(BaseModel):
    items: list[ModelVersionOut]
