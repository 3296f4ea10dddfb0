"""``clarity ml``: train, evaluate, list, promote and print the cards of registered models.

* ``train`` fits on all of Depresjon, runs the subject-level evaluation, writes the
  artifacts and cards and registers new versions (status ``registered``: nothing is served
  until ``promote``).
* ``evaluate`` reproduces the evaluation from scratch and prints each model's results table;
  with ``--check NAME:VERSION`` it compares them with the tables those versions' cards state.
* When a run evaluates both the boosted classifier and PAT-S, ``train`` and ``evaluate`` also
  print (and write into ``tables.md``) one table comparing them with the published
  reference points (:func:`clarity.ml.card.comparison_table`).
* ``list``, ``promote NAME VERSION``, ``card NAME VERSION``.

Exit status: 0 done; 1 a ``--check`` differs, no such version, or a concurrent registry
change; 2 bad usage or refused input, missing data set, missing PyTorch for PAT, or a
database not at the migrations' head.
"""

from __future__ import annotations

import asyncio
import difflib
import getpass
import importlib.util
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from clarity.audit.service import AuditActor, bind_actor
from clarity.config import UnsafeConfiguration, get_settings
from clarity.errors import AppError
from clarity.migrate import SchemaOutOfDate, check_at_head
from clarity.ml.registry import DEPRESSION_CLASSIFIER, DEPRESSION_PAT_S
from clarity.runtime import Runtime, open_runtime

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from clarity.ml.training import Candidate

ml_app = typer.Typer(
    help="Models: train and evaluate on Depresjon, list, promote, print model cards.",
    no_args_is_help=True,
)
# No markup: messages hold names and values such as "clarity[train]", printed as they are.
err = Console(stderr=True, soft_wrap=True, highlight=False, markup=False)
out = Console(soft_wrap=True, highlight=False, markup=False)
T = TypeVar("T")
TRAIN_EXTRA = "PAT training needs PyTorch: install the train extra (pip install 'clarity[train]')."


class GridChoice(StrEnum):
    full = "full"
    reduced = "reduced"


class ModelChoice(StrEnum):
    boosted = "boosted"
    pat_s = "pat-s"


SeedOption = Annotated[int, typer.Option(help="Seed of every random choice.")]
GridOption = Annotated[
    GridChoice,
    typer.Option(help="Search grid: full (what the cards state) or reduced (quick checks)."),
]
ModelsOption = Annotated[
    list[ModelChoice] | None,
    typer.Option("--models", help="boosted (classifier + MADRS regressor) or pat-s; repeatable."),
]
BootstrapOption = Annotated[
    int, typer.Option("--bootstrap", min=100, help="Bootstrap resamples over subjects for CIs.")
]
WorkersOption = Annotated[
    int, typer.Option(min=1, help="Processes fitting folds (the results do not depend on it).")
]


def _fail(message: str, code: int) -> typer.Exit:
    err.print(message, style="red")
    return typer.Exit(code)


def _db(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run ``work`` in a system session of a runtime opened for this command; commits."""

    async def main() -> T:
        try:
            settings = get_settings()
            settings.check_production()
        except UnsafeConfiguration as exc:
            raise _fail(str(exc), 2) from None
        async with open_runtime(settings) as runtime:
            return await _in_session(runtime, work)

    return asyncio.run(main())


async def _in_session(runtime: Runtime, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    try:
        await check_at_head(runtime.db.engine)
    except SchemaOutOfDate as exc:
        raise _fail(str(exc), 2) from None
    async with runtime.db.session(system=True) as session:
        bind_actor(session, AuditActor(request_id="cli"))
        try:
            result = await work(session)
        except AppError as exc:
            raise _fail(exc.detail, 1 if exc.status in (404, 409) else 2) from None
        await session.commit()
        return result


def _default_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def torch_available() -> bool:
    """Whether PyTorch is installed (the ``train`` extra), without importing it."""
    return importlib.util.find_spec("torch") is not None


def _models(models: list[ModelChoice] | None) -> list[ModelChoice]:
    chosen = list(dict.fromkeys(models or [ModelChoice.boosted]))
    if ModelChoice.pat_s in chosen and not torch_available():
        raise _fail(TRAIN_EXTRA, 2)
    return chosen


def _require_depresjon() -> None:
    from clarity.actigraphy.readers import SharedDataMissing, depresjon_dir

    try:
        depresjon_dir()
    except SharedDataMissing as exc:
        raise _fail(str(exc), 2) from None


@contextmanager
def _stages() -> Iterator[Callable[[str], None]]:
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    ) as progress:
        task: list[Any] = []

        def stage(description: str) -> None:
            if task:
                progress.update(task[0], completed=1, total=1)
            task[:] = [progress.add_task(description, total=None)]

        yield stage
        if task:
            progress.update(task[0], completed=1, total=1)


@dataclass
class Evaluation:
    """Reports and results tables by registry name, as ``evaluate`` prints them."""

    reports: dict[str, dict[str, Any]]
    tables: dict[str, str]
    labels: dict[str, str]


def _evaluate(
    models: list[ModelChoice],
    grid: GridChoice,
    seed: int,
    bootstrap: int,
    workers: int,
    stage: Callable[[str], None],
) -> tuple[Evaluation, Any]:
    from clarity.ml.dataset import load_depresjon
    from clarity.ml.training import SPECS, evaluate_models, result_tables

    evaluation = Evaluation({}, {}, {})
    rows = None
    if ModelChoice.boosted in models:
        stage("Reading Depresjon (55 recordings) into week windows")
        rows = load_depresjon()
        stage(f"Evaluating both boosted models, leave-one-subject-out ({grid.value} grid)")
        report = evaluate_models(
            rows, grid=grid.value, seed=seed, bootstrap=bootstrap, workers=workers
        )
        evaluation.reports["boosted"] = report
        evaluation.tables.update(result_tables(report))
        evaluation.labels.update({s.name: s.label for s in SPECS})
    if ModelChoice.pat_s in models:
        from clarity.ml.pat.evaluate import MODEL_LABEL
        from clarity.ml.pat.training import PLANS, evaluate_pat, pat_table

        stage(f"Evaluating PAT-S, {PLANS[grid.value].folds} subject-grouped folds")
        pat_report = evaluate_pat(grid.value, seed, bootstrap)
        evaluation.reports[DEPRESSION_PAT_S] = pat_report
        evaluation.tables[DEPRESSION_PAT_S] = pat_table(pat_report)
        evaluation.labels[DEPRESSION_PAT_S] = MODEL_LABEL
    return evaluation, rows


COMPARISON_HEADING = "## Depression classification: boosted trees vs the PAT architecture"


def _comparison(evaluation: Evaluation) -> str | None:
    """The boosted classifier and PAT-S side by side with the published reference points,
    when this run evaluated both (:func:`clarity.ml.card.comparison_table`)."""
    boosted = evaluation.reports.get("boosted")
    pat = evaluation.reports.get(DEPRESSION_PAT_S)
    if boosted is None or pat is None:
        return None
    from clarity.ml.card import ComparedModel, comparison_table

    rows = [
        ComparedModel.from_report(
            f"{evaluation.labels[DEPRESSION_CLASSIFIER]} (`{DEPRESSION_CLASSIFIER}`)", boosted
        ),
        ComparedModel.from_report(
            f"{evaluation.labels[DEPRESSION_PAT_S]} (PAT-S layout, `{DEPRESSION_PAT_S}`)", pat
        ),
    ]
    return f"{COMPARISON_HEADING}\n\n{comparison_table(rows)}"


def _tables_text(evaluation: Evaluation) -> str:
    parts = [
        f"## {name}: {evaluation.labels[name]}\n\n{table}"
        for name, table in evaluation.tables.items()
    ]
    comparison = _comparison(evaluation)
    return "\n".join(parts if comparison is None else [*parts, comparison])


def _write_outputs(directory: Path, evaluation: Evaluation) -> None:
    from clarity.ml.protocol import report_json

    directory.mkdir(parents=True, exist_ok=True)
    for key, report in evaluation.reports.items():
        (directory / f"report-{key}.json").write_text(report_json(report))
    (directory / "tables.md").write_text(_tables_text(evaluation))


@ml_app.command("train")
def train(
    seed: SeedOption = 0,
    grid: GridOption = GridChoice.full,
    models: ModelsOption = None,
    bootstrap: BootstrapOption = 2000,
    workers: WorkersOption = 1,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Keep artifacts, cards and reports here (default: temporary)."),
    ] = None,
    created_by: Annotated[
        str | None, typer.Option("--by", help="Who trains (default: cli:USER).")
    ] = None,
) -> None:
    """Train on all of Depresjon, evaluate by subject, write cards, register new versions."""
    chosen = _models(models)
    _require_depresjon()
    _db(_nothing)  # the database is reachable and at head before minutes of computing
    actor = created_by or _default_actor()
    with tempfile.TemporaryDirectory(prefix="clarity-train-") as scratch:
        folder = out_dir or Path(scratch)
        candidates, comparison = _train(chosen, grid, seed, bootstrap, workers, folder, actor)

        async def register_all(session: AsyncSession) -> list[tuple[str, int, str]]:
            from clarity.ml.registry import service

            done: list[tuple[str, int, str]] = []
            for c in candidates:
                row = await service.register(
                    session,
                    name=c.name,
                    kind=c.kind,
                    label=c.label,
                    artifact_dir=c.directory,
                    params=c.params,
                    metrics=c.metrics,
                    data_fingerprint=c.data_fingerprint,
                    created_by=actor,
                    card_markdown=c.card_markdown,
                    code_version=c.code_version,
                )
                done.append((row.name, row.version, row.artifact_sha256))
            return done

        registered = _db(register_all)
    if comparison is not None:
        typer.echo(comparison)
    table = Table(title="Registered (not served until promoted)")
    for column in ("name", "version", "artifact sha256"):
        table.add_column(column)
    for name, version, digest in registered:
        table.add_row(name, str(version), digest[:16])
    out.print(table)
    out.print("Serve one with: clarity ml promote NAME VERSION")


async def _nothing(session: AsyncSession) -> None:
    return None


def _train(
    models: list[ModelChoice],
    grid: GridChoice,
    seed: int,
    bootstrap: int,
    workers: int,
    folder: Path,
    actor: str,
) -> tuple[list[Candidate], str | None]:
    """The candidates to register, and the comparison table when both kinds were trained."""
    from clarity.database import utcnow
    from clarity.ml.provenance import code_version
    from clarity.ml.training import train_models

    version = code_version()
    created = utcnow()
    candidates: list[Candidate] = []
    with _stages() as stage:
        evaluation, rows = _evaluate(models, grid, seed, bootstrap, workers, stage)
        if rows is not None:
            stage("Fitting the served boosted models on every subject")
            candidates += train_models(
                rows,
                evaluation.reports["boosted"],
                grid=grid.value,
                seed=seed,
                out_dir=folder,
                created_by=actor,
                created_at=created,
                code_version=version,
            )
        if DEPRESSION_PAT_S in evaluation.reports:
            from clarity.ml.pat.training import train_pat

            stage("Fitting PAT-S on every subject and exporting it to ONNX")
            candidates.append(
                train_pat(
                    evaluation.reports[DEPRESSION_PAT_S],
                    grid=grid.value,
                    seed=seed,
                    out_dir=folder,
                    created_by=actor,
                    created_at=created,
                    code_version=version,
                )
            )
        stage("Writing cards and reports")
        _write_outputs(folder, evaluation)
        for c in candidates:
            (folder / f"{c.name}.card.md").write_text(c.card_markdown)
    return candidates, _comparison(evaluation)


@dataclass(frozen=True)
class Stated:
    """What a registered version's card states, and how it was made."""

    name: str
    version: int
    table: str | None
    params: dict[str, Any]
    data_fingerprint: str


def _parse_check(text: str) -> tuple[str, int]:
    name, sep, version = text.rpartition(":")
    if not sep or not name or not version.isdigit():
        raise _fail(f"--check takes NAME:VERSION (e.g. depression-classifier:1), not {text!r}", 2)
    return name, int(version)


@ml_app.command("evaluate")
def evaluate(
    seed: SeedOption = 0,
    grid: GridOption = GridChoice.full,
    models: ModelsOption = None,
    bootstrap: BootstrapOption = 2000,
    workers: WorkersOption = 1,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Write report-*.json and tables.md here.")
    ] = None,
    check: Annotated[
        list[str] | None,
        typer.Option(
            "--check",
            metavar="NAME:VERSION",
            help="Compare with the table this version's card states; exit 1 on any difference.",
        ),
    ] = None,
) -> None:
    """Reproduce the subject-level evaluation from scratch and print each model's table."""
    chosen = _models(models)
    _require_depresjon()
    wanted = [_parse_check(c) for c in check or []]
    stated = _db(lambda session: _stated(session, wanted)) if wanted else []
    with _stages() as stage:
        evaluation, _ = _evaluate(chosen, grid, seed, bootstrap, workers, stage)
    if out_dir is not None:
        _write_outputs(out_dir, evaluation)
    typer.echo(_tables_text(evaluation), nl=False)
    differences = [s for s in stated if not _compare(s, evaluation, grid, seed, bootstrap)]
    if differences:
        raise typer.Exit(1)


async def _stated(session: AsyncSession, wanted: list[tuple[str, int]]) -> list[Stated]:
    from clarity.ml.card import card_table
    from clarity.ml.registry import service

    found: list[Stated] = []
    for name, version in wanted:
        row = await service.get_version(session, name, version)
        card = await service.get_card(session, name, version)
        found.append(Stated(name, version, card_table(card), row.params, row.data_fingerprint))
    return found


def _compare(
    stated: Stated, evaluation: Evaluation, grid: GridChoice, seed: int, bootstrap: int
) -> bool:
    which = f"{stated.name}:{stated.version}"
    fresh = evaluation.tables.get(stated.name)
    if fresh is None:
        err.print(f"{which}: not evaluated by this run (see --models).", style="red")
        return False
    if stated.table is None:
        err.print(f"{which}: its card states no results table.", style="red")
        return False
    if stated.table == fresh:
        err.print(f"{which}: identical to the table its card states.", style="green")
        return True
    err.print(f"{which}: DIFFERS from the table its card states.", style="red")
    ran = {"grid": grid.value, "seed": seed, "bootstrap": bootstrap}
    for key, value in ran.items():
        if stated.params.get(key) != value:
            err.print(f"  trained with {key}={stated.params.get(key)}; this run used {value}")
    fingerprints = {
        str(r.get("data", {}).get("fingerprint_sha256")) for r in evaluation.reports.values()
    }
    if stated.data_fingerprint not in fingerprints:
        err.print("  its data fingerprint differs from the data read now")
    diff = difflib.unified_diff(
        stated.table.splitlines(), fresh.splitlines(), "card", "now", lineterm="", n=0
    )
    err.print("\n".join(diff))
    return False


@ml_app.command("list")
def list_command(
    name: Annotated[str | None, typer.Option(help="Only this model name.")] = None,
) -> None:
    """Registered versions with their status; only promoted ones are served."""
    from clarity.ml.registry import service

    async def work(session: AsyncSession) -> list[Any]:
        return await service.list_versions(session, name)

    rows = _db(work)
    table = Table(title="Model registry")
    for column in ("name", "version", "status", "kind", "headline", "created (UTC)", "by"):
        table.add_column(column, no_wrap=column in ("name", "status"))
    for row in rows:
        table.add_row(
            row.name,
            str(row.version),
            row.status,
            row.kind,
            _headline(row.metrics),
            row.created_at.strftime("%Y-%m-%d %H:%M"),
            row.created_by,
        )
    out.print(table if rows else "No model is registered yet: run `clarity ml train`.")


def _headline(metrics: dict[str, Any]) -> str:
    table = metrics.get("metrics") or {}
    for key, words in (("mcc", "MCC"), ("auc", "AUC"), ("mae", "MAE")):
        entry = table.get(key)
        if isinstance(entry, dict) and entry.get("value") is not None:
            return f"{words} {entry['value']:.3f}"
    return ""


@ml_app.command("promote")
def promote(
    name: Annotated[str, typer.Argument(help="Model name, e.g. depression-classifier.")],
    version: Annotated[int, typer.Argument(min=1, help="Version to serve.")],
    promoted_by: Annotated[str | None, typer.Option("--by", help="Who promotes.")] = None,
) -> None:
    """Serve VERSION of NAME from now on (the version served before is retired)."""
    from clarity.ml.registry import service

    actor = promoted_by or _default_actor()

    async def work(session: AsyncSession) -> tuple[int, str]:
        row = await service.promote(session, name, version, promoted_by=actor)
        return row.version, row.label

    promoted, label = _db(work)
    out.print(f"{name} version {promoted} ({label}) is now the one served.")


@ml_app.command("card")
def card(
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[int, typer.Argument(min=1, help="Version.")],
) -> None:
    """Print a version's model card (Markdown)."""
    from clarity.ml.registry import service

    async def work(session: AsyncSession) -> str:
        return await service.get_card(session, name, version)

    typer.echo(_db(work), nl=False)
