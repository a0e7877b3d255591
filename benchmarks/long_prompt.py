"""Decision cost on very long prompts: the constraint detector and a full classifier decision, per size.

The prompt is IFEval's prompts concatenated until it reaches each size (dense in instruction phrases, the worst
case for the detector). Times the full text (the detector alone and `DecisionModel.score`) and the budgeted text
the proxy actually decides on (`router.deciders.budgeted_text`).

    python -m benchmarks.long_prompt --sizes 1000000 4000000
    PYTHONPATH=/tmp/base python -m benchmarks.long_prompt --full-only    # an older classifiers/ for a baseline
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Callable, Sequence

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "ifeval" / "input_data.jsonl"


def long_prompt(path: Path, size: int) -> str:
    prompts = [json.loads(line)["prompt"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    parts, total, i = [], 0, 0
    while total < size:
        parts.append(prompts[i % len(prompts)])
        total += len(parts[-1]) + 1
        i += 1
    return "\n".join(parts)[:size]


def seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 4_000_000], help="prompt sizes in characters")
    p.add_argument("--artifact", default="smollm2-135m-ifeval")
    p.add_argument("--full-only", action="store_true", help="skip the budgeted text (for a baseline checkout)")
    args = p.parse_args(argv)
    if not args.data.exists():
        print(f"long_prompt: {args.data} not found (IFEval's input_data.jsonl)")
        return 2
    from classifiers.artifact import load_artifact
    from classifiers.bundled import bundled_artifact
    from classifiers.constraints import detect_constraints

    model = load_artifact(str(bundled_artifact(args.artifact) or args.artifact))
    print("| characters | text | detector s | classifier decision s |")
    print("|---:|---|---:|---:|")
    for size in args.sizes:
        text = long_prompt(args.data, size)
        rows = [("full", text)]
        if not args.full_only:
            from router.deciders import budgeted_text

            rows.append(("budgeted", budgeted_text(text)))
        for label, t in rows:
            detect_s = seconds(lambda: detect_constraints(t))
            score_s = seconds(lambda: model.score(t))
            print(f"| {size:,} | {label} ({len(t):,}) | {detect_s:.3f} | {score_s:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
