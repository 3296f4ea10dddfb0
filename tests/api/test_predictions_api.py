"""Depression predictions through the real app: a Depresjon recording uploaded through the
ingestion API is scored by a classifier fitted here on Depresjon rows, registered and
promoted through the registry. The served window and its features are the training code's
own (same fingerprint); 503 without a servable promoted model; 422 with 3 valid days; 404
for another clinic's patient; every call stored (when answered), audited and announced.

The classifier is fitted with a one-point grid on a dozen people so the module stays
fast; the full model and its evaluation are ``clarity ml train``'s. Depresjon: Garcia-Ceja
E, et al. MMSys '18, 2018, doi:10.1145/3204949.3208125.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from clarity.actigraphy.features import FEATURE_DOCS
from clarity.actigraphy.readers import (
    SharedDataMissing,
    depresjon_dir,
    depresjon_files,
    read_depresjon_csv,
)
from clarity.audit.models import AuditEvent
from clarity.auth.models import Role
from clarity.ml.boosted import BoostedConfig, BoostedLearner, BoostedModel
from clarity.ml.dataset import MODEL_FEATURES, data_fingerprint, latest_week, week_windows
from clarity.ml.registry import BOOSTED_CLASSIFIER, DEPRESSION_CLASSIFIER
from clarity.ml.registry.service import promote, register
from clarity.outbox.models import OutboxEvent
from clarity.predictions.compute import input_fingerprint
from clarity.predictions.models import DepressionPrediction
from tests.api.test_actigraphy_api import samples_of, upload, week_of_minutes
from tests.api.test_biometrics_ingest import new_patient
from tests.conftest import Harness, bearer

SERVED = "condition_1"  # 16 days, 13 valid
TRAINING = [f"condition_{i}" for i in range(2, 8)] + [f"control_{i}" for i in range(1, 7)]
CONFIG = BoostedConfig(
    task="classification",
    inner_folds=3,
    n_features=(None,),
    max_depth=(2,),
    rounds=(25,),
    ensemble_size=5,
)
CARD = "# Test classifier\n\nNot a diagnostic device. Fitted on 12 Depresjon people, reduced grid."
LABEL = "Gradient-boosted trees on actigraphy features, trained on Depresjon (reduced, tests)"


@dataclass(frozen=True)
class Fitted:
    directory: Path
    fingerprint: str


def _depresjon_root() -> Path:
    try:
        return depresjon_dir()
    except SharedDataMissing as exc:
        pytest.skip(f"Depresjon data set not available: {exc}")


def _fit(directory: Path, config: BoostedConfig) -> Fitted:
    root = _depresjon_root()
    files = {p.stem: p for p in depresjon_files(root)}
    rows, labels, subjects = [], [], []
    for stem in TRAINING:
        for _, vector in week_windows(read_depresjon_csv(files[stem])):
            rows.append(vector)
            labels.append(float(stem.startswith("condition")))
            subjects.append(stem)
    learner = BoostedLearner(
        config, MODEL_FEATURES, {n: FEATURE_DOCS[n].label for n in MODEL_FEATURES}
    )
    model = learner.fit(np.vstack(rows), np.array(labels), np.array(subjects))
    model.save(directory)
    return Fitted(directory, data_fingerprint(root, [files[s] for s in TRAINING]))


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> Fitted:
    return _fit(tmp_path_factory.mktemp("classifier"), CONFIG)


@pytest.fixture
async def h(harness_factory: object, tmp_path: Path) -> Harness:
    """The app with its model cache in this test's folder."""
    return await harness_factory(model_cache_dir=tmp_path / "model-cache")  # type: ignore[operator, no-any-return]


async def promoted(h: Harness, fitted: Fitted) -> int:
    """Register and promote ``fitted`` as the depression classifier; its version."""
    async with h.runtime.db.session(system=True) as session:
        row = await register(
            session,
            name=DEPRESSION_CLASSIFIER,
            kind=BOOSTED_CLASSIFIER,
            label=LABEL,
            artifact_dir=fitted.directory,
            params={"config": CONFIG.as_dict(), "subjects": TRAINING},
            metrics={},
            data_fingerprint=fitted.fingerprint,
            created_by="tests",
            card_markdown=CARD,
        )
        await promote(session, DEPRESSION_CLASSIFIER, row.version, promoted_by="tests")
        await session.commit()
        return row.version


def url(patient_id: str) -> str:
    return f"/api/v1/patients/{patient_id}/predictions/depression"


async def audits(h: Harness, patient_id: str, action: str) -> list[AuditEvent]:
    async with h.runtime.db.session(system=True) as session:
        rows = await session.scalars(
            select(AuditEvent)
            .where(AuditEvent.resource_id == patient_id, AuditEvent.action == action)
            .order_by(AuditEvent.id)
        )
        return list(rows.all())


async def events(h: Harness) -> list[dict[str, object]]:
    async with h.runtime.db.session(system=True) as session:
        rows = await session.scalars(
            select(OutboxEvent.payload)
            .where(OutboxEvent.topic == "prediction.created")
            .order_by(OutboxEvent.seq)
        )
        return list(rows.all())


async def test_without_a_promoted_model_the_answer_is_503(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, clinician)
    response = await h.client.post(url(patient_id), headers=bearer(clinician))
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "no_promoted_model"
    assert "clarity ml promote depression-classifier" in body["detail"]
    (audit,) = await audits(h, patient_id, "prediction.create")
    assert (audit.outcome, audit.details["reason"]) == ("failure", "no_promoted_model")
    assert await events(h) == []


async def test_a_depresjon_subject_is_scored_stored_audited_and_announced(
    h: Harness, classifier: Fitted
) -> None:
    version = await promoted(h, classifier)
    clinician = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, clinician)  # Europe/Oslo, as Depresjon was recorded
    series = read_depresjon_csv(_depresjon_root() / "condition" / f"{SERVED}.csv")
    await upload(h, clinician, patient_id, samples_of(series.utc_seconds, series.counts), "dep")

    response = await h.client.post(url(patient_id), headers=bearer(clinician))
    assert response.status_code == 201, response.text
    body = response.json()

    # the served window and vector are the training code's latest window, exactly
    expected = latest_week(series).window
    assert expected is not None
    ((start, vector),) = week_windows(series, latest_only=True)
    assert start == expected.start
    assert np.array_equal(vector, expected.features, equal_nan=True)
    assert body["window"] == {
        "start": expected.start.isoformat(),
        "end": expected.end.isoformat(),
        "timezone": "Europe/Oslo",
    }
    assert body["valid_days"] == expected.valid_days >= 7
    assert body["input_fingerprint"] == input_fingerprint(expected)
    model = BoostedModel.load(classifier.directory)
    row = expected.features.reshape(1, -1)
    assert body["probability"] == model.predict_subject(row)
    assert 0.0 <= body["interval"]["low"] <= body["interval"]["high"] <= 1.0
    assert (body["interval"]["low"], body["interval"]["high"]) == model.interval(row)
    assert body["interval"]["level"] == CONFIG.interval_level
    assert body["threshold"] == model.threshold
    above = body["probability"] >= model.threshold
    assert body["classification"] == (
        "resembles_depressed_group" if above else "resembles_control_group"
    )
    assert body["model"] == {
        "name": DEPRESSION_CLASSIFIER,
        "version": version,
        "label": LABEL,
        "card_url": f"/api/v1/models/{DEPRESSION_CLASSIFIER}/versions/{version}/card",
    }
    top = body["top_features"]
    assert len(top) == 5
    assert [t["feature"] for t in top] == [c.feature for c in model.explain(row).top]
    assert all(t["label"] == FEATURE_DOCS[t["feature"]].label for t in top)
    assert body["explanation"]["units"] == "log-odds of depression"
    assert "not a diagnostic device" in body["disclaimer"].lower()
    card = await h.client.get(body["model"]["card_url"], headers=bearer(clinician))
    assert card.status_code == 200, card.text

    # stored, audited once, announced with ids only
    async with h.runtime.db.session(system=True) as session:
        (stored,) = (await session.scalars(select(DepressionPrediction))).all()
    assert str(stored.id) == body["id"]
    assert (stored.model_name, stored.model_version) == (DEPRESSION_CLASSIFIER, version)
    assert stored.input_fingerprint == body["input_fingerprint"]
    assert stored.probability == body["probability"]
    assert stored.explanation["top"][0]["feature"] == top[0]["feature"]
    (audit,) = await audits(h, patient_id, "prediction.create")
    assert audit.outcome == "success"
    assert audit.details["prediction_id"] == body["id"]
    (event,) = await events(h)
    assert event["prediction_id"] == body["id"]
    assert event["patient_id"] == patient_id
    assert event["model_version"] == version
    assert set(event) == {
        "event_id",
        "event_type",
        "occurred_at",
        "organization_id",
        "patient_id",
        "prediction_id",
        "model_version_id",
        "model_name",
        "model_version",
    }

    # the same data again: a new prediction on the same input
    again = await h.client.post(url(patient_id), json={}, headers=bearer(clinician))
    assert again.status_code == 201, again.text
    assert again.json()["id"] != body["id"]
    assert again.json()["input_fingerprint"] == body["input_fingerprint"]
    assert again.json()["probability"] == body["probability"]

    listed = await h.client.get(url(patient_id), headers=bearer(clinician))
    assert listed.status_code == 200, listed.text
    page = listed.json()
    assert page["total"] == 2
    assert [p["id"] for p in page["items"]] == [again.json()["id"], body["id"]]
    assert page["items"][1] == {**body}
    (read,) = await audits(h, patient_id, "prediction.list")
    assert read.details["count"] == 2
    assert len(await events(h)) == 2


async def test_three_valid_days_are_refused_naming_the_count(
    h: Harness, classifier: Fitted
) -> None:
    await promoted(h, classifier)
    clinician = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, clinician)
    # three whole Oslo days (local midnight is 23:00 UTC in March), worn throughout
    seconds, counts = week_of_minutes(3, datetime(2025, 3, 2, 23, 0, tzinfo=UTC))
    await upload(h, clinician, patient_id, samples_of(seconds, counts), "three")

    response = await h.client.post(url(patient_id), headers=bearer(clinician))
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "insufficient_actigraphy"
    assert (body["valid_days"], body["required"]) == (3, 7)
    assert body["detail"].startswith("3 valid days")
    assert "7 are needed" in body["detail"]
    assert [d["date"] for d in body["days"]] == ["2025-03-03", "2025-03-04", "2025-03-05"]
    assert all(d["valid"] and d["wear_hours"] == 24.0 for d in body["days"])

    empty = await new_patient(h, clinician)
    nothing = await h.client.post(url(empty), headers=bearer(clinician))
    assert nothing.status_code == 422
    assert nothing.json()["valid_days"] == 0
    assert "No actigraphy" in nothing.json()["detail"]

    async with h.runtime.db.session(system=True) as session:
        assert (await session.scalars(select(DepressionPrediction))).all() == []
    (audit,) = await audits(h, patient_id, "prediction.create")
    assert (audit.outcome, audit.details) == (
        "failure",
        {"reason": "insufficient_actigraphy", "valid_days": 3},
    )
    assert await events(h) == []


async def test_a_model_that_cannot_give_an_interval_is_not_served(
    h: Harness, tmp_path: Path
) -> None:
    without_ensemble = BoostedConfig(**{**CONFIG.as_dict(), "ensemble_size": 0})  # type: ignore[arg-type]
    await promoted(h, _fit(tmp_path / "no-ensemble", without_ensemble))
    clinician = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, clinician)
    response = await h.client.post(url(patient_id), headers=bearer(clinician))
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "model_unavailable"
    assert "no bootstrap ensemble" in response.json()["detail"]


async def test_other_clinics_and_patients_cannot_predict(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, clinician)
    elsewhere = await h.token_for(Role.clinician, org="Another clinic")
    for method in ("POST", "GET"):
        response = await h.client.request(method, url(patient_id), headers=bearer(elsewhere))
        assert response.status_code == 404, response.text
    unknown = await h.client.post(url(str(uuid.uuid4())), headers=bearer(clinician))
    assert unknown.status_code == 404

    admin = await h.token_for(Role.admin)
    email, user_id = await h.user(Role.patient)
    linked = await h.client.post(
        f"/api/v1/patients/{patient_id}/account",
        json={"user_id": str(user_id)},
        headers=bearer(admin),
    )
    assert linked.status_code == 204, linked.text
    own = (await h.login(email))["access_token"]
    # Predictions are decision support for staff: a patient neither runs nor reads them.
    for method in ("POST", "GET"):
        response = await h.client.request(method, url(patient_id), headers=bearer(own))
        assert response.status_code == 404, response.text
