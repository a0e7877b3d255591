"""`thinkgate self-select`: the self-select policy's score per example, and its calibrated threshold.

    thinkgate self-select score --data ifeval/input_data.jsonl --out scores.jsonl      # resumable
    thinkgate self-select calibrate --scores scores.jsonl --outcomes TABLE --data ifeval/input_data.jsonl \\
        --split-from classifiers/artifacts/smollm2-135m-ifeval --out calibration.json

`score` asks the route's model (default: the embedded SmolLM2) the self-select question once per example,
reading P(YES) / (P(YES) + P(NO)) from its log-probabilities (text parsing where the upstream has none).
`calibrate` fits the threshold on the training ids only (by default the ones a classifier artifact was trained
on, so the two policies are compared on the same held-out half) and writes a calibration file for
`policy_options.calibration`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any, Sequence

from .collect_cli import add_route_arguments, resolve_route, resolve_strategy


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="thinkgate self-select", description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("score", help="ask the model the self-select question once per example (resumable JSONL)")
    s.add_argument("--dataset", default="ifeval")
    s.add_argument("--data", help="dataset file (default: the public dataset id, needs internet)")
    s.add_argument("--out", required=True, help="scores file to append to (JSONL)")
    s.add_argument("--limit", type=int, help="only the first N examples")
    s.add_argument("--method", default="auto", choices=["auto", "logprobs", "text"])
    s.add_argument("--concurrency", type=int, default=16)
    s.add_argument("--timeout", type=float, default=600.0, help="seconds per question (a CPU queue can be long)")
    s.add_argument("--no-progress", action="store_true")
    add_route_arguments(s)
    s.add_argument("--think-budget", type=int, help=argparse.SUPPRESS)
    c = sub.add_parser("calibrate", help="fit the threshold on outcomes (training ids only) and write the file")
    c.add_argument("--scores", required=True)
    c.add_argument("--outcomes", required=True, help="outcome table of the same model (both modes)")
    c.add_argument("--dataset", default="ifeval")
    c.add_argument("--data", help="dataset file the table was collected on")
    c.add_argument("--split-from", help="classifier artifact whose train/held-out ids to use (default: the "
                   "paper's stratified 50/50 split with --seed)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--calibration", default="max_accuracy", choices=["max_accuracy", "think_rate", "cost"])
    c.add_argument("--think-rate", type=float)
    c.add_argument("--cost-penalty", type=float)
    c.add_argument("--model", default="", help="the model the scores came from (recorded in the file)")
    c.add_argument("--out", help="calibration file to write (omit to only print the report)")
    c.add_argument("--json", action="store_true")
    return p


async def _score(args: argparse.Namespace) -> int:
    from router.deciders.self_select import SelfSelectDecider
    from router.routes import build_backend

    from .datasets import load
    from .self_select import collect_scores

    loaded = load(args.dataset, args.data, limit=args.limit)
    alias, cfg = resolve_route(args)
    strategy = resolve_strategy(args, cfg)
    backend = build_backend(alias, cfg, environ=os.environ)
    decider = SelfSelectDecider({"method": args.method, "timeout_s": args.timeout}, backend=backend,
                                direct_body=strategy.direct_body,
                                upstream_model=cfg.model or alias)
    try:
        await backend.start()
        if not await backend.wait_ready(600):
            print("thinkgate self-select: the model did not become ready", file=sys.stderr)
            return 1
        summary = await collect_scores(loaded.examples, decider, out_path=args.out, concurrency=args.concurrency,
                                       progress=not args.no_progress)
    finally:
        await backend.aclose()
    print(f"scored {summary.done}, already done {summary.skipped}, failed {summary.failed} in "
          f"{summary.seconds:.0f} s -> {args.out}", file=sys.stderr)
    for line in summary.errors[:10]:
        print(f"  failed: {line}", file=sys.stderr)
    return 0 if summary.failed == 0 else 1


def _split(args: argparse.Namespace, ts: Any) -> tuple[Any, Any]:
    import numpy as np

    if args.split_from:
        from classifiers.artifact import read_metadata

        extra = read_metadata(args.split_from).get("extra") or {}
        index = {i: n for n, i in enumerate(ts.ids)}
        train = [index[i] for i in extra.get("train_ids") or [] if i in index]
        held = [index[i] for i in extra.get("held_out_ids") or [] if i in index]
        if not train or not held:
            raise ValueError(f"{args.split_from}: its metadata has no train/held-out ids matching this table")
        return ts.subset(np.array(sorted(train))), ts.subset(np.array(sorted(held)))
    from .fit import paper_split

    train_idx, held_idx = paper_split(ts, seed=args.seed)
    return ts.subset(train_idx), ts.subset(held_idx)


def _calibrate(args: argparse.Namespace) -> int:
    from router.deciders.self_select import SELF_SELECT_PROMPT

    from .datasets import load
    from .labels import build_training_set
    from .outcomes import pair_outcomes, read_outcomes, table_hash
    from .self_select import calibrate_threshold, calibration_file, read_scores

    pairs = pair_outcomes(read_outcomes(args.outcomes))
    loaded = load(args.dataset, args.data)
    ts = build_training_set(pairs, {e.id: e for e in loaded.examples})
    train, held_out = _split(args, ts)
    threshold, report = calibrate_threshold(train, held_out, read_scores(args.scores), method=args.calibration,
                                            rate=args.think_rate, cost_penalty=args.cost_penalty)
    command = "thinkgate self-select " + shlex.join(sys.argv[2:] if args.argv is None else args.argv)
    data = calibration_file(threshold, prompt=SELF_SELECT_PROMPT, model=args.model, command=command, report=report,
                            sources={"scores": str(args.scores), "outcomes": str(args.outcomes),
                                     "outcomes_hash": table_hash(args.outcomes), "split_from": args.split_from or ""})
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(data, indent=2) if args.json else _format(data))
    return 0


def _format(data: dict[str, Any]) -> str:
    lines = [f"threshold {data['threshold']:.4f} ({data['method']}); score methods: {data['report']['methods']}"]
    for name in ("train", "held_out", "default_threshold_held_out"):
        r = data["report"][name]
        auc = "n/a" if r["auc_gain_positive"] is None else f"{r['auc_gain_positive']:.3f}"
        lines.append(f"  {name:<27} n={r['n']:<4} self-select {r['policy_accuracy']:6.2f}  never "
                     f"{r['never_accuracy']:6.2f}  always {r['always_accuracy']:6.2f}  oracle "
                     f"{r['oracle_accuracy']:6.2f}  think-rate {r['think_rate']:.3f}  AUC {auc}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    from router.errors import ThinkgateError

    arguments = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(arguments)
    args.argv = arguments if argv is not None else None
    try:
        if args.command == "score":
            return asyncio.run(_score(args))
        return _calibrate(args)
    except ThinkgateError as exc:
        print(f"thinkgate self-select: {exc.message}", file=sys.stderr)
        return 2
    except (ValueError, OSError, KeyError) as exc:
        print(f"thinkgate self-select: {exc}", file=sys.stderr)
        return 2
