"""A synthetic Apple Health ``export.xml`` of any size, written as a stream.

Shaped like a real export: the XML declaration and the ``HealthData`` DTD (element and
attribute declarations only, as Apple writes them), ``<ExportDate>``, a ``<Me>`` element with
(synthetic) birth date and sex, then ``<Record>`` elements of mixed types with ``sourceName``
and ``device`` attributes and ``MetadataEntry``/HRV beat-list children, interleaved with
``<Workout>``, ``<ActivitySummary>`` and ``<Correlation>`` elements. Deterministic for a
seed; a million records take a few seconds and never sit in memory.

:func:`write_export` returns what the ``apple_health`` reader must make of the file.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

DTD = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE HealthData [
<!-- HealthKit Export Version: 13 -->
<!ELEMENT HealthData (ExportDate,Me,(Record|Correlation|Workout|ActivitySummary|ClinicalRecord)*)>
<!ATTLIST HealthData
  locale CDATA #REQUIRED
>
<!ELEMENT ExportDate EMPTY>
<!ATTLIST ExportDate
  value CDATA #REQUIRED
>
<!ELEMENT Me EMPTY>
<!ATTLIST Me
  HKCharacteristicTypeIdentifierDateOfBirth         CDATA #REQUIRED
  HKCharacteristicTypeIdentifierBiologicalSex       CDATA #REQUIRED
  HKCharacteristicTypeIdentifierBloodType           CDATA #REQUIRED
  HKCharacteristicTypeIdentifierFitzpatrickSkinType CDATA #REQUIRED
  HKCharacteristicTypeIdentifierCardioFitnessMedicationsUse CDATA #REQUIRED
>
<!ELEMENT Record ((MetadataEntry|HeartRateVariabilityMetadataList)*)>
<!ATTLIST Record
  type          CDATA #REQUIRED
  unit          CDATA #IMPLIED
  value         CDATA #IMPLIED
  sourceName    CDATA #REQUIRED
  sourceVersion CDATA #IMPLIED
  device        CDATA #IMPLIED
  creationDate  CDATA #IMPLIED
  startDate     CDATA #REQUIRED
  endDate       CDATA #REQUIRED
>
<!ELEMENT MetadataEntry EMPTY>
<!ATTLIST MetadataEntry
  key   CDATA #REQUIRED
  value CDATA #REQUIRED
>
<!ELEMENT HeartRateVariabilityMetadataList (InstantaneousBeatsPerMinute*)>
<!ELEMENT InstantaneousBeatsPerMinute EMPTY>
<!ATTLIST InstantaneousBeatsPerMinute
  bpm  CDATA #REQUIRED
  time CDATA #REQUIRED
>
<!ELEMENT Correlation ((MetadataEntry|Record)*)>
<!ATTLIST Correlation
  type          CDATA #REQUIRED
  sourceName    CDATA #REQUIRED
  sourceVersion CDATA #IMPLIED
  device        CDATA #IMPLIED
  creationDate  CDATA #IMPLIED
  startDate     CDATA #REQUIRED
  endDate       CDATA #REQUIRED
>
<!ELEMENT Workout ((MetadataEntry|WorkoutEvent|WorkoutStatistics|WorkoutRoute)*)>
<!ATTLIST Workout
  workoutActivityType   CDATA #REQUIRED
  duration              CDATA #IMPLIED
  durationUnit          CDATA #IMPLIED
  sourceName            CDATA #REQUIRED
  sourceVersion         CDATA #IMPLIED
  device                CDATA #IMPLIED
  creationDate          CDATA #IMPLIED
  startDate             CDATA #REQUIRED
  endDate               CDATA #REQUIRED
>
<!ELEMENT WorkoutEvent EMPTY>
<!ATTLIST WorkoutEvent
  type         CDATA #REQUIRED
  date         CDATA #REQUIRED
  duration     CDATA #IMPLIED
  durationUnit CDATA #IMPLIED
>
<!ELEMENT WorkoutStatistics EMPTY>
<!ATTLIST WorkoutStatistics
  type      CDATA #REQUIRED
  startDate CDATA #REQUIRED
  endDate   CDATA #REQUIRED
  average   CDATA #IMPLIED
  minimum   CDATA #IMPLIED
  maximum   CDATA #IMPLIED
  sum       CDATA #IMPLIED
  unit      CDATA #IMPLIED
>
<!ELEMENT WorkoutRoute ((MetadataEntry|FileReference)*)>
<!ATTLIST WorkoutRoute
  sourceName    CDATA #REQUIRED
  sourceVersion CDATA #IMPLIED
  device        CDATA #IMPLIED
  creationDate  CDATA #IMPLIED
  startDate     CDATA #REQUIRED
  endDate       CDATA #REQUIRED
>
<!ELEMENT FileReference EMPTY>
<!ATTLIST FileReference
  path CDATA #REQUIRED
>
<!ELEMENT ActivitySummary EMPTY>
<!ATTLIST ActivitySummary
  dateComponents           CDATA #IMPLIED
  activeEnergyBurned       CDATA #IMPLIED
  activeEnergyBurnedGoal   CDATA #IMPLIED
  activeEnergyBurnedUnit   CDATA #IMPLIED
  appleMoveTime            CDATA #IMPLIED
  appleMoveTimeGoal        CDATA #IMPLIED
  appleExerciseTime        CDATA #IMPLIED
  appleExerciseTimeGoal    CDATA #IMPLIED
  appleStandHours          CDATA #IMPLIED
  appleStandHoursGoal      CDATA #IMPLIED
>
<!ELEMENT ClinicalRecord EMPTY>
<!ATTLIST ClinicalRecord
  type              CDATA #REQUIRED
  identifier        CDATA #REQUIRED
  sourceName        CDATA #REQUIRED
  sourceURL         CDATA #REQUIRED
  fhirVersion       CDATA #REQUIRED
  receivedDate      CDATA #REQUIRED
  resourceFilePath  CDATA #REQUIRED
>
]>
"""

WATCH = (
    'sourceName="Alex&#8217;s Apple Watch" sourceVersion="10.2" device="&lt;&lt;HKDevice: '
    "0x283a1c0f0&gt;, name:Apple Watch, manufacturer:Apple Inc., model:Watch, "
    'hardware:Watch6,1, software:10.2&gt;"'
)
PHONE = 'sourceName="Alex&#8217;s iPhone" sourceVersion="17.2"'
OFFSET = "+0100"
STEP_SECONDS = 7  # each record starts this long after the one before
START = date(2023, 1, 1).toordinal()
EVERY_OTHER_ELEMENT = 5000  # a Workout, ActivitySummary and Correlation per this many records
UNREADABLE_EVERY = 1000  # one record in this many (a HeartRate) has an unreadable startDate

SLEEP_VALUES = (
    ("HKCategoryValueSleepAnalysisAsleepCore", "sleep_stage"),
    ("HKCategoryValueSleepAnalysisAsleepDeep", "sleep_stage"),
    ("HKCategoryValueSleepAnalysisAsleepREM", "sleep_stage"),
    ("HKCategoryValueSleepAnalysisAwake", "sleep_stage"),
    ("HKCategoryValueSleepAnalysisInBed", None),
    ("HKCategoryValueSleepAnalysisAsleepUnspecified", None),
)


@dataclass
class Expected:
    """What the reader must yield for a generated export."""

    records: int = 0  # Record elements written at top level
    streams: Counter[str] = field(default_factory=Counter)  # importable records by stream
    unreadable: int = 0  # records the reader yields as None
    skipped: Counter[str] = field(default_factory=Counter)  # by kind, as Records.skipped

    @property
    def yielded(self) -> int:
        """How many items (records and Nones) the reader yields."""
        return sum(self.streams.values()) + self.unreadable


def write_export(path: Path, records: int, *, seed: int = 0) -> Expected:
    """Write an export with ``records`` top-level Records to ``path``; what to expect of it."""
    rng = random.Random(seed)
    expected = Expected(records=records)
    with path.open("w", encoding="utf-8", newline="\n") as out:
        out.write(DTD)
        out.write('<HealthData locale="en_GB">\n')
        out.write(f' <ExportDate value="2024-06-01 08:00:00 {OFFSET}"/>\n')
        out.write(
            ' <Me HKCharacteristicTypeIdentifierDateOfBirth="1985-04-12" '
            'HKCharacteristicTypeIdentifierBiologicalSex="HKBiologicalSexFemale" '
            'HKCharacteristicTypeIdentifierBloodType="HKBloodTypeNotSet" '
            'HKCharacteristicTypeIdentifierFitzpatrickSkinType="HKFitzpatrickSkinTypeNotSet" '
            'HKCharacteristicTypeIdentifierCardioFitnessMedicationsUse="None"/>\n'
        )
        buffer: list[str] = []
        day_text = ""
        day_number = -1
        for i in range(records):
            seconds = i * STEP_SECONDS
            if seconds // 86_400 != day_number:
                day_number = seconds // 86_400
                day_text = date.fromordinal(START + day_number).isoformat()
            in_day = seconds % 86_400
            stamp = (
                f"{day_text} {in_day // 3600:02d}:{in_day // 60 % 60:02d}:{in_day % 60:02d} "
                f"{OFFSET}"
            )
            buffer.append(_record(i, stamp, rng, expected))
            if i % EVERY_OTHER_ELEMENT == EVERY_OTHER_ELEMENT - 1:
                buffer.append(_others(stamp, day_text))
                expected.skipped.update(("Workout", "ActivitySummary", "Correlation"))
            if len(buffer) >= 4096:
                out.write("".join(buffer))
                buffer.clear()
        out.write("".join(buffer))
        out.write("</HealthData>\n")
    return expected


def _quantity(kind: str, unit: str, value: str, stamp: str, source: str, inner: str = "") -> str:
    head = (
        f' <Record type="HKQuantityTypeIdentifier{kind}" {source} unit="{unit}" '
        f'creationDate="{stamp}" startDate="{stamp}" endDate="{stamp}" value="{value}"'
    )
    return f"{head}>\n{inner} </Record>\n" if inner else f"{head}/>\n"


def _record(i: int, stamp: str, rng: random.Random, expected: Expected) -> str:
    bucket = i % 100
    if bucket < 50:
        if i % UNREADABLE_EVERY == 49:  # in the heart-rate bucket
            expected.unreadable += 1
            stamp = "yesterday at noon"
        else:
            expected.streams["heart_rate"] += 1
        inner = (
            '  <MetadataEntry key="HKMetadataKeyHeartRateMotionContext" value="1"/>\n'
            if bucket % 5 == 0
            else ""
        )
        return _quantity("HeartRate", "count/min", str(rng.randint(48, 165)), stamp, WATCH, inner)
    if bucket < 65 or bucket == 99:
        expected.streams["steps"] += 1
        source = PHONE if bucket % 2 else WATCH
        return _quantity("StepCount", "count", str(rng.randint(0, 180)), stamp, source)
    if bucket < 70:
        expected.skipped["HKQuantityTypeIdentifierActiveEnergyBurned"] += 1
        value = f"{rng.uniform(0.1, 9.0):.3f}"
        return _quantity("ActiveEnergyBurned", "kcal", value, stamp, WATCH)
    if bucket < 75:
        expected.streams["hrv_sdnn"] += 1
        beats = "".join(
            f'   <InstantaneousBeatsPerMinute bpm="{rng.randint(55, 80)}" time="9:3{k}:0{k} AM"/>\n'
            for k in range(4)
        )
        inner = (
            f"  <HeartRateVariabilityMetadataList>\n{beats}  </HeartRateVariabilityMetadataList>\n"
        )
        return _quantity(
            "HeartRateVariabilitySDNN", "ms", f"{rng.uniform(15, 120):.4f}", stamp, WATCH, inner
        )
    if bucket < 78:
        expected.streams["spo2"] += 1
        return _quantity("OxygenSaturation", "%", f"0.{rng.randint(90, 99)}", stamp, WATCH)
    if bucket < 81:
        expected.streams["respiratory_rate"] += 1
        value = f"{rng.uniform(11, 20):.1f}"
        return _quantity("RespiratoryRate", "count/min", value, stamp, WATCH)
    if bucket == 81:
        expected.streams["resting_heart_rate"] += 1
        return _quantity("RestingHeartRate", "count/min", str(rng.randint(48, 75)), stamp, WATCH)
    if bucket == 82:
        expected.streams["skin_temperature"] += 1
        value = f"{rng.uniform(34.5, 36.5):.2f}"
        return _quantity("AppleSleepingWristTemperature", "degC", value, stamp, WATCH)
    if bucket < 93:
        value, stream = SLEEP_VALUES[(i // 100) % len(SLEEP_VALUES)]
        if stream is None:
            expected.skipped[value] += 1
        else:
            expected.streams[stream] += 1
        return (
            f' <Record type="HKCategoryTypeIdentifierSleepAnalysis" {WATCH} '
            f'creationDate="{stamp}" startDate="{stamp}" endDate="{stamp}" value="{value}">\n'
            '  <MetadataEntry key="HKTimeZone" value="Europe/Oslo"/>\n </Record>\n'
        )
    kind, unit, value = (
        ("BodyMass", "kg", f"{rng.uniform(60, 90):.1f}")
        if bucket % 2
        else ("DistanceWalkingRunning", "km", f"{rng.uniform(0, 0.2):.4f}")
    )
    expected.skipped[f"HKQuantityTypeIdentifier{kind}"] += 1
    return _quantity(kind, unit, value, stamp, PHONE)


def _others(stamp: str, day_text: str) -> str:
    return (
        f' <Workout workoutActivityType="HKWorkoutActivityTypeWalking" duration="31.5" '
        f'durationUnit="min" {WATCH} creationDate="{stamp}" startDate="{stamp}" '
        f'endDate="{stamp}">\n'
        '  <MetadataEntry key="HKIndoorWorkout" value="0"/>\n'
        f'  <WorkoutEvent type="HKWorkoutEventTypeSegment" date="{stamp}" duration="10" '
        'durationUnit="min"/>\n'
        f'  <WorkoutStatistics type="HKQuantityTypeIdentifierHeartRate" startDate="{stamp}" '
        f'endDate="{stamp}" average="112" minimum="90" maximum="131" unit="count/min"/>\n'
        f'  <WorkoutRoute {WATCH} startDate="{stamp}" endDate="{stamp}">\n'
        '   <FileReference path="/workout-routes/route_1.gpx"/>\n'
        "  </WorkoutRoute>\n"
        " </Workout>\n"
        f' <ActivitySummary dateComponents="{day_text}" activeEnergyBurned="431.2" '
        'activeEnergyBurnedGoal="500" activeEnergyBurnedUnit="kcal" appleMoveTime="0" '
        'appleMoveTimeGoal="0" appleExerciseTime="34" appleExerciseTimeGoal="30" '
        'appleStandHours="11" appleStandHoursGoal="12"/>\n'
        f' <Correlation type="HKCorrelationTypeIdentifierBloodPressure" {PHONE} '
        f'creationDate="{stamp}" startDate="{stamp}" endDate="{stamp}">\n'
        f'  <Record type="HKQuantityTypeIdentifierHeartRate" {PHONE} unit="count/min" '
        f'startDate="{stamp}" endDate="{stamp}" value="71"/>\n'
        f'  <Record type="HKQuantityTypeIdentifierBloodPressureSystolic" {PHONE} unit="mmHg" '
        f'startDate="{stamp}" endDate="{stamp}" value="121"/>\n'
        " </Correlation>\n"
    )
