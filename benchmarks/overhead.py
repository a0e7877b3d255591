"""Proxy overhead and decision latency: how much does thinkgate add in front of a fast upstream?

    python -m benchmarks.overhead                       # full run (~2-3 minutes), writes benchmarks/reports/overhead.md
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
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as _dt
import importlib
import importlib.metadata
import io
import json
import math
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import httpx

from .services import HOST, REPO_ROOT, Service, ServiceError, Services, free_port

DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "ifeval" / "input_data.jsonl"
DEFAULT_OUT = REPO_ROOT / "benchmarks" / "reports" / "overhead.md"
MODEL = "mock-model"
# A typical IFEval-style instruction: the same body goes to every target.
PROMPT = ("Write a short blog post about a trip to Japan using less than 300 words. Do not use any commas "
          "and wrap your entire response with double quotation marks.")

# The targets and the reference figures measured earlier on this machine.
TARGET_ADDED_P50_MS = 1.0
TARGET_RPS = 1000.0
REFERENCE = [
    ("direct (issue)", "~9,000 req/s"),
    ("LiteLLM proxy (issue)", "+10.5 ms p50, ~100 req/s"),
    ("RouteLLM (issue)", "+5.5 ms p50, ~290 req/s"),
]


# --------------------------------------------------------------------------------------------------
# small helpers


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of a non-empty sequence."""
    if not values:
        return math.nan
    data = sorted(values)
    if len(data) == 1:
        return data[0]
    pos = (len(data) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def median_of(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    return statistics.median(vals) if vals else None


def chat_body(model: str, *, stream: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 64}
    if stream:
        body["stream"] = True
    return body


def _fmt(value: float | None, digits: int = 2, suffix: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:,.{digits}f}{suffix}"


def _signed(value: float | None, digits: int = 2) -> str:
    if value is None or math.isnan(value):
        return "–"
    return f"{value:+,.{digits}f}"


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def mock_service(workdir: Path, python: str) -> Service:
    port = free_port()
    argv = [python, "-m", "benchmarks.mock_upstream_server", "--host", HOST, "--port", str(port)]
    return Service("mock upstream", argv, port, workdir / "mock.log")


@dataclass
class ProxyVariant:
    """One thinkgate configuration to measure."""

    key: str
    label: str
    policy: str
    profile: str = "prompt-cot"
    decision_log: bool = True
    artifact: str | None = None
    repo: Path | None = None  # another checkout to run (a patched copy); None: --proxy-repo
    env: dict[str, str] = field(default_factory=dict)  # on top of --proxy-env

    def serve_args(self, upstream_url: str, port: int, log_path: Path) -> list[str]:
        args = ["serve", "--base-url", f"{upstream_url}/v1", "--upstream", MODEL, "--policy", self.policy,
                "--profile", self.profile, "--host", HOST, "--port", str(port),
                "--decision-log", str(log_path) if self.decision_log else "off"]
        if self.artifact:
            args += ["--artifact", self.artifact]
        return args

    def describe(self) -> str:
        parts = [f"policy {self.policy}", f"profile {self.profile}",
                 "decision log on (SQLite, WAL)" if self.decision_log else "decision log off"]
        if self.artifact:
            parts.append(f"artifact {self.artifact}")
        if self.repo is not None:
            parts.append(f"router/ from {self.repo}")
        if self.env:
            parts.append("environment " + " ".join(f"{k}={v}" for k, v in self.env.items()))
        return ", ".join(parts)


def proxy_service(variant: ProxyVariant, upstream_url: str, workdir: Path, python: str,
                  proxy_repo: Path, extra_env: dict[str, str]) -> Service:
    port = free_port()
    args = variant.serve_args(upstream_url, port, workdir / f"decisions-{variant.key}.sqlite3")
    argv = [python, "-m", "router.cli", *args]
    env = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "THINKGATE_LOG_LEVEL": "warning", **extra_env, **variant.env}
    return Service(f"thinkgate ({variant.label})", argv, port, workdir / f"proxy-{variant.key}.log", env=env,
                   cwd=variant.repo or proxy_repo)


def litellm_proxy_available(python: str) -> tuple[bool, str]:
    """LiteLLM's proxy needs its extras; check in a child so a broken import cannot hurt this process."""
    code = "import litellm.proxy.proxy_server"
    try:
        done = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=120,
                              env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"not installed ({exc})"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["import failed"])[-1]
        return False, f"not installed (`{code}` fails: {last})"
    return True, "installed"


def litellm_service(upstream_url: str, workdir: Path, python: str) -> Service:
    port = free_port()
    litellm_bin = Path(python).with_name("litellm")
    exe = [str(litellm_bin)] if litellm_bin.exists() else [python, "-m", "litellm"]
    argv = [*exe, "--model", f"openai/{MODEL}", "--alias", MODEL, "--api_base", f"{upstream_url}/v1",
            "--host", HOST, "--port", str(port), "--num_workers", "1"]
    env = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "OPENAI_API_KEY": "sk-benchmark-mock",
           "LITELLM_LOG": "ERROR", "DISABLE_SCHEMA_UPDATE": "True"}
    return Service("LiteLLM proxy", argv, port, workdir / "litellm.log", ready_path="/health/readiness", env=env)


# --------------------------------------------------------------------------------------------------
# measurements


@dataclass
class Latency:
    n: int
    p50_ms: float
    p99_ms: float
    mean_ms: float
    errors: int = 0

    @classmethod
    def of(cls, samples_ms: list[float], errors: int = 0) -> "Latency":
        if not samples_ms:
            return cls(0, math.nan, math.nan, math.nan, errors)
        return cls(len(samples_ms), percentile(samples_ms, 50), percentile(samples_ms, 99),
                   statistics.fmean(samples_ms), errors)


def measure_sequential(url: str, model: str, n: int, warmup: int) -> Latency:
    """n sequential non-streaming requests over one keep-alive connection."""
    body = json.dumps(chat_body(model)).encode()
    headers = {"content-type": "application/json"}
    samples: list[float] = []
    errors = 0
    with httpx.Client(base_url=url, timeout=30.0) as client:
        for i in range(warmup + n):
            t0 = time.perf_counter()
            try:
                response = client.post("/v1/chat/completions", content=body, headers=headers)
                ok = response.status_code == 200
            except httpx.HTTPError:
                ok = False
            elapsed = (time.perf_counter() - t0) * 1000
            if i < warmup:
                continue
            if ok:
                samples.append(elapsed)
            else:
                errors += 1
    return Latency.of(samples, errors)


@dataclass
class StreamResult:
    ttfb: Latency
    total: Latency
    sample_ok: bool  # the last stream carried content and ended with [DONE]


def measure_stream(url: str, model: str, n: int, warmup: int) -> StreamResult:
    """n sequential streaming requests: time to the first body byte, and to the end of the stream."""
    body = json.dumps(chat_body(model, stream=True)).encode()
    headers = {"content-type": "application/json"}
    ttfb: list[float] = []
    total: list[float] = []
    errors = 0
    last = b""
    with httpx.Client(base_url=url, timeout=30.0) as client:
        for i in range(warmup + n):
            t0 = time.perf_counter()
            first = None
            try:
                with client.stream("POST", "/v1/chat/completions", content=body, headers=headers) as response:
                    parts = []
                    for raw in response.iter_raw():
                        if first is None:
                            first = time.perf_counter()
                        parts.append(raw)
                    ok = response.status_code == 200
                end = time.perf_counter()
                last = b"".join(parts)
            except httpx.HTTPError:
                ok = False
            if i < warmup:
                continue
            if ok and first is not None:
                ttfb.append((first - t0) * 1000)
                total.append((end - t0) * 1000)
            else:
                errors += 1
    sample_ok = b'"content"' in last and last.rstrip().endswith(b"data: [DONE]")
    return StreamResult(Latency.of(ttfb, errors), Latency.of(total, errors), sample_ok)


WRK_LUA = """\
wrk.method = "POST"
wrk.body = [==[{body}]==]
wrk.headers["Content-Type"] = "application/json"

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "THINKGATE_WRK {{\\"requests\\":%d,\\"duration_us\\":%d,\\"connect\\":%d,\\"read\\":%d," ..
    "\\"write\\":%d,\\"status\\":%d,\\"timeout\\":%d,\\"p50_us\\":%d,\\"p90_us\\":%d,\\"p99_us\\":%d," ..
    "\\"mean_us\\":%.1f,\\"max_us\\":%d}}\\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max))
end
"""


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    requests: int
    errors: int  # socket errors + non-2xx/3xx responses
    duration_s: float


def wrk_path() -> str | None:
    return shutil.which("wrk")


def run_wrk(url: str, model: str, *, duration_s: float, connections: int, threads: int,
            workdir: Path) -> WrkResult:
    wrk = wrk_path()
    if wrk is None:
        raise ServiceError("wrk is not installed")
    script = workdir / "post.lua"
    script.write_text(WRK_LUA.format(body=json.dumps(chat_body(model))))
    argv = [wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration_s))}s", "--timeout", "10s",
            "--latency", "-s", str(script), f"{url}/v1/chat/completions"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration_s + 60)
    match = re.search(r"^THINKGATE_WRK (\{.*\})$", done.stdout, re.M)
    if done.returncode != 0 or match is None:
        raise ServiceError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    data = json.loads(match.group(1))
    errors = sum(data[k] for k in ("connect", "read", "write", "status", "timeout"))
    seconds = data["duration_us"] / 1e6
    return WrkResult(rps=data["requests"] / seconds, p50_ms=data["p50_us"] / 1000, p90_ms=data["p90_us"] / 1000,
                     p99_ms=data["p99_us"] / 1000, mean_ms=data["mean_us"] / 1000, requests=data["requests"],
                     errors=errors, duration_s=seconds)


@dataclass
class TargetRound:
    seq: Latency | None = None
    stream: StreamResult | None = None
    wrk: WrkResult | None = None
    wrk_error: str | None = None


@dataclass
class Target:
    key: str
    label: str
    description: str
    url: str
    model: str = MODEL
    rounds: list[TargetRound] = field(default_factory=list)

    # medians over rounds
    def med(self, getter: Callable[[TargetRound], float | None]) -> float | None:
        values = []
        for r in self.rounds:
            try:
                values.append(getter(r))
            except AttributeError:  # a measurement that did not run
                continue
        return median_of(values)


def measure_target(target: Target, args: argparse.Namespace, workdir: Path, log: Callable[[str], None]) -> None:
    result = TargetRound()
    result.seq = measure_sequential(target.url, target.model, args.requests, args.warmup)
    result.stream = measure_stream(target.url, target.model, args.stream_requests, min(args.warmup, 20))
    if args.wrk:
        try:
            result.wrk = run_wrk(target.url, target.model, duration_s=args.duration, connections=args.connections,
                                 threads=args.threads, workdir=workdir)
        except (ServiceError, subprocess.TimeoutExpired) as exc:
            result.wrk_error = str(exc)
    target.rounds.append(result)
    wrk_text = (f"{result.wrk.rps:,.0f} req/s (p50 {result.wrk.p50_ms:.2f} ms, errors {result.wrk.errors})"
                if result.wrk else (result.wrk_error or "skipped"))
    log(f"  {target.label:<34} seq p50 {result.seq.p50_ms:.3f} ms p99 {result.seq.p99_ms:.3f} ms | "
        f"stream TTFB p50 {result.stream.ttfb.p50_ms:.3f} ms | wrk {wrk_text}")


# --------------------------------------------------------------------------------------------------
# decision latency (in-process)


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
    prompts = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if line:
                prompt = json.loads(line).get("prompt")
                if isinstance(prompt, str):
                    prompts.append(prompt)
    return prompts


def bench_decisions(prompts: list[str], policies: list[tuple[str, dict[str, Any]]], *, samples: int,
                    warmup: int = 50) -> list[DecisionBench]:
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
        contexts = [DecisionContext(text=p, route="bench", body={}) for p in prompts]
        rounds = max(1, math.ceil(samples / len(contexts)))

        async def run() -> tuple[list[float], int, int]:
            for ctx in contexts[:warmup]:
                await decide_with_fallback(decider, ctx, timeout_s=5.0, default_think=False)
            times: list[float] = []
            thinks = fallbacks = 0
            clock = time.perf_counter_ns
            for _ in range(rounds):
                for ctx in contexts:
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


def run_local_throughput(log: Callable[[str], None], argv: list[str] | None = None) -> str:
    try:
        module = importlib.import_module("benchmarks.local_throughput")
    except ImportError as exc:
        return f"benchmarks.local_throughput is not available ({exc})."
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            code = module.main(list(argv or []))
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return f"benchmarks.local_throughput.main failed: {type(exc).__name__}: {exc}\n\n{out.getvalue()}"
    text = out.getvalue().strip()
    log(text)
    return text + (f"\n\n(exit code {code})" if code else "")


# --------------------------------------------------------------------------------------------------
# report


def machine_info(python: str) -> dict[str, str]:
    info = {
        "cores": str(os.cpu_count()),
        "cpu": _cpu_model(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "uvicorn": _version("uvicorn"),
        "starlette": _version("starlette"),
        "httpx": _version("httpx"),
        "pydantic": _version("pydantic"),
        "uvloop (uvicorn loop)": _version("uvloop"),
        "httptools (uvicorn http)": _version("httptools"),
        "wrk": _wrk_version(),
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "git": _git_rev(),
    }
    return info


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _wrk_version() -> str:
    wrk = wrk_path()
    if wrk is None:
        return "not installed"
    with contextlib.suppress(Exception):
        out = subprocess.run([wrk, "-v"], capture_output=True, text=True, timeout=10)
        return (out.stdout + out.stderr).splitlines()[0].split(" [")[0]
    return "unknown"


def _git_rev() -> str:
    with contextlib.suppress(Exception):
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "router"], cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return rev + (" (router/ has uncommitted changes)" if dirty else "")
    return "unknown"


@dataclass
class RunResult:
    command: str
    started: str
    finished: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    machine: dict[str, str] = field(default_factory=dict)
    targets: list[Target] = field(default_factory=list)
    litellm: str = ""
    decisions: list[DecisionBench] = field(default_factory=list)
    decisions_note: str = ""
    local: str | None = None
    notes: list[str] = field(default_factory=list)


def _summary_rows(run: RunResult) -> list[dict[str, Any]]:
    direct = next((t for t in run.targets if t.key == "direct"), None)
    d50 = direct.med(lambda r: r.seq.p50_ms) if direct else None
    d99 = direct.med(lambda r: r.seq.p99_ms) if direct else None
    dttfb = direct.med(lambda r: r.stream.ttfb.p50_ms) if direct else None
    rows = []
    for t in run.targets:
        p50, p99 = t.med(lambda r: r.seq.p50_ms), t.med(lambda r: r.seq.p99_ms)
        ttfb = t.med(lambda r: r.stream.ttfb.p50_ms)
        is_direct = t is direct
        rows.append({
            "key": t.key, "target": t.label,
            "seq_p50": p50, "seq_p99": p99,
            "added_p50": None if is_direct or d50 is None or p50 is None else p50 - d50,
            "added_p99": None if is_direct or d99 is None or p99 is None else p99 - d99,
            "ttfb_p50": ttfb,
            "added_ttfb": None if is_direct or dttfb is None or ttfb is None else ttfb - dttfb,
            "rps": t.med(lambda r: r.wrk.rps), "wrk_p50": t.med(lambda r: r.wrk.p50_ms),
            "wrk_p99": t.med(lambda r: r.wrk.p99_ms),
            "errors": sum((r.seq.errors if r.seq else 0) + (r.stream.ttfb.errors if r.stream else 0)
                          + (r.wrk.errors if r.wrk else 0) for r in t.rounds),
        })
    return rows


TABLE_HEAD = ("| target | seq p50 ms | seq p99 ms | added p50 ms | added p99 ms | stream TTFB p50 ms | "
              "added TTFB ms | c=32 req/s | c=32 p50 ms | c=32 p99 ms | errors |")


def markdown_table(run: RunResult) -> str:
    lines = [TABLE_HEAD, "|" + "---|" * 11]
    for row in _summary_rows(run):
        lines.append(
            f"| {row['target']} | {_fmt(row['seq_p50'], 3)} | {_fmt(row['seq_p99'], 3)} | "
            f"{_signed(row['added_p50'], 3)} | {_signed(row['added_p99'], 3)} | {_fmt(row['ttfb_p50'], 3)} | "
            f"{_signed(row['added_ttfb'], 3)} | {_fmt(row['rps'], 0)} | {_fmt(row['wrk_p50'], 2)} | "
            f"{_fmt(row['wrk_p99'], 2)} | {row['errors']} |")
    return "\n".join(lines)


def text_table(run: RunResult) -> str:
    head = (f"{'target':<52} {'p50':>7} {'p99':>7} {'+p50':>7} {'+p99':>7} {'TTFB':>7} {'+TTFB':>7} "
            f"{'req/s':>8} {'c32p50':>7} {'c32p99':>7} {'err':>4}")
    lines = [head, "-" * len(head)]
    for r in _summary_rows(run):
        lines.append(f"{r['target'][:52]:<52} {_fmt(r['seq_p50'], 3):>7} {_fmt(r['seq_p99'], 3):>7} "
                     f"{_signed(r['added_p50'], 3):>7} {_signed(r['added_p99'], 3):>7} {_fmt(r['ttfb_p50'], 3):>7} "
                     f"{_signed(r['added_ttfb'], 3):>7} {_fmt(r['rps'], 0):>8} {_fmt(r['wrk_p50'], 2):>7} "
                     f"{_fmt(r['wrk_p99'], 2):>7} {r['errors']:>4}")
    lines.append("(latencies in ms; seq = sequential httpx keep-alive; c32 = wrk at concurrency 32; medians over "
                 "rounds)")
    return "\n".join(lines)


def decisions_table(run: RunResult) -> str:
    if not run.decisions:
        return run.decisions_note or "not measured"
    lines = ["| policy | samples | p50 µs | p99 µs | mean µs | think rate | fallbacks | note |",
             "|---|---|---|---|---|---|---|---|"]
    for d in run.decisions:
        lines.append(f"| {d.policy} | {d.n} | {_fmt(d.p50_us, 2)} | {_fmt(d.p99_us, 2)} | {_fmt(d.mean_us, 2)} | "
                     f"{_fmt(d.think_rate * 100 if d.n else None, 1, '%')} | {d.fallbacks} | {d.error or ''} |")
    return "\n".join(lines)


def verdicts(run: RunResult) -> list[str]:
    rows = {r["key"]: r for r in _summary_rows(run)}
    out = []
    for key, row in rows.items():
        if key in ("direct", "litellm"):
            continue
        added, rps = row["added_p50"], row["rps"]
        a = ("–" if added is None else
             f"{added:+.3f} ms → {'meets' if added <= TARGET_ADDED_P50_MS else 'MISSES'} ≤ {TARGET_ADDED_P50_MS:g} ms")
        b = ("–" if rps is None else
             f"{rps:,.0f} req/s → {'meets' if rps >= TARGET_RPS else 'MISSES'} ≥ {TARGET_RPS:,.0f} req/s")
        out.append(f"- **{row['target']}**: added p50 {a}; c=32 {b}")
    return out


def render_markdown(run: RunResult) -> str:
    s = run.settings
    parts = [
        "# thinkgate proxy overhead",
        "",
        f"- date: {run.started} (finished {run.finished})",
        f"- command: `{run.command}`",
        "- **the machine is shared and noisy** (2 cores shared by the load generator, the mock upstream and the "
        "proxy, plus other users' jobs): treat single numbers as ±20-30 %; every figure below is the median "
        f"over {s.get('rounds')} round(s), and within a round p50/p99 are over all samples.",
        *_load_warning(run),
        "",
        "## Machine",
        "",
        "| | |", "|---|---|",
        *[f"| {k} | {v} |" for k, v in run.machine.items()],
        "",
        "## What was measured",
        "",
        f"- upstream: `benchmarks/mock_upstream_server.py` (raw asyncio HTTP/1.1, fixed short reply and usage), "
        "one process on 127.0.0.1.",
        f"- proxy: `python -m router.cli serve` (= `thinkgate serve --base-url http://127.0.0.1:P/v1 --upstream "
        f"{MODEL} ...`), one uvicorn worker per variant, log level warning; uvicorn picks its event loop and HTTP "
        "parser automatically (see uvloop/httptools above: 'not installed' means asyncio + h11).",
        f"- request: one user message (an IFEval-style instruction, {len(PROMPT)} characters), `max_tokens` 64.",
        f"- sequential: {s.get('requests')} non-streaming requests after {s.get('warmup')} warm-up, httpx "
        f"{_version('httpx')} sync client, one keep-alive connection.",
        f"- streaming: {s.get('stream_requests')} sequential streamed requests; TTFB = time from sending to the "
        "first body byte (the proxy sends its headers only after the upstream's first chunk arrived).",
        (f"- throughput: wrk, {s.get('threads')} threads, {s.get('connections')} connections, "
         f"{s.get('duration')} s, non-streaming POST (Lua script), `--latency`." if s.get("wrk") else
         "- throughput: skipped (wrk not installed or --no-wrk)."),
        "- always on in every proxy variant: Prometheus metrics (in-process counters/histograms), request ids, "
        "decision headers; access log off (thinkgate's default), log level warning, no client API keys.",
        "- proxy variants:",
        *[f"  - {t.label}: {t.description}" for t in run.targets],
        f"- LiteLLM proxy: {run.litellm}.",
        "",
        "## Results",
        "",
        markdown_table(run),
        "",
        "added = median proxy − median direct (sequential; targets interleaved in each round); a negative added p99 "
        "means the tail is noise (other jobs on the machine), not a speed-up; errors = failed requests of all kinds.",
        "",
        "### Against the targets (from the issue)",
        "",
        *verdicts(run),
        "",
        "Reference figures quoted in the issue for this machine (not re-measured here):",
        "",
        *[f"- {name}: {value}" for name, value in REFERENCE],
        "",
        "## Decision latency (in-process)",
        "",
        run.decisions_note,
        "",
        decisions_table(run),
        "",
    ]
    if len(run.targets) and any(len(t.rounds) > 1 for t in run.targets):
        parts += ["## Per-round numbers", ""]
        for t in run.targets:
            for i, r in enumerate(t.rounds, 1):
                w = f"{r.wrk.rps:,.0f} req/s p50 {r.wrk.p50_ms:.2f} ms" if r.wrk else (r.wrk_error or "–")
                parts.append(f"- {t.label}, round {i}: seq p50 {r.seq.p50_ms:.3f} / p99 {r.seq.p99_ms:.3f} ms; "
                             f"TTFB p50 {r.stream.ttfb.p50_ms:.3f} ms; {w}" if r.seq and r.stream else "")
        parts.append("")
    if run.local is not None:
        parts += ["## Local model throughput (`benchmarks.local_throughput`)", "", "```", run.local, "```", ""]
    if run.notes:
        parts += ["## Notes", "", *[f"- {n}" for n in run.notes], ""]
    return "\n".join(parts)


def _load_warning(run: RunResult) -> list[str]:
    loads = []
    for key in ("load average at start", "load average at end"):
        with contextlib.suppress(KeyError, ValueError, IndexError):
            loads.append(float(run.machine[key].split()[0]))
    cores = os.cpu_count() or 1
    if loads and max(loads) > 0.5 * cores:
        return [f"- **warning: the machine was busy** (1-minute load average up to {max(loads):.2f} on {cores} "
                "cores, partly other users' jobs): absolute numbers are pessimistic; compare rows within this run."]
    return []


def _jsonable(run: RunResult) -> dict[str, Any]:
    data = asdict(run)
    data["summary"] = _summary_rows(run)
    return json.loads(json.dumps(data, default=str).replace("NaN", "null"))


# --------------------------------------------------------------------------------------------------
# main


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.overhead", description=__doc__.split("\n")[0])
    p.add_argument("--requests", type=int, default=2000, help="sequential requests per target (default 2000)")
    p.add_argument("--stream-requests", type=int, help="sequential streamed requests per target "
                   "(default: min(requests, 500))")
    p.add_argument("--warmup", type=int, default=100, help="warm-up requests per target (default 100)")
    p.add_argument("--duration", type=float, default=10.0, help="wrk seconds per target (default 10)")
    p.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    p.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    p.add_argument("--rounds", type=int, default=1, help="repeat every measurement, interleaved; report medians")
    p.add_argument("--no-wrk", dest="wrk", action="store_false", help="skip the wrk throughput runs")
    p.add_argument("--policies", default="never,always",
                   help="proxy policies to measure, comma-separated (default never,always; classifier is "
                   "added when --artifact is given)")
    p.add_argument("--no-log-variant", dest="log_variant", action="store_false",
                   help="skip the extra 'never, decision log off' proxy")
    p.add_argument("--artifact", help="decision-model directory: adds the classifier policy")
    p.add_argument("--data", default=str(DEFAULT_DATA), help="IFEval input_data.jsonl for decision latency")
    p.add_argument("--decision-samples", type=int, default=5000, help="decisions timed per policy")
    p.add_argument("--no-litellm", dest="litellm", action="store_false", help="skip LiteLLM's proxy")
    p.add_argument("--local", action="store_true", help="also run benchmarks.local_throughput (if present)")
    p.add_argument("--local-args", default="", help="arguments for benchmarks.local_throughput, e.g. "
                   "'--concurrency 1,8 --new-tokens 32'")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="markdown report path (a .json is written next to it)")
    p.add_argument("--no-report", dest="report", action="store_false", help="print only; write no files")
    p.add_argument("--python", default=sys.executable, help="interpreter for the servers (default: this one)")
    p.add_argument("--proxy-repo", default=str(REPO_ROOT),
                   help="checkout whose router/ the proxy runs (to compare a patched copy)")
    p.add_argument("--proxy-env", action="append", default=[], metavar="KEY=VALUE",
                   help="extra environment for the proxy processes (repeatable)")
    p.add_argument("--label-suffix", default="", help="appended to proxy labels (e.g. ' [patched]')")
    p.add_argument("--compare", action="append", default=[], metavar="NAME=DIR[,KEY=VALUE...]",
                   help="also measure 'never' (decision log on) from another checkout DIR (a patched copy of "
                   "the repo), with optional extra environment, interleaved with the others in the same run "
                   "(repeatable); e.g. --compare 'aiohttp=/tmp/patched,PYTHONPATH=/tmp/extras'")
    p.add_argument("--quiet", action="store_true")
    return p


class _Terminated(Exception):
    pass


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """Turn SIGTERM into an exception so `finally` blocks stop the servers."""
    def handler(signum: int, frame: Any) -> None:
        raise _Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    args = _parser().parse_args(argv)
    if args.stream_requests is None:
        args.stream_requests = min(args.requests, 500)
    if args.wrk and wrk_path() is None:
        args.wrk = False
        wrk_note = "wrk is not installed: throughput columns skipped."
    else:
        wrk_note = ""
    log: Callable[[str], None] = (lambda s: None) if args.quiet else (lambda s: print(s, file=sys.stderr, flush=True))
    extra_env = dict(kv.split("=", 1) for kv in args.proxy_env)

    shown = shlex.join(sys.argv[1:] if argv is None else argv)
    run = RunResult(command=f"python -m benchmarks.overhead {shown}".strip(), started=_dt.datetime.now().astimezone().isoformat(timespec="seconds"))
    run.settings = {k: v for k, v in vars(args).items() if k not in ("quiet",)}
    run.machine = machine_info(args.python)
    if wrk_note:
        run.notes.append(wrk_note)
    if extra_env or Path(args.proxy_repo).resolve() != REPO_ROOT:
        run.notes.append(f"proxy run from {args.proxy_repo} with extra environment {extra_env}")

    variants = []
    for policy in [p.strip() for p in args.policies.split(",") if p.strip()]:
        if policy == "classifier" and not args.artifact:
            run.notes.append("policy classifier skipped: no --artifact given")
            continue
        variants.append(ProxyVariant(f"{policy}-log", f"thinkgate {policy}{args.label_suffix}", policy,
                                     artifact=args.artifact if policy == "classifier" else None))
        if policy == "never" and args.log_variant:
            variants.append(ProxyVariant("never-nolog", f"thinkgate never, log off{args.label_suffix}", "never",
                                         decision_log=False))
    for spec in args.compare:
        name, _, rest = spec.partition("=")
        repo, *pairs = rest.split(",")
        if not name or not repo or not (Path(repo) / "router").is_dir():
            print(f"--compare {spec!r}: expected NAME=DIR[,KEY=VALUE...] with DIR/router", file=sys.stderr)
            return 2
        env = dict(pair.split("=", 1) for pair in pairs if "=" in pair)
        variants.append(ProxyVariant(f"compare-{name}", f"thinkgate never [{name}]", "never",
                                     repo=Path(repo).resolve(), env=env))
    if args.artifact and "classifier" not in args.policies:
        variants.append(ProxyVariant("classifier-log", f"thinkgate classifier{args.label_suffix}", "classifier",
                                     artifact=args.artifact))

    if args.litellm:
        available, run.litellm = litellm_proxy_available(args.python)
    else:
        available, run.litellm = False, "skipped (--no-litellm)"

    code = 0
    with _sigterm_raises(), tempfile.TemporaryDirectory(prefix="thinkgate-overhead-") as tmp, Services() as services:
        workdir = Path(tmp)
        try:
            log("starting the mock upstream ...")
            mock = services.start(mock_service(workdir, args.python))
            run.targets.append(Target("direct", "direct to mock", "no proxy: the client talks to the mock",
                                      mock.url))
            for v in variants:
                log(f"starting thinkgate ({v.describe()}) ...")
                try:
                    svc = services.start(proxy_service(v, mock.url, workdir, args.python, Path(args.proxy_repo),
                                                       extra_env))
                except ServiceError as exc:
                    run.notes.append(f"{v.label}: could not start: {exc}")
                    log(f"  could not start: {exc}")
                    code = 1
                    continue
                run.targets.append(Target(v.key, v.label, v.describe(), svc.url))
            if available:
                log("starting LiteLLM's proxy ...")
                try:
                    svc = services.start(litellm_service(mock.url, workdir, args.python), timeout_s=120)
                    run.targets.append(Target("litellm", "LiteLLM proxy (reference)",
                                              f"litellm {_version('litellm')}, 1 worker, openai/{MODEL}", svc.url))
                except ServiceError as exc:
                    run.litellm = f"installed, but failed to start: {exc}"
            for i in range(args.rounds):
                log(f"round {i + 1}/{args.rounds}")
                order = run.targets if i % 2 == 0 else [run.targets[0], *reversed(run.targets[1:])]
                for target in order:
                    measure_target(target, args, workdir, log)
                    if target.rounds[-1].stream and not target.rounds[-1].stream.sample_ok:
                        run.notes.append(f"{target.label}: a streamed reply lacked content or [DONE]")
        except (KeyboardInterrupt, _Terminated):
            log("interrupted: stopping the servers")
            return 130
        except ServiceError as exc:
            log(f"error: {exc}")
            run.notes.append(f"error: {exc}")
            code = 1

    # decision latency in-process (after the servers are gone, so it has the CPU to itself)
    data = Path(args.data)
    if not data.is_absolute():
        data = (REPO_ROOT / data).resolve()
    if data.is_file():
        prompts = load_prompts(data)
        policies: list[tuple[str, dict[str, Any]]] = [("never", {}), ("always", {}), ("random", {"seed": 0})]
        if args.artifact:
            policies.append(("classifier", {"artifact": args.artifact}))
        log(f"decision latency over {len(prompts)} IFEval prompts ...")
        run.decisions = bench_decisions(prompts, policies, samples=args.decision_samples)
        run.decisions_note = (f"`router.deciders.decide_with_fallback` awaited in one event loop, timed around the "
                              f"call (perf_counter_ns), over the `prompt` field of {len(prompts)} prompts from "
                              f"`{data}`, cycled to ≥ {args.decision_samples} samples after 50 warm-up calls. "
                              "self-select is not timed: it asks the upstream, so it costs a model call."
                              + ("" if args.artifact else " classifier: no --artifact given."))
    else:
        run.decisions_note = f"skipped: IFEval data not found at {data}"
        log(run.decisions_note)

    if args.local:
        run.local = run_local_throughput(log, shlex.split(args.local_args))

    run.finished = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
    run.machine["load average at end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(text_table(run))
    print()
    print("\n".join(verdicts(run)))
    if run.decisions:
        print()
        for d in run.decisions:
            print(f"decision {d.policy:<10} p50 {_fmt(d.p50_us, 2)} µs  p99 {_fmt(d.p99_us, 2)} µs"
                  + (f"  ({d.error})" if d.error else ""))
    if args.report:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(render_markdown(run), encoding="utf-8")
        out.with_suffix(".json").write_text(json.dumps(_jsonable(run), indent=1), encoding="utf-8")
        print(f"\nreport: {out}")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
