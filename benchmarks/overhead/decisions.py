"""Decision latency in-process: each policy's `decide_with_fallback` timed over the IFEval prompts.

The prompts come from `benchmarks.decision_latency.load_prompts` (the estimator-level benchmark); this one
times whole policies (registry, fallback wrapper, event loop) as the proxy runs them.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..decision_latency import load_prompts as load_keyed_prompts
from ..stats import percentile


@dataclass
class DecisionBench:
    policy: str
    n: int = 0
    p50_us: float = math.nan
    p99_us: float = math.nan
    mean_us: float = math.nan
    think_rate: float = math.nan
    fallbacks: int = 0
    error: str | None = None


def load_prompts(path: Path) -> list[str]:
    """The prompt texts of an IFEval-style JSONL file."""
    return [prompt for _, prompt in load_keyed_prompts(path)]


def bench_decisions(prompts: list[str], policies: list[tuple[str, dict[str, Any]]], *, samples: int,
                    warmup: int = 50, unique: bool = True) -> list[DecisionBench]:
    """Each policy's decision time over the prompts, cycled to `samples`. `unique`: every decision text gets a
    suffix " (request dR.I)" of its own, so a policy's score cache never answers (as with `--bodies ifeval`);
    False repeats the same texts every cycle (cache hits after the first cycle)."""
    from router.deciders import DecisionContext, decide_with_fallback, make_decider

    results = []
    for name, options in policies:
        bench = DecisionBench(name)
        try:
            decider = make_decider(name, options)
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            bench.error = f"{type(exc).__name__}: {getattr(exc, 'message', exc)}"
            results.append(bench)
            continue
        rounds = max(1, math.ceil(samples / len(prompts)))

        def contexts(tag: str) -> list[Any]:
            return [DecisionContext(text=f"{p} (request {tag}.{i})" if unique else p, route="bench", body={})
                    for i, p in enumerate(prompts)]

        async def run() -> tuple[list[float], int, int]:
            for ctx in contexts("dw")[:warmup]:
                await decide_with_fallback(decider, ctx, timeout_s=5.0, default_think=False)
            times: list[float] = []
            thinks = fallbacks = 0
            clock = time.perf_counter_ns
            for r in range(rounds):
                for ctx in contexts(f"d{r}"):  # built before the clock starts
                    t0 = clock()
                    decision = await decide_with_fallback(decider, ctx, timeout_s=5.0, default_think=False)
                    times.append((clock() - t0) / 1000)
                    thinks += decision.think
                    fallbacks += decision.source == "fallback"
            await decider.aclose()
            return times, thinks, fallbacks

        times, thinks, fallbacks = asyncio.run(run())
        bench.n = len(times)
        bench.p50_us, bench.p99_us = percentile(times, 50), percentile(times, 99)
        bench.mean_us = statistics.fmean(times)
        bench.think_rate = thinks / len(times)
        bench.fallbacks = fallbacks
        results.append(bench)
    return results


# --------------------------------------------------------------------------------------------------
# optional local throughput
