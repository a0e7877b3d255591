"""Decision latency: how long one think/no-think decision takes, per estimator, on real prompts.

Trains each registered estimator on the IFEval prompts (labels from an outcome table, or random labels when
none is given: the labels do not change the cost of a decision, only what is learned), then times
`DecisionModel.decide(prompt)` for every prompt, full text, no truncation. It also times the constraint
detector alone and, for comparison, the same decision through `pipeline.predict_proba([prompt])`.

    python -m benchmarks.decision_latency                       # ../shared/data/ifeval/input_data.jsonl
    python -m benchmarks.decision_latency --outcomes outcomes.jsonl --repeat 5

It also times the shipped default artifact the way the proxy serves it (`--artifact`, default
`smollm2-135m-ifeval`): its numpy serving form uncached, the same through the classifier policy's score cache
(every prompt seen before: the cached figure), and the scikit-learn pipeline's fast path; and it measures
the resident memory of a fresh process after loading each form. `--artifact-only` skips the estimator
training.

Writes a markdown report (default `benchmarks/reports/decision_latency.md`) and prints the same table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from .stats import summary

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "ifeval" / "input_data.jsonl"
DEFAULT_REPORT = REPO_ROOT / "benchmarks" / "reports" / "decision_latency.md"


@dataclass
class Timing:
    """Per-decision samples in microseconds: wall clock, and CPU time of the timing thread (which excludes
    time the scheduler gave to other processes; on a shared machine it is the better estimate of cost)."""

    name: str
    samples_us: np.ndarray
    cpu_us: np.ndarray
    n_prompts: int
    fast: bool | None = None
    pipeline_us: np.ndarray | None = None
    fit_s: float | None = None

    def best_cpu_per_prompt(self) -> np.ndarray:
        """Each prompt's fastest repeat: its intrinsic cost, free of scheduling noise."""
        return self.cpu_us.reshape(-1, self.n_prompts).min(axis=0)

    def stats(self, arr: np.ndarray | None) -> dict[str, float]:
        return {} if arr is None else summary(arr.tolist())


def load_prompts(path: Path) -> list[tuple[str, str]]:
    """(id, prompt) pairs from an IFEval-style JSONL file (`key` + `prompt`)."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                out.append((f"ifeval:{row['key']}", row["prompt"]))
    return out


def load_gains(path: Path, metric: str) -> dict[str, float]:
    """Per-example gain (think - direct) from an outcome table: JSON lines with id, mode and scores."""
    by_id: dict[str, dict[str, float]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            row = json.loads(line)
            if row.get("error") or metric not in (row.get("scores") or {}):
                continue
            by_id.setdefault(row["id"], {})[row["mode"]] = float(row["scores"][metric])
    return {i: m["think"] - m["direct"] for i, m in by_id.items() if "think" in m and "direct" in m}


def _time_each(fn: Callable[[str], Any], texts: Sequence[str], repeat: int) -> tuple[np.ndarray, np.ndarray]:
    """(wall µs, thread CPU µs) for each call of fn on each text, `repeat` passes after a warm-up pass."""
    for t in texts:  # warm-up: lazy imports, caches
        fn(t)
    wall = np.empty(len(texts) * repeat)
    cpu = np.empty(len(texts) * repeat)
    k = 0
    clock, cpu_clock = time.perf_counter_ns, time.thread_time_ns
    for _ in range(repeat):
        for t in texts:
            c0 = cpu_clock()
            w0 = clock()
            fn(t)
            w1 = clock()
            c1 = cpu_clock()
            wall[k] = (w1 - w0) / 1000.0
            cpu[k] = (c1 - c0) / 1000.0
            k += 1
    return wall, cpu


def compiled_parts() -> str:
    """Which optional compiled parts this process's decisions use (each part says why when it does not)."""
    from classifiers.compiled import compiled_status
    from classifiers.native import native_status

    return f"native TF-IDF extension {native_status()}; compiled constraint detector {compiled_status()}"


def _fmt(st: dict[str, float], key: str) -> str:
    return f"{st[key]:,.0f}" if st else "-"


def render(timings: list[Timing], *, data: Path, n_prompts: int, lengths: np.ndarray, labels_note: str,
           repeat: int, load_before: str, load_after: str) -> str:
    import sklearn

    rows = ["| what | fast path | wall p50 | wall p90 | wall p99 | wall max | CPU p50 | CPU p99 "
            "| best-of-repeats CPU p50 | best-of-repeats CPU p99 | via pipeline wall p50 | via pipeline wall p99 "
            "| fit s |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for t in timings:
        st, ct, pst = t.stats(t.samples_us), t.stats(t.cpu_us), t.stats(t.pipeline_us)
        bt = t.stats(t.best_cpu_per_prompt())
        fast = "-" if t.fast is None else ("yes" if t.fast else "no")
        fit = "-" if t.fit_s is None else f"{t.fit_s:.1f}"
        rows.append(f"| {t.name} | {fast} | {_fmt(st, 'p50')} | {_fmt(st, 'p90')} | {_fmt(st, 'p99')} | "
                    f"{_fmt(st, 'max')} | {_fmt(ct, 'p50')} | {_fmt(ct, 'p99')} | "
                    f"{_fmt(bt, 'p50')} | {_fmt(bt, 'p99')} | "
                    f"{_fmt(pst, 'p50')} | {_fmt(pst, 'p99')} | {fit} |")
    if timings:
        rows += ["", "`constraint detector` is `detect_constraints(prompt)` alone; it is part of every estimator's "
                 "decision."]
    else:
        rows = ["No estimators were trained and timed (`--artifact-only`)."]
    env = (f"Python {platform.python_version()}, scikit-learn {sklearn.__version__}, numpy {np.__version__}, "
           f"{platform.machine()}, {os.cpu_count()} CPUs, process niceness {_niceness()}")
    return "\n".join([
        "# Decision latency",
        "",
        f"Generated {datetime.now(UTC).isoformat(timespec='seconds')} by "
        f"`python -m benchmarks.decision_latency {' '.join(sys.argv[1:])}`".rstrip() + ".",
        "",
        f"- Prompts: {n_prompts} from `{data}` (full text; characters p50 {np.percentile(lengths, 50):.0f}, "
        f"p99 {np.percentile(lengths, 99):.0f}, max {lengths.max():.0f}).",
        f"- Labels: {labels_note}",
        f"- Each decision (`DecisionModel.decide(prompt)`: features, score, threshold) timed {repeat}x per prompt "
        "after one warm-up pass; \"via pipeline\" is `pipeline.predict_proba([prompt])` (`predict` for the "
        "regressor) once per prompt. "
        "Thread pools (OpenMP, BLAS) are limited to one thread, as for single-request serving.",
        f"- Environment: {env}; load average before {load_before}, after {load_after} (other processes share "
        "the CPUs, so tails include scheduler noise).",
        f"- Compiled parts of the fast path: {compiled_parts()}.",
        "",
        "All times in microseconds per decision; percentiles over every timed decision (prompts x repeats). "
        "*Wall* is what a caller waits; *CPU* is the CPU time the decision used (thread CPU clock), i.e. wall "
        "time minus time the scheduler gave to other processes; *best-of-repeats* takes each prompt's fastest "
        "repeat, then percentiles over prompts (the cost of the prompt itself, without interference).",
        "",
        *rows,
        "",
    ])


ARTIFACT_ROWS = ("constraint detector", "serving form, uncached", "serving form, cached",
                 "scikit-learn pipeline fast path")


def time_artifact(artifact: str, texts: list[str], repeat: int) -> list[Timing]:
    """The shipped artifact as the proxy serves it: serving form (uncached, cached) and the skops pipeline."""
    from classifiers.artifact import load_artifact, load_serving_model
    from classifiers.bundled import bundled_artifact
    from classifiers.constraints import detect_constraints
    from router.deciders.score_cache import ScoreCache

    path = bundled_artifact(artifact) or Path(artifact)
    served = load_serving_model(path)
    cache = ScoreCache(max(4096, len(texts)), "benchmark")
    for t in texts:  # every prompt seen once: the timed calls are all hits
        cache.score(t, served.score)
    full = load_artifact(path)
    fns = (detect_constraints, served.score, lambda t: cache.score(t, served.score), full.score)
    return [Timing(name, *_time_each(fn, texts, repeat), len(texts)) for name, fn in zip(ARTIFACT_ROWS, fns)]


_RSS_CODE = """
import sys
{load}
fields = dict(line.split(":", 1) for line in open("/proc/self/status") if line.startswith(("VmRSS", "VmHWM")))
print(int(fields["VmRSS"].split()[0]) // 1024, int(fields["VmHWM"].split()[0]) // 1024,
      ",".join(m for m in ("sklearn", "scipy", "skops", "pandas") if m in sys.modules) or "-")
"""
_RSS_LOADS = {
    "the proxy's modules, no decision model (policy never)": "import router.app, router.deciders",
    "+ the artifact's serving form (what the classifier policy loads)":
        "import router.app, router.deciders\nfrom classifiers.artifact import load_serving_model\n"
        "from classifiers.bundled import bundled_artifact\n"
        "load_serving_model(bundled_artifact({artifact!r}) or {artifact!r}).score('Answer in JSON.')",
    "+ the scikit-learn pipeline from model.skops (before this change)":
        "import router.app, router.deciders\nfrom classifiers.artifact import load_artifact\n"
        "from classifiers.bundled import bundled_artifact\n"
        "load_artifact(bundled_artifact({artifact!r}) or {artifact!r}).score('Answer in JSON.')",
}


def measure_rss(artifact: str) -> list[tuple[str, int, int, str]]:
    """(what, RSS MB, peak RSS MB, heavy modules loaded) of a fresh interpreter after each load."""
    import subprocess

    rows = []
    for what, load in _RSS_LOADS.items():
        code = _RSS_CODE.format(load=load.format(artifact=artifact))
        out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
        rss, peak, mods = out.stdout.split()
        rows.append((what, int(rss), int(peak), mods))
    return rows


def render_artifact(artifact: str, timings: list[Timing], rss: list[tuple[str, int, int, str]]) -> str:
    rows = ["| what | wall p50 | wall p90 | wall p99 | wall max | CPU p50 | CPU p99 | best-of-repeats CPU p50 "
            "| best-of-repeats CPU p99 |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for t in timings:
        st, ct, bt = t.stats(t.samples_us), t.stats(t.cpu_us), t.stats(t.best_cpu_per_prompt())
        rows.append(f"| {t.name} | {_fmt(st, 'p50')} | {_fmt(st, 'p90')} | {_fmt(st, 'p99')} | {_fmt(st, 'max')} | "
                    f"{_fmt(ct, 'p50')} | {_fmt(ct, 'p99')} | {_fmt(bt, 'p50')} | {_fmt(bt, 'p99')} |")
    mem = ["| process after loading | RSS MB | peak RSS MB | heavy modules imported |", "|---|---:|---:|---|"]
    mem += [f"| {what} | {r} | {p} | {m} |" for what, r, p, m in rss]
    return "\n".join([
        f"## The shipped artifact `{artifact}`, as the proxy serves it", "",
        "Microseconds per decision over the same prompts and repeats. *serving form* is `serving.npz` loaded "
        "without scikit-learn (`classifiers/serving.py`); *cached* goes through the classifier policy's score "
        "cache with every prompt already in it (a hash of the text and a dict lookup); the last row is the "
        "skops pipeline's own fast path, which computes the same score.", "",
        *rows, "", "Resident memory of a fresh Python process after each load:", "", *mem, "",
    ])


def _niceness() -> str:
    try:
        return str(os.nice(0))
    except (AttributeError, OSError):  # pragma: no cover - not on every platform
        return "n/a"


def _loadavg() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover - not on every platform
        return "n/a"


def main(argv: Sequence[str] | None = None) -> int:
    from classifiers.estimators import available_estimators, estimator_spec

    # no abbreviations: `--out x.md` would otherwise be taken for `--outcomes x.md`
    parser = argparse.ArgumentParser(prog="python -m benchmarks.decision_latency", description=__doc__.split("\n")[0],
                                     allow_abbrev=False)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="IFEval-style prompts JSONL (key, prompt)")
    parser.add_argument("--outcomes", type=Path, help="outcome table JSONL (id, mode, scores) to train on real labels")
    parser.add_argument("--metric", default="inst_level_loose", help="score used for the gain (with --outcomes)")
    parser.add_argument("--estimators", nargs="+", default=None, help="default: every registered estimator")
    parser.add_argument("--repeat", type=int, default=3, help="timed decisions per prompt")
    parser.add_argument("--report", type=Path, default=DEFAULT_REPORT, help="markdown report path")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--artifact", default="smollm2-135m-ifeval",
                        help="shipped artifact name or directory to time as served ('' to skip)")
    parser.add_argument("--artifact-only", action="store_true", help="skip training and timing the estimators")
    args = parser.parse_args(argv)

    if not args.data.is_file():
        print(f"error: prompts file {args.data} not found (pass --data)", file=sys.stderr)
        return 2
    if args.outcomes and not args.outcomes.is_file():
        print(f"error: outcome table {args.outcomes} not found", file=sys.stderr)
        return 2
    names = args.estimators or available_estimators()
    for name in names:
        estimator_spec(name)  # fail fast with the registry's close-match message
    prompts = load_prompts(args.data)
    ids = [i for i, _ in prompts]
    texts = [p for _, p in prompts]
    rng = np.random.default_rng(args.seed)

    if args.outcomes:
        gains_by_id = load_gains(args.outcomes, args.metric)
        train_idx = [k for k, i in enumerate(ids) if i in gains_by_id]
        if len(train_idx) < 4:
            print(f"error: only {len(train_idx)} prompts have both modes in {args.outcomes}", file=sys.stderr)
            return 2
        train_texts = [texts[k] for k in train_idx]
        gains = np.array([gains_by_id[ids[k]] for k in train_idx])
        labels = (gains > 0).astype(int)
        if labels.min() == labels.max():  # a classifier needs both classes; timing does not depend on it
            labels[rng.integers(len(labels))] ^= 1
        labels_note = (f"from `{args.outcomes}` ({args.metric}; {len(train_idx)} prompts with both modes, "
                       f"{int(labels.sum())} where thinking helps).")
    else:
        train_texts = texts
        labels = rng.integers(0, 2, len(texts))
        gains = rng.normal(size=len(texts))
        labels_note = ("RANDOM (no --outcomes given): the models learn nothing useful; they exist only to time "
                       "decisions, whose cost does not depend on the labels.")
    print(f"labels: {labels_note}")

    from threadpoolctl import threadpool_limits

    # One decision is one small request: thread pools (OpenMP in HistGradientBoosting, BLAS) only add start-up
    # and spin-wait costs to it, and on a shared 2-core machine they make tails explode. A server scoring
    # one prompt at a time would run them single-threaded too.
    with threadpool_limits(limits=1):
        load_before = _loadavg()
        artifact_timings = time_artifact(args.artifact, texts, args.repeat) if args.artifact else []
        for t in artifact_timings:
            st, ct = t.stats(t.samples_us), t.stats(t.cpu_us)
            print(f"{t.name:32s} wall p50 {st['p50']:7.1f} µs  p99 {st['p99']:7.1f} µs | "
                  f"CPU p50 {ct['p50']:7.1f} µs  p99 {ct['p99']:7.1f} µs", flush=True)
        timings = [] if args.artifact_only else _run(names, texts, train_texts, labels, gains, args.repeat)
        load_after = _loadavg()

    lengths = np.array([len(t) for t in texts], dtype=float)
    report = render(timings, data=args.data, n_prompts=len(texts), lengths=lengths, labels_note=labels_note,
                    repeat=args.repeat, load_before=load_before, load_after=load_after)
    if args.artifact:
        report += "\n" + render_artifact(args.artifact, artifact_timings, measure_rss(args.artifact))
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(report, encoding="utf-8")
    print(report)
    print(f"report written to {args.report}")
    return 0


def _pipeline_call(pipe: Any, task: str) -> Callable[[str], Any]:
    """The same decision through the pipeline's own API, for comparison with the fast path."""
    if task == "classification":
        return lambda text: pipe.predict_proba([text])[0, 1]
    return lambda text: pipe.predict([text])[0]


def _run(names: Sequence[str], texts: list[str], train_texts: list[str], labels: np.ndarray, gains: np.ndarray,
         repeat: int) -> list[Timing]:
    from classifiers.constraints import detect_constraints
    from classifiers.estimators import estimator_spec, make_estimator
    from classifiers.model import DecisionModel

    timings = [Timing("constraint detector", *_time_each(detect_constraints, texts, repeat), len(texts))]
    for name in names:
        spec = estimator_spec(name)
        y = gains if spec.task == "regression" else labels
        start = time.perf_counter()
        pipe = make_estimator(name).fit(train_texts, y)
        fit_s = time.perf_counter() - start
        model = DecisionModel(pipe)
        wall, cpu = _time_each(model.decide, texts, repeat)
        via_pipe, _ = _time_each(_pipeline_call(pipe, spec.task), texts, 1)
        timings.append(Timing(name, wall, cpu, len(texts), model.fast, via_pipe, fit_s))
    for t in timings:
        st, ct = t.stats(t.samples_us), t.stats(t.cpu_us)
        print(f"{t.name:20s} wall p50 {st['p50']:7.0f} µs  p99 {st['p99']:7.0f} µs | "
              f"CPU p50 {ct['p50']:7.0f} µs  p99 {ct['p99']:7.0f} µs", flush=True)
    return timings


if __name__ == "__main__":
    raise SystemExit(main())
