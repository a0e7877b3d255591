"""A measured target (direct, a proxy variant, LiteLLM) and one round of measurements against it."""

from __future__ import annotations

import argparse
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..services import ServiceError
from ..stats import median_of
from .probes import MODEL, Latency, StreamResult, measure_sequential, measure_stream
from .wrk import WrkResult, run_wrk


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
