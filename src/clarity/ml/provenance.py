"""Which code produced a model: the package version, the git commit when known, and a digest.

The digest (SHA-256 over the source of :mod:`clarity.ml` and :mod:`clarity.actigraphy`, the
code that computes features, fits and evaluates) is what pins a model to its code: a git
commit says nothing of uncommitted changes and is absent from an installed package.
Standard library only; git is read from its files, never run.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import clarity

_PACKAGE = Path(clarity.__file__).resolve().parent
_CODE_PACKAGES = ("actigraphy", "ml")
_NOT_MODEL_CODE = ("ml/registry/", "ml/cli.py")  # storing and commands: change no model


def source_digest() -> str:
    """SHA-256 over every ``.py`` file of the feature and model code, by relative path
    (the registry and the command line are left out: they change no model)."""
    digest = hashlib.sha256()
    for package in _CODE_PACKAGES:
        for path in sorted((_PACKAGE / package).rglob("*.py")):
            relative = path.relative_to(_PACKAGE).as_posix()
            if relative.startswith(_NOT_MODEL_CODE):
                continue
            name = relative.encode()
            content = path.read_bytes()
            digest.update(len(name).to_bytes(8, "big") + name)
            digest.update(len(content).to_bytes(8, "big") + content)
    return digest.hexdigest()


def git_commit(start: Path = _PACKAGE) -> str | None:
    """The commit checked out in the repository holding ``start``, or None (no repository)."""
    for folder in (start, *start.parents):
        git = folder / ".git"
        if not git.is_dir():
            continue
        try:
            head = (git / "HEAD").read_text().strip()
            if not head.startswith("ref: "):
                return head or None
            ref = head.removeprefix("ref: ")
            loose = git / ref
            if loose.is_file():
                return loose.read_text().strip() or None
            packed = git / "packed-refs"
            if packed.is_file():
                for line in packed.read_text().splitlines():
                    sha, _, name = line.partition(" ")
                    if name == ref:
                        return sha
        except OSError:
            return None
        return None
    return None


def code_version() -> str:
    """``clarity <version>, git <commit>, code sha256 <digest>`` (git left out if unknown)."""
    parts = [f"clarity {clarity.__version__}"]
    commit = git_commit()
    if commit:
        parts.append(f"git {commit[:12]}")
    parts.append(f"code sha256 {source_digest()[:16]}")
    return ", ".join(parts)
