"""Fit, select and evaluate decision models without touching held-out data.

Protocol (the paper's, plus repeated cross-validation because 541 prompts are few):
- `paper_split`: a stratified 50/50 split; everything is chosen on the training half; the held-out half is
  scored once.
- Inside the training half, `select_and_fit` compares candidate estimators/hyper-parameters by inner
  stratified k-fold: each candidate's out-of-fold scores get a threshold calibrated on them, and the
  candidate with the best out-of-fold downstream accuracy wins. It is then refit on the whole training half,
  keeping the threshold calibrated on its out-of-fold scores (in-sample scores would be over-confident).
- `repeated_cv`: the same procedure on R repetitions of a stratified 2-fold split (each fold a 50/50 split).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from classifiers.calibration import Threshold, calibrate, evaluate
from classifiers.estimators import estimator_spec, make_estimator
from classifiers.model import DecisionModel

from .labels import TrainingSet

Candidate = tuple[str, dict[str, Any]]

DEFAULT_CANDIDATES: tuple[Candidate, ...] = (
    ("linear", {"C": 0.1}), ("linear", {"C": 1.0}), ("linear", {"C": 10.0}),
    ("constraints-linear", {"C": 0.1}), ("constraints-linear", {"C": 1.0}),
    ("tree", {}),
    ("ridge", {"alpha": 1.0}), ("ridge", {"alpha": 10.0}),  # regression on the gain itself
    # the paper's failure taxonomy over detected constraints: few, interpretable weights
    ("taxonomy-ridge", {"alpha": 10.0}), ("taxonomy-ridge", {"alpha": 100.0}),
    ("taxonomy-sparse", {"C": 0.1}), ("taxonomy-sparse", {"C": 1.0}),
)


@dataclass(frozen=True)
class Calibration:
    method: str = "max_accuracy"  # max_accuracy | think_rate | cost | budget
    rate: float | None = None
    cost_penalty: float | None = None  # accuracy (fraction) per unit of extra cost (`TrainingSet.cost_unit`)
    budget: float | None = None  # mean extra cost per request allowed (same unit)

    def threshold(self, scores: np.ndarray, ts: TrainingSet) -> Threshold:
        return calibrate(scores, self.method, direct=ts.weighted(ts.direct), think=ts.weighted(ts.think),
                         rate=self.rate, extra_cost=ts.extra_cost, cost_penalty=self.cost_penalty,
                         budget=self.budget)


@dataclass
class Fitted:
    model: DecisionModel
    candidate: Candidate
    inner: list[dict[str, Any]] = field(default_factory=list)


def _target(name: str, ts: TrainingSet) -> np.ndarray:
    return ts.gain if estimator_spec(name).task == "regression" else ts.labels


def _scores(model: Any, name: str, texts: Sequence[str]) -> np.ndarray:
    if estimator_spec(name).task == "regression":
        return np.asarray(model.predict(list(texts)), dtype=float).ravel()
    proba = model.predict_proba(list(texts))
    return np.asarray(proba[:, 1] if proba.shape[1] > 1 else np.zeros(len(texts)), dtype=float)


def _fit(candidate: Candidate, ts: TrainingSet) -> Any:
    name, params = candidate
    y = _target(name, ts)
    if estimator_spec(name).task == "classification" and len(set(y)) < 2:
        return None  # one class only: nothing to learn, the constant policy is used
    return make_estimator(name, **params).fit(list(ts.texts), y)


def _stratified_folds(strata: np.ndarray, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import StratifiedKFold

    counts = np.bincount(strata)
    k = max(2, min(k, int(counts[counts > 0].min()) if counts.any() else 2))
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(strata)), strata))


def oof_scores(candidate: Candidate, ts: TrainingSet, folds: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    scores = np.zeros(len(ts))
    for train_idx, test_idx in folds:
        model = _fit(candidate, ts.subset(train_idx))
        scores[test_idx] = 0.0 if model is None else _scores(model, candidate[0], [ts.texts[i] for i in test_idx])
    return scores


def select_and_fit(ts: TrainingSet, *, candidates: Sequence[Candidate] = DEFAULT_CANDIDATES,
                   calibration: Calibration = Calibration(), inner_folds: int = 5, seed: int = 0,
                   on_step: Callable[[], None] | None = None) -> Fitted:
    folds = _stratified_folds(ts.strata, inner_folds, seed)
    best: tuple[float, Candidate, Threshold] | None = None
    inner = []
    for candidate in candidates:
        scores = oof_scores(candidate, ts, folds)
        threshold = calibration.threshold(scores, ts)
        result = evaluate(threshold, scores, ts.weighted(ts.direct), ts.weighted(ts.think))
        inner.append({"estimator": candidate[0], "params": candidate[1], "oof_accuracy": result["accuracy"],
                      "oof_think_rate": result["think_rate"], "oof_auc": auc(ts.labels, scores)})
        objective = threshold.train_metric if calibration.method != "think_rate" else result["accuracy"]
        if best is None or objective > best[0] + 1e-12:
            best = (objective, candidate, threshold)
        if on_step:
            on_step()
    assert best is not None
    _, candidate, threshold = best
    pipeline = _fit(candidate, ts)
    if pipeline is None:
        raise ValueError("the training half has a single label: every example is a tie or a loss for thinking")
    model = DecisionModel(pipeline, threshold, {"estimator": candidate[0], "params": candidate[1]})
    return Fitted(model, candidate, inner)


def auc(labels: Any, scores: Any) -> float | None:
    """ROC AUC of `scores` for the positive `labels`; None when only one class is present."""
    if len(set(np.asarray(labels).tolist())) < 2:
        return None
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores))


def evaluate_model(model: DecisionModel, ts: TrainingSet) -> dict[str, Any]:
    """Downstream policy accuracy (instruction-level micro-average, in %) and classifier quality on `ts`."""
    scores = model.score_many(ts.texts)
    think = scores >= model.threshold.value
    out = evaluate(model.threshold, scores, ts.weighted(ts.direct), ts.weighted(ts.think),
                   extra_cost=ts.extra_cost)
    labels = ts.labels
    return {
        "n": len(ts),
        "policy_accuracy": 100 * out["accuracy"],
        "never_accuracy": 100 * out["accuracy_never"],
        "always_accuracy": 100 * out["accuracy_always"],
        "oracle_accuracy": 100 * out["accuracy_oracle"],
        "think_rate": out["think_rate"],
        "mean_extra_cost": out.get("mean_extra_cost"),
        "cost_unit": ts.cost_unit,
        "random_accuracy": 100 * _random_at(out["think_rate"], ts),
        "classifier_accuracy": float((think.astype(int) == labels).mean()),
        "auc": auc(labels, scores),
        "positives": int(labels.sum()),
    }


def _random_at(rate: float, ts: TrainingSet) -> float:
    """Expected accuracy of thinking at random with probability `rate` (the same think-rate as the policy)."""
    return float(np.mean((1 - rate) * ts.weighted(ts.direct) + rate * ts.weighted(ts.think)))


def paper_split(ts: TrainingSet, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Stratified 50/50 split of the benchmark (train, held-out)."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(ts))
    train, test = train_test_split(idx, test_size=0.5, random_state=seed, stratify=ts.strata)
    return np.sort(train), np.sort(test)


def repeated_cv(ts: TrainingSet, *, repeats: int = 5, seed: int = 0, **fit_kwargs: Any) -> list[dict[str, Any]]:
    """R × stratified 2-fold: each fold is trained on one half and evaluated on the other."""
    results = []
    for r in range(repeats):
        for train_idx, test_idx in _stratified_folds(ts.strata, 2, seed + 1000 + r):
            fitted = select_and_fit(ts.subset(train_idx), seed=seed + r, **fit_kwargs)
            result = evaluate_model(fitted.model, ts.subset(test_idx))
            result["estimator"] = fitted.candidate[0]
            results.append(result)
    return results


def learning_curve(ts: TrainingSet, fractions: Sequence[float], *, repeats: int = 5, seed: int = 0,
                   **fit_kwargs: Any) -> list[dict[str, Any]]:
    """Held-out policy accuracy when only a fraction of each training half is used (same held-out halves as
    `repeated_cv`): does the decision model still improve with more data? One summary per fraction."""
    from sklearn.model_selection import train_test_split

    rows = []
    for fraction in fractions:
        if not 0 < fraction <= 1:
            raise ValueError(f"learning-curve fractions must be in (0, 1], got {fraction}")
        results = []
        for r in range(repeats):
            for train_idx, test_idx in _stratified_folds(ts.strata, 2, seed + 1000 + r):
                if fraction < 1:
                    strata = ts.strata[train_idx]
                    stratify = strata if np.bincount(strata).min(initial=len(strata)) >= 2 else None
                    train_idx, _ = train_test_split(train_idx, train_size=fraction, random_state=seed + r,
                                                    stratify=stratify)
                fitted = select_and_fit(ts.subset(train_idx), seed=seed + r, **fit_kwargs)
                results.append(evaluate_model(fitted.model, ts.subset(test_idx)))
        rows.append({"fraction": fraction, "train_examples": int(round(fraction * len(ts) / 2)),
                     **summarise(results)})
    return rows


def summarise(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    keys = ("policy_accuracy", "never_accuracy", "always_accuracy", "random_accuracy", "oracle_accuracy",
            "think_rate", "classifier_accuracy", "auc")
    out: dict[str, Any] = {"splits": len(results)}
    for key in keys:
        values = np.array([r[key] for r in results if r.get(key) is not None], dtype=float)
        if values.size:
            out[key] = {"mean": float(values.mean()), "std": float(values.std(ddof=1)) if values.size > 1 else 0.0}
    return out
