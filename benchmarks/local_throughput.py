"""Throughput of the embedded local model at several concurrency levels.

Goes through the async Backend API (`LocalBackend.complete`), as the proxy and the offline tools do: at
concurrency c, c requests are in flight at once, each generating exactly `--new-tokens` tokens (greedy,
`ignore_eos`), and tokens/s is all generated tokens over the wall time of the round (prefill included).

    python -m benchmarks.local_throughput                       # bundled SmolLM2, concurrency 1, 4, 16
    python -m benchmarks.local_throughput --concurrency 1,8 --new-tokens 32 --dtype float32
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any, Sequence

PROMPTS = [
    "Write a short story about a lighthouse keeper.",
    "Explain how a bicycle works to a child.",
    "List some tips for staying focused while studying.",
    "Describe the water cycle.",
    "What makes a good cup of coffee?",
    "Write a letter to a friend about your weekend.",
    "Why is the sky blue?",
    "Give advice to someone starting to learn the piano.",
]


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="local_throughput", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="GGUF file or HF model directory (default: bundled SmolLM2)")
    parser.add_argument("--concurrency", default="1,4,16", help="comma-separated levels (default: 1,4,16)")
    parser.add_argument("--new-tokens", type=int, default=64, help="tokens generated per request (default: 64)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds per level; the best is reported")
    parser.add_argument("--max-batch-size", type=int, default=16)
    parser.add_argument("--dtype", default="auto", help="auto (bf16 where native), float32, bfloat16")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: every usable CPU)")
    parser.add_argument("--cache-dir", default=None, help="keep a converted copy of a GGUF here (fast reloads)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    args = parser.parse_args(argv)
    try:
        args.levels = [int(x) for x in args.concurrency.split(",") if x.strip()]
    except ValueError:
        parser.error("--concurrency takes integers, e.g. 1,4,16")
    if not args.levels or min(args.levels) < 1 or args.new_tokens < 1 or args.rounds < 1:
        parser.error("concurrency levels, --new-tokens and --rounds must be positive")
    return args


async def _round(backend: Any, concurrency: int, new_tokens: int) -> dict[str, Any]:
    async def one(i: int) -> tuple[int, float]:
        body = {"messages": [{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}],
                "max_tokens": new_tokens, "temperature": 0, "ignore_eos": True}
        start = time.perf_counter()
        response = await backend.complete(body)
        return response["usage"]["completion_tokens"], time.perf_counter() - start

    engine = backend.engine
    engine.reset_stats()
    start = time.perf_counter()
    results = await asyncio.gather(*(one(i) for i in range(concurrency)))
    wall = time.perf_counter() - start
    tokens = sum(n for n, _ in results)
    return {"concurrency": concurrency, "tokens": tokens, "wall_s": wall, "tokens_per_s": tokens / wall,
            "mean_latency_s": sum(t for _, t in results) / len(results),
            "max_batch": engine.stats()["max_batch_size_seen"]}


async def _run(args: argparse.Namespace) -> int:
    from router.backends.local import LocalBackend

    backend = LocalBackend(args.model, max_batch_size=args.max_batch_size, dtype=args.dtype,
                           num_threads=args.threads, cache_dir=args.cache_dir)
    try:
        started = time.perf_counter()
        await backend.start()
        if not await backend.wait_ready(900):
            print(f"error: the model did not load: {backend.load_error or 'timed out'}", file=sys.stderr)
            return 1
        load_s = time.perf_counter() - started
        await _round(backend, 1, 8)  # warm-up (first-call allocations, kernel selection)
        rows = []
        for level in args.levels:
            best = None
            for _ in range(args.rounds):
                result = await _round(backend, level, args.new_tokens)
                if best is None or result["tokens_per_s"] > best["tokens_per_s"]:
                    best = result
            rows.append(best)
    finally:
        await backend.aclose()

    base = rows[0]["tokens_per_s"] if rows else 0.0
    for row in rows:
        row["speedup"] = row["tokens_per_s"] / base if base else 0.0
    if args.json:
        print(json.dumps({"load_s": load_s, "new_tokens": args.new_tokens, "results": rows}, indent=2))
        return 0
    import torch

    print(f"model loaded in {load_s:.1f} s; {args.new_tokens} new tokens per request, greedy, "
          f"{torch.get_num_threads()} torch threads")
    print(f"{'concurrency':>11} {'tokens':>7} {'wall s':>7} {'tokens/s':>9} {'speedup':>8} {'latency s':>10} "
          f"{'max batch':>9}")
    for row in rows:
        print(f"{row['concurrency']:>11} {row['tokens']:>7} {row['wall_s']:>7.2f} {row['tokens_per_s']:>9.1f} "
              f"{row['speedup']:>7.2f}x {row['mean_latency_s']:>10.2f} {row['max_batch']:>9}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(_run(_parse(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
