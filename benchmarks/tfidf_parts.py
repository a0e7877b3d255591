"""Per-part cost of the shipped artifact's TF-IDF dot products: the C extension against the Python path.

For each TF-IDF part of the served model (`serving.npz`, as the proxy loads it) both bound dot products,
`_TfidfPart.bind_native` and `_TfidfPart.bind_python`, are timed on every IFEval prompt: thread CPU time of
one call, each prompt's best of `--repeat` calls (its intrinsic cost, free of scheduler noise), then
percentiles over the prompts. The paths are interleaved prompt by prompt, so load changes hit both alike.
Before timing, the two are checked to agree on every prompt.

    python -m benchmarks.tfidf_parts                 # ../shared/data/ifeval/input_data.jsonl, best of 5
    thinkgate bench tfidf-parts --repeat 9

`timer` is the same measurement of a call that does nothing: the clock's own cost, included in every row.

`--detector` adds the constraint detector the same way: mypyc's build (classifiers/compiled.py) against the Python
module, alone (`run_detectors`) and inside the whole decision (`score(text)` of the served model, with
`detect_constraints` switched to each detector in turn), checked first to give the same detections.

    python -m benchmarks.tfidf_parts --detector --repeat 9
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .decision_latency import DEFAULT_DATA, load_prompts
from .stats import summary


def best_cpu_us(fns: Sequence[Callable[[str, Any], Any]], texts: Sequence[str], repeat: int) -> np.ndarray:
    """[fn, prompt] -> the prompt's best thread CPU time of one call of fn, in µs (after a warm-up pass)."""
    best = np.full((len(fns), len(texts)), np.inf)
    clock = time.thread_time_ns
    for fn in fns:
        for t in texts:
            fn(t, ())
    for _ in range(repeat):
        for k, t in enumerate(texts):
            for i, fn in enumerate(fns):
                c0 = clock()
                fn(t, ())
                c1 = clock()
                best[i, k] = min(best[i, k], (c1 - c0) / 1000.0)
    return best


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tfidf_parts", description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="IFEval-style prompts JSONL (key, prompt)")
    parser.add_argument("--artifact", default="smollm2-135m-ifeval", help="shipped artifact name or directory")
    parser.add_argument("--repeat", type=int, default=5, help="calls per prompt and path; the best one counts")
    parser.add_argument("--detector", action="store_true",
                        help="also the constraint detector and the whole decision: mypyc's build vs Python")
    args = parser.parse_args(argv)
    if not args.data.is_file():
        print(f"error: prompts file {args.data} not found (pass --data)", file=sys.stderr)
        return 2

    from classifiers.artifact import load_serving_model
    from classifiers.bundled import bundled_artifact
    from classifiers.fastpath import _TfidfPart
    from classifiers.native import native_status
    from classifiers.serving import ServingModel

    texts = [p for _, p in load_prompts(args.data)]
    served = load_serving_model(bundled_artifact(args.artifact) or Path(args.artifact))
    if not isinstance(served, ServingModel):
        print(f"error: {args.artifact} has no serving form", file=sys.stderr)
        return 2
    print(f"native extension: {native_status()}; {len(texts)} prompts, best of {args.repeat} per prompt, "
          "thread CPU µs")
    rows = [("timer", lambda text, dets: None)]
    for part, coef in served._score.slices:
        if not isinstance(part, _TfidfPart):
            continue
        name = (part.config or {}).get("analyzer", "?")
        python = part.bind_python(coef)
        rows.append((f"{name} python", python))
        native = part.bind_native(coef, python)
        if native is not None:
            worst = max(abs(native(t, ()) - python(t, ())) for t in texts)
            print(f"{name}: largest |native - python| over the prompts {worst:.2e}")
            rows.append((f"{name} native", native))
    if args.detector:
        rows += detector_rows(served, texts)
    best = best_cpu_us([fn for _, fn in rows], texts, args.repeat)
    print(f"{'':16s} {'p50':>8s} {'p90':>8s} {'p99':>8s} {'max':>8s}")
    for (name, _), us in zip(rows, best):
        st = summary(us.tolist())
        print(f"{name:16s} {st['p50']:8.1f} {st['p90']:8.1f} {st['p99']:8.1f} {st['max']:8.1f}")
    return 0


def detector_rows(served: Any, texts: Sequence[str]) -> list[tuple[str, Callable[[str, Any], Any]]]:
    """Rows for the Python detector and, when it is used, mypyc's build: alone and inside the whole decision."""
    from classifiers import _detectors, compiled, constraints

    print(f"compiled detector: {compiled.compiled_status()}")
    chosen = constraints.run_detectors
    detectors = [("python", _detectors.run_detectors)]
    module = compiled.compiled_module()
    if module is not None:
        differ = sum(module.run_detectors(t) != _detectors.run_detectors(t) for t in texts)
        print(f"detector: {differ} of {len(texts)} prompts detected differently by the two")
        detectors.append(("mypyc", module.run_detectors))
    rows: list[tuple[str, Callable[[str, Any], Any]]] = []
    for name, run in detectors:
        rows.append((f"detector {name}", lambda text, dets, run=run: run(text)))
    for name, run in detectors:
        def decide(text: str, dets: Any, run: Any = run) -> Any:
            constraints.run_detectors = run  # a module global set: the same few ns in both rows
            try:
                return served.score(text)
            finally:
                constraints.run_detectors = chosen
        rows.append((f"decision {name}", decide))
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
