"""The model registry: register -> list -> promote -> promoted_model -> card, through the
service and the read-only API; only promoted versions are served, promotion retires the
previous one, artifacts are verified, and bad requests are 4xx problems.

The artifact is a real boosted classifier fitted on SYNTHETIC subjects (no model trained on
Depresjon is needed here; tests/integration/test_ml_cli.py does that)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select, update

from clarity.audit.models import AuditEvent
from clarity.auth.models import Role
from clarity.errors import AppError
from clarity.ml.boosted import BoostedConfig, BoostedLearner, BoostedModel
from clarity.ml.registry import BOOSTED_CLASSIFIER, DEPRESSION_CLASSIFIER, PAT_ONNX, service
from clarity.ml.registry.artifact import ArtifactError
from clarity.ml.registry.models import ModelVersion
from tests.conftest import Harness, bearer

NAMES = ("signal", "noise")
CARD = "# Model card: synthetic test model\n\n> **Not a diagnostic device.**\n"
METRICS: dict[str, Any] = {
    "metrics": {
        "auc": {"value": 0.9, "ci_low": 0.8, "ci_high": 0.97, "resamples": 200},
        "mcc": {"value": 0.6, "ci_low": 0.3, "ci_high": 0.8, "resamples": 200},
    },
    "note": "SYNTHETIC numbers for a test",
}


def _synthetic_model(folder: Path, seed: int) -> Path:
    """A boosted classifier fitted on 16 SYNTHETIC subjects, saved to ``folder``."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(16) % 2, 3).astype(float)
    features = np.column_stack([labels + rng.normal(0, 0.4, 48), rng.normal(0, 1, 48)])
    subjects = np.repeat([f"synthetic-{i:02d}" for i in range(16)], 3)
    config = BoostedConfig(
        seed=seed, inner_folds=2, n_features=(None,), max_depth=(1,), rounds=(5,)
    )
    BoostedLearner(config, NAMES).fit(features, labels, subjects).save(folder)
    return folder


async def _register(h: Harness, folder: Path, **changes: Any) -> ModelVersion:
    values: dict[str, Any] = {
        "name": DEPRESSION_CLASSIFIER,
        "kind": BOOSTED_CLASSIFIER,
        "label": "Gradient-boosted trees on SYNTHETIC features (test)",
        "artifact_dir": folder,
        "params": {"seed": 0, "data": "synthetic"},
        "metrics": METRICS,
        "data_fingerprint": "0" * 64,
        "created_by": "test",
        "card_markdown": CARD,
    }
    values.update(changes)
    async with h.runtime.db.session(system=True) as session:
        row = await service.register(session, **values)
        await session.commit()
    return row


async def _promote(h: Harness, name: str, version: int) -> ModelVersion:
    async with h.runtime.db.session(system=True) as session:
        row = await service.promote(session, name, version, promoted_by="test-admin")
        await session.commit()
    return row


async def _served(h: Harness, cache: Path, name: str = DEPRESSION_CLASSIFIER) -> Any:
    async with h.runtime.db.session(system=True) as session:
        return await service.promoted_model(session, name, cache)


async def test_register_list_promote_serve_and_read_the_card(h: Harness, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = await _register(h, _synthetic_model(tmp_path / "v1", seed=1))
    assert (first.version, first.status) == (1, "registered")
    assert await _served(h, cache) is None  # registered is not served

    token = await h.token_for(Role.researcher)
    listed = await h.client.get("/api/v1/models", headers=bearer(token))
    assert listed.status_code == 200, listed.text
    (item,) = listed.json()["items"]
    assert item["name"] == DEPRESSION_CLASSIFIER
    assert item["status"] == "registered"
    assert item["summary"]["mcc"] == {"value": 0.6, "ci_low": 0.3, "ci_high": 0.8}
    assert item["card_path"] == "/api/v1/models/depression-classifier/versions/1/card"
    assert item["artifact_sha256"] == first.artifact_sha256
    assert not {"artifact", "card_markdown"} & set(item)

    await _promote(h, DEPRESSION_CLASSIFIER, 1)
    served = await _served(h, cache)
    assert served is not None
    assert (served.name, served.version, served.kind) == (
        DEPRESSION_CLASSIFIER,
        1,
        BOOSTED_CLASSIFIER,
    )
    assert served.id == first.id
    assert (
        served.directory
        == (cache / DEPRESSION_CLASSIFIER / f"1-{first.artifact_sha256[:12]}").resolve()
    )
    model = BoostedModel.load(served.directory)  # the unpacked artifact is the real model
    assert model.predict(np.array([[1.0, 0.0], [0.0, 0.0]])).shape == (2,)

    card = await h.client.get(served.card_path, headers=bearer(token))
    assert card.status_code == 200
    assert card.headers["content-type"].startswith("text/markdown")
    assert card.text == CARD

    detail = await h.client.get(
        "/api/v1/models/depression-classifier/versions/1", headers=bearer(token)
    )
    assert detail.status_code == 200
    body = detail.json()
    assert (body["status"], body["promoted_by"]) == ("promoted", "test-admin")
    assert body["metrics"] == METRICS
    assert body["params"] == {"seed": 0, "data": "synthetic"}


async def test_promotion_retires_the_previous_version_and_serves_the_new_one(
    h: Harness, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    await _register(h, _synthetic_model(tmp_path / "v1", seed=1))
    second = await _register(h, _synthetic_model(tmp_path / "v2", seed=2))
    assert second.version == 2
    await _promote(h, DEPRESSION_CLASSIFIER, 1)
    first_dir = (await _served(h, cache)).directory
    await _promote(h, DEPRESSION_CLASSIFIER, 2)
    again = await _promote(h, DEPRESSION_CLASSIFIER, 2)  # promoting the served one: no change
    assert again.status == "promoted"

    served = await _served(h, cache)
    assert served.version == 2
    assert served.directory != first_dir
    stamp = (served.directory / "metadata.json").stat().st_mtime_ns
    assert (await _served(h, cache)).directory == served.directory  # unpacked once, reused
    assert (served.directory / "metadata.json").stat().st_mtime_ns == stamp

    token = await h.token_for(Role.clinician)
    listed = (await h.client.get("/api/v1/models", headers=bearer(token))).json()["items"]
    assert [(i["version"], i["status"]) for i in listed] == [(2, "promoted"), (1, "retired")]

    async with h.runtime.db.session(system=True) as session:
        actions = (
            await session.scalars(
                select(AuditEvent.action)
                .where(AuditEvent.resource_type == "ml_model")
                .order_by(AuditEvent.id)
            )
        ).all()
    assert actions == ["ml.model.register"] * 2 + ["ml.model.promote"] * 2


async def test_an_altered_cache_is_restored_and_an_altered_artifact_is_not_served(
    h: Harness, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    row = await _register(h, _synthetic_model(tmp_path / "v1", seed=1))
    await _promote(h, DEPRESSION_CLASSIFIER, 1)
    served = await _served(h, cache)
    (served.directory / "booster.json").write_text("{}")  # planted on disk
    restored = await _served(h, cache)
    BoostedModel.load(restored.directory)  # verified copy again: its digests all match

    async with h.runtime.db.session(system=True) as session:
        await session.execute(
            update(ModelVersion).where(ModelVersion.id == row.id).values(artifact=b"tampered")
        )
        await session.commit()
    with pytest.raises(ArtifactError, match="does not match"):
        await _served(h, tmp_path / "fresh-cache")


async def test_missing_versions_are_404_and_bad_names_422(h: Harness) -> None:
    token = await h.token_for(Role.admin)
    for path in (
        "/api/v1/models/depression-classifier/versions/7",
        "/api/v1/models/no-such-model/versions/1/card",
    ):
        response = await h.client.get(path, headers=bearer(token))
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "not_found"
    for path in (
        "/api/v1/models/Bad_Name/versions/1",
        "/api/v1/models/depression-classifier/versions/0",
        "/api/v1/models?name=UPPER",
    ):
        assert (await h.client.get(path, headers=bearer(token))).status_code == 422
    assert (await h.client.get("/api/v1/models", headers=bearer(token))).json() == {"items": []}


async def test_patients_may_not_read_the_registry(h: Harness) -> None:
    token = await h.token_for(Role.patient)
    response = await h.client.get("/api/v1/models", headers=bearer(token))
    assert response.status_code == 403
    assert (await h.client.get("/api/v1/models")).status_code == 401


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": "Not A Name"}, "lowercase"),
        ({"kind": "pickle"}, "kind"),
        ({"kind": PAT_ONNX, "label": "PAT"}, "PAT architecture, trained on"),
        ({"data_fingerprint": "xyz"}, "SHA-256"),
        ({"card_markdown": "# A card that forgets the warning"}, "not a diagnostic device"),
        ({"metrics": {"auc": float("nan")}}, "strict JSON"),
    ],
)
async def test_register_refuses_what_cannot_be_served_honestly(
    h: Harness, tmp_path: Path, changes: dict[str, Any], message: str
) -> None:
    folder = _synthetic_model(tmp_path / "v1", seed=1)
    with pytest.raises(AppError, match=message) as caught:
        await _register(h, folder, **changes)
    assert caught.value.status == 422


async def test_register_refuses_an_empty_artifact_and_promote_an_unknown_version(
    h: Harness, tmp_path: Path
) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(AppError, match="cannot be stored"):
        await _register(h, tmp_path / "empty")
    with pytest.raises(AppError) as caught:
        await _promote(h, DEPRESSION_CLASSIFIER, 3)
    assert caught.value.status == 404
