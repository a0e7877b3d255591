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

`--cold MB` writes to every cache line of an MB-sized buffer before each timed call (outside the timing), so each
call starts with the CPU caches holding mostly that buffer instead of the model: how a decision costs inside a loaded proxy,
where parsing, the upstream call and other connections run between two decisions (and, on a shared machine, other
tenants use the last-level cache).

    python -m benchmarks.tfidf_parts --detector --cold 32 --repeat 3 --out benchmarks/reports/tfidf-parts-cold32.txt

`--out FILE` also writes what is printed to FILE, after the command line and the date.
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
from .overhead.machine import load_average
from .overhead.runs import command_line, now
from .stats import summary


def cache_sweep(megabytes: float) -> Callable[[], None] | None:
    """A call that writes to every cache line of a `megabytes` buffer (None for 0): displaces most of the CPU caches'
    contents (a last-level cache can itself be tens of MB)."""
    if megabytes <= 0:
        return None
    buf = np.ones(max(1, int(megabytes * 2 ** 20 / 8)))
    return lambda: buf.__iadd__(1.0)


def best_cpu_us(fns: Sequence[Callable[[str, Any], Any]], texts: Sequence[str], repeat: int,
                before: Callable[[], Any] | None = None) -> np.ndarray:
    """[fn, prompt] -> the prompt's best thread CPU time of one call of fn, in µs (after a warm-up pass);
    `before` runs before every timed call, untimed (`cache_sweep`)."""
    best = np.full((len(fns), len(texts)), np.inf)
    clock = time.thread_time_ns
    for fn in fns:
        for t in texts:
            fn(t, ())
    for _ in range(repeat):
        for k, t in enumerate(texts):
            for i, fn in enumerate(fns):
                if before is not None:
                    before()
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
    parser.add_argument("--cold", type=float, default=0.0, metavar="MB",
                        help="before each timed call write to every cache line of an MB-sized buffer (e.g. 32: "
                        "cold CPU caches, as inside a loaded proxy); default 0: warm caches")
    parser.add_argument("--out", type=Path, help="also write the printed results to this file")
    args = parser.parse_args(argv)
    if args.repeat < 1 or not args.cold >= 0:  # NaN too
        print("error: --repeat must be at least 1 and --cold at least 0", file=sys.stderr)
        return 2
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
    lines: list[str] = []

    def say(line: str) -> None:
        print(line)
        lines.append(line)

    caches = f"caches swept with {args.cold:g} MB before each call" if args.cold else "warm caches"
    say(f"native extension: {native_status()}; {len(texts)} prompts, best of {args.repeat} per prompt, "
          f"thread CPU µs, {caches}")
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
            say(f"{name}: largest |native - python| over the prompts {worst:.2e}")
            rows.append((f"{name} native", native))
    if args.detector:
        rows += detector_rows(served, texts, say)
    best = best_cpu_us([fn for _, fn in rows], texts, args.repeat, cache_sweep(args.cold))
    say(f"{'':16s} {'p50':>8s} {'p90':>8s} {'p99':>8s} {'max':>8s}")
    for (name, _), us in zip(rows, best):
        st = summary(us.tolist())
        say(f"{name:16s} {st['p50']:8.1f} {st['p90']:8.1f} {st['p99']:8.1f} {st['max']:8.1f}")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(f"command: {command_line('benchmarks.tfidf_parts', argv)}\ndate: {now()}, load average "
                            f"{load_average()}\n\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return 0


def detector_rows(served: Any, texts: Sequence[str],
                  say: Callable[[str], None] = print) -> list[tuple[str, Callable[[str, Any], Any]]]:
    """Rows for the Python detector and, when it is used, mypyc's build: alone and inside the whole decision."""
    from classifiers import _detectors, compiled, constraints

    say(f"compiled detector: {compiled.compiled_status()}")
    chosen = constraints.run_detectors
    detectors = [("python", _detectors.run_detectors)]
    module = compiled.compiled_module()
    if module is not None:
        differ = sum(module.run_detectors(t) != _detectors.run_detectors(t) for t in texts)
        say(f"detector: {differ} of {len(texts)} prompts detected differently by the two")
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
