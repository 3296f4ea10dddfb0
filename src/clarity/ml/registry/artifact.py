"""Model artifacts as deterministic tar archives: packed, checked and unpacked safely.

The same folder always packs to the same bytes (files only, sorted by path, fixed mode, owner
and time), so the archive's SHA-256 identifies the artifact, and a folder unpacked earlier
is verified by packing it again. Unpacking accepts regular files under relative paths only
(no links, devices or ``..``) and lands in place with one rename, so a reader never sees a
half-written folder. Standard library only.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

MAX_ARTIFACT_BYTES = 512 * 1024**2


class ArtifactError(ValueError):
    """The folder or archive is not a valid artifact, or does not match its digest."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _files(root: Path) -> list[tuple[str, Path]]:
    if not root.is_dir():
        raise ArtifactError(f"{root} is not a folder")
    found: list[tuple[str, Path]] = []
    for path in root.rglob("*"):
        if path.is_symlink():
            raise ArtifactError(f"{path} is a link; an artifact holds regular files only")
        if path.is_file():
            found.append((path.relative_to(root).as_posix(), path))
        elif not path.is_dir():
            raise ArtifactError(f"{path} is not a regular file")
    if not found:
        raise ArtifactError(f"{root} holds no files")
    return sorted(found)


def pack(root: Path) -> bytes:
    """The folder's files as an uncompressed tar whose bytes depend only on names and data."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, path in _files(root):
            data = path.read_bytes()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    data = buffer.getvalue()
    if len(data) > MAX_ARTIFACT_BYTES:
        raise ArtifactError(f"artifact is {len(data):,} bytes, over {MAX_ARTIFACT_BYTES:,}")
    return data


def matches(root: Path, digest: str) -> bool:
    """Whether ``root`` holds exactly the files of the artifact with this SHA-256."""
    try:
        return sha256(pack(root)) == digest
    except (ArtifactError, OSError):
        return False


def _check_members(tar: tarfile.TarFile) -> None:
    for member in tar.getmembers():
        path = PurePosixPath(member.name)
        if not member.isfile() or path.is_absolute() or ".." in path.parts:
            raise ArtifactError(f"archive member {member.name!r} is not a plain relative file")


def unpack(data: bytes, digest: str, target: Path) -> Path:
    """Unpack the archive (checked against ``digest``) to ``target``; reuse it if present.

    Safe against concurrent unpackers: each writes a private temporary folder beside
    ``target`` and renames it into place; the loser removes its copy and checks the winner's.
    """
    if sha256(data) != digest:
        raise ArtifactError("stored artifact does not match its SHA-256")
    if target.is_dir():
        if matches(target, digest):
            return target
        shutil.rmtree(target)  # altered or half-removed: replace it with the verified copy
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            _check_members(tar)
            tar.extractall(staging, filter="data")
        if not matches(staging, digest):
            raise ArtifactError("unpacked artifact does not pack back to its SHA-256")
        try:
            os.rename(staging, target)
        except OSError:
            if not matches(target, digest):
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target
