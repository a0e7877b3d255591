"""Proxy overhead and decision latency: how much does thinkgate add in front of a fast upstream, against a
bare forwarder (the floor) measured in the same run?

    python -m benchmarks.overhead         # defaults: never + always, 1 worker, 1 round; writes reports/overhead.md
    python -m benchmarks.overhead --policies never,classifier --artifact classifiers/artifacts/smollm2-135m-ifeval \
        --workers 1,2 --rounds 5 --duration 10          # the issue's measurement, ~15 minutes on 2 cores

What it does (a script, not a test; `tests/benchmarks/test_overhead_smoke.py` runs it tiny):

1. starts `benchmarks/mock_upstream_server.py`, the floor (`floor_server.py`: aiohttp server + pooled aiohttp
   client, uvloop, no logic) and one `thinkgate serve` process per proxy variant, each at every `--workers`
   count, each its own subprocess on a free 127.0.0.1 port; waits for readiness; stops them all at the end
   (also on errors, Ctrl-C and SIGTERM);
2. for "direct to the mock", the floor and each proxy variant measures, in interleaved rounds: sequential
   latency (httpx sync client, keep-alive) p50/p99 and the latency added (vs direct and vs the floor);
   streaming time to first body byte p50; requests/s and latency at concurrency 32 with wrk, with the CPU
   time of the server's process tree (and the mock's, wrk's, the machine's) around each wrk run;
3. what is sent (`--bodies`): the IFEval prompts in rotation with a unique suffix per request (no score-cache
   hits), or one fixed body;
4. proxy variants: `never` with the decision log on (the default) and off, `always` (profile prompt-cot),
   and `classifier` when `--artifact DIR` is given; LiteLLM's proxy at the same worker counts if its proxy
   extras import (`--litellm-python`), else the report says why not;
5. times each policy's `router.deciders.decide_with_fallback` in-process over the IFEval prompts;
6. optionally (`--local`) runs `benchmarks.local_throughput.main` and includes its output;
7. prints a table and the verdicts (the issue's criteria against the floor) and writes a markdown report
   (plus the raw numbers as JSON next to it).

All traffic stays on 127.0.0.1; every loop is bounded by a request count or a duration.

Modules: `probes` (sequential/streaming timings), `bodies` (what the load sends, wrk's Lua script), `wrk`
(throughput at concurrency), `cpu` (CPU of a process tree), `servers` (the processes started), `floor_server`
(the floor), `targets` (one measured target and its rounds), `decisions` (decision latency per policy),
`machine` (machine info), `report` (tables, verdicts, markdown), `cli` (`main`).
Percentiles and medians come from `benchmarks.stats`, shared with the other benchmarks.
"""

from __future__ import annotations

from ..services import Services
from ..stats import median_of, percentile
from .cli import main
from .servers import mock_service
from .wrk import wrk_path

__all__ = ["Services", "main", "median_of", "mock_service", "percentile", "wrk_path"]
