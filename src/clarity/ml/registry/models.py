"""``ml_model_versions``: one row per registered model version, artifact included.

Versions count up per name from 1. ``status`` is ``registered`` (stored, not served),
``promoted`` (the one served for its name; a partial unique index allows at most one) or
``retired`` (served once, replaced by a later promotion). Models are shared by every
organization (trained on public research data, never on a clinic's patients), so the
table is not tenant-scoped. The artifact is a deterministic tar (:mod:`.artifact`).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from clarity.database import Base, UUIDPrimaryKey, utcnow


class ModelStatus(StrEnum):
    registered = "registered"
    promoted = "promoted"
    retired = "retired"


_ONE_PROMOTED = text("status = 'promoted'")


class ModelVersion(UUIDPrimaryKey, Base):
    __tablename__ = "ml_model_versions"
    __table_args__ = (
        UniqueConstraint("name", "version"),
        CheckConstraint("version >= 1", name="version_positive"),
        CheckConstraint("status IN ('registered', 'promoted', 'retired')", name="status_known"),
        Index(
            "ix_ml_model_versions_one_promoted",
            "name",
            unique=True,
            postgresql_where=_ONE_PROMOTED,
            sqlite_where=_ONE_PROMOTED,
        ),
    )

    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32))
    label: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=ModelStatus.registered.value)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))
    promoted_at: Mapped[datetime | None] = mapped_column(default=None)
    promoted_by: Mapped[str | None] = mapped_column(String(200), default=None)
    code_version: Mapped[str] = mapped_column(String(200))
    data_fingerprint: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    card_markdown: Mapped[str] = mapped_column(Text)
    artifact: Mapped[bytes] = mapped_column(LargeBinary)
    artifact_sha256: Mapped[str] = mapped_column(String(64))
    artifact_bytes: Mapped[int] = mapped_column(Integer)
