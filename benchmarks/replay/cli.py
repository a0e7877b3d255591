"""`thinkgate bench replay TABLE`: thinking policies replayed on an outcome table, with cost.

    thinkgate bench replay training/outcome_tables/gpt-4o-mini-o1-mini-ifeval.jsonl \
      --data ../shared/data/ifeval/input_data.jsonl --artifact classifiers/artifacts/gpt-4o-mini-o1-mini-ifeval \
      --out benchmarks/reports/replay-gpt-4o-mini-o1-mini

No model is called: every arm's answer is one of the table's two recorded answers (see `arms.py`). With a
decision model (`--artifact`), only the examples it was not trained on count, for every arm.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Sequence

DEFAULT_ARMS = "never,always,random,classifier,oracle"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="thinkgate bench replay", description=__doc__.split("\n\n")[0])
    p.add_argument("table", help="outcome table (JSONL, from `thinkgate collect` or `thinkgate import`)")
    p.add_argument("--data", required=True, help="the dataset file the table was built on (for the prompts)")
    p.add_argument("--dataset", default="ifeval", choices=("ifeval", "complexbench"),
                   help="the dataset loader for --data (default ifeval); the metrics follow the table's scores")
    p.add_argument("--artifact", help="decision model for the classifier arm (its held-out ids are replayed)")
    p.add_argument("--arms", default=DEFAULT_ARMS, help=f"comma-separated (default {DEFAULT_ARMS})")
    p.add_argument("--ids", default="auto", help="held-out, all, auto (held-out with the classifier) or a file")
    p.add_argument("--prices", help="price file (TOML/JSON, see router/pricing.py); default: the public list "
                                    "prices in router.pricing.DEFAULT_PRICES")
    p.add_argument("--config", help="take the prices from this thinkgate config's route (its `prices` table)")
    p.add_argument("--route", help="route alias in --config (default: its only route)")
    p.add_argument("--reasoning-tokens", type=int, default=0,
                   help="assumed hidden reasoning tokens per think answer when the table has no token counts "
                        "(default 0: costs of thinking are then lower bounds)")
    p.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples")
    p.add_argument("--out", help="report directory (default: print the table only)")
    p.add_argument("--title")
    return p


def _prices(args: argparse.Namespace):
    from router.pricing import PriceTable, load_prices

    if args.prices and args.config:
        raise ValueError("pass --prices or --config, not both")
    if args.prices:
        return load_prices(args.prices)
    if args.config:
        from router.settings import load_config

        routes = load_config(args.config, environ={}).routes
        alias = args.route or (next(iter(routes)) if len(routes) == 1 else None)
        if alias not in routes:
            raise ValueError(f"--route: pick one of {', '.join(routes)}")
        if not routes[alias].prices:
            raise ValueError(f"route {alias!r} in {args.config} has no `prices` table")
        return PriceTable(routes[alias].prices)
    return PriceTable.default()


def run(args: argparse.Namespace, command: str) -> tuple[object, list[str]]:
    from benchmarks.ab.cli import select_ids
    from benchmarks.ab.results import COMPLEXBENCH, IFEVAL
    from training.costs import CostModel
    from training.datasets import load
    from training.outcomes import pair_outcomes, read_outcomes
    from training.scoring.complexbench import METRIC_DRFR

    from .arms import Context, Row
    from .results import build

    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    if "classifier" in arms and not args.artifact:
        raise ValueError("the classifier arm needs --artifact (or leave it out of --arms)")
    if args.reasoning_tokens < 0:
        raise ValueError("--reasoning-tokens must be >= 0")
    ids, ids_note = select_ids(args.ids, arms, args.artifact)
    pairs = {p.id: p for p in pair_outcomes(read_outcomes(args.table))}
    kinds = {METRIC_DRFR in p.direct.scores for p in pairs.values()}
    if len(kinds) > 1:
        raise ValueError(f"{args.table} mixes IFEval and ComplexBench outcomes: replay one benchmark at a time")
    measure = COMPLEXBENCH if True in kinds else IFEVAL
    prompts = {e.id: e.prompt for e in load(args.dataset, args.data).examples}
    chosen = [i for i in (ids if ids is not None else list(pairs)) if i in pairs and i in prompts]
    missing = len(ids) - len(chosen) if ids is not None else 0
    costs = CostModel(_prices(args), args.reasoning_tokens)
    scores, ctx = [None] * len(chosen), Context()
    if "classifier" in arms:
        from classifiers.artifact import load_artifact

        model = load_artifact(args.artifact)
        scores = [float(s) for s in model.score_many([prompts[i] for i in chosen])]
        ctx = Context(threshold=model.threshold.value)
    rows = [Row(i, prompts[i], pairs[i], {m: costs.spend(pairs[i].of(m), prompts[i]) for m in ("direct", "think")},
                s, measure) for i, s in zip(chosen, scores)]
    if "classifier" in arms and rows:
        ctx = Context(threshold=ctx.threshold, rate=sum(r.score >= ctx.threshold for r in rows) / len(rows))
    results = build(rows, arms, ctx, resamples=args.resamples)
    estimated = any(s.estimated for r in rows for s in r.spend.values())
    models = sorted({pairs[i].of(m).model for i in chosen for m in ("direct", "think")})
    context = [f"- command: `{command}`", f"- examples: {len(rows)} — {ids_note}"
               + (f"; {missing} of them have no pair in the table (left out)" if missing else ""),
               f"- models: {', '.join(models)}; prices (USD per million input / output tokens): "
               + "; ".join(f"{m} {costs.prices.price(m).input_per_mtok:g} / {costs.prices.price(m).output_per_mtok:g}"
                           for m in models),
               f"- cost: {costs.describe(estimated)}",
               "- `random` thinks at the classifier's think-rate on these examples"
               + (f" ({ctx.rate:.3f})" if "classifier" in arms else " (0 without a classifier)")]
    return results, context


def main(argv: Sequence[str] | None = None) -> int:
    from classifiers.artifact import ArtifactError
    from router.errors import ConfigError
    from router.pricing import PriceError

    raw = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(raw)
    command = shlex.join(["thinkgate", "bench", "replay", *raw])
    try:
        results, context = run(args, command)
    except (ValueError, KeyError, OSError, ArtifactError, PriceError) as exc:
        print(f"thinkgate bench replay: {exc}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"thinkgate bench replay: {exc.message}", file=sys.stderr)
        return 2
    from .report import arm_rows, goal_lines, write_report

    header, rows = arm_rows(results)
    print("\n".join(context))
    print("  ".join(f"{h:>12}" for h in header))
    for row in rows:
        print("  ".join(f"{c:>12}" for c in row))
    print("\n".join(goal_lines(results)))
    if args.out:
        title = args.title or f"Replay: {Path(args.table).name} ({len(results.ids)} examples)"
        settings = {"table": args.table, "artifact": args.artifact, "prices": args.prices,
                    "reasoning_tokens": args.reasoning_tokens, "resamples": args.resamples}
        paths = write_report(results, Path(args.out), title=title, context=context, settings=settings)
        print("wrote " + ", ".join(str(p) for p in paths))
    return 0
