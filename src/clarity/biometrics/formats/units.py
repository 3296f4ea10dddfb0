"""Units as the stream catalogue (:mod:`clarity.biometrics.streams`) accepts them.

Files spell units their own way (Apple Health writes heart rate in ``count/min``, SpO2 as a
fraction with unit ``%``); :func:`catalogue_unit` turns a value and its file's unit into a
value and a unit the stream accepts. A unit it does not know is passed on unchanged, so that
:func:`~clarity.biometrics.streams.check_sample` rejects the record as ``unknown_unit``
rather than the reader guessing.
"""

from __future__ import annotations

from collections.abc import Callable

from clarity.biometrics.streams import stream_types

Convert = Callable[[float], float]


def _same(value: float) -> float:
    return value


def _fraction_to_percent(value: float) -> float:
    return round(value * 100.0, 9)


def _seconds_to_ms(value: float) -> float:
    return round(value * 1000.0, 9)


def _fahrenheit_to_celsius(value: float) -> float:
    return round((value - 32.0) * 5.0 / 9.0, 9)


def _kelvin_to_celsius(value: float) -> float:
    return round(value - 273.15, 9)


# Other spellings by catalogue unit: file unit -> conversion to the catalogue unit.
_CONVERSIONS: dict[str, dict[str, Convert]] = {
    "/min": {
        "count/min": _same,  # HealthKit's spelling of beats or breaths per minute
        "beats/minute": _same,
        "breaths/minute": _same,
        "/minute": _same,
        "per minute": _same,
    },
    "%": {
        # a fraction 0-1 (UCUM "1", HealthKit's percent unit is a fraction too: see
        # clarity.biometrics.formats.apple_health, which converts before asking here)
        "1": _fraction_to_percent,
        "{fraction}": _fraction_to_percent,
    },
    "ms": {"s": _seconds_to_ms, "sec": _seconds_to_ms},
    "Cel": {
        "[degF]": _fahrenheit_to_celsius,
        "degF": _fahrenheit_to_celsius,
        "°F": _fahrenheit_to_celsius,
        "F": _fahrenheit_to_celsius,
        "K": _kelvin_to_celsius,
    },
}


def catalogue_unit(stream: str, unit: str | None, value: float) -> tuple[float, str | None]:
    """``(value, unit)`` in a unit the stream accepts, converted where the file's unit is a
    known other one; unchanged otherwise (an unknown stream or unit is check_sample's to
    reject; no unit stays no unit)."""
    kind = stream_types().get(stream)
    if unit is None or kind is None or kind.unit is None or kind.accepts_unit(unit):
        return value, unit
    convert = _CONVERSIONS.get(kind.unit, {}).get(unit)
    if convert is None:
        return value, unit
    return convert(value), kind.unit
