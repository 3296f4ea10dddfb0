"""``apple_health``: the ``export.xml`` of an Apple Health export, streamed.

Maps top-level ``<Record>`` elements by ``type``: ``HKQuantityTypeIdentifier`` HeartRate ->
``heart_rate``, RestingHeartRate -> ``resting_heart_rate``, HeartRateVariabilitySDNN ->
``hrv_sdnn``, StepCount -> ``steps``, OxygenSaturation -> ``spo2`` (HealthKit's percent unit
is a fraction 0-1, so 0.97 with unit ``%`` is stored as 97 %), RespiratoryRate ->
``respiratory_rate``, AppleSleepingWristTemperature -> ``skin_temperature``; and
``HKCategoryTypeIdentifierSleepAnalysis`` -> ``sleep_stage``: AsleepCore -> light (Apple's
"core" sleep is stages N1 and N2), AsleepDeep -> deep, AsleepREM -> rem, Awake -> wake, one
record at the start of each interval (the stage holds until the next record). Ignored and
counted in ``skipped`` by kind: InBed (in bed is not a stage: the wearer may be awake or
asleep), AsleepUnspecified and the pre-iOS 16 Asleep (asleep, stage unknown), every other
Record type, Records inside a ``<Correlation>`` (the same samples appear at top level), and
every other top-level element (``Workout``, ``ActivitySummary``, ``ClinicalRecord``, ...).
``<Me>`` (birth date, sex) and each Record's ``sourceName``/``device`` (often a person's name)
are never read: every sample gets ``options.source``, default ``apple_health``.

Times: ``startDate`` (``2024-01-05 09:30:00 +0100``), which carries its offset. Units are
mapped to the catalogue's (``count/min`` -> ``/min``, ``degF`` -> ``Cel``).

Streaming: the file is fed to expat in 1 MiB pieces and each Record is turned into a record
from its attributes alone — no element tree is built, so memory stays flat on
multi-gigabyte exports (ElementTree.iterparse would build one and have to prune it).
Entity declarations are refused (a real export's DTD declares none; declaring entities is how
"billion laughs" files blow up a parser).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import BinaryIO
from xml.parsers import expat

from clarity.biometrics.formats import (
    Format,
    FormatError,
    ImportOptions,
    Record,
    Records,
    SkipCounts,
)
from clarity.biometrics.formats.units import catalogue_unit

NAME = "apple_health"
DEFAULT_SOURCE = "apple_health"
PIECE = 1 << 20
ROOT = "HealthData"

QUANTITY_STREAMS = {
    "HKQuantityTypeIdentifierHeartRate": "heart_rate",
    "HKQuantityTypeIdentifierRestingHeartRate": "resting_heart_rate",
    "HKQuantityTypeIdentifierHeartRateVariabilitySDNN": "hrv_sdnn",
    "HKQuantityTypeIdentifierStepCount": "steps",
    "HKQuantityTypeIdentifierOxygenSaturation": "spo2",
    "HKQuantityTypeIdentifierRespiratoryRate": "respiratory_rate",
    "HKQuantityTypeIdentifierAppleSleepingWristTemperature": "skin_temperature",
}
SLEEP_TYPE = "HKCategoryTypeIdentifierSleepAnalysis"
SLEEP_STAGES = {
    "HKCategoryValueSleepAnalysisAwake": "wake",
    "HKCategoryValueSleepAnalysisAsleepCore": "light",
    "HKCategoryValueSleepAnalysisAsleepDeep": "deep",
    "HKCategoryValueSleepAnalysisAsleepREM": "rem",
}
SLEEP_STAGE_CODES = {"wake": 0, "light": 1, "deep": 2, "rem": 3}  # as streams.json codes them
SLEEP_UNIT = "{stage}"
# Types whose kind may be counted by name; anything else counts as "Record" (so that a
# hostile type attribute never reaches a report).
_KNOWN_PREFIXES = ("HKQuantityTypeIdentifier", "HKCategoryTypeIdentifier", "HKDataType")


def read(file: BinaryIO, options: ImportOptions) -> Records:
    skipped = SkipCounts()
    return Records(_records(file, options.source or DEFAULT_SOURCE, skipped), skipped)


def _records(file: BinaryIO, source: str, skipped: SkipCounts) -> Iterator[Record | None]:
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    out: list[Record | None] = []
    depth = 0
    seen_root = False

    def start(tag: str, attributes: dict[str, str]) -> None:
        nonlocal depth, seen_root
        depth += 1
        if depth == 1:
            if tag != ROOT:
                raise FormatError(f"not an Apple Health export.xml: the root must be <{ROOT}>")
            seen_root = True
        elif depth == 2:
            if tag == "Record":
                record = _record(attributes, source)
                if isinstance(record, str):
                    skipped.skip(record)
                else:
                    out.append(record)
            elif tag not in ("ExportDate", "Me"):
                skipped.skip(tag if tag.isalnum() and len(tag) <= 40 else "element")

    def end(tag: str) -> None:
        nonlocal depth
        depth -= 1

    def entity(*_: object) -> None:
        raise FormatError("Apple Health export.xml must not declare XML entities")

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.EntityDeclHandler = entity
    broken: expat.ExpatError | None = None
    try:
        while piece := file.read(PIECE):
            parser.Parse(piece, False)
            yield from out
            out.clear()
        parser.Parse(b"", True)
    except expat.ExpatError as exc:
        broken = exc
    yield from out  # the records before the end, or before the break
    if not seen_root:
        raise FormatError("not an Apple Health export.xml: no well-formed <HealthData> root")
    if broken is not None:
        raise FormatError(
            f"Apple Health export.xml breaks off or is malformed at line {broken.lineno}"
        )


def _record(attributes: dict[str, str], source: str) -> Record | str | None:
    """A record, None (unreadable), or why it maps to no stream (the kind to count)."""
    kind = attributes.get("type", "")
    stream = QUANTITY_STREAMS.get(kind)
    if stream is None and kind != SLEEP_TYPE:
        return kind if kind.startswith(_KNOWN_PREFIXES) and len(kind) <= 80 else "Record"
    ts = _time(attributes.get("startDate"))
    raw = attributes.get("value")
    if ts is None or raw is None:
        return None
    if kind == SLEEP_TYPE:
        stage = SLEEP_STAGES.get(raw)
        if stage is None:
            known = raw.startswith("HKCategoryValueSleepAnalysis") and len(raw) <= 80
            return raw if known else SLEEP_TYPE
        value = SLEEP_STAGE_CODES[stage]
        return {
            "stream": "sleep_stage",
            "ts": ts,
            "value": value,
            "unit": SLEEP_UNIT,
            "source": source,
        }
    try:
        number = float(raw)
    except ValueError:
        return None
    unit = attributes.get("unit")
    if stream is None:  # pragma: no cover - excluded above
        return None
    if stream == "spo2" and unit == "%":  # HealthKit's percent is a fraction 0-1
        number, unit = round(number * 100.0, 9), "%"
    else:
        number, unit = catalogue_unit(stream, unit, number)
    return {"stream": stream, "ts": ts, "value": number, "unit": unit, "source": source}


def _time(text: str | None) -> datetime | None:
    """``2024-01-05 09:30:00 +0100`` (the export's form) or ISO 8601, aware; else None."""
    if text is None or len(text) > 40:
        return None
    if len(text) == 25 and text[19] == " ":
        text = text[:19] + text[20:]
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


FORMAT = Format(
    name=NAME,
    description="Apple Health export.xml: heart rate, HRV, steps, SpO2, breathing, sleep stages",
    read=read,
)
