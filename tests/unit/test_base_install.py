"""The server runs on the base install (``pip install clarity``, as ``scripts/run`` does):
no module outside the training code may need a package that only the ``dev`` or ``train``
extras bring. Once, ``httpx`` (webhook deliveries) was only a dev dependency: the test
suite passed while the quick start failed to start."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Distribution names of the extras -> the modules they install.
MODULES = {
    "hypothesis": "hypothesis",
    "httpx": "httpx",
    "asgi-lifespan": "asgi_lifespan",
    "aio-pika": "aio_pika",
    "pytest": "pytest",
    "pytest-asyncio": "pytest_asyncio",
    "pytest-timeout": "pytest_timeout",
    "ruff": "ruff",
    "mypy": "mypy",
    "torch": "torch",
    "onnx": "onnx",
    "onnxscript": "onnxscript",
    "h5py": "h5py",
}
TRAINING = ("torch", "onnx", "onnxscript", "h5py")


def _name(requirement: str) -> str:
    for mark in ("[", "=", "<", ">", "~", "!", ";", " "):
        requirement = requirement.split(mark, 1)[0]
    return requirement.lower()


def extras_only() -> set[str]:
    """Modules of packages the extras list and the base dependencies do not."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = {_name(r) for r in project["dependencies"]}
    extra = {_name(r) for reqs in project["optional-dependencies"].values() for r in reqs}
    extra = {e for e in extra if not e.startswith("clarity")}
    unknown = extra - set(MODULES)
    assert not unknown, f"add the module names of {sorted(unknown)} to MODULES"
    # aio-pika comes with faststream[rabbit] (base) too: only what base lacks is blocked.
    return {MODULES[e] for e in extra - base if e != "aio-pika"}


def test_every_module_but_training_imports_without_the_extras() -> None:
    blocked = sorted(extras_only())
    assert "httpx" not in blocked  # the server delivers webhooks with it
    code = f"""
import importlib, pkgutil, sys
BLOCKED = {blocked!r}
TRAINING = {TRAINING!r}

class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"blocked: {{name}}", name=name.split(".")[0])
        return None

sys.meta_path.insert(0, Block())
import clarity
problems = []
for info in pkgutil.walk_packages(clarity.__path__, "clarity."):
    if info.name.startswith("clarity.migrations.") and info.name != "clarity.migrations.metadata":
        continue
    try:
        importlib.import_module(info.name)
    except ImportError as exc:
        if exc.name not in TRAINING:
            problems.append(f"{{info.name}} needs {{exc.name}}")
print("\\n".join(problems))
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == ""
