"""`thinkgate bench NAME [ARGS]`: run one of the benchmark scripts (each also runs as `python -m benchmarks.NAME`)."""

from __future__ import annotations

import importlib
import sys
from typing import Sequence

BENCHMARKS: dict[str, tuple[str, str]] = {
    "ab": ("benchmarks.ab.cli", "accuracy, latency and tokens per arm (never, always, classifier, ...) via the proxy"),
    "replay": ("benchmarks.replay.cli", "policies replayed on an outcome table (no model called): accuracy, cost"),
    "pooling": ("benchmarks.pooling", "experiment: one decision model pooled over model pairs vs one per pair"),
    "overhead": ("benchmarks.overhead", "proxy vs direct on a mock upstream: added latency, requests/s, TTFB"),
    "instructions": ("benchmarks.overhead.instructions",
                     "instructions per request under callgrind: floor, never, classifier; deterministic"),
    "pairs": ("benchmarks.overhead.pairs",
              "two builds A/B, one server at a time, alternating pairs: req/s and CPU per request under wrk"),
    "decision-latency": ("benchmarks.decision_latency", "per-decision latency of each estimator over IFEval"),
    "tfidf-parts": ("benchmarks.tfidf_parts",
                    "the served TF-IDF dot products (and --detector: the detector) compiled vs Python, per prompt"),
    "local-throughput": ("benchmarks.local_throughput", "embedded model tokens/s at concurrency 1, 4, 16"),
    "verifiers": ("benchmarks.verifiers", "guard checks vs the gold IFEval scorer per kind; chooses acted-on kinds"),
    "guard-replay": ("benchmarks.guard_replay", "verify-and-escalate replayed on recorded answers of both modes"),
    "durability": ("benchmarks.durability", "decision-log rows against answers after kill -9 / SIGTERM under load"),
    "fuzz": ("benchmarks.fuzz", "hypothesis fuzzing of request bodies and headers: never a 500"),
    "shed-load": ("benchmarks.shed_load", "more streams than upstream connections: complete or 503, never a hang"),
    "long-prompt": ("benchmarks.long_prompt", "decision cost on 1-4 MB prompts, full and budgeted text"),
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in BENCHMARKS:
        out = sys.stdout if argv and argv[0] in ("-h", "--help") else sys.stderr
        if argv and argv[0] not in ("-h", "--help"):
            print(f"thinkgate bench: unknown benchmark '{argv[0]}'", file=out)
        print("usage: thinkgate bench NAME [ARGS]\n\nbenchmarks:", file=out)
        for name, (_, help_) in BENCHMARKS.items():
            print(f"  {name:<18} {help_}", file=out)
        return 0 if out is sys.stdout else 2
    module = importlib.import_module(BENCHMARKS[argv[0]][0])
    return int(module.main(argv[1:]) or 0)
