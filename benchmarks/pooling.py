"""Experiment: does pooling several model pairs' outcomes (same prompts) help the prompt-only decision model?

    thinkgate bench pooling TABLE [TABLE ...] --data ../shared/data/ifeval/input_data.jsonl

Each table is one model (pair) on the same dataset. The model is ridge regression of the gain (think − direct)
on the detected constraint counts and taxonomy groups (`taxonomy-ridge`'s features). **Separate**: one model
per table. **Pooled**: one model on all tables' rows, its features once shared and once per table (the table
as a feature: shared weights plus a per-table correction, both shrunk by the same ridge penalty). Protocol as
`thinkgate train`: repeated stratified 2-fold splits of the prompts (the same prompts are held out for every
table, so no prompt is seen in training under another model); alpha and the threshold are chosen on the
training half (inner 5-fold out-of-fold scores; threshold: best accuracy with at most `--budget` of requests
thinking); the held-out half is scored once. Prints mean held-out accuracy per table and arm.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Sequence

import numpy as np

ARMS = ("separate", "pooled", "never", "always", "random", "oracle")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="thinkgate bench pooling", description=__doc__.split("\n\n")[0])
    p.add_argument("tables", nargs="+", help="outcome tables on the same dataset (one per model pair)")
    p.add_argument("--data", required=True, help="the dataset file")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--budget", type=float, default=0.3, help="largest think-rate on the training half")
    p.add_argument("--alphas", default="10,100", help="ridge penalties to choose from on the training half")
    p.add_argument("--seed", type=int, default=0)
    return p


def _design(X: np.ndarray, table: int, tables: int, pooled: bool) -> np.ndarray:
    if not pooled:
        return X
    return np.hstack([X] + [X * (t == table) for t in range(tables)])


def _fit(X: np.ndarray, sets: Sequence[Any], idx: np.ndarray, alpha: float, pooled: bool, only: int) -> list[Any]:
    """One ridge per table (separate) or one shared (pooled); returns a predictor per table."""
    from sklearn.linear_model import Ridge

    n = len(sets)
    if pooled:
        model = Ridge(alpha=alpha).fit(np.vstack([_design(X[idx], t, n, True) for t in range(n)]),
                                       np.concatenate([s.gain[idx] for s in sets]))
        return [lambda Z, t=t: model.predict(_design(Z, t, n, True)) for t in range(n)]
    model = Ridge(alpha=alpha).fit(X[idx], sets[only].gain[idx])
    return [model.predict] * n


def _policy(X, sets, train, test, alphas, budget, pooled, table, seed) -> tuple[float, float]:
    """Held-out (accuracy %, think-rate) of table `table` after choosing alpha and threshold on `train`."""
    from classifiers.calibration import within_budget
    from training.fit import _stratified_folds

    s = sets[table]
    d, t = s.weighted(s.direct), s.weighted(s.think)
    best = None
    folds = _stratified_folds(s.strata[train], 5, seed)
    for alpha in alphas:
        oof = np.zeros(len(train))
        for a, b in folds:
            oof[b] = _fit(X, sets, train[a], alpha, pooled, table)[table](X[train[b]])
        threshold = within_budget(oof, d[train], t[train], np.ones(len(train)), budget)
        if best is None or threshold.train_metric > best[0] + 1e-12:
            best = (threshold.train_metric, alpha, threshold.value)
    _, alpha, value = best
    think = _fit(X, sets, train, alpha, pooled, table)[table](X[test]) >= value
    return 100 * float(np.where(think, t[test], d[test]).mean()), float(think.mean())


def run(args: argparse.Namespace) -> dict[str, dict[str, list[float]]]:
    from classifiers.features import ConstraintFeatures, TaxonomyFeatures
    from sklearn.pipeline import FeatureUnion
    from training.datasets import load
    from training.fit import _stratified_folds
    from training.labels import build_training_set
    from training.outcomes import pair_outcomes, read_outcomes

    examples = {e.id: e for e in load("ifeval", args.data).examples}
    sets = [build_training_set(pair_outcomes(read_outcomes(t)), examples) for t in args.tables]
    common = sorted(set.intersection(*(set(s.ids) for s in sets)), key=sets[0].ids.index)
    if len(common) < 20:
        raise ValueError(f"the tables share only {len(common)} examples; need the same prompts in each")
    sets = [s.subset([s.ids.index(i) for i in common]) for s in sets]  # same examples, same order
    texts = list(sets[0].texts)
    X = FeatureUnion([("c", ConstraintFeatures()), ("t", TaxonomyFeatures())]).fit(texts).transform(texts)
    alphas = [float(a) for a in args.alphas.split(",")]
    out: dict[str, dict[str, list[float]]] = {t: {a: [] for a in (*ARMS, "rate_separate", "rate_pooled")}
                                              for t in args.tables}
    for r in range(args.repeats):
        for train, test in _stratified_folds(sets[0].strata, 2, args.seed + 1000 + r):
            for k, (table, s) in enumerate(zip(args.tables, sets)):
                d, t = s.weighted(s.direct), s.weighted(s.think)
                row = out[table]
                for pooled, name in ((False, "separate"), (True, "pooled")):
                    acc, rate = _policy(X, sets, train, test, alphas, args.budget, pooled, k, args.seed + r)
                    row[name].append(acc)
                    row[f"rate_{name}"].append(rate)
                row["never"].append(100 * d[test].mean())
                row["always"].append(100 * t[test].mean())
                rate = row["rate_separate"][-1]
                row["random"].append(100 * ((1 - rate) * d[test] + rate * t[test]).mean())
                row["oracle"].append(100 * np.maximum(d[test], t[test]).mean())
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        out = run(args)
    except (ValueError, OSError, KeyError) as exc:
        print(f"thinkgate bench pooling: {exc}", file=sys.stderr)
        return 2
    print(f"held-out instruction-level loose accuracy, mean over {2 * args.repeats} halves "
          f"(think-rate budget {args.budget} on the training half; random at the separate model's rate)")
    print(f"{'table':<44}" + "".join(f"{a:>10}" for a in ARMS) + f"{'rate sep':>10}{'rate pool':>10}")
    for table, row in out.items():
        cells = [np.mean(row[a]) for a in (*ARMS, "rate_separate", "rate_pooled")]
        print(f"{table.rsplit('/', 1)[-1]:<44}" + "".join(f"{c:>10.2f}" for c in cells[:-2])
              + f"{cells[-2]:>10.3f}{cells[-1]:>10.3f}")
    return 0
