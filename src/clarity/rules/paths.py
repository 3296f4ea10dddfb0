"""Field paths: the names errors give to fields and the keys of per-patient overrides.

One syntax for both, so that an error about ``condition.conditions[0].value`` can be fixed
by an override of ``condition.conditions[0].value``: names joined by dots, list positions
in brackets. Pydantic's error locations also carry the tag of a discriminated union
(``condition.threshold_duration.value``); :func:`field_path` drops those tags.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Final

from clarity.rules.conditions import KINDS

_NAME: Final = r"[a-z_][a-z0-9_]*"
_PATH: Final = re.compile(rf"{_NAME}(?:\.{_NAME}|\[[0-9]{{1,2}}\])*")
_TOKEN: Final = re.compile(rf"({_NAME})|\[([0-9]{{1,2}})\]")
MAX_PATH_LENGTH: Final = 128


def field_path(loc: Iterable[int | str]) -> str:
    """``('condition', 'all', 'conditions', 0, 'trend', 'delta')`` ->
    ``condition.conditions[0].delta``."""
    out, previous = "", None
    for part in loc:
        is_tag = isinstance(part, str) and part in KINDS
        if is_tag and (previous == "condition" or isinstance(previous, int)):
            previous = part
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
        previous = part
    return out


def parse_path(path: str) -> tuple[str | int, ...] | None:
    """The parts of a path, or None when it is not written in the path syntax."""
    if len(path) > MAX_PATH_LENGTH or _PATH.fullmatch(path) is None:
        return None
    return tuple(name if name else int(index) for name, index in _TOKEN.findall(path))


def _is_leaf(value: Any) -> bool:
    if isinstance(value, dict):
        return False
    if isinstance(value, list):
        return not any(isinstance(v, dict | list) for v in value)
    return True


def resolve(document: dict[str, Any], parts: tuple[str | int, ...]) -> tuple[Any, str | int]:
    """The container holding the field ``parts`` names, and its key; KeyError when the
    path does not name an existing leaf (a value, or a list of values) of ``document``."""
    container: Any = document
    for part in parts[:-1]:
        container = _step(container, part)
    last = parts[-1]
    _step(container, last)
    if last == "kind" or not _is_leaf(container[last]):
        raise KeyError(last)
    return container, last


def _step(container: Any, part: str | int) -> Any:
    if isinstance(part, str) and isinstance(container, dict) and part in container:
        return container[part]
    if isinstance(part, int) and isinstance(container, list) and part < len(container):
        return container[part]
    raise KeyError(part)
