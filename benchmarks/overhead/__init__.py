"""Proxy overhead and decision latency: how much does thinkgate add in front of a fast upstream?

    python -m benchmarks.overhead         # full run (~2-3 minutes), writes benchmarks/reports/overhead.md
    python -m benchmarks.overhead --requests 1000 --duration 8 --rounds 1

What it does (a script, not a test; `tests/benchmarks/test_overhead_smoke.py` runs it tiny):

1. starts `benchmarks/mock_upstream_server.py` and one `thinkgate serve` process (one uvicorn worker) per
   proxy variant, each its own subprocess on a free 127.0.0.1 port; waits for `/readyz`; stops them all at
   the end (also on errors, Ctrl-C and SIGTERM);
2. for "direct to the mock" and for each proxy variant measures: sequential latency (httpx sync client,
   keep-alive) p50/p99 and the latency the proxy adds (proxy − direct); streaming time to first body byte
   p50 (sequential); requests/s and latency at concurrency 32 with wrk (non-streaming POST, Lua script);
3. proxy variants: `never` with the decision log on (the default) and off, `always` (profile prompt-cot),
   and `classifier` when `--artifact DIR` is given; LiteLLM's proxy as a reference column if it is
   installed with its proxy extras;
4. times each policy's `router.deciders.decide_with_fallback` in-process over the IFEval prompts;
5. optionally (`--local`) runs `benchmarks.local_throughput.main` and includes its output;
6. prints a table and writes a markdown report (plus the raw numbers as JSON next to it).

All traffic stays on 127.0.0.1; every loop is bounded by a request count or a duration.

Modules: `probes` (the request and the sequential/streaming timings), `wrk` (throughput at concurrency),
`servers` (the processes started), `targets` (one measured target and its rounds), `decisions` (decision
latency per policy), `machine` (machine info), `report` (tables, verdicts, markdown), `cli` (`main`).
Percentiles and medians come from `benchmarks.stats`, shared with the other benchmarks.
"""

from __future__ import annotations

from ..services import Services
from ..stats import median_of, percentile
from .cli import main
from .servers import mock_service
from .wrk import wrk_path

__all__ = ["Services", "main", "median_of", "mock_service", "percentile", "wrk_path"]
