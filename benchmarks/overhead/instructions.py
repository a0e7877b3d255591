"""Instructions per request under callgrind: a deterministic measure of the proxy's CPU cost.

    python -m benchmarks.overhead.instructions --out benchmarks/reports/instructions.md
    thinkgate bench instructions --targets floor,never --duration 10

Why: the machine is shared and noisy (2 cores), so CPU time per request (`thinkgate bench overhead`) varies by
±10 % between runs of the same code. Valgrind's callgrind counts the instructions the server executes, which
repeat to ~0.5 % for the same binary and inputs, so a change of a few percent in the proxy's per-request work
shows up in one run.

What is counted, and what is not: **user-space instructions only** (Ir, instructions executed by the guest
process, every thread). Kernel time (the syscalls themselves: socket reads and writes, epoll, fsync of the
decision log), thread switches and GIL hand-offs, cache misses and stalls are NOT counted: an instruction is an
instruction whatever it costs. So this complements the CPU-time benchmark, it does not replace it: a change that
trades instructions for syscalls (or the reverse) looks different in the two.

How (per target, one after another, never two valgrind runs at once):

1. the mock upstream runs normally (not under valgrind) for the whole run;
2. the target server starts under `valgrind --tool=callgrind --instr-atstart=no --separate-threads=yes`, with
   PYTHONHASHSEED=0 (string hashing, and so dict layouts, the same every run); start-up under valgrind takes
   ~20-40 s, so the readiness wait is generous (`--start-timeout`);
3. wrk warms it up (`--warmup` s, not counted); 2 s later the server is counted at rest for `--idle` s (no
   requests; dumped and reported apart); then `callgrind_control -i on PID`, wrk for `--duration` s,
   `callgrind_control -i off PID`, `callgrind_control -d PID` (dump);
4. the server is stopped, the `totals:` of every dumped file (one per thread) are summed and divided by the
   requests wrk completed in the counted run; thread 1 is the main thread (the event loop).

The counted window includes what runs per second rather than per request (timers, the decision-log writer's
wake-ups, the event loop's polling); under valgrind the server handles ~10-100× fewer requests a second than
natively, so that share is larger here than in production, and it makes the per-request figure depend a little
on the request rate, i.e. on how much CPU valgrind got: the at-rest rate estimates it. On a machine where other
jobs take the cores, compare runs made under similar load.

Targets: `floor` (benchmarks/overhead/floor_server.py, a bare aiohttp forwarder), `stack-floor` (the same
forwarder on thinkgate's own server stack, uvicorn + Starlette: benchmarks/overhead/stack_floor_server.py),
`never` (thinkgate, policy
never, decision log on), `never-log-off`, `classifier` (`--artifact`). Bodies: as `thinkgate bench overhead`
(`--bodies`, default the IFEval prompts in rotation with a unique suffix each, so no decision is a score-cache
hit). Needs valgrind (callgrind_control comes with it) and wrk.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from ..services import REPO_ROOT, Service, ServiceError, Services
from .bodies import Bodies
from .machine import machine_info
from .probes import MODEL
from .report import RunInfo, fmt
from .runs import (Terminated, add_common_args, bodies_of, close_run, command_line, now, offline_environment,
                   progress_log, sigterm_raises)
from .servers import ProxyVariant, floor_service, mock_service, proxy_service, stack_floor_service
from .wrk import WrkResult, run_wrk, wrk_path

DEFAULT_OUT = REPO_ROOT / "benchmarks" / "reports" / "instructions.md"
DEFAULT_ARTIFACT = "classifiers/artifacts/smollm2-135m-ifeval"
MAIN_THREAD = 1  # valgrind numbers threads from 1, the process's first thread
SETTLE_S = 2.0  # pause between the warm-up and the at-rest window


@dataclass(frozen=True)
class TargetSpec:
    key: str
    label: str
    variant: ProxyVariant | None  # None: a floor (`key` says which)


TARGETS: dict[str, TargetSpec] = {
    "floor": TargetSpec("floor", "floor (bare aiohttp forwarder)", None),
    "stack-floor": TargetSpec("stack-floor", "stack floor (bare forwarder on uvicorn + Starlette)", None),
    "never": TargetSpec("never", "thinkgate never", ProxyVariant("never", "thinkgate never", "never")),
    "never-log-off": TargetSpec("never-log-off", "thinkgate never, log off",
                                ProxyVariant("never-log-off", "thinkgate never, log off", "never",
                                             decision_log=False)),
    "classifier": TargetSpec("classifier", "thinkgate classifier",
                             ProxyVariant("classifier", "thinkgate classifier", "classifier")),
}


# --------------------------------------------------------------------------------------------------
# callgrind's output files

def parse_callgrind(text: str) -> tuple[int | None, int]:
    """(thread, instructions) of one callgrind output file.

    Each part's `totals:` line, or its `summary:` line when it has no totals (never both: they hold the same
    count); the first event is taken unless an `events:` line names Ir elsewhere. Parts are summed (a file of
    appended dumps). thread: the `thread:` header (`--separate-threads=yes`), else None.
    """
    thread: int | None = None
    ir_index = 0
    total = 0
    summary: int | None = None
    totals: int | None = None

    def close_part() -> None:
        nonlocal total, summary, totals
        total += totals if totals is not None else (summary or 0)
        summary = totals = None

    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        if key == "part":
            close_part()
        elif key == "thread":
            thread = int(value.split()[0])
        elif key == "events":
            names = value.split()
            ir_index = names.index("Ir") if "Ir" in names else 0
        elif key in ("summary", "totals"):
            fields = value.split()
            count = int(fields[ir_index]) if len(fields) > ir_index else 0
            if key == "totals":
                totals = count
            else:
                summary = count
    close_part()
    return thread, total


@dataclass
class Counts:
    """Instructions counted in one target's run, per valgrind thread id (1 = the main thread)."""

    per_thread: dict[int, int] = field(default_factory=dict)
    files: int = 0

    @property
    def total(self) -> int:
        return sum(self.per_thread.values())

    @property
    def main_share(self) -> float | None:
        """The main thread's share, when the files were per thread (--separate-threads=yes)."""
        if not self.total or set(self.per_thread) == {0}:
            return None
        return self.per_thread.get(MAIN_THREAD, 0) / self.total


def read_counts(paths: Iterable[Path]) -> Counts:
    """Sum every file's count (the dump and the end-of-run files alike, which count 0 with instrumentation off);
    files without a `thread:` header count under thread 0 ("not separated"), unless empty (with
    --separate-threads=yes valgrind also leaves an empty file under the plain name)."""
    counts = Counts()
    for path in paths:
        thread, n = parse_callgrind(path.read_text(errors="replace"))
        counts.files += 1
        if thread is None and not n:
            continue
        key = 0 if thread is None else thread
        counts.per_thread[key] = counts.per_thread.get(key, 0) + n
    counts.per_thread = dict(sorted(counts.per_thread.items()))
    return counts


# --------------------------------------------------------------------------------------------------
# results

def per_request(instructions: int, requests: int) -> float | None:
    """Instructions per request, in millions."""
    return instructions / requests / 1e6 if requests > 0 else None


def ratio(value: float | None, floor: float | None) -> float | None:
    return value / floor if value is not None and floor else None


def at_rest_share(idle_m_per_s: float | None, seconds: float, instructions: int) -> float | None:
    """The share of `instructions` over `seconds` that the at-rest rate accounts for."""
    if idle_m_per_s is None or instructions <= 0:
        return None
    return idle_m_per_s * 1e6 * seconds / instructions


@dataclass
class TargetResult:
    key: str
    label: str
    description: str
    requests: int = 0  # completed by wrk in the counted run
    errors: int = 0
    duration_s: float = 0.0
    warmup_requests: int = 0
    counts: Counts | None = None
    idle_s: float = 0.0  # the at-rest window (--idle): instrumented, no requests
    idle_counts: Counts | None = None
    error: str = ""

    @property
    def m_per_request(self) -> float | None:
        return per_request(self.counts.total, self.requests) if self.counts else None

    @property
    def idle_m_per_s(self) -> float | None:
        return self.idle_counts.total / self.idle_s / 1e6 if self.idle_counts and self.idle_s > 0 else None

    @property
    def idle_share(self) -> float | None:
        """What the at-rest rate would make of the counted run: an estimate of its per-second (not per-request)
        part, e.g. timers and the decision-log writer's wake-ups."""
        return at_rest_share(self.idle_m_per_s, self.duration_s, self.counts.total if self.counts else 0)


@dataclass
class InstructionsRun(RunInfo):
    targets: list[TargetResult] = field(default_factory=list)

    @property
    def floor(self) -> float | None:
        return next((t.m_per_request for t in self.targets if t.key == "floor"), None)


def summary_rows(run: InstructionsRun) -> list[dict[str, Any]]:
    rows = []
    for t in run.targets:
        share = t.counts.main_share if t.counts else None
        rows.append({"key": t.key, "target": t.label, "requests": t.requests, "errors": t.errors,
                     "instructions": t.counts.total if t.counts else None,
                     "m_instructions_per_request": t.m_per_request,
                     "vs_floor": ratio(t.m_per_request, run.floor),
                     "main_thread_share": share, "idle_m_per_s": t.idle_m_per_s, "idle_share": t.idle_share,
                     "error": t.error})
    return rows


def _pct(share: float | None) -> str:
    return "–" if share is None else f"{100 * share:.1f} %"


def _x(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"


def markdown_table(run: InstructionsRun) -> str:
    lines = ["| target | requests | errors | M instructions | M instructions / request | × floor | main thread "
             "| at rest, M instructions / s | at-rest share |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in summary_rows(run):
        if r["error"]:
            lines.append(f"| {r['target']} | – | – | – | failed: {r['error']} | – | – | – | – |")
            continue
        total = r["instructions"]
        lines.append(f"| {r['target']} | {r['requests']:,} | {r['errors']:,} | "
                     f"{fmt(total / 1e6 if total is not None else None, 0)} | "
                     f"{fmt(r['m_instructions_per_request'], 3)} | {_x(r['vs_floor'])} | "
                     f"{_pct(r['main_thread_share'])} | {fmt(r['idle_m_per_s'], 2)} | {_pct(r['idle_share'])} |")
    return "\n".join(lines)


def text_table(run: InstructionsRun) -> str:
    lines = [f"{'target':<34} {'requests':>8} {'errors':>6} {'M instr/req':>11} {'x floor':>8} {'main thr':>8} "
             f"{'at rest M/s':>11}"]
    for r in summary_rows(run):
        if r["error"]:
            lines.append(f"{r['target']:<34} failed: {r['error'].splitlines()[0]}")
            continue
        lines.append(f"{r['target']:<34} {r['requests']:>8,} {r['errors']:>6,} "
                     f"{fmt(r['m_instructions_per_request'], 3):>11} {_x(r['vs_floor']):>8} "
                     f"{_pct(r['main_thread_share']):>8} {fmt(r['idle_m_per_s'], 2):>11}")
    return "\n".join(lines)


def _threads_line(t: TargetResult) -> str:
    if not t.counts or t.counts.main_share is None:
        return ""
    parts = [f"thread {tid}{' (main)' if tid == MAIN_THREAD else ''} "
             + (f"{fmt(n / 1e6, 1)} M" if n >= 50_000 else f"{n:,}")
             for tid, n in t.counts.per_thread.items() if n]
    return f"- {t.label}: " + ", ".join(parts)


def render_markdown(run: InstructionsRun) -> str:
    s = run.settings
    threads = [line for line in map(_threads_line, run.targets) if line]
    parts = [
        "# Instructions per request under callgrind",
        "",
        f"- command: `{run.command}`",
        f"- date: {run.started} (finished {run.finished})",
        "- **user-space instructions only** (valgrind callgrind's Ir over every thread of the server process): "
        "kernel time (syscalls: socket I/O, epoll, the decision log's fsync), thread switches, GIL hand-offs, "
        "cache misses and stalls are not counted. Repeatable (~0.5 % between runs of the same code and "
        "bodies at a similar request rate), so it complements the CPU-time benchmark (`thinkgate bench overhead`, ±10 % here), it does not "
        "replace it.",
        "",
        "## Results",
        "",
        markdown_table(run),
        "",
        "M instructions / request = the server's instructions in the counted run ÷ the requests wrk completed in "
        "it; × floor = ratio to the floor's; main thread = thread 1's share (the event loop; the rest is the "
        "decision-log writer and any executor threads). At rest = the same server counted for "
        f"{s.get('idle')} s with no request (after the warm-up, before the counted run); at-rest share = that "
        "rate × the counted run's seconds ÷ its instructions, an estimate of the part that is paid per second "
        "(timers, wake-ups), not per request: it is spread over however many requests the run completed. That, "
        "and how much work each wake-up of the event loop or the log writer finds, makes the per-request "
        "figure depend a little on the request rate, i.e. on how much CPU valgrind got: compare runs made "
        "under similar load.",
        "",
        *(["Per thread (M instructions in the counted run):", "", *threads, ""] if threads else []),
        "## What was measured",
        "",
        "- upstream: `benchmarks/mock_upstream_server.py` on 127.0.0.1, running normally (not under valgrind).",
        "- each target alone under `valgrind --tool=callgrind --instr-atstart=no --separate-threads=yes` "
        "(PYTHONHASHSEED=0), one after another; after start-up, "
        f"{s.get('warmup')} s of wrk warm-up (not counted), {s.get('idle')} s at rest (counted apart), then "
        "`callgrind_control -i on`, wrk for "
        f"{s.get('duration')} s ({s.get('threads')} thread(s), {s.get('connections')} connections, non-streaming "
        "POST), `callgrind_control -i off`, `callgrind_control -d`; the `totals:` of every dumped file summed.",
        f"- bodies: {run.bodies}.",
        "- targets:",
        *[f"  - {t.label}: {t.description}" for t in run.targets],
        "",
        "## Machine",
        "",
        "| | |", "|---|---|",
        *[f"| {k} | {v} |" for k, v in run.machine.items()],
        "",
    ]
    if run.notes:
        parts += ["## Notes", "", *[f"- {n}" for n in run.notes], ""]
    return "\n".join(parts)


def jsonable(run: InstructionsRun) -> dict[str, Any]:
    data = dataclasses.asdict(run)
    data["summary"] = summary_rows(run)
    return json.loads(json.dumps(data, default=str))


# --------------------------------------------------------------------------------------------------
# running

TOOLS = ("valgrind", "callgrind_control")


def missing_tools() -> list[str]:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if wrk_path() is None:
        missing.append("wrk")
    return missing


def valgrind_version() -> str:
    try:
        return subprocess.run(["valgrind", "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def under_callgrind(service: Service, out_file: Path) -> Service:
    """The same service, its command run under callgrind with instrumentation off until switched on."""
    argv = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--separate-threads=yes",
            f"--callgrind-out-file={out_file}", *service.argv]
    return dataclasses.replace(service, name=f"{service.name} under callgrind", argv=argv,
                               env={**service.env, "PYTHONHASHSEED": "0"})


def callgrind_control(pid: int, *args: str, timeout_s: float = 120.0) -> None:
    """callgrind_control exits 0 even when it failed; its output says so."""
    try:
        done = subprocess.run(["callgrind_control", *args, str(pid)], capture_output=True, text=True,
                              timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        raise ServiceError(f"callgrind_control {' '.join(args)} {pid}: no answer after {timeout_s:.0f} s") from exc
    out = (done.stdout + done.stderr).strip()
    if done.returncode != 0 or "error" in out.lower():
        raise ServiceError(f"callgrind_control {' '.join(args)} {pid} failed ({done.returncode}): {out}")


_FLOOR_DESCRIPTIONS = {
    "floor": "benchmarks/overhead/floor_server.py, aiohttp server + one pooled aiohttp client, no logic, 1 process",
    "stack-floor": "benchmarks/overhead/stack_floor_server.py, uvicorn + httptools + uvloop + Starlette + one pooled "
                   "aiohttp client, no logic, 1 process",
}


def measure(spec: TargetSpec, service: Service, args: argparse.Namespace, workdir: Path, bodies: Bodies,
            log: Callable[[str], None]) -> TargetResult:
    result = TargetResult(spec.key, spec.label,
                          spec.variant.describe() if spec.variant else _FLOOR_DESCRIPTIONS[spec.key])
    out_dir = workdir / f"callgrind-{spec.key}"
    out_dir.mkdir()
    svc = under_callgrind(service, out_dir / "callgrind.out")
    idle_files: set[Path] = set()  # the at-rest dump's files, left out of the counted run's
    log(f"{spec.label}: starting under callgrind (start-up takes ~20-40 s) ...")
    try:
        svc.start(timeout_s=args.start_timeout)
        assert svc.proc is not None
        pid = svc.proc.pid

        def load(seconds: float, tag: str) -> WrkResult:
            return run_wrk(svc.url, MODEL, duration_s=seconds, connections=args.connections, threads=args.threads,
                           workdir=workdir, bodies=bodies, tag=tag)

        if args.warmup > 0:
            log(f"{spec.label}: warm-up, {args.warmup:g} s of wrk ...")
            result.warmup_requests = load(args.warmup, f"{spec.key}-warm").requests
        if args.idle > 0:
            log(f"{spec.label}: at rest, {args.idle:g} s without requests ...")
            time.sleep(SETTLE_S)  # the warm-up's last requests finish first, so they are not counted at rest
            callgrind_control(pid, "-i", "on")
            t0 = time.monotonic()
            time.sleep(args.idle)
            callgrind_control(pid, "-i", "off")
            result.idle_s = time.monotonic() - t0
            callgrind_control(pid, "-d")
            idle_files = set(out_dir.glob("callgrind.out*"))
            result.idle_counts = read_counts(sorted(idle_files))
        log(f"{spec.label}: counted run, {args.duration:g} s of wrk ...")
        callgrind_control(pid, "-i", "on")
        try:
            counted = load(args.duration, f"{spec.key}-count")
        finally:
            callgrind_control(pid, "-i", "off")
        callgrind_control(pid, "-d")
        result.requests, result.errors, result.duration_s = counted.requests, counted.errors, counted.duration_s
    except ServiceError as exc:
        result.error = str(exc)
        log(f"{spec.label}: failed: {exc}")
        return result
    finally:
        svc.stop(timeout_s=60)  # also on Ctrl-C and SIGTERM; the dump is written by then
    result.counts = read_counts(sorted(set(out_dir.glob("callgrind.out*")) - idle_files))
    if not result.counts.total:
        result.error = f"no instructions counted (callgrind files: {result.counts.files})"
    log(f"{spec.label}: {result.requests:,} requests, {fmt(result.m_per_request, 3)} M instructions/request")
    return result


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.overhead.instructions",
                                description="Instructions per request under callgrind (deterministic, user-space "
                                "only): the floor and thinkgate variants in front of a mock upstream.")
    p.add_argument("--targets", default=",".join(TARGETS),
                   help=f"comma-separated, in this order (default all: {','.join(TARGETS)})")
    p.add_argument("--artifact", default=DEFAULT_ARTIFACT,
                   help=f"decision-model directory for the classifier target (default {DEFAULT_ARTIFACT})")
    p.add_argument("--duration", type=float, default=30.0, help="counted wrk seconds per target (default 30)")
    p.add_argument("--warmup", type=float, default=10.0, help="wrk warm-up seconds per target, not counted "
                   "(default 10)")
    p.add_argument("--idle", type=float, default=5.0, help="seconds counted at rest (no requests) per target, "
                   "reported apart: the per-second part of the count (default 5; 0: skip)")
    p.add_argument("--connections", type=int, default=4, help="wrk connections (default 4)")
    p.add_argument("--threads", type=int, default=1, help="wrk threads (default 1)")
    p.add_argument("--start-timeout", type=float, default=300.0,
                   help="seconds to wait for a server under valgrind to answer (default 300)")
    add_common_args(p, DEFAULT_OUT)
    return p


def main(argv: list[str] | None = None) -> int:
    offline_environment()
    args = _parser().parse_args(argv)
    log = progress_log(args.quiet)
    missing = missing_tools()
    if missing:
        print(f"thinkgate bench instructions: {', '.join(missing)} not found on PATH; install valgrind (it brings "
              "callgrind_control) and wrk, e.g. `apt-get install -y valgrind wrk`", file=sys.stderr)
        return 2
    keys = [k.strip() for k in args.targets.split(",") if k.strip()]
    unknown = [k for k in keys if k not in TARGETS]
    if unknown or not keys:
        print(f"--targets {args.targets!r}: expected some of {','.join(TARGETS)}", file=sys.stderr)
        return 2
    if args.duration <= 0 or args.connections < 1 or args.threads < 1:
        print("--duration, --connections and --threads must be positive", file=sys.stderr)
        return 2
    bodies = bodies_of(args)
    if bodies is None:
        return 2

    run = InstructionsRun(command=command_line("benchmarks.overhead.instructions", argv), started=now())
    run.settings = {k: v for k, v in vars(args).items() if k != "quiet"}
    run.machine = {**machine_info(args.python), "valgrind": valgrind_version()}
    run.bodies = bodies.describe()
    if bodies.note:
        run.notes.append(bodies.note)

    code = 0
    with sigterm_raises(), tempfile.TemporaryDirectory(prefix="thinkgate-instructions-") as tmp, \
            Services() as services:
        workdir = Path(tmp)
        try:
            log("starting the mock upstream (not under valgrind) ...")
            mock = services.start(mock_service(workdir, args.python))
        except ServiceError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        try:
            for key in keys:  # one at a time: never two valgrind runs at once
                spec = TARGETS[key]
                if spec.variant is None:
                    service = (stack_floor_service(mock.url, workdir, args.python) if key == "stack-floor" else
                               floor_service(mock.url, workdir, args.python))
                else:
                    variant = (dataclasses.replace(spec.variant, artifact=args.artifact)
                               if spec.variant.policy == "classifier" else spec.variant)
                    spec = dataclasses.replace(spec, variant=variant)
                    service = proxy_service(variant, mock.url, workdir, args.python, REPO_ROOT, {})
                result = measure(spec, service, args, workdir, bodies, log)
                run.targets.append(result)
                if result.error:
                    code = 1
                elif result.errors:
                    run.notes.append(f"{result.label}: {result.errors} of the counted requests failed (wrk errors "
                                     "or non-2xx answers): their work is in the count but not in the divisor")
        except (KeyboardInterrupt, Terminated):
            log("interrupted: stopping the servers")
            return 130

    close_run(run, args, text_table, render_markdown, jsonable)
    return code


if __name__ == "__main__":
    sys.exit(main())
