"""Durations in rules, written as a whole number and one unit: ``10m``, ``48h``, ``28d``.

One compact format, rather than ISO 8601, because rules are read and written by
clinicians: ``48h`` cannot be misread, while ``PT48H`` and ``P2D`` differ around daylight
saving changes and ``P1M`` has no fixed length. Units: ``s`` seconds, ``m`` minutes,
``h`` hours, ``d`` days (86 400 s, not calendar days), ``w`` weeks. The longest accepted
duration is 400 days; zero (``0s``, ``0m`` ...) is only accepted where a field says so
(a cooldown may be zero, a hold duration may not).
"""

from __future__ import annotations

import functools
import re
from typing import Final

UNIT_SECONDS: Final[dict[str, int]] = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_SECONDS: Final = 400 * 86400
PATTERN: Final = re.compile(r"^(0|[1-9][0-9]{0,7})([smhdw])$")
FORMAT_HINT: Final = "a whole number followed by s, m, h, d or w (e.g. 10m, 48h, 28d)"


@functools.cache
def duration_seconds(text: str) -> int:
    """Seconds in a duration already accepted by :func:`check_duration`."""
    match = PATTERN.match(text)
    if match is None:
        raise ValueError(f"a duration must be {FORMAT_HINT}")
    return int(match.group(1)) * UNIT_SECONDS[match.group(2)]


def check_duration(text: str, *, allow_zero: bool) -> str | None:
    """Why ``text`` is not an acceptable duration (a message without the value), or None."""
    if PATTERN.match(text) is None:
        return f"must be {FORMAT_HINT}"
    seconds = duration_seconds(text)
    if seconds == 0 and not allow_zero:
        return "must be longer than zero"
    if seconds > MAX_SECONDS:
        return "must be at most 400 days"
    return None


def format_seconds(seconds: float) -> str:
    """The largest whole unit that expresses ``seconds`` exactly (``600`` -> ``10m``)."""
    whole = int(seconds)
    if whole != seconds or whole < 0:
        return f"{seconds:g}s"
    for unit in ("w", "d", "h", "m"):
        size = UNIT_SECONDS[unit]
        if whole and whole % size == 0:
            return f"{whole // size}{unit}"
    return f"{whole}s"
