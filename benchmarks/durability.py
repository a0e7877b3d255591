"""Decision-log durability: load a real proxy, kill it (SIGKILL or SIGTERM), count rows against answers.

    python -m benchmarks.durability                                  # SIGKILL and SIGTERM, SQLite
    python -m benchmarks.durability --db postgresql://u@host/db      # the same against PostgreSQL
    python -m benchmarks.durability --writer-only                    # the writer alone, 1k..40k records/s

The proxy (`thinkgate serve`, policy never by default) runs as a subprocess in front of the loopback mock
upstream (`benchmarks.mock_upstream_server`). Load processes send non-streamed requests over keep-alive
connections and note, for every answer, the `x-request-id` header, the status and the wall-clock time it
arrived. After `--kill-after` seconds the proxy gets the signal; afterwards the log is exported and every
200 answer is looked up by its request id.

- SIGTERM (graceful): every answered request must be in the log.
- SIGKILL: a row may be missing only if its answer arrived less than `--bound-ms` before the kill. The
  result says how many rows are missing, and how long before the kill the oldest missing answer arrived.
  It also says whether the loss is a tail: the writer commits in the order requests were recorded, so
  every missing answer must have arrived after the newest committed row's request began (a request is
  recorded before its answer is sent). A hole (a lost batch followed by committed ones) fails this,
  however fast the writer was.

`--writer-only` measures the writer without HTTP: a CPU-busy main thread (standing in for the event loop)
calls `record()` at a fixed rate and the writer's worst commit lag is reported (`stats()["max_lag_ms"]`),
up to rates far above what the proxy serves. Writes a markdown report (default
`benchmarks/reports/durability.md`) and prints the same lines.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import multiprocessing
import os
import platform
import signal
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Sequence

from benchmarks.services import REPO_ROOT, Service, Services, free_port
from router.decision_log import DecisionLog, DecisionRecord, export_jsonl

DEFAULT_REPORT = REPO_ROOT / "benchmarks" / "reports" / "durability.md"
DEFAULT_BOUND_MS = 500.0  # router/decision_log.py states it
MODEL = "mock"
BODY = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "Say hello in five words."}]})


@dataclass
class Answer:
    request_id: str
    status: int
    done: float  # wall-clock time the answer arrived


@dataclass
class KillResult:
    signal: str
    store: str
    policy: str
    flush_interval_ms: float
    bound_ms: float
    load_s: float
    answered_200: int
    req_per_s: float
    rows_found: int
    missing: int
    missing_beyond_bound: int
    oldest_missing_ms_before_kill: float | None
    proxy_exit: int | None
    loss_is_tail: bool = True  # every missing answer arrived after the newest committed row's request began

    @property
    def ok(self) -> bool:
        if self.signal == "SIGTERM":
            return self.missing == 0
        return self.loss_is_tail and self.missing_beyond_bound == 0


# -- load ------------------------------------------------------------------------------------------


async def _load(url: str, connections: int, duration_s: float, ready: Any) -> list[Answer]:
    """Keep `connections` requests in flight for `duration_s` (from the first answer) or until the proxy
    goes away; say "ready" through `ready` once the first answer is in."""
    import aiohttp

    answers: list[Answer] = []
    stop = False
    until = float("inf")

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal stop, until
        while not stop and time.time() < until:
            try:
                async with session.post(url, data=BODY, headers={"content-type": "application/json"}) as resp:
                    await resp.read()
                    answers.append(Answer(resp.headers.get("x-request-id", ""), resp.status, time.time()))
                if until == float("inf"):
                    until = time.time() + duration_s
                    ready.send("ready")
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                stop = True  # the proxy is gone: this run is over

    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections),
                                     timeout=timeout) as session:
        await asyncio.gather(*(worker(session) for _ in range(connections)))
    return answers


def _load_process(url: str, connections: int, duration_s: float, out: Any) -> None:
    out.send([asdict(a) for a in asyncio.run(_load(url, connections, duration_s, out))])
    out.close()


def run_load(url: str, *, processes: int, connections: int, duration_s: float) -> tuple[list[Any], list[Any]]:
    """Start the load processes; return once each has its first answer (start-up is not load)."""
    ctx = multiprocessing.get_context("spawn")
    procs, pipes = [], []
    for _ in range(processes):
        receive, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_load_process, args=(url, connections, duration_s, send), daemon=True)
        proc.start()
        procs.append(proc)
        pipes.append(receive)
    for pipe in pipes:
        if not pipe.poll(120) or pipe.recv() != "ready":
            raise RuntimeError("a load process did not get its first answer within 120 s")
    return procs, pipes


# -- one kill run ----------------------------------------------------------------------------------


def _config(path: Path, upstream: str, target: str, policy: str, flush_interval_ms: float) -> None:
    route: dict[str, Any] = {"backend": "openai", "base_url": upstream + "/v1", "model": "upstream-model",
                             "policy": policy}
    if policy == "classifier":
        route["policy_options"] = {"artifact": "smollm2-135m-ifeval"}
    path.write_text(json.dumps({"routes": {MODEL: route},
                                "decision_log": {"path": target, "flush_interval_ms": flush_interval_ms}}))


def kill_run(*, sig: signal.Signals, target: str, workdir: Path, upstream: str, policy: str = "never",
             kill_after_s: float = 3.0, processes: int = 2, connections: int = 32,
             flush_interval_ms: float = 50.0, bound_ms: float = DEFAULT_BOUND_MS) -> KillResult:
    """Start a proxy writing to `target`, load it, send `sig` after `kill_after_s`, count rows."""
    port = free_port()
    config = workdir / f"proxy-{sig.name}-{port}.yaml"  # JSON is YAML
    _config(config, upstream, target, policy, flush_interval_ms)
    proxy = Service("thinkgate", [sys.executable, "-m", "router.cli", "serve", "--config", str(config),
                                  "--port", str(port)], port, workdir / f"proxy-{sig.name}-{port}.log",
                    env={"THINKGATE_LOG_LEVEL": "warning"})
    proxy.start(120)
    try:
        began = time.time()
        procs, pipes = run_load(proxy.url + "/v1/chat/completions", processes=processes,
                                connections=connections, duration_s=kill_after_s + 30)
        time.sleep(kill_after_s)
        assert proxy.proc is not None
        killed_at = time.time()
        proxy.proc.send_signal(sig)
        code = proxy.proc.wait(60)
        answers = [Answer(**a) for pipe in pipes for a in pipe.recv()]
        for proc in procs:
            proc.join(30)
    finally:
        proxy.stop()
    buf = io.StringIO()
    export_jsonl(target, buf, since=began - 1)
    rows = [json.loads(line) for line in buf.getvalue().splitlines()]
    return tally(answers, rows, killed_at=killed_at, sig=sig.name,
                 store="postgresql" if target.startswith("postgres") else "sqlite", policy=policy,
                 flush_interval_ms=flush_interval_ms, bound_ms=bound_ms, proxy_exit=code)


def tally(answers: Sequence[Answer], rows: Sequence[dict[str, Any]], *, killed_at: float, sig: str, store: str,
          policy: str, flush_interval_ms: float, bound_ms: float, proxy_exit: int | None) -> KillResult:
    """Every 200 answer that arrived before the kill, looked up among the exported log `rows`."""
    ok = [a for a in answers if a.status == 200 and a.done <= killed_at]
    stored = {row["request_id"] for row in rows}
    missing = [a for a in ok if a.request_id not in stored]
    newest_committed = max((row["time"] for row in rows), default=float("-inf"))
    beyond = [a for a in missing if a.done < killed_at - bound_ms / 1000.0]
    load_s = killed_at - min((a.done for a in ok), default=killed_at)
    return KillResult(
        signal=sig, store=store, policy=policy, flush_interval_ms=flush_interval_ms, bound_ms=bound_ms,
        load_s=round(load_s, 2), answered_200=len(ok), req_per_s=round(len(ok) / max(1e-9, load_s), 1),
        rows_found=len(ok) - len(missing), missing=len(missing), missing_beyond_bound=len(beyond),
        oldest_missing_ms_before_kill=(round((killed_at - min(a.done for a in missing)) * 1000, 1)
                                       if missing else None),
        proxy_exit=proxy_exit, loss_is_tail=all(a.done > newest_committed for a in missing))


# -- the writer alone --------------------------------------------------------------------------------


def _record(i: int) -> DecisionRecord:
    return DecisionRecord(time=time.time(), request_id=f"w-{i}", route=MODEL, upstream_model="m",
                          policy="never", decision="direct", decision_ms=0.01, decision_source="policy",
                          status=200, stream=False, score=None, prompt_tokens=24, completion_tokens=12)


def writer_run(target: str, rate: int, seconds: float, flush_interval_ms: float) -> dict[str, Any]:
    """`record()` at `rate` per second from a thread that burns CPU in between (like a busy event loop)."""
    log = DecisionLog(target, flush_interval_s=flush_interval_ms / 1000.0, queue_size=100_000)
    log.start()
    n = int(rate * seconds)
    began = time.perf_counter()
    for i in range(n):
        due = began + i / rate
        x = 0
        while time.perf_counter() < due:  # busy until the next record is due: the GIL stays taken
            x += 1
        log.record(_record(i))
    sent_s = time.perf_counter() - began
    stats_before_close = log.stats()
    log.close()
    stats = log.stats()
    return {"store": "postgresql" if target.startswith("postgres") else "sqlite", "rate": rate,
            "achieved_rate": round(n / sent_s), "records": n, "written": stats["written"],
            "dropped": stats["dropped"], "failed": stats["failed"],
            "max_lag_ms": stats_before_close["max_lag_ms"]}


# -- report ------------------------------------------------------------------------------------------


def _kill_table(results: Sequence[KillResult]) -> list[str]:
    lines = ["| signal | store | policy | load s | 200 answers | req/s | rows found | missing | "
             "missing beyond bound | oldest missing (ms before kill) | bound ms | loss is a tail | ok |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        oldest = "–" if r.oldest_missing_ms_before_kill is None else f"{r.oldest_missing_ms_before_kill:.0f}"
        lines.append(f"| {r.signal} | {r.store} | {r.policy} | {r.load_s} | {r.answered_200:,} | "
                     f"{r.req_per_s:,.0f} | {r.rows_found:,} | {r.missing} | {r.missing_beyond_bound} | {oldest} | "
                     f"{r.bound_ms:.0f} | {'yes' if r.loss_is_tail else '**no**'} | {'yes' if r.ok else '**no**'} |")
    return lines


def _writer_table(rows: Sequence[dict[str, Any]]) -> list[str]:
    lines = ["| store | target rec/s | achieved rec/s | records | written | dropped | failed | max lag ms |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['store']} | {r['rate']:,} | {r['achieved_rate']:,} | {r['records']:,} | "
                     f"{r['written']:,} | {r['dropped']} | {r['failed']} | {r['max_lag_ms']:.1f} |")
    return lines


def write_report(path: Path, command: str, kills: Sequence[KillResult], writer: Sequence[dict[str, Any]]) -> None:
    lines = ["# Decision-log durability", "",
             f"Command: `{command}`  ", f"Run: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()}, "
             f"{os.cpu_count()} CPUs (shared with the load generator and the mock), Python "
             f"{platform.python_version()}", ""]
    if kills:
        lines += ["## Load, then a signal to the proxy", "",
                  "Rows are looked up by the `x-request-id` of every 200 answer that arrived before the signal.",
                  "", *_kill_table(kills), ""]
    if writer:
        lines += ["## The writer alone, with a CPU-busy main thread", "",
                  "max lag = the longest time between `record()` and the commit of that record.", "",
                  *_writer_table(writer), ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="thinkgate bench durability", description=__doc__.split("\n")[0])
    p.add_argument("--db", default=None, help="decision log: SQLite path or postgresql:// DSN "
                                              "(default: a fresh SQLite file in a temporary directory)")
    p.add_argument("--signal", choices=["kill", "term", "both"], default="both")
    p.add_argument("--policy", default="never", help="the route's policy (never, classifier, ...)")
    p.add_argument("--kill-after", type=float, default=4.0, help="seconds of load before the signal")
    p.add_argument("--processes", type=int, default=2, help="load-generator processes")
    p.add_argument("--connections", type=int, default=32, help="keep-alive connections per load process")
    p.add_argument("--flush-interval-ms", type=float, default=50.0)
    p.add_argument("--bound-ms", type=float, default=DEFAULT_BOUND_MS,
                   help="the stated bound: on SIGKILL only answers newer than this may lack a row")
    p.add_argument("--writer-only", action="store_true", help="only the writer benchmark (no proxy)")
    p.add_argument("--no-writer", action="store_true", help="skip the writer benchmark")
    p.add_argument("--rates", default="1000,4200,10000,40000", help="writer benchmark: records/s to try")
    p.add_argument("--out", type=Path, default=DEFAULT_REPORT, help="markdown report path")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    command = "thinkgate bench durability " + " ".join(argv if argv is not None else sys.argv[1:])
    kills: list[KillResult] = []
    writer: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="thinkgate-durability-") as tmp:
        workdir = Path(tmp)
        if not args.writer_only:
            signals = {"kill": [signal.SIGKILL], "term": [signal.SIGTERM],
                       "both": [signal.SIGKILL, signal.SIGTERM]}[args.signal]
            mock_port = free_port()
            with Services() as services:
                mock = services.start(Service("mock", [sys.executable, "-m", "benchmarks.mock_upstream_server",
                                                       "--port", str(mock_port)], mock_port,
                                              workdir / "mock.log"))
                for sig in signals:
                    target = args.db or str(workdir / f"decisions-{sig.name}.sqlite3")
                    result = kill_run(sig=sig, target=target, workdir=workdir, upstream=mock.url,
                                      policy=args.policy, kill_after_s=args.kill_after,
                                      processes=args.processes, connections=args.connections,
                                      flush_interval_ms=args.flush_interval_ms, bound_ms=args.bound_ms)
                    kills.append(result)
                    print(_kill_table([result])[-1], flush=True)
        if not args.no_writer:
            for rate in (int(r) for r in args.rates.split(",")):
                target = args.db or str(workdir / f"writer-{rate}.sqlite3")
                row = writer_run(target, rate, 3.0, args.flush_interval_ms)
                writer.append(row)
                print(_writer_table([row])[-1], flush=True)
    write_report(args.out, command, kills, writer)
    print(f"report: {args.out}")
    return 0 if all(r.ok for r in kills) else 1


if __name__ == "__main__":
    raise SystemExit(main())
