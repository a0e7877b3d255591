"""Throughput at concurrency with wrk: a generated Lua script (`bodies.wrk_lua`) sends the run's bodies and
reports wrk's summary as one JSON line."""

from __future__ import annotations

import contextlib
import json
import re
import resource
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from ..services import ServiceError
from .bodies import Bodies, wrk_lua
from .cpu import CpuMeter, CpuSample


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
    cpu: dict[str, CpuSample] = field(default_factory=dict)  # per process tree ("server", "mock", "wrk") and "machine"


def wrk_path() -> str | None:
    return shutil.which("wrk")


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_wrk(url: str, model: str, *, duration_s: float, connections: int, threads: int,
            workdir: Path, bodies: Bodies | None = None, tag: str = "w",
            cpu_pids: dict[str, int | None] | None = None) -> WrkResult:
    """One wrk run; `cpu_pids` names process trees ("server", "mock") whose CPU time is sampled around it
    (wrk's own CPU comes from this process's reaped-children usage, the whole machine's as "machine")."""
    wrk = wrk_path()
    if wrk is None:
        raise ServiceError("wrk is not installed")
    script = workdir / f"post-{tag}.lua"
    script.write_text(wrk_lua(bodies or Bodies.fixed(), model, tag))
    argv = [wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration_s))}s", "--timeout", "10s",
            "--latency", "-s", str(script), f"{url}/v1/chat/completions"]
    meter = CpuMeter(cpu_pids or {}, machine=True)
    children_before = _children_cpu_s()
    meter.start()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration_s + 60)
    used = meter.stop()
    used["wrk"] = _children_cpu_s() - children_before
    match = re.search(r"^THINKGATE_WRK (\{.*\})$", done.stdout, re.M)
    if done.returncode != 0 or match is None:
        raise ServiceError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    data = json.loads(match.group(1))
    errors = sum(data[k] for k in ("connect", "read", "write", "status", "timeout"))
    seconds = data["duration_us"] / 1e6
    cpu = {name: CpuSample(s, data["requests"], seconds) for name, s in used.items()}
    return WrkResult(rps=data["requests"] / seconds, p50_ms=data["p50_us"] / 1000, p90_ms=data["p90_us"] / 1000,
                     p99_ms=data["p99_us"] / 1000, mean_ms=data["mean_us"] / 1000, requests=data["requests"],
                     errors=errors, duration_s=seconds, cpu=cpu)


def wrk_version() -> str:
    wrk = wrk_path()
    if wrk is None:
        return "not installed"
    with contextlib.suppress(Exception):
        out = subprocess.run([wrk, "-v"], capture_output=True, text=True, timeout=10)
        return (out.stdout + out.stderr).splitlines()[0].split(" [")[0]
    return "unknown"
