"""Gradient-boosted depression classifier and MADRS regressor, fitted entirely inside a fold.

Everything a model learns comes from the rows it is given (``BoostedLearner.fit``), so under
leave-one-subject-out the held-out person is never seen by any step:

1. **screening**: features with under half their values present, or constant, are dropped
   (label-free, so done once on the fold's training rows and reused by its inner folds);
2. **selection**: the rest are ranked by univariate strength over subjects (|AUC - 0.5| of the
   subject means for the classifier, |Spearman rho| for the regressor) and the top ``k`` kept;
3. **search**: ``k``, tree depth and the number of rounds are chosen by an inner grouped,
   stratified k-fold over the training subjects (selection redone inside each inner fold),
   scoring subject-level log loss (classifier) or MAE (regressor);
4. **calibration** (classifier): Platt scaling (or isotonic) fitted on the chosen setting's
   inner out-of-fold margins (:mod:`clarity.ml.calibration`);
5. **intervals**: the regressor's is cross-conformal, ``prediction +/- q`` where ``q`` is the
   finite-sample ``level`` quantile of the inner out-of-fold absolute subject errors (Vovk V.
   "Cross-conformal predictors." Ann Math Artif Intell 74, 2015, doi:10.1007/s10472-013-9368-4;
   Barber RF, et al. "Predictive inference with the jackknife+." Ann Stat 49(1), 2021). The
   classifier's is the spread of a bootstrap ensemble: boosters refitted with the chosen
   setting on subject resamples, each calibrated alike; the interval is the central ``level``
   range of their probabilities. It shows how much the estimate depends on which people were
   in training; it is not a coverage guarantee;
6. **explanations**: xgboost's exact TreeSHAP contributions (Lundberg SM, et al. "From local
   explanations to global understanding with explainable AI for trees." Nat Mach Intell 2,
   2020, doi:10.1038/s42256-019-0138-9) in margin units (log-odds, MADRS points), named with
   the plain-words labels of the engine's features.

Gradient boosting: Chen T, Guestrin C. "XGBoost: A Scalable Tree Boosting System." KDD 2016,
doi:10.1145/2939672.2939785. Rows are weighted so that each subject weighs the same. Models
save as xgboost JSON plus a metadata JSON with SHA-256 of every booster file; never pickle.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

import numpy as np
import xgboost as xgb

from clarity.ml.calibration import CalibrationMethod, Calibrator, fit_calibrator, sigmoid
from clarity.ml.evaluation import (
    FloatArray,
    IntArray,
    JsonValue,
    StrArray,
    as_subjects,
    matthews_cc,
    roc_auc,
    stratified_subject_folds,
    subject_means,
    subject_weights,
)

if TYPE_CHECKING:
    from clarity.ml.dataset import FeatureRows

Task = Literal["classification", "regression"]
FORMAT: Final = "clarity-boosted/1"
_EPS: Final = 1e-6


@dataclass(frozen=True)
class BoostedConfig:
    """Every choice of the pipeline; the defaults are the ones evaluated on Depresjon."""

    task: Task = "classification"
    seed: int = 0
    inner_folds: int = 5
    n_features: tuple[int | None, ...] = (8, 16, None)  # None: every screened feature
    max_depth: tuple[int, ...] = (1, 2, 3)
    rounds: tuple[int, ...] = (10, 25, 50, 100)
    learning_rate: float = 0.1
    max_bin: int = 64
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    min_child_weight: float = 1.0
    reg_lambda: float = 1.0
    calibration: CalibrationMethod = "platt"
    threshold_rule: Literal["fixed", "inner_mcc"] = "inner_mcc"
    threshold: float = 0.5  # used by the "fixed" rule
    interval_level: float = 0.9
    ensemble_size: int = 0  # bootstrap members for the classifier's interval
    min_present: float = 0.5
    nthread: int = 1

    def __post_init__(self) -> None:
        if self.task not in ("classification", "regression"):
            raise ValueError("task must be classification or regression")
        if not self.n_features or not self.max_depth or not self.rounds:
            raise ValueError("the search grid must not be empty")
        if self.threshold_rule not in ("fixed", "inner_mcc"):
            raise ValueError("threshold_rule must be fixed or inner_mcc")
        if self.inner_folds < 2 or not 0 < self.interval_level < 1 or self.ensemble_size < 0:
            raise ValueError("need >= 2 inner folds, a level in (0, 1), ensemble_size >= 0")

    def as_dict(self) -> dict[str, JsonValue]:
        return {
            "task": self.task,
            "seed": self.seed,
            "inner_folds": self.inner_folds,
            "n_features": list(self.n_features),
            "max_depth": list(self.max_depth),
            "rounds": list(self.rounds),
            "learning_rate": self.learning_rate,
            "max_bin": self.max_bin,
            "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree,
            "min_child_weight": self.min_child_weight,
            "reg_lambda": self.reg_lambda,
            "calibration": self.calibration,
            "threshold_rule": self.threshold_rule,
            "threshold": self.threshold,
            "interval_level": self.interval_level,
            "ensemble_size": self.ensemble_size,
            "min_present": self.min_present,
            "nthread": self.nthread,
        }


@dataclass(frozen=True)
class Setting:
    """One point of the search grid."""

    n_features: int | None
    max_depth: int
    rounds: int

    def as_dict(self) -> dict[str, JsonValue]:
        return {"n_features": self.n_features, "max_depth": self.max_depth, "rounds": self.rounds}


# ------------------------------------------------------------------ screening, selection
def screen(features: FloatArray, min_present: float) -> IntArray:
    """Columns with at least ``min_present`` of values finite and more than one value."""
    present = np.isfinite(features)
    keep: list[int] = []
    for j in range(features.shape[1]):
        column = features[present[:, j], j]
        if present[:, j].mean() >= min_present and column.size and np.ptp(column) > 0:
            keep.append(j)
    return np.array(keep, dtype=np.int64)


def _spearman(x: FloatArray, y: FloatArray) -> float:
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    rx = np.argsort(np.argsort(x, kind="stable"), kind="stable").astype(np.float64)
    ry = np.argsort(np.argsort(y, kind="stable"), kind="stable").astype(np.float64)
    return float(np.corrcoef(rx, ry)[0, 1])


def rank_features(
    features: FloatArray, targets: FloatArray, subjects: StrArray, columns: IntArray, task: Task
) -> IntArray:
    """``columns`` ordered by univariate strength over subjects, strongest first.

    Each subject contributes the mean of its rows (so a subject with many windows does not
    dominate); subjects without a value are left out of that column's score.
    """
    _, x = subject_means(features[:, columns], subjects)
    _, y = subject_means(targets, subjects)
    scores = np.zeros(columns.size)
    for i in range(columns.size):
        present = np.isfinite(x[:, i])
        if task == "classification":
            value = abs(roc_auc(y[present], x[present, i]) - 0.5)
        else:
            value = abs(_spearman(x[present, i], y[present]))
        scores[i] = 0.0 if math.isnan(value) else value
    order = np.lexsort((columns, -scores))  # strongest first, ties by column index
    ranked: IntArray = columns[order]
    return ranked


# ------------------------------------------------------------------------- boosting
def _params(config: BoostedConfig, max_depth: int) -> dict[str, str | int | float]:
    return {
        "objective": "binary:logistic" if config.task == "classification" else "reg:absoluteerror",
        "tree_method": "hist",
        "max_depth": max_depth,
        "eta": config.learning_rate,
        "max_bin": config.max_bin,
        "subsample": config.subsample,
        "colsample_bytree": config.colsample_bytree,
        "min_child_weight": config.min_child_weight,
        "lambda": config.reg_lambda,
        "nthread": config.nthread,
        "seed": config.seed,
        "verbosity": 0,
    }


def _train(
    config: BoostedConfig,
    features: FloatArray,
    targets: FloatArray,
    subjects: StrArray,
    max_depth: int,
    rounds: int,
) -> xgb.Booster:
    weights = subject_weights(subjects)
    weights *= weights.size / weights.sum()  # mean weight 1: min_child_weight keeps its scale
    data = xgb.DMatrix(features, label=targets, weight=weights, nthread=config.nthread)
    params = _params(config, max_depth)
    if rounds == 0:  # the null model: no trees, only the intercept xgboost would estimate
        params["base_score"] = _intercept(config.task, targets, weights)
    return xgb.train(params, data, num_boost_round=rounds)


def _intercept(task: Task, targets: FloatArray, weights: FloatArray) -> float:
    """Weighted rate (classification) or weighted median (absolute-error regression)."""
    if task == "classification":
        return float(np.clip(np.average(targets, weights=weights), _EPS, 1 - _EPS))
    order = np.argsort(targets, kind="stable")
    cumulative = np.cumsum(weights[order])
    return float(targets[order][np.searchsorted(cumulative, cumulative[-1] / 2)])


def _margins(booster: xgb.Booster, features: FloatArray, rounds: int, nthread: int) -> FloatArray:
    """Margins of the first ``rounds`` trees (``rounds`` 0: a tree-less booster's intercept)."""
    if rounds == 0 and booster.num_boosted_rounds() > 0:
        raise ValueError("a null setting needs its own tree-less booster")
    out = booster.inplace_predict(
        np.ascontiguousarray(features, dtype=np.float64),
        iteration_range=(0, rounds),
        predict_type="margin",
    )
    return np.asarray(out, dtype=np.float64)


def _grid(config: BoostedConfig, n_screened: int) -> list[Setting]:
    """Grid points, simplest first (ties in the search go to the simplest).

    ``rounds`` 0 is the null model (intercept only, whatever the depth and features): listed
    once, first, so that where no tree beats the training subjects' average, none is used.
    """
    sizes = sorted(
        {n if n is not None and n < n_screened else n_screened for n in config.n_features}
    )
    null = [Setting(None, min(config.max_depth), 0)] if 0 in config.rounds else []
    return null + [
        Setting(k if k < n_screened else None, depth, rounds)
        for k, depth, rounds in itertools.product(
            sizes, config.max_depth, sorted(r for r in config.rounds if r > 0)
        )
    ]


def _inner_strata(targets: FloatArray, subjects: StrArray, task: Task) -> FloatArray:
    if task == "classification":
        return targets
    ids, per_subject = subject_means(targets, subjects)
    cuts = np.quantile(per_subject, [1 / 3, 2 / 3])
    tertile = dict(zip(ids.tolist(), np.searchsorted(cuts, per_subject, side="right"), strict=True))
    return np.array([float(tertile[s]) for s in subjects.tolist()])


def _subject_loss(task: Task, y: FloatArray, prediction: FloatArray) -> float:
    if task == "classification":
        p = np.clip(prediction, _EPS, 1 - _EPS)
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    return float(np.mean(np.abs(prediction - y)))


@dataclass
class _Search:
    settings: list[Setting]
    losses: list[float]
    best: Setting
    oof_margins: FloatArray  # rows, for the best setting


def _search(
    config: BoostedConfig,
    features: FloatArray,
    targets: FloatArray,
    subjects: StrArray,
    screened: IntArray,
) -> _Search:
    grid = _grid(config, screened.size)
    folds = stratified_subject_folds(
        subjects,
        _inner_strata(targets, subjects, config.task),
        min(config.inner_folds, np.unique(subjects).size),
        config.seed,
    )
    margins = np.full((len(grid), subjects.size), np.nan)
    for fold in folds:
        x, y, s = features[fold.train], targets[fold.train], subjects[fold.train]
        ranked = rank_features(x, y, s, screened, config.task)
        for k, depth in dict.fromkeys((g.n_features, g.max_depth) for g in grid if g.rounds):
            columns = ranked if k is None else ranked[:k]
            booster = _train(config, x[:, columns], y, s, depth, max(config.rounds))
            for i, setting in enumerate(grid):
                if setting.rounds and (setting.n_features, setting.max_depth) == (k, depth):
                    margins[i, fold.test] = _margins(
                        booster, features[fold.test][:, columns], setting.rounds, config.nthread
                    )
        for i, setting in enumerate(grid):
            if setting.rounds == 0:
                null = _train(config, x[:, ranked], y, s, setting.max_depth, 0)
                margins[i, fold.test] = _margins(
                    null, features[fold.test][:, ranked], 0, config.nthread
                )
    _, y_subject = subject_means(targets, subjects)
    losses: list[float] = []
    for i in range(len(grid)):
        row_prediction = sigmoid(margins[i]) if config.task == "classification" else margins[i]
        _, subject_prediction = subject_means(row_prediction, subjects)
        losses.append(_subject_loss(config.task, y_subject, subject_prediction))
    best = int(np.argmin(losses))
    return _Search(grid, losses, grid[best], margins[best])


# --------------------------------------------------------------------------- the model
def _number(value: float) -> float | str | None:
    """JSON for a float that may be NaN (not applicable: null) or infinite ("inf")."""
    if math.isnan(value):
        return None
    return "inf" if math.isinf(value) else value


def _from_number(value: object) -> float:
    if value is None:
        return math.nan
    if value == "inf":
        return math.inf
    if not isinstance(value, int | float):
        raise ValueError("a model number in metadata.json is malformed")
    return float(value)


@dataclass(frozen=True)
class Contribution:
    """One feature's share of a prediction, in margin units (log-odds or MADRS points)."""

    feature: str
    label: str
    value: float
    contribution: float

    def as_dict(self) -> dict[str, JsonValue]:
        return {
            "feature": self.feature,
            "label": self.label,
            "value": None if not math.isfinite(self.value) else self.value,
            "contribution": self.contribution,
            "direction": "raises"
            if self.contribution > 0
            else "lowers"
            if self.contribution < 0
            else "no effect",
        }


@dataclass(frozen=True)
class Explanation:
    """TreeSHAP contributions: ``baseline`` plus every contribution gives the margin."""

    units: str
    baseline: float
    margin: float
    top: tuple[Contribution, ...]

    def as_dict(self) -> dict[str, JsonValue]:
        return {
            "units": self.units,
            "baseline": self.baseline,
            "margin": self.margin,
            "top": [c.as_dict() for c in self.top],
        }


@dataclass
class BoostedModel:
    """A fitted classifier or regressor: predicts from rows of the input features.

    ``predict`` gives one value per row (calibrated probability of depression, or MADRS);
    ``predict_subject`` the mean over one person's rows, the subject-level score.
    """

    config: BoostedConfig
    feature_names: tuple[str, ...]
    feature_labels: Mapping[str, str]
    selected: IntArray
    setting: Setting
    booster: xgb.Booster
    calibrator: Calibrator
    threshold: float
    interval_half_width: float
    search_losses: list[tuple[Setting, float]]
    ensemble: list[xgb.Booster] = field(default_factory=list)
    training: dict[str, JsonValue] = field(default_factory=dict)

    # ---------------------------------------------------------------- prediction
    def _inputs(self, features: FloatArray) -> FloatArray:
        x = np.asarray(features, dtype=np.float64)
        if x.ndim == 1:
            x = x.reshape(1, -1)
        if x.ndim != 2 or x.shape[1] != len(self.feature_names):
            raise ValueError(f"expected rows of {len(self.feature_names)} features")
        return x[:, self.selected]

    def _value(self, booster: xgb.Booster, x: FloatArray) -> FloatArray:
        margin = _margins(booster, x, self.setting.rounds, self.config.nthread)
        return self.calibrator(margin) if self.config.task == "classification" else margin

    def predict(self, features: FloatArray) -> FloatArray:
        """Per row: calibrated probability of depression, or estimated MADRS."""
        return self._value(self.booster, self._inputs(features))

    def predict_subject(self, features: FloatArray) -> float:
        """One person's score: the mean of ``predict`` over their rows."""
        return float(np.mean(self.predict(features)))

    def interval(self, features: FloatArray) -> tuple[float, float]:
        """The person's score interval at ``config.interval_level`` (method: module docstring).

        Regressor: cross-conformal. Classifier: bootstrap-ensemble quantiles, which need
        ``ensemble_size > 0`` at fit time; otherwise ``ValueError``.
        """
        if self.config.task == "regression":
            centre = self.predict_subject(features)
            return centre - self.interval_half_width, centre + self.interval_half_width
        if not self.ensemble:
            raise ValueError("this classifier was fitted without a bootstrap ensemble")
        x = self._inputs(features)
        members = np.array([float(np.mean(self._value(b, x))) for b in self.ensemble])
        tail = (1 - self.config.interval_level) / 2
        low, high = np.quantile(members, [tail, 1 - tail])
        return float(low), float(high)

    def explain(self, features: FloatArray, top: int = 5) -> Explanation:
        """The ``top`` features by |contribution| to this person's mean margin (TreeSHAP)."""
        x = self._inputs(features)
        data = xgb.DMatrix(x, nthread=self.config.nthread)
        contributions = self.booster.predict(
            data, pred_contribs=True, iteration_range=(0, self.setting.rounds)
        ).mean(axis=0)
        finite = np.isfinite(x)
        counts = finite.sum(axis=0)
        sums = np.where(finite, x, 0.0).sum(axis=0)
        values = np.divide(sums, counts, out=np.full(sums.shape, np.nan), where=counts > 0)
        order = np.argsort(-np.abs(contributions[:-1]), kind="stable")[:top]
        names = [self.feature_names[j] for j in self.selected]
        return Explanation(
            units="log-odds of depression" if self.config.task == "classification" else "MADRS",
            baseline=float(contributions[-1]),
            margin=float(contributions.sum()),
            top=tuple(
                Contribution(
                    names[i],
                    self.feature_labels.get(names[i], names[i]),
                    float(values[i]),
                    float(contributions[i]),
                )
                for i in order
            ),
        )

    # ---------------------------------------------------------------- audit
    def fitted_state(self) -> dict[str, JsonValue]:
        """Everything fitted, as JSON: for leakage audits and determinism checks."""
        return {
            "selected": [self.feature_names[j] for j in self.selected],
            "setting": self.setting.as_dict(),
            "calibration": self.calibrator.as_dict(),
            "threshold": self.threshold,
            "interval_half_width": self.interval_half_width,
            "search": [[s.as_dict(), loss] for s, loss in self.search_losses],
            "booster_sha256": hashlib.sha256(bytes(self.booster.save_raw("json"))).hexdigest(),
            "ensemble_sha256": [
                hashlib.sha256(bytes(b.save_raw("json"))).hexdigest() for b in self.ensemble
            ],
        }

    # ---------------------------------------------------------------- persistence
    def save(self, directory: Path) -> None:
        """Write ``booster.json``, ``ensemble/member_NN.json`` and ``metadata.json``."""
        directory.mkdir(parents=True, exist_ok=True)
        files = {"booster.json": self.booster}
        for i, member in enumerate(self.ensemble):
            files[f"ensemble/member_{i:02d}.json"] = member
        digests: dict[str, JsonValue] = {}
        for name, booster in files.items():
            path = directory / name
            path.parent.mkdir(parents=True, exist_ok=True)
            raw = bytes(booster.save_raw("json"))
            path.write_bytes(raw)
            digests[name] = hashlib.sha256(raw).hexdigest()
        metadata: dict[str, JsonValue] = {
            "format": FORMAT,
            "task": self.config.task,
            "config": self.config.as_dict(),
            "feature_names": list(self.feature_names),
            "feature_labels": {n: self.feature_labels.get(n, n) for n in self.feature_names},
            "selected": [self.feature_names[j] for j in self.selected],
            "setting": self.setting.as_dict(),
            "calibration": self.calibrator.as_dict(),
            "threshold": _number(self.threshold),
            "interval": {
                "level": self.config.interval_level,
                "method": "cross-conformal"
                if self.config.task == "regression"
                else "bootstrap-ensemble",
                "half_width": _number(self.interval_half_width),
            },
            "search": [[s.as_dict(), loss] for s, loss in self.search_losses],
            "training": self.training,
            "xgboost_version": xgb.__version__,
            "files": digests,
        }
        text = json.dumps(metadata, indent=2, sort_keys=True, allow_nan=False)
        (directory / "metadata.json").write_text(text + "\n")

    @classmethod
    def load(cls, directory: Path) -> BoostedModel:
        """Read a saved model; ``ValueError`` if a file is missing, altered or not ours."""
        try:
            meta = json.loads((directory / "metadata.json").read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"no readable metadata.json in {directory}") from exc
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ValueError(f"{directory} does not hold a {FORMAT} model")
        boosters: dict[str, xgb.Booster] = {}
        for name, digest in dict(meta["files"]).items():
            try:
                raw = (directory / name).read_bytes()
            except OSError as exc:
                raise ValueError(f"model file {name} is missing") from exc
            if hashlib.sha256(raw).hexdigest() != digest:
                raise ValueError(f"model file {name} does not match its recorded SHA-256")
            booster = xgb.Booster()
            booster.load_model(bytearray(raw))
            boosters[name] = booster
        cfg = dict(meta["config"])
        config = BoostedConfig(
            **{
                **cfg,
                "n_features": tuple(cfg["n_features"]),
                "max_depth": tuple(cfg["max_depth"]),
                "rounds": tuple(cfg["rounds"]),
            }
        )
        names = tuple(str(n) for n in meta["feature_names"])
        index = {n: i for i, n in enumerate(names)}
        setting = Setting(**meta["setting"])
        for booster in boosters.values():
            booster.set_param({"nthread": config.nthread})
        return cls(
            config=config,
            feature_names=names,
            feature_labels={str(k): str(v) for k, v in dict(meta["feature_labels"]).items()},
            selected=np.array([index[n] for n in meta["selected"]], dtype=np.int64),
            setting=setting,
            booster=boosters["booster.json"],
            calibrator=Calibrator.from_dict(dict(meta["calibration"])),
            threshold=_from_number(meta["threshold"]),
            interval_half_width=_from_number(meta["interval"]["half_width"]),
            search_losses=[(Setting(**s), float(loss)) for s, loss in meta["search"]],
            ensemble=[boosters[n] for n in sorted(boosters) if n.startswith("ensemble/")],
            training=dict(meta["training"]),
        )


# --------------------------------------------------------------------------- fitting
def _conformal_half_width(errors: FloatArray, level: float) -> float:
    """The ceil((n + 1) * level)-th smallest absolute error (infinite if n is too small)."""
    n = errors.size
    rank = math.ceil((n + 1) * level)
    return math.inf if rank > n else float(np.sort(errors)[rank - 1])


def mcc_threshold(labels: FloatArray, probability: FloatArray) -> float:
    """The cut between adjacent out-of-fold subject scores that maximises MCC.

    Fitted on training subjects' inner out-of-fold scores only; ties go to the cut nearest
    0.5, so a flat optimum does not drift to an extreme.
    """
    values = np.unique(probability)
    cuts = np.concatenate([[0.0], (values[:-1] + values[1:]) / 2, [1.0]])
    best_cut, best_score = 0.5, -math.inf
    for cut in sorted(cuts.tolist(), key=lambda c: (abs(c - 0.5), c)):
        decided = probability >= cut
        score = matthews_cc(
            float(np.sum(decided & (labels == 1))),
            float(np.sum(~decided & (labels == 0))),
            float(np.sum(decided & (labels == 0))),
            float(np.sum(~decided & (labels == 1))),
        )
        if score > best_score + 1e-12:
            best_cut, best_score = cut, score
    return float(best_cut)


@dataclass(frozen=True)
class BoostedLearner:
    """Fits the whole pipeline (module docstring) on the rows it is given, nothing else."""

    config: BoostedConfig
    feature_names: tuple[str, ...]
    feature_labels: Mapping[str, str] = field(default_factory=dict)

    def with_config(self, **changes: object) -> BoostedLearner:
        return replace(self, config=replace(self.config, **changes))  # type: ignore[arg-type]

    def fit(self, features: FloatArray, targets: FloatArray, subjects: StrArray) -> BoostedModel:
        config = self.config
        x = np.asarray(features, dtype=np.float64)
        y = np.asarray(targets, dtype=np.float64)
        ids = as_subjects(subjects)
        if x.ndim != 2 or x.shape != (ids.size, len(self.feature_names)) or y.shape != ids.shape:
            raise ValueError("features must be rows x feature_names, one target per row")
        if not np.all(np.isfinite(y)):
            raise ValueError("every training row needs a finite target")
        if config.task == "classification" and np.unique(y).tolist() != [0.0, 1.0]:
            raise ValueError("classification needs both classes, labelled 0 and 1")
        screened = screen(x, config.min_present)
        if screened.size == 0:
            raise ValueError("no feature has enough values to train on")

        search = _search(config, x, y, ids, screened)
        best = search.best
        calibrator = Calibrator("none")
        threshold = half_width = math.nan
        if config.task == "classification":
            calibrator = fit_calibrator(
                search.oof_margins, y, subject_weights(ids), method=config.calibration
            )
            threshold = config.threshold
            if config.threshold_rule == "inner_mcc":
                _, oof = subject_means(calibrator(search.oof_margins), ids)
                threshold = mcc_threshold(subject_means(y, ids)[1], oof)
        else:
            _, oof = subject_means(search.oof_margins, ids)
            _, truth = subject_means(y, ids)
            half_width = _conformal_half_width(np.abs(oof - truth), config.interval_level)

        ranked = rank_features(x, y, ids, screened, config.task)
        selected = ranked if best.n_features is None else ranked[: best.n_features]
        booster = _train(config, x[:, selected], y, ids, best.max_depth, best.rounds)
        ensemble = self._ensemble(x[:, selected], y, ids, best)
        return BoostedModel(
            config=config,
            feature_names=self.feature_names,
            feature_labels=dict(self.feature_labels),
            selected=selected,
            setting=best,
            booster=booster,
            calibrator=calibrator,
            threshold=threshold,
            interval_half_width=half_width,
            search_losses=list(zip(search.settings, search.losses, strict=True)),
            ensemble=ensemble,
            training={
                "n_subjects": int(np.unique(ids).size),
                "n_rows": int(ids.size),
                "n_positive_subjects": int(subject_means(y, ids)[1].sum())
                if config.task == "classification"
                else None,
            },
        )

    def _ensemble(
        self, x: FloatArray, y: FloatArray, ids: StrArray, best: Setting
    ) -> list[xgb.Booster]:
        """Boosters refitted on subject bootstrap resamples (both classes in each)."""
        if self.config.ensemble_size == 0:
            return []
        unique = np.unique(ids)
        rows_of = {s: np.flatnonzero(ids == s) for s in unique.tolist()}
        rng = np.random.default_rng(self.config.seed + 1)
        members: list[xgb.Booster] = []
        while len(members) < self.config.ensemble_size:
            drawn = rng.choice(unique, size=unique.size, replace=True)
            rows = np.concatenate([rows_of[s] for s in drawn.tolist()])
            # each draw becomes its own pseudo-subject, so duplicates keep their full weight
            names = np.concatenate(
                [np.full(rows_of[s].size, f"{i}") for i, s in enumerate(drawn.tolist())]
            )
            if self.config.task == "classification" and np.unique(y[rows]).size < 2:
                continue
            members.append(
                _train(self.config, x[rows], y[rows], names, best.max_depth, best.rounds)
            )
        return members


def subject_predictions(
    model: BoostedModel, features: FloatArray, subjects: Sequence[str]
) -> dict[str, float]:
    """Each listed person's subject-level score from their rows."""
    ids = as_subjects(subjects)
    return {s: model.predict_subject(features[ids == s]) for s in np.unique(ids).tolist()}


def default_configs(seed: int = 0) -> tuple[BoostedConfig, BoostedConfig]:
    """The classifier and MADRS regressor configurations evaluated and served.

    The served classifier carries a 20-member bootstrap ensemble for its interval; under
    LOSO evaluation no ensemble is fitted (it does not change the scores).
    """
    return (
        BoostedConfig(task="classification", seed=seed, ensemble_size=20),
        BoostedConfig(task="regression", seed=seed),
    )


def evaluate_boosted(
    rows: FeatureRows,
    *,
    seed: int = 0,
    n_resamples: int = 2000,
    level: float = 0.95,
    classifier: BoostedConfig | None = None,
    regressor: BoostedConfig | None = None,
    workers: int = 1,
) -> dict[str, JsonValue]:
    """Both models under the shared protocol (:mod:`clarity.ml.protocol`) as one JSON report.

    The classifier is evaluated on every subject; the MADRS regressor on the patients only
    (controls have no MADRS). Deterministic for a given ``seed`` and data, whatever
    ``workers`` (processes fitting folds in parallel; the report does not depend on it).
    """
    from clarity.ml.protocol import evaluate_classifier, evaluate_regressor, protocol_description

    default_classifier, default_regressor = default_configs(seed)
    classifier = classifier or replace(default_classifier, ensemble_size=0)
    regressor = regressor or default_regressor
    if classifier.task != "classification" or regressor.task != "regression":
        raise ValueError("classifier and regressor configurations have the wrong tasks")
    names, labels = rows.feature_names, dict(rows.feature_labels)
    classification = evaluate_classifier(
        BoostedLearner(classifier, names, labels),
        rows.features,
        rows.labels,
        rows.subjects,
        threshold_of=lambda model: float(getattr(model, "threshold", 0.5)),
        n_resamples=n_resamples,
        seed=seed,
        level=level,
        workers=workers,
    )
    rated = np.isfinite(rows.madrs)
    patients = rows.subset(rated)

    def interval(model: object, features: FloatArray) -> tuple[float, float]:
        assert isinstance(model, BoostedModel)
        return model.interval(features)

    regression = evaluate_regressor(
        BoostedLearner(regressor, names, labels),
        patients.features,
        patients.madrs,
        patients.subjects,
        interval_of=interval,
        n_resamples=n_resamples,
        seed=seed,
        level=level,
        workers=workers,
    )
    return {
        "protocol": protocol_description(n_resamples, seed, level),
        "data": {
            "dataset": "depresjon",
            "fingerprint_sha256": rows.fingerprint,
            "granularity": rows.granularity,
            "n_rows": int(rows.subjects.size),
            "n_subjects": rows.n_subjects,
            "excluded_subjects": dict(rows.excluded),
            **dict(rows.provenance),
            "features": list(rows.feature_names),
        },
        "classifier": {
            "model": "xgboost gradient-boosted trees, calibrated",
            "target": "depressed (Depresjon condition group) vs control",
            "config": classifier.as_dict(),
            **classification,
        },
        "regressor": {
            "model": "xgboost gradient-boosted trees (absolute-error objective)",
            "target": "MADRS, mean of the ratings at the start and end of the recording",
            "population": "patients with MADRS (controls were not rated)",
            "interval": f"cross-conformal, level {regressor.interval_level}",
            "config": regressor.as_dict(),
            **regression,
        },
        "software": {"xgboost": xgb.__version__, "numpy": np.__version__},
    }


def fit_served_models(rows: FeatureRows, *, seed: int = 0) -> tuple[BoostedModel, BoostedModel]:
    """The classifier (all subjects) and MADRS regressor (rated patients) to serve."""
    classifier, regressor = default_configs(seed)
    names, labels = rows.feature_names, dict(rows.feature_labels)
    patients = rows.subset(np.isfinite(rows.madrs))
    return (
        BoostedLearner(classifier, names, labels).fit(rows.features, rows.labels, rows.subjects),
        BoostedLearner(regressor, names, labels).fit(
            patients.features, patients.madrs, patients.subjects
        ),
    )
