"""Baseline rules on real actigraphy: a Depresjon recording uploaded as activity counts
raises exactly the alerts that the dry run reports for it, and both equal the rule engine
run directly on the recording's daily metrics (so the database round trip, the window, the
patient's time zone and the daily features agree).

Depresjon: Garcia-Ceja E, et al. MMSys '18, 2018, doi:10.1145/3204949.3208125 (real minute
actigraphy, read from ../shared/data beside the repo). The recording is moved forward by a
whole number of weeks so that it ends in the past year, as a dry run looks back at most
365 days.
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from clarity.actigraphy.readers import (
    DEPRESJON_TIMEZONE,
    SharedDataMissing,
    depresjon_dir,
    depresjon_files,
    read_depresjon_csv,
)
from clarity.alerts.daily import daily_series
from clarity.alerts.models import Alert
from clarity.auth.models import Role
from clarity.rules import Firing, PatientSignals, default_pack, dry_run
from tests.api.test_alerts_pipeline import settle
from tests.conftest import Harness, bearer

RULE_IDS = ("activity-collapse", "sleep-collapse")


def _recording() -> tuple[list[dt.datetime], list[float]]:
    """The first condition recording on which the pack's baseline rules fire."""
    try:
        files = depresjon_files(depresjon_dir())
    except SharedDataMissing as exc:
        pytest.skip(f"Depresjon data set not available: {exc}")
    for path in sorted(files, key=lambda p: p.name):
        if not path.name.startswith("condition"):
            continue
        stamps, values = _shifted(path)
        if any(_reference(stamps, values, rule_id) for rule_id in RULE_IDS):
            return stamps, values
    pytest.fail("no Depresjon condition recording fires a baseline rule")


def _shifted(path: Path) -> tuple[list[dt.datetime], list[float]]:
    series = read_depresjon_csv(path)
    seconds = series.utc_seconds
    now = dt.datetime.now(dt.UTC)
    last = dt.datetime.fromtimestamp(int(seconds[-1]), dt.UTC)
    weeks = (now - last).days // 7 - 2  # ends two to three weeks ago
    shift = int(dt.timedelta(weeks=weeks).total_seconds())
    stamps = [dt.datetime.fromtimestamp(int(s) + shift, dt.UTC) for s in seconds]
    return stamps, [float(v) for v in series.counts]


def _reference(
    stamps: list[dt.datetime], values: list[float], rule_id: str, patient: uuid.UUID | None = None
) -> list[Firing]:
    rule = next(r for r in default_pack() if r.id == rule_id)
    names = {rule.condition.signal} if hasattr(rule.condition, "signal") else set()
    daily = daily_series(stamps, values, DEPRESJON_TIMEZONE, names)
    signals = PatientSignals(patient or uuid.uuid4(), None, daily=daily)
    end = dt.datetime.now(dt.UTC)
    return dry_run(rule, signals, end - dt.timedelta(days=365), end)


@pytest.mark.timeout(600)
async def test_a_recording_raises_what_the_dry_run_reports(h: Harness) -> None:
    stamps, values = _recording()
    clinician = await h.token_for(Role.clinician)
    created = await h.client.post(
        "/api/v1/patients",
        json={
            "given_name": "Quillon",
            "family_name": "Vexmarrow",
            "birth_date": "1961-07-14",
            "timezone": DEPRESJON_TIMEZONE,
            "mrn": f"MRN-{uuid.uuid4().hex[:8]}",
        },
        headers=bearer(clinician),
    )
    patient_id = created.json()["id"]
    consent = await h.client.post(
        f"/api/v1/patients/{patient_id}/consents",
        json={"category": "wearable_data", "granted": True},
        headers=bearer(clinician),
    )
    assert consent.status_code == 201
    samples: list[dict[str, Any]] = [
        {"stream": "activity_counts", "ts": t.isoformat(), "value": v, "source": "actiwatch"}
        for t, v in zip(stamps, values, strict=True)
    ]
    for n in range(0, len(samples), 20_000):  # several batches, as a device would send
        response = await h.client.post(
            f"/api/v1/patients/{patient_id}/biometrics",
            json={"client_batch_id": f"b-{n}", "samples": samples[n : n + 20_000]},
            headers=bearer(clinician),
        )
        assert response.status_code == 201, response.text
    await settle(h)

    async with h.runtime.db.session(system=True) as session:
        raised = (
            await session.execute(
                select(Alert.rule_id, Alert.fired_at).where(
                    Alert.patient_id == uuid.UUID(patient_id)
                )
            )
        ).all()
    for rule_id in RULE_IDS:
        expected = [f.fired_at for f in _reference(stamps, values, rule_id)]
        response = await h.client.post(
            "/api/v1/alert-rules/dry-run",
            json={"rule_id": rule_id, "patient_id": patient_id, "days": 365},
            headers=bearer(clinician),
        )
        assert response.status_code == 200, response.text
        reported = [dt.datetime.fromisoformat(f["fired_at"]) for f in response.json()["firings"]]
        assert reported == expected, rule_id
        stored = sorted(at for r, at in raised if r == rule_id)
        assert stored == expected, rule_id
        assert np.all(np.diff([t.timestamp() for t in stored]) >= 7 * 86400)  # the cooldown
    assert any(r in RULE_IDS for r, _ in raised)
    print(f"\n{len(stamps)} minutes; alerts raised: {sorted(raised)}")
