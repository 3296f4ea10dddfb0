"""Model artifacts: deterministic archives, safe unpacking, and refusal of anything altered."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from clarity.ml.registry.artifact import ArtifactError, matches, pack, sha256, unpack


def _folder(root: Path) -> Path:
    (root / "ensemble").mkdir(parents=True)
    (root / "metadata.json").write_text('{"format": "test"}\n')
    (root / "booster.json").write_bytes(b"\x00\x01 weights")
    (root / "ensemble" / "member_00.json").write_text("{}")
    return root


def test_the_same_files_always_pack_to_the_same_bytes(tmp_path: Path) -> None:
    first = pack(_folder(tmp_path / "a"))
    b = _folder(tmp_path / "b")
    os.utime(b / "booster.json", (1, 1))
    (b / "booster.json").chmod(0o600)
    assert pack(b) == first
    (b / "booster.json").write_bytes(b"\x00\x01 weights!")
    assert pack(b) != first


def test_unpack_round_trips_and_reuses_a_verified_folder(tmp_path: Path) -> None:
    data = pack(_folder(tmp_path / "src"))
    digest = sha256(data)
    target = tmp_path / "cache" / "model" / "1-abc"
    assert unpack(data, digest, target) == target
    assert (target / "ensemble" / "member_00.json").read_text() == "{}"
    assert matches(target, digest)
    before = (target / "metadata.json").stat().st_mtime_ns
    unpack(data, digest, target)
    assert (target / "metadata.json").stat().st_mtime_ns == before  # reused, not rewritten
    assert [p.name for p in target.parent.iterdir()] == ["1-abc"]  # no staging left behind


def test_an_altered_folder_is_replaced_by_the_verified_archive(tmp_path: Path) -> None:
    data = pack(_folder(tmp_path / "src"))
    digest = sha256(data)
    target = unpack(data, digest, tmp_path / "cache")
    (target / "booster.json").write_bytes(b"planted")
    assert not matches(target, digest)
    unpack(data, digest, target)
    assert (target / "booster.json").read_bytes() == b"\x00\x01 weights"


def test_an_archive_that_does_not_match_its_digest_is_refused(tmp_path: Path) -> None:
    data = pack(_folder(tmp_path / "src"))
    with pytest.raises(ArtifactError, match="does not match"):
        unpack(data + b"\x00", sha256(data), tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def test_links_and_escaping_members_are_refused(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "src")
    (folder / "link").symlink_to(folder / "metadata.json")
    with pytest.raises(ArtifactError, match="link"):
        pack(folder)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("../escape.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    data = buffer.getvalue()
    with pytest.raises(ArtifactError, match="not a plain relative file"):
        unpack(data, sha256(data), tmp_path / "cache" / "x")
    assert not (tmp_path / "cache" / "escape.txt").exists()
    assert not (tmp_path / "escape.txt").exists()


def test_an_empty_folder_is_not_an_artifact(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ArtifactError, match="no files"):
        pack(tmp_path / "empty")


def test_the_model_cache_lies_beside_the_sqlite_file_unless_set(tmp_path: Path) -> None:
    from clarity.config import Settings

    sqlite = f"sqlite+aiosqlite:///{tmp_path / 'data' / 'clarity.db'}"
    assert Settings(_env_file=None, database_url=sqlite).model_cache_dir == (
        tmp_path / "data" / "model-cache"
    )
    postgres = "postgresql+asyncpg://clarity@db/clarity"
    assert Settings(_env_file=None, database_url=postgres).model_cache_dir == Path("model-cache")
    chosen = Settings(_env_file=None, database_url=sqlite, model_cache_dir=tmp_path / "models")
    assert chosen.model_cache_dir == tmp_path / "models"
