"""Uploaded import files: streamed to disk as they arrive, never held whole in memory.

Each upload goes to its own file under the import folder, created with mode 0600 (the
folder 0700), named after its job (never after the client's file name, which often
carries the patient's name), and hashed (SHA-256) on the way.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from clarity.errors import AppError

FLUSH_BYTES = 8 << 20  # written to disk (in a thread) every 8 MiB


@dataclass(frozen=True)
class SavedUpload:
    path: Path
    sha256: str
    size: int


def upload_path(import_dir: Path, job_id: uuid.UUID) -> Path:
    return import_dir / f"{job_id.hex}.upload"


def _create(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)


def _write(out: BinaryIO, digest: hashlib._Hash, data: bytes) -> None:
    digest.update(data)
    out.write(data)


async def save_upload(
    body: AsyncIterator[bytes], import_dir: Path, job_id: uuid.UUID, limit: int
) -> SavedUpload:
    """Write the request body to the job's upload file; on any failure nothing is left."""
    path = upload_path(import_dir, job_id)
    descriptor = await asyncio.to_thread(_create, path)
    digest = hashlib.sha256()
    size = 0
    pending = bytearray()
    try:
        with os.fdopen(descriptor, "wb") as out:
            async for chunk in body:
                size += len(chunk)
                if size > limit:
                    raise AppError(
                        413, "payload_too_large", f"An import file holds at most {limit} bytes."
                    )
                pending += chunk
                if len(pending) >= FLUSH_BYTES:
                    await asyncio.to_thread(_write, out, digest, bytes(pending))
                    pending.clear()
            if pending:
                await asyncio.to_thread(_write, out, digest, bytes(pending))
        if size == 0:
            raise AppError(422, "empty_file", "The request body is empty: send the file.")
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return SavedUpload(path, digest.hexdigest(), size)
