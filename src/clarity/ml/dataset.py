"""The Depresjon data set as model rows: feature vectors, labels, MADRS and subject ids.

Depresjon: Garcia-Ceja E, Riegler M, Jakobsen P, et al. "Depresjon: A Motor Activity Database
of Depression Episodes in Unipolar and Bipolar Patients." MMSys '18, 2018,
doi:10.1145/3204949.3208125 (23 patients with MADRS at the start and end of the recording,
32 controls without).

Rows come at one of two granularities, both from the engine's documented features
(:mod:`clarity.actigraphy.features`):

* ``"week"`` (default): one row per window of 7 valid days, windows starting at each valid
  day in turn (stride one valid day), each window's raw minutes analysed on their own exactly
  as a served prediction from a patient's most recent 7 valid days would be. Fixed-length
  windows keep recording length out of the features (IS and day-to-day SDs depend on how many
  days they summarise, and controls were recorded longer), and match what is served.
* ``"recording"``: one row per person, the whole recording.

Features that measure how much data there is rather than behaviour (valid days, scored nights,
wear time) are left out of the model inputs: they reflect the recording protocol, not the
person. The fingerprint is SHA-256 over every file read (relative path and bytes), so a model
card can name exactly the data its numbers came from.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Final, Literal

import numpy as np

from clarity import actigraphy
from clarity.actigraphy.features import (
    DEFAULT_SETTINGS,
    FEATURE_DOCS,
    FEATURE_NAMES,
    Analysis,
    DayFeatures,
    FeatureSettings,
    analyse,
)
from clarity.actigraphy.readers import depresjon_dir, depresjon_files, read_depresjon_csv
from clarity.actigraphy.series import EpochSeries
from clarity.ml.evaluation import FloatArray, JsonValue, StrArray

Granularity = Literal["week", "recording"]

#: Inputs left out: amounts of data, not behaviour.
DATA_QUANTITY_FEATURES: Final = frozenset(
    {"valid_days", "scored_nights", "wear_fraction", "mean_wear_hours", "sd_wear_hours"}
)
#: The engine's features the models read, in vector order.
MODEL_FEATURES: Final[tuple[str, ...]] = tuple(
    name for name in FEATURE_NAMES if name not in DATA_QUANTITY_FEATURES
)
WINDOW_VALID_DAYS: Final = 7
_EPOCH_DAY: Final = dt.date(1970, 1, 1)


@dataclass(frozen=True)
class Subject:
    """One person of Depresjon: the file stem, the group label and MADRS where rated."""

    id: str
    depressed: bool
    madrs_start: float
    madrs_end: float

    @property
    def madrs(self) -> float:
        """Severity over the recording: the mean of the MADRS at its start and its end."""
        return (self.madrs_start + self.madrs_end) / 2.0


@dataclass(frozen=True)
class FeatureRows:
    """Model rows with the subject each belongs to; every split must group by ``subjects``."""

    features: FloatArray
    feature_names: tuple[str, ...]
    feature_labels: Mapping[str, str]
    subjects: StrArray
    labels: FloatArray
    madrs: FloatArray
    window_start: tuple[str, ...]
    granularity: Granularity
    fingerprint: str
    excluded: Mapping[str, str] = field(default_factory=dict)
    provenance: Mapping[str, JsonValue] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = self.subjects.size
        if self.features.shape != (n, len(self.feature_names)):
            raise ValueError("features must be rows x feature_names")
        if self.labels.shape != (n,) or self.madrs.shape != (n,) or len(self.window_start) != n:
            raise ValueError("labels, MADRS and window starts need one entry per row")

    @property
    def n_subjects(self) -> int:
        return int(np.unique(self.subjects).size)

    def subset(self, rows: np.ndarray) -> FeatureRows:
        """The rows selected by a boolean mask or index array."""
        index = np.arange(self.subjects.size)[rows]
        return FeatureRows(
            self.features[index],
            self.feature_names,
            self.feature_labels,
            self.subjects[index],
            self.labels[index],
            self.madrs[index],
            tuple(self.window_start[i] for i in index),
            self.granularity,
            self.fingerprint,
            self.excluded,
            self.provenance,
        )


def read_subjects(scores: Path) -> list[Subject]:
    """The people listed in Depresjon's ``scores.csv``, in file order."""
    text = scores.read_text(encoding="utf-8-sig")
    subjects: list[Subject] = []
    for line, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        stem = (row.get("number") or "").strip()
        group = stem.rsplit("_", 1)[0]
        if group not in ("condition", "control"):
            raise ValueError(f"{scores}, line {line}: 'number' is not condition_N or control_N")
        depressed = group == "condition"
        madrs = [(row.get(k) or "").strip() for k in ("madrs1", "madrs2")]
        if depressed and not all(v.isdigit() for v in madrs):
            raise ValueError(f"{scores}, line {line}: a patient needs whole MADRS scores")
        start, end = (float(v) if v.isdigit() else math.nan for v in madrs)
        subjects.append(Subject(stem, depressed, start, end))
    return subjects


def data_fingerprint(root: Path, files: list[Path]) -> str:
    """SHA-256 over each file's path relative to ``root`` and its bytes, in the order given."""
    digest = hashlib.sha256()
    for path in files:
        content = path.read_bytes()
        name = path.relative_to(root).as_posix().encode()
        digest.update(len(name).to_bytes(8, "big") + name)
        digest.update(len(content).to_bytes(8, "big") + content)
    return digest.hexdigest()


def feature_code_fingerprint() -> str:
    """SHA-256 over the actigraphy engine's source files: the feature code the rows came from.

    Feature values change when the engine does; a model card quoting numbers names this
    alongside the data fingerprint.
    """
    package = Path(actigraphy.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(package.glob("*.py")):
        content = path.read_bytes()
        digest.update(path.name.encode() + b"\0" + len(content).to_bytes(8, "big") + content)
    return digest.hexdigest()


def _day_number(date: dt.date) -> int:
    return (date - _EPOCH_DAY).days


def _model_vector(series: EpochSeries, settings: FeatureSettings) -> tuple[FloatArray, int]:
    recording = analyse(series, settings)
    values = recording.features.values
    return np.array([values[n] for n in MODEL_FEATURES], dtype=np.float64), recording.valid_days


def _span(series: EpochSeries, first_day: int, last_day: int) -> EpochSeries:
    day_of_epoch = series.local_day_numbers()
    inside = (day_of_epoch >= first_day) & (day_of_epoch <= last_day)
    return EpochSeries(
        series.timestamps[inside], series.counts[inside], series.epoch_seconds, series.timezone
    )


@dataclass(frozen=True)
class WeekWindow:
    """A span of 7 valid days: its first and last local date (inclusive), the valid days
    its own analysis found, and its model feature vector (:data:`MODEL_FEATURES` order)."""

    start: dt.date
    end: dt.date
    valid_days: int
    features: FloatArray


@dataclass(frozen=True)
class LatestWeek:
    """What a served prediction reads: every local day of the series (validity and wear
    hours, to explain a refusal) and the most recent qualifying window, if any."""

    days: tuple[DayFeatures, ...]
    window: WeekWindow | None

    @property
    def valid_days(self) -> int:
        return sum(d.valid for d in self.days)


def _week_spans(
    series: EpochSeries, whole: Analysis, settings: FeatureSettings, latest_only: bool
) -> list[WeekWindow]:
    valid = [_day_number(d.date) for d in whole.days if d.valid]
    starts = range(len(valid) - WINDOW_VALID_DAYS + 1)
    windows: list[WeekWindow] = []
    for first in reversed(starts) if latest_only else starts:
        low, high = valid[first], valid[first + WINDOW_VALID_DAYS - 1]
        vector, valid_days = _model_vector(_span(series, low, high), settings)
        if valid_days >= WINDOW_VALID_DAYS:
            start, end = (_EPOCH_DAY + dt.timedelta(days=d) for d in (low, high))
            windows.append(WeekWindow(start, end, valid_days, vector))
            if latest_only:
                break
    return windows


def week_windows(
    series: EpochSeries, settings: FeatureSettings = DEFAULT_SETTINGS, *, latest_only: bool = False
) -> list[tuple[dt.date, FloatArray]]:
    """Feature vectors of every span of 7 valid days (stride one valid day), with start dates.

    Valid days are those of the whole recording; each span (from its first valid day's local
    midnight to the end of its seventh) is then analysed on its own raw minutes, and kept only
    if it still has 7 valid days there (non-wear is re-detected inside the span). With
    ``latest_only``, only the most recent span that qualifies: what a served prediction reads.
    """
    whole = analyse(series, settings)
    return [(w.start, w.features) for w in _week_spans(series, whole, settings, latest_only)]


def latest_week(series: EpochSeries, settings: FeatureSettings = DEFAULT_SETTINGS) -> LatestWeek:
    """The window a served prediction reads, by the very code that builds training rows
    (``week_windows(latest_only=True)``), so served and training features cannot drift."""
    whole = analyse(series, settings)
    spans = _week_spans(series, whole, settings, latest_only=True)
    return LatestWeek(whole.days, spans[0] if spans else None)


def load_depresjon(
    root: Path | None = None,
    *,
    granularity: Granularity = "week",
    settings: FeatureSettings = DEFAULT_SETTINGS,
) -> FeatureRows:
    """Every Depresjon person as model rows (see the module docstring for the granularity).

    A person with no span of 7 valid days has no ``"week"`` rows and is listed in
    ``excluded`` with the reason; nobody is silently dropped.
    """
    if granularity not in ("week", "recording"):
        raise ValueError("granularity must be 'week' or 'recording'")
    base = depresjon_dir() if root is None else root
    scores = base / "scores.csv"
    subjects = {s.id: s for s in read_subjects(scores)}
    files = depresjon_files(base)
    missing = sorted(set(subjects) ^ {f.stem for f in files})
    if missing:
        raise ValueError(f"scores.csv and the recordings disagree on {len(missing)} people")
    fingerprint = data_fingerprint(base, [scores, *files])

    rows: list[FloatArray] = []
    ids: list[str] = []
    starts: list[str] = []
    excluded: dict[str, str] = {}
    for path in files:
        series = read_depresjon_csv(path)
        if granularity == "recording":
            vector, _ = _model_vector(series, settings)
            found = [(series.split_days()[0].date, vector)]
        else:
            found = week_windows(series, settings)
        if not found:
            excluded[path.stem] = f"fewer than {WINDOW_VALID_DAYS} valid days"
        for start, vector in found:
            rows.append(vector)
            ids.append(path.stem)
            starts.append(start.isoformat())
    people = [subjects[i] for i in ids]
    return FeatureRows(
        features=np.vstack(rows) if rows else np.zeros((0, len(MODEL_FEATURES))),
        feature_names=MODEL_FEATURES,
        feature_labels={name: FEATURE_DOCS[name].label for name in MODEL_FEATURES},
        subjects=np.array(ids, dtype=str),
        labels=np.array([float(p.depressed) for p in people], dtype=np.float64),
        madrs=np.array([p.madrs for p in people], dtype=np.float64),
        window_start=tuple(starts),
        granularity=granularity,
        fingerprint=fingerprint,
        excluded=excluded,
        provenance={
            "feature_code_sha256": feature_code_fingerprint(),
            "feature_settings": asdict(settings),
            "window_valid_days": WINDOW_VALID_DAYS if granularity == "week" else None,
            "madrs_target": "mean of madrs1 and madrs2",
        },
    )
