"""``clarity ml`` end to end on the real Depresjon recordings and the run's database:
``train`` registers both boosted models with their cards; ``evaluate`` run twice from
scratch prints byte-identical tables and reports, equal to what the cards state (``--check``
exits 0); another seed differs and ``--check`` exits 1; training again registers a new
version with the same artifact (same SHA-256); ``promote``, ``list`` and ``card``;
evaluating the boosted classifier and PAT-S together adds one comparison table.

The reduced grid and 200 bootstrap resamples keep this near a minute; the full grid (the
default, minutes) is what a served model's card states; it runs the same code.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import create_async_engine

from clarity.actigraphy.readers import SharedDataMissing, depresjon_dir
from clarity.ml.card import ComparedModel, card_table, comparison_table
from clarity.ml.cli import COMPARISON_HEADING
from clarity.ml.registry import DEPRESSION_CLASSIFIER, DEPRESSION_PAT_S, MADRS_REGRESSOR
from clarity.ml.registry.models import ModelVersion
from clarity.ml.training import CLASSIFIER_LABEL
from tests.conftest import BACKEND
from tests.support.cli import run_clarity

QUICK = ["--grid", "reduced", "--bootstrap", "200"]
PAT_LABEL = "PAT architecture, trained on Depresjon"  # never just "PAT"


@pytest.fixture(scope="module", autouse=True)
def _depresjon() -> None:
    if BACKEND != "sqlite":
        # Training and evaluation are the same on both; the registry's storage is tested on
        # both backends by tests/api/test_models_api.py.
        pytest.skip("the clarity ml end-to-end runs in the sqlite run (suite time budget)")
    try:
        depresjon_dir()
    except SharedDataMissing as exc:
        pytest.skip(f"Depresjon data set not available: {exc}")


def _rows(database_url: str) -> list[tuple[str, int, str, str]]:
    async def read() -> list[tuple[str, int, str, str]]:
        engine = create_async_engine(database_url)
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(
                    ModelVersion.name,
                    ModelVersion.version,
                    ModelVersion.status,
                    ModelVersion.card_markdown,
                ).order_by(ModelVersion.name, ModelVersion.version)
            )
            found = [(r[0], r[1], r[2], r[3]) for r in rows]
        await engine.dispose()
        return found

    return asyncio.run(read())


def _versions(database_url: str) -> dict[tuple[str, int], str]:
    async def read() -> dict[tuple[str, int], str]:
        engine = create_async_engine(database_url)
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(ModelVersion.name, ModelVersion.version, ModelVersion.artifact_sha256)
            )
            found = {(r[0], r[1]): r[2] for r in rows}
        await engine.dispose()
        return found

    return asyncio.run(read())


@pytest.fixture
def registry(database_url: str) -> Iterator[str]:
    """The run's database, left without model versions afterwards."""

    async def clear() -> None:
        engine = create_async_engine(database_url)
        async with engine.begin() as conn:
            await conn.execute(delete(ModelVersion))
        await engine.dispose()

    asyncio.run(clear())
    yield database_url
    asyncio.run(clear())


_clarity = run_clarity


def test_train_then_evaluate_reproduces_the_cards_exactly(registry: str, tmp_path: Path) -> None:
    code, output = _clarity(registry, "ml", "train", *QUICK, "--out", str(tmp_path / "train"))
    assert code == 0, output
    rows = _rows(registry)
    assert [(n, v, s) for n, v, s, _ in rows] == [
        (DEPRESSION_CLASSIFIER, 1, "registered"),
        (MADRS_REGRESSOR, 1, "registered"),
    ]
    cards = {name: card for name, _, _, card in rows}
    checks = [f"--check={DEPRESSION_CLASSIFIER}:1", f"--check={MADRS_REGRESSOR}:1"]

    runs = []
    for attempt in ("first", "second"):
        folder = tmp_path / attempt
        code, output = _clarity(registry, "ml", "evaluate", *QUICK, "--out", str(folder), *checks)
        assert code == 0, output
        assert output.count("identical to the table its card states") == 2
        runs.append(folder)
    for name in ("tables.md", "report-boosted.json"):
        assert (runs[0] / name).read_bytes() == (runs[1] / name).read_bytes(), name
    assert (runs[0] / "report-boosted.json").read_bytes() == (
        tmp_path / "train" / "report-boosted.json"
    ).read_bytes()

    tables = (runs[0] / "tables.md").read_text()
    assert COMPARISON_HEADING not in tables  # only when both kinds of model were evaluated
    for name, card in cards.items():
        stated = card_table(card)
        assert stated is not None
        assert stated in tables, name  # the printed table is the card's, character for character
        assert "Not a diagnostic device" in card
        assert "grid `reduced`" in card
    # The MADRS regressor is no better than the mean baseline, and its card says so.
    assert "no better than predicting the training subjects' mean" in cards[MADRS_REGRESSOR]

    code, output = _clarity(registry, "ml", "evaluate", *QUICK, "--seed", "1", *checks)
    assert code == 1
    assert "DIFFERS from the table its card states" in output
    assert "trained with seed=0; this run used 1" in output


def test_evaluating_boosted_and_pat_prints_one_comparison_table(
    registry: str, tmp_path: Path
) -> None:
    pytest.importorskip("torch", reason="PAT-S needs the train extra")
    folder = tmp_path / "both"
    code, output = _clarity(
        registry,
        "ml",
        "evaluate",
        "--models",
        "boosted",
        "--models",
        "pat-s",
        *QUICK,
        "--out",
        str(folder),
    )
    assert code == 0, output
    tables = (folder / "tables.md").read_text()
    assert output.count(COMPARISON_HEADING) == tables.count(COMPARISON_HEADING) == 1
    per_model, comparison = tables.split(COMPARISON_HEADING)
    assert per_model.count("| metric | value | 95% CI |") == 3  # the per-model tables stay
    boosted = json.loads((folder / "report-boosted.json").read_text())
    pat = json.loads((folder / f"report-{DEPRESSION_PAT_S}.json").read_text())
    rows = [
        ComparedModel.from_report(f"{CLASSIFIER_LABEL} (`{DEPRESSION_CLASSIFIER}`)", boosted),
        ComparedModel.from_report(f"{PAT_LABEL} (PAT-S layout, `{DEPRESSION_PAT_S}`)", pat),
    ]
    assert comparison == "\n\n" + comparison_table(rows)  # the rows are the reports' numbers
    lines = comparison.splitlines()
    assert f"`{DEPRESSION_CLASSIFIER}`) | leave-one-subject-out" in lines[4]
    assert f"`{DEPRESSION_PAT_S}`) | 3 subject-grouped folds" in lines[5]
    assert "| 0.73 | 0.44 |" in lines[6]
    assert "| 0.788 | 0.748 | 0.568 |" in lines[7]


def test_retrain_promote_list_and_card(registry: str) -> None:
    for _ in range(2):
        code, output = _clarity(registry, "ml", "train", *QUICK)
        assert code == 0, output
    versions = _versions(registry)
    assert sorted((n, v) for n, v in versions) == [
        (DEPRESSION_CLASSIFIER, 1),
        (DEPRESSION_CLASSIFIER, 2),
        (MADRS_REGRESSOR, 1),
        (MADRS_REGRESSOR, 2),
    ]
    for name in (DEPRESSION_CLASSIFIER, MADRS_REGRESSOR):  # same seed and data: same artifact
        assert versions[(name, 1)] == versions[(name, 2)]
    code, output = _clarity(registry, "ml", "promote", DEPRESSION_CLASSIFIER, "1", "--by", "lead")
    assert code == 0, output
    assert "is now the one served" in output
    code, output = _clarity(registry, "ml", "list")
    assert code == 0, output
    assert "promoted" in output
    assert "registered" in output
    code, output = _clarity(registry, "ml", "card", MADRS_REGRESSOR, "1")
    assert code == 0, output
    assert output.startswith("# Model card: Gradient-boosted trees on actigraphy features")
    code, output = _clarity(registry, "ml", "promote", MADRS_REGRESSOR, "9")
    assert code == 1
    assert "does not exist" in output
    code, output = _clarity(registry, "ml", "evaluate", "--check", "nonsense", *QUICK)
    assert code == 2
    assert "NAME:VERSION" in output


def test_missing_data_or_torch_is_a_clear_usage_error(
    registry: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, output = _clarity(
        registry, "ml", "train", *QUICK, CLARITY_SHARED_DATA=str(tmp_path / "nowhere")
    )
    assert code == 2
    assert "Depresjon data not found" in output
    monkeypatch.setattr("clarity.ml.cli.torch_available", lambda: False)
    code, output = _clarity(registry, "ml", "train", "--models", "pat-s", *QUICK)
    assert code == 2
    assert "pip install 'clarity[train]'" in " ".join(output.split())
    assert _versions(registry) == {}
