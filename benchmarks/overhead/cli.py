"""`python -m benchmarks.overhead` / `thinkgate bench overhead`: start the servers, measure, report."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import io
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

from ..services import REPO_ROOT, ServiceError, Services
from .bodies import load_bodies
from .decisions import bench_decisions, load_prompts
from .machine import load_average, machine_info, package_version
from .probes import MODEL
from .report import RunResult, fmt, jsonable, render_markdown, text_table, verdicts, write_report
from .floor_server import loop_name
from .served_decisions import read_served_decisions
from .servers import (ProxyVariant, decision_log_path, floor_service, litellm_proxy_available, litellm_service,
                      mock_service, proxy_service, stack_floor_service, variant_from_spec)
from .targets import Target, measure_target
from .runs import DEFAULT_DATA, Terminated, command_line, now, offline_environment, progress_log, sigterm_raises
from .wrk import wrk_path

DEFAULT_OUT = REPO_ROOT / "benchmarks" / "reports" / "overhead.md"


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




def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.overhead",
                                description="Proxy overhead and decision latency: how much does thinkgate add "
                                "in front of a fast upstream?")
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
    p.add_argument("--workers", default="1", help="worker counts for each thinkgate variant, e.g. 1,2 (default 1)")
    p.add_argument("--no-log-variant", dest="log_variant", action="store_false",
                   help="skip the extra 'never, decision log off' proxy")
    p.add_argument("--artifact", help="decision-model directory: adds the classifier policy")
    p.add_argument("--data", default=str(DEFAULT_DATA),
                   help="IFEval input_data.jsonl: the load's bodies (--bodies ifeval) and decision latency")
    p.add_argument("--bodies", choices=("fixed", "ifeval"),
                   help="what the load sends: 'ifeval' cycles through the IFEval prompts with a unique suffix per "
                   "request (no score-cache hits); 'fixed' one body every time (default: ifeval when --data "
                   "exists, else fixed)")
    p.add_argument("--decision-samples", type=int, default=5000, help="decisions timed per policy")
    p.add_argument("--no-litellm", dest="litellm", action="store_false", help="skip LiteLLM's proxy")
    p.add_argument("--litellm-python", help="interpreter that has litellm[proxy] (default: --python)")
    p.add_argument("--litellm-requests", type=int, default=500,
                   help="sequential (and at most as many streamed) requests for LiteLLM's proxy, which takes "
                   "~10-40 ms a request here (default 500)")
    p.add_argument("--no-floor", dest="floor", action="store_false",
                   help="skip the floor (bare aiohttp forwarder); the verdicts need it")
    p.add_argument("--stack-floor", action="store_true",
                   help="also measure the stack floor: the bare forwarder on uvicorn + Starlette, thinkgate's own "
                   "server stack (one worker), to split what the stack costs from what thinkgate's logic costs")
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
                   "(repeatable); e.g. --compare 'aiohttp=/tmp/patched,PYTHONPATH=/tmp/extras'. The lower-case "
                   "key policy=P measures policy P instead (classifier: with --artifact), e.g. --compare "
                   "'before=/tmp/old,policy=classifier'")
    p.add_argument("--quiet", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    offline_environment()
    args = _parser().parse_args(argv)
    if args.stream_requests is None:
        args.stream_requests = min(args.requests, 500)
    if args.wrk and wrk_path() is None:
        args.wrk = False
        wrk_note = "wrk is not installed: throughput columns skipped."
    else:
        wrk_note = ""
    log = progress_log(args.quiet)
    extra_env = dict(kv.split("=", 1) for kv in args.proxy_env)

    run = RunResult(command=command_line("benchmarks.overhead", argv), started=now())
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
        try:
            variants.append(variant_from_spec(spec, args.artifact, key=f"compare-{spec.partition('=')[0]}"))
        except ValueError as exc:
            print(f"--compare {exc}", file=sys.stderr)
            return 2
    if args.artifact and "classifier" not in args.policies:
        variants.append(ProxyVariant("classifier-log", f"thinkgate classifier{args.label_suffix}", "classifier",
                                     artifact=args.artifact))

    try:
        worker_counts = sorted({int(w) for w in args.workers.split(",") if w.strip()})
    except ValueError:
        worker_counts = []
    if not worker_counts or worker_counts[0] < 1:
        print(f"--workers {args.workers!r}: expected worker counts such as 1,2", file=sys.stderr)
        return 2
    variants = [dataclasses.replace(v, key=f"{v.key}-w{n}" if n > 1 else v.key,
                                    label=f"{v.label}, {n} workers" if n > 1 else v.label, workers=n)
                for v in variants for n in worker_counts if n == 1 or not v.key.startswith("compare-")]

    run.settings["worker_counts"] = worker_counts
    data = Path(args.data)
    if not data.is_absolute():
        data = (REPO_ROOT / data).resolve()
    try:
        bodies = load_bodies(args.bodies, data)
    except (OSError, ValueError) as exc:
        print(f"--bodies: {exc}", file=sys.stderr)
        return 2
    run.bodies = bodies.describe()
    if bodies.note:
        run.notes.append(bodies.note)

    litellm_python = args.litellm_python or args.python
    if args.litellm:
        available, run.litellm = litellm_proxy_available(litellm_python)
    else:
        available, run.litellm = False, "skipped (--no-litellm)"

    code = 0
    with sigterm_raises(), tempfile.TemporaryDirectory(prefix="thinkgate-overhead-") as tmp, Services() as services:
        workdir = Path(tmp)
        try:
            log("starting the mock upstream ...")
            mock = services.start(mock_service(workdir, args.python))
            mock_pid = mock.proc.pid if mock.proc else None
            run.targets.append(Target("direct", "direct to mock", "no proxy: the client talks to the mock",
                                      mock.url, kind="direct", pid=mock_pid))
            for n in worker_counts if args.floor else []:
                log(f"starting the floor (bare aiohttp forwarder, {n} worker(s)) ...")
                key, label = ("floor", "floor (bare forwarder)") if n == 1 else (
                    f"floor-w{n}", f"floor (bare forwarder), {n} workers")
                try:
                    svc = services.start(floor_service(mock.url, workdir, args.python, n))
                except ServiceError as exc:
                    run.notes.append(f"{label}: could not start: {exc}")
                    log(f"  could not start: {exc}")
                    code = 1
                    continue
                run.targets.append(Target(key, label, f"aiohttp server + one pooled aiohttp client, {loop_name()}, "
                                          f"{n} process(es), no logic (benchmarks/overhead/floor_server.py)",
                                          svc.url, kind="floor", workers=n, pid=svc.proc.pid if svc.proc else None))
            if args.stack_floor:
                log("starting the stack floor (bare forwarder on uvicorn + Starlette) ...")
                try:
                    svc = services.start(stack_floor_service(mock.url, workdir, args.python))
                    run.targets.append(Target("stack-floor", "stack floor (uvicorn + Starlette forwarder)",
                                              "the floor's job on thinkgate's server stack: uvicorn + httptools + "
                                              "uvloop + Starlette, no logic (benchmarks/overhead/"
                                              "stack_floor_server.py)", svc.url, kind="stack-floor",
                                              pid=svc.proc.pid if svc.proc else None))
                except ServiceError as exc:
                    run.notes.append(f"stack floor: could not start: {exc}")
                    log(f"  could not start: {exc}")
                    code = 1
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
                run.targets.append(Target(v.key, v.label, v.describe(), svc.url, kind="thinkgate",
                                          workers=v.workers, policy=v.policy,
                                          pid=svc.proc.pid if svc.proc else None))
            failed = []
            for n in worker_counts if available else []:
                log(f"starting LiteLLM's proxy ({n} worker(s)) ...")
                key, label = ("litellm", "LiteLLM proxy (reference)") if n == 1 else (
                    f"litellm-w{n}", f"LiteLLM proxy (reference), {n} workers")
                try:
                    svc = services.start(litellm_service(mock.url, workdir, litellm_python, n), timeout_s=180)
                    run.targets.append(Target(key, label, f"litellm {package_version('litellm')}, --num_workers {n}"
                                              + (" --run_gunicorn" if n > 1 else " (uvicorn)")
                                              + f", openai/{MODEL}, no master key", svc.url, kind="litellm", workers=n,
                                              pid=svc.proc.pid if svc.proc else None))
                except ServiceError as exc:
                    failed.append(f"{n} worker(s): {exc}")
            if failed:
                run.litellm = "installed, but failed to start: " + "; ".join(failed)
            elif available:
                counts = ", ".join(map(str, worker_counts))
                run.litellm = f"installed ({litellm_python}), measured at --num_workers {counts}"
            for i in range(args.rounds):
                log(f"round {i + 1}/{args.rounds}")
                order = run.targets if i % 2 == 0 else [run.targets[0], *reversed(run.targets[1:])]
                for target in order:
                    measure_target(target, args, workdir, log, bodies=bodies, mock_pid=mock_pid)
                    if target.rounds[-1].stream and not target.rounds[-1].stream.sample_ok:
                        run.notes.append(f"{target.label}: a streamed reply lacked content or [DONE]")
            services.stop_all()  # each server flushes its decision log as it stops
            run.served = [read_served_decisions(t.label, t.policy or "", decision_log_path(workdir, t.key))
                          for t in run.targets if t.kind == "thinkgate" and decision_log_path(workdir, t.key).is_file()]
        except (KeyboardInterrupt, Terminated):
            log("interrupted: stopping the servers")
            return 130
        except ServiceError as exc:
            log(f"error: {exc}")
            run.notes.append(f"error: {exc}")
            code = 1

    # decision latency in-process (after the servers are gone, so it has the CPU to itself)
    if data.is_file():
        prompts = load_prompts(data)
        policies: list[tuple[str, dict[str, Any]]] = [("never", {}), ("always", {}), ("random", {"seed": 0})]
        if args.artifact:
            policies.append(("classifier", {"artifact": args.artifact}))
        log(f"decision latency over {len(prompts)} IFEval prompts ...")
        run.decisions = bench_decisions(prompts, policies, samples=args.decision_samples)
        run.decisions_note = (f"`router.deciders.decide_with_fallback` awaited in one event loop, timed around the "
                              f"call (perf_counter_ns), over the `prompt` field of {len(prompts)} prompts from "
                              f"`{data}`, cycled to ≥ {args.decision_samples} samples after 50 warm-up calls, "
                              "each text with a unique suffix \" (request dR.I)\" so the classifier's score cache "
                              "never answers. self-select is not timed: it asks the upstream, so it costs a model call."
                              + ("" if args.artifact else " classifier: no --artifact given."))
    else:
        run.decisions_note = f"skipped: IFEval data not found at {data}"
        log(run.decisions_note)

    if args.local:
        run.local = run_local_throughput(log, shlex.split(args.local_args))

    run.finished = now()
    run.machine["load average at end"] = load_average()
    print(text_table(run))
    print()
    print("\n".join(verdicts(run)))
    if run.decisions:
        print()
        for d in run.decisions:
            print(f"decision {d.policy:<10} p50 {fmt(d.p50_us, 2)} µs  p99 {fmt(d.p99_us, 2)} µs"
                  + (f"  ({d.error})" if d.error else ""))
    if args.report:
        write_report(Path(args.out), render_markdown(run), jsonable(run))
    return code
