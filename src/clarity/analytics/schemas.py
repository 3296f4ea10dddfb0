"""Response bodies of the actigraphy analytics API (numbers are ``null`` only where the
recording cannot support them; the summary refuses with 422 instead for headline metrics)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

SleepAlgorithmParam = Literal["oakley", "cole_kripke", "sadeh"]
NonwearParam = Literal["choi", "troiano"]
ConventionParam = Literal["original", "pyactigraphy"]


class AnalysisSettings(BaseModel):
    """The choices the numbers depend on, echoed so a result is never read out of context."""

    sleep_algorithm: SleepAlgorithmParam = Field(
        description="oakley (Oakley 1997, Actiwatch, threshold 40), cole_kripke (Cole et al. "
        "1992, 1-min mean-activity equation) or sadeh (Sadeh et al. 1994)."
    )
    webster_rescoring: bool = Field(description="Webster et al. 1982 rescoring rules applied.")
    nonwear_algorithm: NonwearParam = Field(
        description="choi (Choi et al. 2011, 90 min of zeros) or troiano (Troiano et al. 2008)."
    )
    convention: ConventionParam = Field(
        description="IS/IV formula: original (Witting et al. 1990) or pyactigraphy (ddof=1)."
    )
    min_wear_hours: float = Field(description="Wear time that makes a local day valid.")
    min_valid_days: int = Field(description="Valid days needed for rhythm metrics and SRI.")
    min_scored_nights: int = Field(description="Scored nights needed for nightly means.")
    sedentary_below_cpm: float
    active_from_cpm: float


class Range(BaseModel):
    start: datetime | None = Field(description="Requested start (inclusive); null: open.")
    end: datetime | None = Field(description="Requested end (exclusive); null: open.")
    first_sample: datetime | None = Field(description="First activity sample analysed.")
    last_sample: datetime | None = Field(description="Last activity sample analysed.")
    samples: int = Field(description="Activity-count samples analysed.")
    timezone: str = Field(description="The patient's IANA zone: local days and clock times.")


class ClockMetric(BaseModel):
    value: float = Field(description="Mean activity count per minute in the window.")
    onset_hours: float = Field(description="Window start, hours after local midnight.")


class Cosinor(BaseModel):
    mesor: float
    mesor_ci: tuple[float, float]
    amplitude: float
    amplitude_ci: tuple[float, float]
    acrophase_hours: float = Field(description="Fitted peak, hours after local midnight.")
    acrophase_ci_hours: tuple[float, float]
    r_squared: float
    p_value: float
    n: int


class Fragmentation(BaseModel):
    k_ra: float = Field(description="Rest-to-activity transition probability (Lim 2011).")
    k_ar: float = Field(description="Activity-to-rest transition probability.")


class SleepMeans(BaseModel):
    """Means over scored nights (clock times: circular mean)."""

    time_in_bed_minutes: float
    total_sleep_minutes: float
    sleep_efficiency: float
    sleep_onset_latency_minutes: float
    waso_minutes: float
    awakenings: float
    sleep_midpoint_hours: float


class Summary(BaseModel):
    range: Range
    settings: AnalysisSettings
    computed_at: datetime = Field(description="When these numbers were computed.")
    cached: bool = Field(description="True when served from the cache without recomputing.")
    days: int = Field(description="Local calendar days the range touches.")
    valid_days: int
    scored_nights: int
    wear_fraction: float = Field(description="Share of the range's epochs worn (0-1).")
    interdaily_stability: float
    intradaily_variability: float
    relative_amplitude: float
    l5: ClockMetric
    m10: ClockMetric
    cosinor: Cosinor
    fragmentation: Fragmentation
    sleep_regularity_index: float
    sleep: SleepMeans
    features: dict[str, float | None] = Field(
        description="The recording's feature vector, in clarity.actigraphy.features "
        "FEATURE_NAMES order; null where it cannot be computed (see features_missing)."
    )
    features_missing: dict[str, str] = Field(description="Why each null feature is null.")


class NightOut(BaseModel):
    night_of: date = Field(description="The local date of the evening the night starts.")
    window_start: datetime
    window_end: datetime
    wear_fraction: float = Field(description="Share of the noon-to-noon window with data.")
    scored: bool
    reason: str | None = Field(description="Why the night was not scored.")
    rest_start: datetime | None = None
    rest_end: datetime | None = None
    time_in_bed_minutes: int | None = None
    total_sleep_minutes: int | None = None
    sleep_onset_latency_minutes: int | None = None
    waso_minutes: int | None = None
    sleep_efficiency: float | None = None
    awakenings: int | None = None
    sleep_onset: datetime | None = None
    sleep_end: datetime | None = None
    sleep_midpoint: datetime | None = None
    sleep_midpoint_hours: float | None = None


class Nights(BaseModel):
    range: Range
    settings: AnalysisSettings
    computed_at: datetime
    cached: bool
    nights: list[NightOut]
