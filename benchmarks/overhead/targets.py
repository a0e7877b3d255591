"""A measured target (direct, the floor, a proxy variant, LiteLLM) and one round of measurements against it."""

from __future__ import annotations

import argparse
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..services import ServiceError
from ..stats import median_of
from .bodies import Bodies
from .cpu import CpuMeter, CpuSample
from .probes import MODEL, Latency, StreamResult, measure_sequential, measure_stream
from .wrk import WrkResult, run_wrk


@dataclass
class TargetRound:
    seq: Latency | None = None
    stream: StreamResult | None = None
    wrk: WrkResult | None = None
    wrk_error: str | None = None
    seq_cpu: CpuSample | None = None  # the server's CPU during the sequential probe


@dataclass
class Target:
    key: str
    label: str
    description: str
    url: str
    model: str = MODEL
    kind: str = "thinkgate"  # direct | floor | stack-floor | thinkgate | litellm
    workers: int = 1
    policy: str | None = None  # thinkgate's policy
    pid: int | None = None  # the server process (tree root) whose CPU is measured; the mock for "direct"
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


def measure_target(target: Target, args: argparse.Namespace, workdir: Path, log: Callable[[str], None], *,
                   bodies: Bodies | None = None, mock_pid: int | None = None) -> None:
    bodies = bodies or Bodies.fixed()
    result = TargetRound()
    tag = f"{target.key}.r{len(target.rounds) + 1}"
    meter = CpuMeter({"server": target.pid})
    meter.start()
    t0 = time.perf_counter()
    requests, stream_requests = args.requests, args.stream_requests
    if target.kind == "litellm":  # slow: fewer sequential requests (--litellm-requests)
        limit = getattr(args, "litellm_requests", requests)
        requests, stream_requests = min(requests, limit), min(stream_requests, limit)
    result.seq = measure_sequential(target.url, target.model, requests, args.warmup,
                                    bodies.iter_bytes(target.model, f"s.{tag}"))
    used = meter.stop()
    if "server" in used:
        result.seq_cpu = CpuSample(used["server"], requests + args.warmup, time.perf_counter() - t0)
    result.stream = measure_stream(target.url, target.model, stream_requests, min(args.warmup, 20),
                                   bodies.iter_bytes(target.model, f"st.{tag}", stream=True))
    if args.wrk:
        pids = {"server": target.pid}
        if target.kind != "direct":
            pids["mock"] = mock_pid
        try:
            result.wrk = run_wrk(target.url, target.model, duration_s=args.duration, connections=args.connections,
                                 threads=args.threads, workdir=workdir, bodies=bodies, tag=f"w.{tag}",
                                 cpu_pids=pids)
        except (ServiceError, subprocess.TimeoutExpired) as exc:
            result.wrk_error = str(exc)
    target.rounds.append(result)
    if result.wrk:
        cpu = result.wrk.cpu.get("server")
        per = cpu.ms_per_request if cpu else None
        wrk_text = (f"{result.wrk.rps:,.0f} req/s (p50 {result.wrk.p50_ms:.2f} ms, p99 {result.wrk.p99_ms:.2f} ms, "
                    f"errors {result.wrk.errors}, server CPU "
                    + ("–" if per is None else f"{per:.3f} ms/req") + ")")
    else:
        wrk_text = result.wrk_error or "skipped"
    log(f"  {target.label:<34} seq p50 {result.seq.p50_ms:.3f} ms p99 {result.seq.p99_ms:.3f} ms | "
        f"stream TTFB p50 {result.stream.ttfb.p50_ms:.3f} ms | wrk {wrk_text}")
