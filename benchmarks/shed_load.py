"""Load shedding under real load: more concurrent streams than upstream connections.

Starts the benchmark mock upstream (slow streams: `--chunk-delay-ms` between events) and `thinkgate serve`
with a small upstream pool (`max_connections`, `pool_wait_s`), then runs `--clients` concurrent clients, each
sending streamed requests back to back for `--seconds`, while a prober times `GET /healthz`. Every request
must end as a complete stream (200 with [DONE]) or a 503 `upstream_busy` with Retry-After; anything else
(a 500, a hang, a stream cut without an error) is counted as a failure.

    python -m benchmarks.shed_load --clients 64 --seconds 20 --max-connections 16
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

BODY = {"model": "shed", "stream": True, "messages": [{"role": "user", "content": "Say hello."}]}


async def _client(session: Any, url: str, until: float, out: Counter[str], latencies: list[float]) -> None:
    while time.monotonic() < until:
        start = time.monotonic()
        try:
            async with session.post(url + "/v1/chat/completions", json=BODY) as r:
                payload = await r.read()
                if r.status == 200:
                    ok = payload.rstrip().endswith(b"data: [DONE]")
                    out["200 complete" if ok else "200 cut (failure)"] += 1
                    if ok:
                        latencies.append(time.monotonic() - start)
                elif r.status == 503 and b"upstream_busy" in payload and r.headers.get("retry-after"):
                    out["503 shed"] += 1
                    await asyncio.sleep(0.05)  # a client that honours Retry-After would wait; this one barely does
                else:
                    out[f"{r.status} (failure)"] += 1
        except Exception as exc:  # noqa: BLE001 - a benchmark counts what went wrong
            out[f"{type(exc).__name__} (failure)"] += 1


async def _prober(session: Any, url: str, until: float, samples: list[float]) -> None:
    while time.monotonic() < until:
        start = time.monotonic()
        async with session.get(url + "/healthz") as r:
            await r.read()
        samples.append(time.monotonic() - start)
        await asyncio.sleep(0.1)


async def drive(url: str, clients: int, seconds: float) -> dict[str, Any]:
    import aiohttp

    out: Counter[str] = Counter()
    latencies: list[float] = []
    health: list[float] = []
    until = time.monotonic() + seconds
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=clients + 4)) as session:
        await asyncio.gather(_prober(session, url, until, health),
                             *(_client(session, url, until, out, latencies) for _ in range(clients)))
    latencies.sort()
    total = sum(out.values())
    return {"requests": total, "outcomes": dict(out.most_common()),
            "failures": sum(n for k, n in out.items() if "failure" in k),
            "complete_per_s": round(out["200 complete"] / seconds, 1),
            "stream_p50_s": round(latencies[len(latencies) // 2], 3) if latencies else None,
            "stream_p99_s": round(latencies[int(len(latencies) * 0.99)], 3) if latencies else None,
            "healthz_max_s": round(max(health), 3) if health else None}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=64)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--max-connections", type=int, default=16)
    p.add_argument("--pool-wait-s", type=float, default=0.5)
    p.add_argument("--chunk-delay-ms", type=float, default=50.0)
    p.add_argument("--python", default=sys.executable)
    args = p.parse_args(argv)
    import yaml

    from .services import HOST, Service, Services, free_port

    with tempfile.TemporaryDirectory(prefix="thinkgate-shed-") as tmp, Services() as services:
        work = Path(tmp)
        port = free_port()
        mock = services.start(Service("mock upstream", [args.python, "-m", "benchmarks.mock_upstream_server", "--host",
                                                        HOST, "--port", str(port), "--chunk-delay-ms",
                                                        str(args.chunk_delay_ms)], port, work / "mock.log"))
        config = {"decision_log": {"path": str(work / "decisions.sqlite3")},
                  "routes": {"shed": {"backend": "openai", "base_url": mock.url + "/v1", "model": "m",
                                      "backend_options": {"max_connections": args.max_connections,
                                                          "pool_wait_s": args.pool_wait_s}}}}
        (work / "shed.yaml").write_text(yaml.safe_dump(config))
        port = free_port()
        proxy = services.start(Service("thinkgate", [args.python, "-m", "router.cli", "serve", "--config",
                                                     str(work / "shed.yaml"), "--port", str(port)], port,
                                       work / "proxy.log", env={"THINKGATE_LOG_LEVEL": "warning"}), timeout_s=240)
        result = asyncio.run(drive(proxy.url, args.clients, args.seconds))
    result["command"] = "python -m benchmarks.shed_load " + " ".join(argv if argv is not None else sys.argv[1:])
    print(json.dumps(result, indent=2))
    return 1 if result["failures"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
