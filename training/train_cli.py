"""`thinkgate train`: fit, evaluate and save a decision model from an outcome table.

    thinkgate train --outcomes TABLE --data ifeval/input_data.jsonl --out DIR

1. pairs the table's outcomes (both modes, no errors) and joins them to the dataset's prompts;
2. the paper's protocol: stratified 50/50 split; estimator, hyper-parameters and threshold are chosen on
   the training half (inner CV); the held-out half is scored once;
3. repeated stratified 2-fold cross-validation of the same procedure (`--repeats`);
4. saves the model fitted on the training half (so the held-out half stays unseen by the artifact; its ids
   are in the metadata) with its threshold, metrics and this command.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any, Sequence

from .outcomes import HEADLINE


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="thinkgate train", description=__doc__.split("\n\n")[0])
    p.add_argument("--outcomes", help="outcome table (JSONL from `thinkgate collect`); required unless --serving-form")
    p.add_argument("--serving-form", metavar="ARTIFACT",
                   help="only (re)write the numpy serving form of an existing artifact directory (no fitting): "
                        "what a proxy loads instead of the scikit-learn pipeline")
    p.add_argument("--dataset", default="ifeval")
    p.add_argument("--data", help="dataset file the table was collected on")
    p.add_argument("--out", help="artifact directory to write (omit to only evaluate)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing artifact directory")
    p.add_argument("--metric", default=HEADLINE, help=f"score the gain is measured on (default {HEADLINE})")
    p.add_argument("--estimator", action="append",
                   help="restrict the candidates to these estimators (repeatable; default: all recipes)")
    p.add_argument("--calibration", default="max_accuracy", choices=["max_accuracy", "think_rate", "cost", "budget"])
    p.add_argument("--think-rate", type=float, help="target think-rate for --calibration think_rate")
    p.add_argument("--cost-penalty", type=float,
                   help="accuracy (fraction) one unit of extra cost must buy, for --calibration cost "
                        "(tokens: e.g. 1e-4; usd: e.g. 10 = a cent per request must buy 0.1 points)")
    p.add_argument("--budget", type=float, help="mean extra cost per request allowed, for --calibration budget")
    p.add_argument("--cost-unit", default="tokens", choices=["tokens", "usd", "requests"],
                   help="unit of --cost-penalty / --budget; usd prices each answer with --prices; requests "
                        "counts a think as 1 (so --budget 0.3 caps the think-rate at 30%%)")
    p.add_argument("--prices", help="price file for --cost-unit usd (default: router.pricing.DEFAULT_PRICES)")
    p.add_argument("--reasoning-tokens", type=int, default=0,
                   help="--cost-unit usd: assumed hidden reasoning tokens per think answer without a count")
    p.add_argument("--repeats", type=int, default=5, help="repetitions of stratified 2-fold CV (0 to skip)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--learning-curve", metavar="FRACTIONS",
                   help="also report held-out accuracy when training on these fractions of each training half "
                        "(e.g. 0.25,0.5,0.75,1)")
    p.add_argument("--learning-curve-plot", metavar="PNG", help="with --learning-curve: write the plot here")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    return p


def _fmt(metrics: dict[str, Any]) -> str:
    lines = []
    for key in ("policy_accuracy", "never_accuracy", "always_accuracy", "random_accuracy", "oracle_accuracy"):
        lines.append(f"  {key.replace('_accuracy', ''):<8} {metrics[key]:6.2f}")
    lines.append(f"  think-rate {metrics['think_rate']:.3f}   classifier accuracy {metrics['classifier_accuracy']:.3f}"
                 f"   AUC {metrics['auc'] if metrics['auc'] is None else round(metrics['auc'], 3)}"
                 f"   (n={metrics['n']}, thinking helps on {metrics['positives']})")
    return "\n".join(lines)


def _fmt_cv(summary: dict[str, Any]) -> str:
    lines = [f"  over {summary['splits']} held-out halves (mean ± sd):"]
    for key, value in summary.items():
        if isinstance(value, dict):
            lines.append(f"  {key:<20} {value['mean']:8.3f} ± {value['std']:.3f}")
    return "\n".join(lines)


def _fmt_curve(rows: list[dict[str, Any]]) -> str:
    lines = [f"  {'fraction':>8} {'train n':>8} {'policy':>8} {'never':>8} {'always':>8} {'random':>8} "
             f"{'oracle':>8} {'think-rate':>10}"]
    for row in rows:
        cells = [row[k]["mean"] for k in ("policy_accuracy", "never_accuracy", "always_accuracy",
                                          "random_accuracy", "oracle_accuracy")]
        lines.append(f"  {row['fraction']:>8.2f} {row['train_examples']:>8d} " + " ".join(f"{c:>8.2f}" for c in cells)
                     + f" {row['think_rate']['mean']:>10.3f}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from classifiers.artifact import save_artifact
    from classifiers.estimators import available_estimators

    import numpy as np

    from .datasets import load
    from .fit import (DEFAULT_CANDIDATES, Calibration, evaluate_model, learning_curve, paper_split, repeated_cv,
                      select_and_fit, summarise)
    from .labels import build_training_set
    from .outcomes import pair_outcomes, read_outcomes, table_hash

    outcomes = read_outcomes(args.outcomes)
    pairs = pair_outcomes(outcomes)
    if len(pairs) < 20:
        raise ValueError(f"{args.outcomes}: only {len(pairs)} examples have outcomes in both modes; need at least 20")
    loaded = load(args.dataset, args.data)
    ts = build_training_set(pairs, {e.id: e for e in loaded.examples}, args.metric)
    if args.cost_unit == "usd":
        ts = ts.with_cost(_extra_usd(args, pairs, ts), "usd")
    elif args.cost_unit == "requests":
        ts = ts.with_cost(np.ones(len(ts)), "requests")
    candidates = [c for c in DEFAULT_CANDIDATES if not args.estimator or c[0] in args.estimator]
    candidates += [(name, {}) for name in (args.estimator or []) if name not in {c[0] for c in candidates}]
    unknown = [n for n in args.estimator or [] if n not in available_estimators()]
    if unknown:
        raise ValueError(f"unknown estimator(s) {', '.join(unknown)}; available: {', '.join(available_estimators())}")
    calibration = Calibration(args.calibration, args.think_rate, args.cost_penalty, args.budget)
    fit_kwargs = {"candidates": candidates, "calibration": calibration}

    train_idx, test_idx = paper_split(ts, args.seed)
    fitted = select_and_fit(ts.subset(train_idx), seed=args.seed, **fit_kwargs)
    held_out = evaluate_model(fitted.model, ts.subset(test_idx))
    cv = summarise(repeated_cv(ts, repeats=args.repeats, seed=args.seed, **fit_kwargs)) if args.repeats else None
    first = outcomes[0]
    result = {
        "examples": len(ts), "metric": args.metric, "chosen": {"estimator": fitted.candidate[0],
                                                                "params": fitted.candidate[1]},
        "threshold": fitted.model.threshold.to_json(), "held_out": held_out, "cross_validation": cv,
        "inner_selection": fitted.inner,
    }
    if args.learning_curve:
        fractions = [float(f) for f in args.learning_curve.split(",") if f.strip()]
        result["learning_curve"] = learning_curve(ts, fractions, repeats=args.repeats or 5, seed=args.seed,
                                                  **fit_kwargs)
        if args.learning_curve_plot:
            from .plots import learning_curve_plot

            learning_curve_plot(result["learning_curve"], args.learning_curve_plot, Path(args.outcomes).name)
    if args.out:
        command = shlex.join(["thinkgate", "train", *sys.argv[2:]]) if sys.argv[1:2] == ["train"] else None
        save_artifact(
            args.out, fitted.model, estimator=fitted.candidate[0], target_model=first.model, profile=first.profile,
            dataset_name=args.dataset, dataset_hash=loaded.version, outcomes_hash=table_hash(args.outcomes),
            metrics={"held_out": held_out, "cross_validation": cv}, command=command, overwrite=args.overwrite,
            extra={"train_ids": [ts.ids[i] for i in train_idx], "held_out_ids": [ts.ids[i] for i in test_idx],
                   "metric": args.metric, "seed": args.seed, "inner_selection": fitted.inner},
        )
        result["artifact"] = str(Path(args.out))
    return result


def _serving_form(path: str, argv: list[str]) -> int:
    from classifiers.artifact import ArtifactError, write_serving_form

    try:
        written = write_serving_form(path, command=shlex.join(["thinkgate", "train", *argv]))
    except (ArtifactError, OSError) as exc:
        print(f"thinkgate train: {exc}", file=sys.stderr)
        return 2
    if written is None:
        print(f"thinkgate train: {path}: this pipeline has no serving form (only linear pipelines do); "
              "it is served from its model file", file=sys.stderr)
        return 1
    print(f"serving form written to {written}")
    return 0


def _extra_usd(args: argparse.Namespace, pairs: Sequence[Any], ts: Any) -> Any:
    """Per example, the dollars thinking costs beyond direct (tokens estimated where the table has none)."""
    import numpy as np
    from router.pricing import PriceTable, load_prices

    from .costs import CostModel, mode_spends

    costs = CostModel(load_prices(args.prices) if args.prices else PriceTable.default(), args.reasoning_tokens)
    spends = mode_spends(pairs, ts.texts, costs)
    return np.array([t.usd - d.usd for d, t in zip(spends["direct"], spends["think"])])


def main(argv: Sequence[str] | None = None) -> int:
    from classifiers.artifact import ArtifactError
    from router.pricing import PriceError

    parser = _parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    if args.serving_form:
        return _serving_form(args.serving_form, argv)
    if not args.outcomes:
        parser.error("--outcomes is required (or --serving-form ARTIFACT)")
    import sklearn.ensemble  # noqa: F401 - loads OpenMP now: threadpool_limits only caps loaded libraries
    from threadpoolctl import threadpool_limits

    try:
        # Hundreds of small fits: OpenMP threads only add contention (tree fits were 30x slower on a busy
        # 2-core machine with the default thread count).
        with threadpool_limits(limits=1):
            result = run(args)
    except (ValueError, KeyError, OSError, ArtifactError, PriceError) as exc:
        print(f"thinkgate train: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=2, default=float))
        return 0
    chosen = result["chosen"]
    print(f"{result['examples']} examples; chosen on the training half: {chosen['estimator']} {chosen['params']}, "
          f"threshold {result['threshold']['value']:.4f} ({result['threshold']['method']})")
    print(f"held-out half ({result['metric']}, %):")
    print(_fmt(result["held_out"]))
    if result["cross_validation"]:
        print("repeated stratified 2-fold cross-validation:")
        print(_fmt_cv(result["cross_validation"]))
    if result.get("learning_curve"):
        print("learning curve (held-out halves of the same repeated CV; training on a fraction of each "
              "training half):")
        print(_fmt_curve(result["learning_curve"]))
    if "artifact" in result:
        print(f"artifact written to {result['artifact']}")
    return 0
