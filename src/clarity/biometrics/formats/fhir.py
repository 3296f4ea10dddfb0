"""``fhir_observations``: a FHIR R4 Bundle (JSON) of LOINC-coded vital-sign Observations.

Maps Observations (``valueQuantity``) by LOINC code (display names as LOINC gives them):
8867-4 "Heart rate" -> ``heart_rate``; 40443-4 "Heart rate --resting" ->
``resting_heart_rate``; 9279-1 "Respiratory rate" -> ``respiratory_rate``; 59408-5 "Oxygen
saturation in Arterial blood by Pulse oximetry" and 2708-6 "Oxygen saturation in Arterial
blood" -> ``spo2``; 80404-7 "R-R interval.standard deviation (Heart rate variability)" ->
``hrv_sdnn``; 55423-8 "Number of steps in unspecified time Pedometer" -> ``steps`` (the
count over the Observation's own period). Time: ``effectiveDateTime``, ``effectiveInstant``
or ``effectivePeriod.start``, with a zone (a date alone is no sample time: ``None``). Unit:
``valueQuantity.code`` when its system is UCUM, else ``unit``, mapped to the catalogue's.

Skipped and counted in ``skipped``: other resources (Patient, Device, ...: never read),
Observations without one of the codes above — among them 41950-7 "Number of steps in 24
hour Measured", a daily total that would double-count the per-interval ``steps`` samples —
Observations that are ``entered-in-error``, ``cancelled`` or only ``registered``, and
Observations with a ``dataAbsentReason`` instead of a value. Body temperature is not mapped:
no LOINC code for skin temperature as a measured quantity was verified. A malformed entry
(not an object, no time, no numeric value) is ``None``. Default source: ``fhir``.

A Bundle is bounded (servers page them), so it is read whole into memory (at most
:data:`~clarity.biometrics.formats.jsondoc.MAX_JSON_BYTES`), not streamed.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, BinaryIO

from clarity.biometrics.formats import (
    Format,
    FormatError,
    ImportOptions,
    Record,
    Records,
    SkipCounts,
)
from clarity.biometrics.formats.jsondoc import aware_time, load_json, number
from clarity.biometrics.formats.units import catalogue_unit

NAME = "fhir_observations"
DEFAULT_SOURCE = "fhir"
WHAT = "a FHIR Bundle"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"

LOINC_STREAMS = {
    "8867-4": "heart_rate",
    "40443-4": "resting_heart_rate",
    "9279-1": "respiratory_rate",
    "59408-5": "spo2",
    "2708-6": "spo2",
    "80404-7": "hrv_sdnn",
    "55423-8": "steps",
}
NOT_RESULTS = frozenset({"entered-in-error", "cancelled", "registered"})


def read(file: BinaryIO, options: ImportOptions) -> Records:
    skipped = SkipCounts()
    return Records(_records(file, options.source or DEFAULT_SOURCE, skipped), skipped)


def _records(file: BinaryIO, source: str, skipped: SkipCounts) -> Iterator[Record | None]:
    bundle = load_json(file, WHAT)
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise FormatError(f"not {WHAT}: the document's resourceType must be Bundle")
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        raise FormatError(f"not {WHAT}: entry must be an array")
    for entry in entries:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            yield None
            continue
        kind = resource.get("resourceType")
        if kind != "Observation":
            skipped.skip(kind if isinstance(kind, str) and kind.isalpha() else "resource")
            continue
        record = _observation(resource, source)
        if isinstance(record, str):
            skipped.skip(record)
        else:
            yield record


def _observation(resource: dict[str, Any], source: str) -> Record | str | None:
    """A record, None (malformed), or why it maps to no stream (the kind to count)."""
    stream = _stream(resource.get("code"))
    if stream is None:
        return "Observation:unknown_code"
    status = resource.get("status")
    if status in NOT_RESULTS:
        return f"Observation:{status}"
    quantity = resource.get("valueQuantity")
    if quantity is None and "dataAbsentReason" in resource:
        return "Observation:data_absent"
    ts = _effective(resource)
    value = number(quantity.get("value")) if isinstance(quantity, dict) else None
    if ts is None or value is None or not isinstance(quantity, dict):
        return None
    unit = quantity.get("code") if quantity.get("system") == UCUM else None
    unit = unit if isinstance(unit, str) else quantity.get("unit")
    if unit is not None and not isinstance(unit, str):
        return None
    value, unit = catalogue_unit(stream, unit, value)
    return {"stream": stream, "ts": ts, "value": value, "unit": unit, "source": source}


def _stream(code: object) -> str | None:
    codings = code.get("coding") if isinstance(code, dict) else None
    if not isinstance(codings, list):
        return None
    for coding in codings:
        if isinstance(coding, dict) and coding.get("system") == LOINC:
            stream = LOINC_STREAMS.get(str(coding.get("code")))
            if stream is not None:
                return stream
    return None


def _effective(resource: dict[str, Any]) -> datetime | None:
    if "effectiveDateTime" in resource:
        return aware_time(resource["effectiveDateTime"])
    if "effectiveInstant" in resource:
        return aware_time(resource["effectiveInstant"])
    period = resource.get("effectivePeriod")
    return aware_time(period.get("start")) if isinstance(period, dict) else None


FORMAT = Format(
    name=NAME,
    description="FHIR R4 Bundle of LOINC-coded Observations: heart rate, SpO2, breathing, steps",
    read=read,
)
