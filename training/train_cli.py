"""`thinkgate train`: fit, evaluate and save a decision model from an outcome table.

    thinkgate train --outcomes TABLE --data ifeval/input_data.jsonl --out DIR
    thinkgate train --outcomes ifeval.jsonl --outcomes complexbench.jsonl \
        --data ifeval=input_data.jsonl --data complexbench=data_final.json --out DIR

1. pairs the tables' outcomes (both modes, no errors) and joins them to the datasets' prompts; each
   example's gain is measured on its own benchmark's metric (IFEval `inst_level_loose`, ComplexBench
   `complexbench_drfr`) unless `--metric` names one, and weighted by its requirements (instructions or
   scoring questions), so a mixed table's accuracy is the share of all requirements satisfied;
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

from .outcomes import HEADLINES


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="thinkgate train", description=__doc__.split("\n\n")[0])
    p.add_argument("--outcomes", required=True, action="append",
                   help="outcome table (JSONL from `thinkgate collect`); repeat to train on several")
    p.add_argument("--dataset", default="ifeval", help="dataset of a --data PATH given without NAME=")
    p.add_argument("--data", action="append",
                   help="dataset file the table was collected on, PATH or NAME=PATH (repeat for several)")
    p.add_argument("--out", help="artifact directory to write (omit to only evaluate)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing artifact directory")
    p.add_argument("--metric", help="score the gain is measured on (default: each benchmark's own, "
                   + ", ".join(f"{k} {v}" for k, v in HEADLINES.items()) + ")")
    p.add_argument("--estimator", action="append",
                   help="restrict the candidates to these estimators (repeatable; default: all recipes)")
    p.add_argument("--calibration", default="max_accuracy", choices=["max_accuracy", "think_rate", "cost"])
    p.add_argument("--think-rate", type=float, help="target think-rate for --calibration think_rate")
    p.add_argument("--cost-penalty", type=float,
                   help="accuracy (fraction) one extra token must buy, for --calibration cost (e.g. 1e-4)")
    p.add_argument("--repeats", type=int, default=5, help="repetitions of stratified 2-fold CV (0 to skip)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    return p


def _fmt(metrics: dict[str, Any]) -> str:
    lines = []
    for key in ("policy_accuracy", "never_accuracy", "always_accuracy", "oracle_accuracy"):
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


def _datasets(specs: Sequence[str | None], default: str) -> dict[str, str | None]:
    """`--data` values (PATH or NAME=PATH) as {dataset name: path}."""
    out: dict[str, str | None] = {}
    for spec in specs:
        name, sep, path = (spec or "").partition("=")
        name, path_or_none = (name, path) if sep and not Path(spec or "").exists() else (default, spec)
        if name in out:
            raise ValueError(f"--data names dataset {name!r} twice")
        out[name] = path_or_none
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    from classifiers.artifact import save_artifact
    from classifiers.estimators import available_estimators

    from .datasets import load
    from .fit import DEFAULT_CANDIDATES, Calibration, evaluate_model, paper_split, repeated_cv, select_and_fit, summarise
    from .labels import build_training_set
    from .outcomes import headline_metric, pair_outcomes, read_outcomes, table_hash

    outcomes = [o for table in args.outcomes for o in read_outcomes(table)]
    pairs = pair_outcomes(outcomes)
    tables = ", ".join(args.outcomes)
    if len(pairs) < 20:
        raise ValueError(f"{tables}: only {len(pairs)} examples have outcomes in both modes; need at least 20")
    models = sorted({o.model for p in pairs for o in (p.direct, p.think)})
    if len(models) > 1:
        raise ValueError(f"{tables}: outcomes of several models ({', '.join(models)}); a decision model is "
                         "trained for one model")
    datasets = _datasets(args.data or [None], args.dataset)
    loaded = {name: load(name, path) for name, path in datasets.items()}
    ts = build_training_set(pairs, {e.id: e for lr in loaded.values() for e in lr.examples}, args.metric)
    metric = args.metric or "+".join(dict.fromkeys(headline_metric(i) for i in ts.ids))
    candidates = [c for c in DEFAULT_CANDIDATES if not args.estimator or c[0] in args.estimator]
    candidates += [(name, {}) for name in (args.estimator or []) if name not in {c[0] for c in candidates}]
    unknown = [n for n in args.estimator or [] if n not in available_estimators()]
    if unknown:
        raise ValueError(f"unknown estimator(s) {', '.join(unknown)}; available: {', '.join(available_estimators())}")
    calibration = Calibration(args.calibration, args.think_rate, args.cost_penalty)
    fit_kwargs = {"candidates": candidates, "calibration": calibration}

    train_idx, test_idx = paper_split(ts, args.seed)
    fitted = select_and_fit(ts.subset(train_idx), seed=args.seed, **fit_kwargs)
    held_out = evaluate_model(fitted.model, ts.subset(test_idx))
    cv = summarise(repeated_cv(ts, repeats=args.repeats, seed=args.seed, **fit_kwargs)) if args.repeats else None
    first = outcomes[0]
    result = {
        "examples": len(ts), "metric": metric, "chosen": {"estimator": fitted.candidate[0],
                                                                "params": fitted.candidate[1]},
        "threshold": fitted.model.threshold.to_json(), "held_out": held_out, "cross_validation": cv,
        "inner_selection": fitted.inner,
    }
    if args.out:
        command = shlex.join(["thinkgate", "train", *sys.argv[2:]]) if sys.argv[1:2] == ["train"] else None
        save_artifact(
            args.out, fitted.model, estimator=fitted.candidate[0], target_model=first.model, profile=first.profile,
            dataset_name="+".join(loaded), dataset_hash="+".join(lr.version for lr in loaded.values()),
            outcomes_hash="+".join(table_hash(t) for t in args.outcomes),
            metrics={"held_out": held_out, "cross_validation": cv}, command=command, overwrite=args.overwrite,
            extra={"train_ids": [ts.ids[i] for i in train_idx], "held_out_ids": [ts.ids[i] for i in test_idx],
                   "metric": metric, "seed": args.seed, "inner_selection": fitted.inner,
                   "judges": sorted({str(p.direct.scores["judge"]) for p in pairs if "judge" in p.direct.scores})},
        )
        result["artifact"] = str(Path(args.out))
    return result


def main(argv: Sequence[str] | None = None) -> int:
    from classifiers.artifact import ArtifactError

    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    import sklearn.ensemble  # noqa: F401 - loads OpenMP now: threadpool_limits only caps loaded libraries
    from threadpoolctl import threadpool_limits

    try:
        # Hundreds of small fits: OpenMP threads only add contention (tree fits were 30x slower on a busy
        # 2-core machine with the default thread count).
        with threadpool_limits(limits=1):
            result = run(args)
    except (ValueError, KeyError, OSError, ArtifactError) as exc:
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
    if "artifact" in result:
        print(f"artifact written to {result['artifact']}")
    return 0
