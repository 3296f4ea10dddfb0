"""Registering, promoting and serving model versions.

Transactions: :func:`register` and :func:`promote` flush (so the row has its id and
version, and constraint violations surface) and queue their audit record, but never commit:
the caller commits, so a CLI or a test decides the unit of work. :func:`promoted_model`
only reads, plus files under the cache folder.

Serving: only a ``promoted`` version is ever returned by :func:`promoted_model`; its
artifact is unpacked once per (version, SHA-256) into ``cache_dir/<name>/<version>-<sha12>/``
and verified, on first use in a process, by packing it again (:mod:`.artifact`).
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from clarity.audit.service import record
from clarity.database import utcnow
from clarity.errors import AppError, not_found
from clarity.ml.provenance import code_version as current_code_version
from clarity.ml.registry import KINDS, PAT_ONNX
from clarity.ml.registry.artifact import ArtifactError, matches, pack, sha256, unpack
from clarity.ml.registry.models import ModelStatus, ModelVersion

NAME_PATTERN: Final = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
PAT_LABEL_PREFIX: Final = "PAT architecture, trained on"
NOT_A_DEVICE: Final = "not a diagnostic device"
_SHA256: Final = re.compile(r"^[0-9a-f]{64}$")
# Directories verified in this process, with the (path, size, mtime) of their files then.
_verified: dict[Path, tuple[str, tuple[tuple[str, int, int], ...]]] = {}


@dataclass(frozen=True)
class ServedModel:
    """A promoted version, unpacked and verified, ready for a loader to read."""

    id: uuid.UUID
    name: str
    version: int
    kind: str
    label: str
    card_path: str  # API path of the card: f"/api/v1/models/{name}/versions/{version}/card"
    directory: Path  # the unpacked artifact folder (verified against artifact_sha256)


def card_path(name: str, version: int) -> str:
    return f"/api/v1/models/{name}/versions/{version}/card"


def _invalid(detail: str) -> AppError:
    return AppError(422, "invalid_model", detail)


def _check(name: str, kind: str, label: str, data_fingerprint: str, card: str) -> None:
    if not NAME_PATTERN.match(name):
        raise _invalid("A model name is 1-64 lowercase letters, digits and hyphens.")
    if kind not in KINDS:
        raise _invalid(f"A model kind is one of: {', '.join(sorted(KINDS))}.")
    if not label.strip() or len(label) > 200:
        raise _invalid("A model needs a label of at most 200 characters saying what it is.")
    if kind == PAT_ONNX and not label.startswith(PAT_LABEL_PREFIX):
        raise _invalid(f"A PAT-architecture model's label starts with '{PAT_LABEL_PREFIX}'.")
    if not _SHA256.match(data_fingerprint):
        raise _invalid("The data fingerprint is a lowercase hex SHA-256.")
    if NOT_A_DEVICE not in card.lower():
        raise _invalid("The model card must state that the model is not a diagnostic device.")


async def register(
    session: AsyncSession,
    *,
    name: str,
    kind: str,
    label: str,
    artifact_dir: Path,
    params: dict[str, Any],
    metrics: dict[str, Any],
    data_fingerprint: str,
    created_by: str,
    card_markdown: str,
    code_version: str | None = None,
) -> ModelVersion:
    """Store ``artifact_dir`` as the next version of ``name`` (status ``registered``).

    Flushes, does not commit. 422 ``invalid_model`` for a bad name, kind, label, digest,
    card or folder; 409 ``model_version_conflict`` if another writer took the version.
    """
    _check(name, kind, label, data_fingerprint, card_markdown)
    try:
        json.dumps([params, metrics], allow_nan=False)
    except (TypeError, ValueError):
        raise _invalid("Parameters and metrics must be strict JSON (no NaN or infinity).") from None
    try:
        archive = await asyncio.to_thread(pack, artifact_dir)
    except (ArtifactError, OSError) as exc:
        raise _invalid(f"The artifact folder cannot be stored: {exc}") from None
    latest = await session.scalar(
        select(func.max(ModelVersion.version)).where(ModelVersion.name == name)
    )
    row = ModelVersion(
        name=name,
        version=(latest or 0) + 1,
        kind=kind,
        label=label,
        status=ModelStatus.registered.value,
        created_at=utcnow(),
        created_by=created_by[:200],
        code_version=(code_version or current_code_version())[:200],
        data_fingerprint=data_fingerprint,
        params=params,
        metrics=metrics,
        card_markdown=card_markdown,
        artifact=archive,
        artifact_sha256=sha256(archive),
        artifact_bytes=len(archive),
    )
    session.add(row)
    try:
        await session.flush()
    except IntegrityError:
        raise AppError(
            409, "model_version_conflict", f"Another version of {name} was registered at once."
        ) from None
    record(
        session,
        "ml.model.register",
        resource_type="ml_model",
        resource_id=row.id,
        details={"name": name, "version": row.version, "artifact_sha256": row.artifact_sha256},
    )
    return row


def _without_blobs() -> Sequence[Any]:
    return (
        defer(ModelVersion.artifact, raiseload=True),
        defer(ModelVersion.card_markdown, raiseload=True),
    )


async def get_version(session: AsyncSession, name: str, version: int) -> ModelVersion:
    """One version without its artifact and card (404 ``not_found`` if absent)."""
    row = await session.scalar(
        select(ModelVersion)
        .options(*_without_blobs())
        .where(ModelVersion.name == name, ModelVersion.version == version)
    )
    if row is None:
        raise not_found("model version")
    return row


async def get_card(session: AsyncSession, name: str, version: int) -> str:
    card = await session.scalar(
        select(ModelVersion.card_markdown).where(
            ModelVersion.name == name, ModelVersion.version == version
        )
    )
    if card is None:
        raise not_found("model version")
    return card


async def list_versions(session: AsyncSession, name: str | None = None) -> list[ModelVersion]:
    """Every version (of ``name``, if given), by name then newest first; no blobs loaded."""
    statement = select(ModelVersion).options(*_without_blobs())
    if name is not None:
        statement = statement.where(ModelVersion.name == name)
    rows = await session.scalars(statement.order_by(ModelVersion.name, ModelVersion.version.desc()))
    return list(rows)


async def promote(
    session: AsyncSession, name: str, version: int, *, promoted_by: str
) -> ModelVersion:
    """Make ``version`` the one served for ``name``; the previously promoted one is retired.

    One transaction (flushed here, committed by the caller): the demotion is flushed before
    the promotion, so the at-most-one-promoted index holds at every statement. Promoting
    the promoted version changes nothing. 404 if absent; 409 ``promotion_conflict`` if
    another promotion of the same name won the race.
    """
    row = await get_version(session, name, version)
    if row.status == ModelStatus.promoted:
        return row
    current = await session.scalar(
        select(ModelVersion)
        .options(*_without_blobs())
        .where(ModelVersion.name == name, ModelVersion.status == ModelStatus.promoted.value)
        .with_for_update()
    )
    try:
        if current is not None:
            current.status = ModelStatus.retired.value
            await session.flush()
        row.status = ModelStatus.promoted.value
        row.promoted_at = utcnow()
        row.promoted_by = promoted_by[:200]
        await session.flush()
    except IntegrityError:
        raise AppError(
            409, "promotion_conflict", f"Another promotion of {name} happened at the same time."
        ) from None
    record(
        session,
        "ml.model.promote",
        resource_type="ml_model",
        resource_id=row.id,
        severity="high",
        details={
            "name": name,
            "version": version,
            "retired_version": None if current is None else current.version,
        },
    )
    return row


def _signature(directory: Path) -> tuple[tuple[str, int, int], ...]:
    found: list[tuple[str, int, int]] = []
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            stat = path.stat()
            found.append((path.relative_to(directory).as_posix(), stat.st_size, stat.st_mtime_ns))
    return tuple(found)


def _ready(directory: Path, digest: str) -> bool:
    """Verified already in this process and unchanged since, or verified now."""
    if not directory.is_dir():
        return False
    try:
        signature = _signature(directory)
    except OSError:
        return False
    if _verified.get(directory) == (digest, signature):
        return True
    if matches(directory, digest):
        _verified[directory] = (digest, signature)
        return True
    return False


def _install(archive: bytes, digest: str, directory: Path) -> None:
    unpack(archive, digest, directory)
    _verified[directory] = (digest, _signature(directory))


async def promoted_model(session: AsyncSession, name: str, cache_dir: Path) -> ServedModel | None:
    """The promoted version of ``name``, unpacked under ``cache_dir``; None if none is.

    The artifact is read from the database only when the folder is missing or fails its
    check; a stored artifact that does not match its own SHA-256 raises ``ArtifactError``
    (the model is not served).
    """
    row = (
        await session.execute(
            select(
                ModelVersion.id,
                ModelVersion.version,
                ModelVersion.kind,
                ModelVersion.label,
                ModelVersion.artifact_sha256,
            ).where(ModelVersion.name == name, ModelVersion.status == ModelStatus.promoted.value)
        )
    ).first()
    if row is None:
        return None
    model_id, version, kind, label, digest = row
    directory = (cache_dir / name / f"{version}-{digest[:12]}").resolve()
    if not await asyncio.to_thread(_ready, directory, digest):
        archive = await session.scalar(
            select(ModelVersion.artifact).where(ModelVersion.id == model_id)
        )
        if archive is None:
            return None
        await asyncio.to_thread(_install, archive, digest, directory)
    return ServedModel(
        id=model_id,
        name=name,
        version=version,
        kind=kind,
        label=label,
        card_path=card_path(name, version),
        directory=directory,
    )
