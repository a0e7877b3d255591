"""Throughput at concurrency with wrk: an embedded Lua script reports wrk's summary as one JSON line."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..services import ServiceError
from .probes import chat_body

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


def wrk_version() -> str:
    wrk = wrk_path()
    if wrk is None:
        return "not installed"
    with contextlib.suppress(Exception):
        out = subprocess.run([wrk, "-v"], capture_output=True, text=True, timeout=10)
        return (out.stdout + out.stderr).splitlines()[0].split(" [")[0]
    return "unknown"
