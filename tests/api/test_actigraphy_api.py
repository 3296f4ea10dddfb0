"""Actigraphy analytics through the real app: a real Depresjon recording uploaded through the
ingestion API gives exactly the engine's numbers; too little wear is a 422 naming the metric;
results are cached and a new overlapping upload invalidates them; every read is audited.

Depresjon: Garcia-Ceja E, et al. MMSys '18, 2018, doi:10.1145/3204949.3208125.
"""

from __future__ import annotations

import functools
import math
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from clarity.actigraphy.features import FEATURE_NAMES, Analysis, FeatureSettings, analyse
from clarity.actigraphy.readers import SharedDataMissing, depresjon_dir, read_depresjon_csv
from clarity.actigraphy.series import EpochSeries
from clarity.audit.models import AuditEvent
from clarity.auth.models import Role
from tests.api.test_biometrics_ingest import new_patient, send
from tests.conftest import Harness, bearer

RECORDING = "condition/condition_8.csv"  # 14 days, Europe/Oslo wall clock
BATCH = 100_000
SOURCE = "actiwatch-aw4"


def url(patient_id: str, view: str) -> str:
    return f"/api/v1/patients/{patient_id}/actigraphy/{view}"


@functools.cache
def depresjon() -> EpochSeries:
    try:
        path = depresjon_dir() / RECORDING
    except SharedDataMissing as exc:
        pytest.skip(f"Depresjon data set not available: {exc}")
    return read_depresjon_csv(path)


@functools.cache
def engine(algorithm: str = "oakley") -> Analysis:
    return analyse(depresjon(), FeatureSettings(sleep_algorithm=algorithm))  # type: ignore[arg-type]


def samples_of(seconds: np.ndarray, counts: np.ndarray, source: str = SOURCE) -> list[Any]:
    stamps = np.datetime_as_string(seconds.astype("datetime64[s]"), unit="s")
    return [
        {"stream": "activity_counts", "ts": f"{t}Z", "value": float(c), "source": source}
        for t, c in zip(stamps.tolist(), counts.tolist(), strict=True)
    ]


async def upload(h: Harness, token: str, patient_id: str, rows: list[Any], tag: str) -> None:
    for i in range(0, len(rows), BATCH):
        response = await send(h, token, patient_id, f"{tag}-{i}", rows[i : i + BATCH])
        assert response.status_code == 201, response.text
        assert response.json()["rejected"] == 0


async def with_recording(h: Harness) -> tuple[str, str]:
    clinician = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, clinician)  # timezone Europe/Oslo
    series = depresjon()
    await upload(h, clinician, patient_id, samples_of(series.utc_seconds, series.counts), "dep")
    return clinician, patient_id


def iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat()


async def test_summary_and_nights_equal_the_engine_on_the_same_file(h: Harness) -> None:
    clinician, patient_id = await with_recording(h)
    expected = engine().features.values

    response = await h.client.get(url(patient_id, "summary"), headers=bearer(clinician))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["range"]["samples"] == len(depresjon())
    assert body["range"]["timezone"] == "Europe/Oslo"
    assert body["settings"]["sleep_algorithm"] == "oakley"
    for name in (
        "interdaily_stability",
        "intradaily_variability",
        "relative_amplitude",
        "sleep_regularity_index",
        "wear_fraction",
    ):
        assert body[name] == expected[name], name
    assert body["valid_days"] == expected["valid_days"] == 13
    assert body["scored_nights"] == expected["scored_nights"]
    assert body["l5"] == {"value": expected["l5"], "onset_hours": expected["l5_onset_hours"]}
    assert body["m10"] == {"value": expected["m10"], "onset_hours": expected["m10_onset_hours"]}
    fit = engine().cosinor
    assert fit is not None
    assert body["cosinor"]["mesor"] == fit.mesor
    assert body["cosinor"]["amplitude_ci"] == list(fit.amplitude_ci)
    assert body["cosinor"]["acrophase_hours"] == fit.acrophase_hours
    assert body["fragmentation"] == {"k_ra": expected["k_ra"], "k_ar": expected["k_ar"]}
    assert body["sleep"]["total_sleep_minutes"] == expected["mean_total_sleep_minutes"]
    assert list(body["features"]) == list(FEATURE_NAMES)
    for name in FEATURE_NAMES:
        value = expected[name]
        assert body["features"][name] == (value if math.isfinite(value) else None), name

    # an explicit range covering the recording gives the same numbers
    seconds = depresjon().utc_seconds
    ranged = await h.client.get(
        url(patient_id, "summary"),
        params={"start": iso(int(seconds[0])), "end": iso(int(seconds[-1]) + 60)},
        headers=bearer(clinician),
    )
    assert ranged.status_code == 200, ranged.text
    assert ranged.json()["features"] == body["features"]

    nights = await h.client.get(url(patient_id, "nights"), headers=bearer(clinician))
    assert nights.status_code == 200, nights.text
    listed = nights.json()["nights"]
    assert [n["night_of"] for n in listed] == [n.night_of.isoformat() for n in engine().nights]
    for got, want in zip(listed, engine().nights, strict=True):
        assert got["scored"] is (not want.insufficient)
        if want.metrics is None:
            assert got["total_sleep_minutes"] is None
            assert got["reason"] == want.reason
            continue
        assert got["total_sleep_minutes"] == want.metrics.total_sleep_time
        assert got["time_in_bed_minutes"] == want.metrics.time_in_bed
        assert got["waso_minutes"] == want.metrics.waso
        assert got["sleep_onset_latency_minutes"] == want.metrics.sleep_onset_latency
        assert got["sleep_efficiency"] == want.metrics.sleep_efficiency
        assert got["awakenings"] == want.metrics.awakenings
        assert got["sleep_midpoint_hours"] == want.sleep_midpoint_hours
        assert datetime.fromisoformat(got["rest_start"]) == want.rest_start

    # another scoring algorithm: the engine with the same choice
    ck = await h.client.get(
        url(patient_id, "nights"), params={"algorithm": "cole_kripke"}, headers=bearer(clinician)
    )
    assert ck.status_code == 200, ck.text
    assert ck.json()["settings"]["sleep_algorithm"] == "cole_kripke"
    assert [n["total_sleep_minutes"] for n in ck.json()["nights"]] == [
        None if n.metrics is None else n.metrics.total_sleep_time
        for n in engine("cole_kripke").nights
    ]


async def test_cached_until_an_overlapping_upload_arrives(h: Harness) -> None:
    clinician, patient_id = await with_recording(h)
    seconds, counts = depresjon().utc_seconds, depresjon().counts
    last = int(seconds[-1])
    params = {"start": iso(int(seconds[0])), "end": iso(last + 4 * 86_400)}
    headers = bearer(clinician)

    first = (await h.client.get(url(patient_id, "summary"), params=params, headers=headers)).json()
    assert first["cached"] is False
    second = (await h.client.get(url(patient_id, "summary"), params=params, headers=headers)).json()
    assert second["cached"] is True
    assert second["computed_at"] == first["computed_at"]  # the engine did not run again
    assert second["features"] == first["features"]
    # one computation serves both views
    nights = (await h.client.get(url(patient_id, "nights"), params=params, headers=headers)).json()
    assert nights["cached"] is True
    assert nights["computed_at"] == first["computed_at"]
    # another parameter is another result
    other = await h.client.get(
        url(patient_id, "summary"), params={**params, "convention": "pyactigraphy"}, headers=headers
    )
    assert other.json()["cached"] is False
    assert other.json()["interdaily_stability"] != first["interdaily_stability"]

    # an upload outside the range leaves the cache valid
    year_before = seconds[:1440] - 365 * 86_400
    await upload(h, clinician, patient_id, samples_of(year_before, counts[:1440]), "old")
    still = (await h.client.get(url(patient_id, "summary"), params=params, headers=headers)).json()
    assert still["cached"] is True

    # three more days inside the range: the next call recomputes and sees them
    more = last + 60 + np.arange(3 * 1440, dtype=np.int64) * 60
    await upload(h, clinician, patient_id, samples_of(more, counts[-3 * 1440 :]), "more")
    fresh = (await h.client.get(url(patient_id, "summary"), params=params, headers=headers)).json()
    assert fresh["cached"] is False
    assert fresh["computed_at"] != first["computed_at"]
    assert fresh["range"]["samples"] == first["range"]["samples"] + 3 * 1440
    assert fresh["valid_days"] > first["valid_days"]
    again = (await h.client.get(url(patient_id, "nights"), params=params, headers=headers)).json()
    assert again["cached"] is True
    assert len(again["nights"]) > len(nights["nights"])


def week_of_minutes(days: int, start: datetime) -> tuple[np.ndarray, np.ndarray]:
    """A plain rhythm: 250 counts/min 07:00-23:00 UTC, a few small counts at night."""
    minute = np.arange(days * 1440)
    of_day = minute % 1440
    counts = np.where(minute % 10 == 0, 3.0, 0.0)
    counts[(of_day >= 7 * 60) & (of_day < 23 * 60)] = 250.0
    return int(start.timestamp()) + minute.astype(np.int64) * 60, counts


async def test_too_little_wear_is_a_422_naming_the_metric(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    headers = bearer(clinician)

    empty = await new_patient(h, clinician)
    response = await h.client.get(url(empty, "summary"), headers=headers)
    assert response.status_code == 422
    assert response.json()["code"] == "insufficient_data"
    assert response.json()["valid_days"] == 0
    nothing = await h.client.get(url(empty, "nights"), headers=headers)
    assert nothing.status_code == 200
    assert nothing.json()["nights"] == []

    two_days = await new_patient(h, clinician)
    seconds, counts = week_of_minutes(2, datetime(2025, 3, 3, tzinfo=UTC))
    await upload(h, clinician, two_days, samples_of(seconds, counts), "two")
    response = await h.client.get(url(two_days, "summary"), headers=headers)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "insufficient_data"
    assert body["metric"] == "interdaily_stability"
    assert (body["valid_days"], body["required"]) == (2, 7)  # Oslo days of 23, 24 and 1 h
    assert {f["metric"] for f in body["failures"]} >= {"sleep_regularity_index", "k_ra"}
    assert "Quillon" not in response.text

    # ten days, but the device lies still (zero counts) from 10:00 to 21:00 on six of them:
    # non-wear (Choi), so those days fall short of 16 h worn
    off = await new_patient(h, clinician)
    seconds, counts = week_of_minutes(10, datetime(2025, 3, 3, tzinfo=UTC))
    for day in range(6):
        counts[day * 1440 + 10 * 60 : day * 1440 + 21 * 60] = 0.0
    await upload(h, clinician, off, samples_of(seconds, counts), "off")
    response = await h.client.get(url(off, "summary"), headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["metric"] == "interdaily_stability"
    assert response.json()["valid_days"] < 7
    nights = await h.client.get(url(off, "nights"), headers=headers)
    assert nights.status_code == 200
    assert all(n["reason"] or n["scored"] for n in nights.json()["nights"])


async def test_ranges_sources_and_parameters_are_checked(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    headers = bearer(clinician)
    patient_id = await new_patient(h, clinician)
    seconds, counts = week_of_minutes(2, datetime(2025, 3, 3, tzinfo=UTC))
    await upload(h, clinician, patient_id, samples_of(seconds, counts), "a")
    await upload(h, clinician, patient_id, samples_of(seconds, counts, "other-watch"), "b")

    two = await h.client.get(url(patient_id, "nights"), headers=headers)
    assert two.status_code == 422
    assert two.json()["code"] == "multiple_sources"
    assert "other-watch" not in two.text
    one = await h.client.get(url(patient_id, "nights"), params={"source": SOURCE}, headers=headers)
    assert one.status_code == 200, one.text
    assert one.json()["range"]["samples"] == 2 * 1440

    for params, code in (
        ({"algorithm": "guesswork"}, "validation_error"),
        ({"convention": "mine"}, "validation_error"),
        ({"start": "2025-03-05T00:00:00Z", "end": "2025-03-04T00:00:00Z"}, "invalid_range"),
        ({"start": "2025-03-04T00:00:00"}, "timezone_required"),
    ):
        response = await h.client.get(url(patient_id, "summary"), params=params, headers=headers)
        assert response.status_code == 422, (params, response.text)
        assert response.json()["code"] == code, params


async def test_reads_are_audited_and_the_patient_reads_their_own(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, clinician)
    admin = await h.token_for(Role.admin)
    email, user_id = await h.user(Role.patient)
    linked = await h.client.post(
        f"/api/v1/patients/{patient_id}/account",
        json={"user_id": str(user_id)},
        headers=bearer(admin),
    )
    assert linked.status_code == 204, linked.text
    own = (await h.login(email))["access_token"]
    for token in (clinician, own, own):
        response = await h.client.get(url(patient_id, "nights"), headers=bearer(token))
        assert response.status_code == 200, response.text
    refused = await h.client.get(url(patient_id, "summary"), headers=bearer(own))
    assert refused.status_code == 422
    async with h.runtime.db.session(system=True) as session:
        events = (
            await session.scalars(
                select(AuditEvent)
                .where(AuditEvent.resource_id == patient_id, AuditEvent.action == "actigraphy.read")
                .order_by(AuditEvent.id)
            )
        ).all()
    assert [(e.details["view"], e.details["cached"]) for e in events] == [
        ("nights", False),
        ("nights", True),
        ("nights", True),
        ("summary", True),
    ]
