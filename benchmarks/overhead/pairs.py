"""Two thinkgate builds A/B, one server at a time, in alternating pairs: which one needs less CPU per request?

    python -m benchmarks.overhead.pairs before=/tmp/old,policy=classifier after=.,policy=classifier \\
        --artifact classifiers/artifacts/smollm2-135m-ifeval --pairs 5 --duration 10
    thinkgate bench pairs ...

Why not `thinkgate bench overhead --compare`: that one keeps every target's server up for the whole run and
interleaves 5-8 targets per round, so a change of ~10 % in CPU per request drowns in its round-to-round noise
(±15 % on this shared 2-core machine). Here only the two builds are measured, each pair back to back, and the order
alternates between pairs (A B, B A, A B, ...), so a slow minute of the machine lands on both sides. Only the
server being measured runs (plus the mock upstream and wrk): each measurement starts its server, warms it up with
`--warmup` s of wrk, then measures `--duration` s of wrk at `--connections`, and stops it.

Per measurement: req/s and latency from wrk, the server's CPU per request (user + system of its process tree,
from /proc, around the measured run). The report gives every pair, the medians, B / A of the medians, and in how
many pairs B was better: a change is believable when B wins (nearly) every pair, not when the medians differ by
less than the pairs scatter. Medians and wins cover the complete pairs only; a measurement that failed (a server
that did not start, wrk that failed) or whose requests errored is listed with its cause and does not count, and the
run then exits 1.

The bodies are the overhead benchmark's (`--bodies ifeval`: the IFEval prompts in rotation, each with a unique
suffix, so a classifier's score cache never answers). Needs wrk.
"""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..services import REPO_ROOT, ServiceError, Services
from ..stats import median_of
from .bodies import Bodies
from .machine import compiled_parts_in, git_rev, machine_info
from .probes import MODEL
from .report import RunInfo, fmt
from .runs import (Terminated, add_common_args, bodies_of, close_run, command_line, now, offline_environment,
                   progress_log, sigterm_raises)
from .servers import ProxyVariant, mock_service, proxy_service, variant_from_spec
from .wrk import run_wrk, wrk_path

DEFAULT_OUT = REPO_ROOT / "benchmarks" / "reports" / "pairs.md"
DEFAULT_ARTIFACT = REPO_ROOT / "classifiers" / "artifacts" / "smollm2-135m-ifeval"
SIDES = ("A", "B")


@dataclass
class Measurement:
    """One server, one measured wrk run."""

    side: str  # "A" or "B"
    pair: int
    rps: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    cpu_ms_per_request: float | None = None
    requests: int = 0
    errors: int = 0
    error: str = ""


@dataclass
class PairsRun(RunInfo):
    sides: dict[str, str] = field(default_factory=dict)  # side -> the variant's description
    labels: dict[str, str] = field(default_factory=dict)
    measurements: list[Measurement] = field(default_factory=list)


def order(pair: int) -> tuple[str, str]:
    """A then B in even pairs, B then A in odd ones."""
    return SIDES if pair % 2 == 0 else (SIDES[1], SIDES[0])


METRICS: dict[str, tuple[str, bool]] = {  # field -> (what it is, higher is better)
    "rps": ("c=N req/s", True),
    "cpu_ms_per_request": ("server CPU ms / request", False),
    "p50_ms": ("c=N p50 ms", False),
    "p99_ms": ("c=N p99 ms", False),
}


def _complete_pairs(run: PairsRun, metric: str) -> list[dict[str, float]]:
    """Per pair where both sides measured `metric`: {"A": value, "B": value}. A pair with a failed side counts for
    neither, so both medians are over the same pairs."""
    by_pair: dict[int, dict[str, float]] = {}
    for m in run.measurements:
        value = getattr(m, metric)
        if not m.error and value is not None:
            by_pair.setdefault(m.pair, {})[m.side] = value
    return [p for p in by_pair.values() if len(p) == 2]


def wins(run: PairsRun, metric: str) -> tuple[int, int]:
    """(pairs where B was better than A on `metric`, pairs where both sides measured it)."""
    higher_better = METRICS[metric][1]
    both = _complete_pairs(run, metric)
    better = sum(1 for p in both if (p["B"] > p["A"] if higher_better else p["B"] < p["A"]))
    return better, len(both)


def summary_rows(run: PairsRun) -> list[dict[str, Any]]:
    rows = []
    for metric, (what, _) in METRICS.items():
        both = _complete_pairs(run, metric)
        a, b = median_of(p["A"] for p in both), median_of(p["B"] for p in both)
        better, of = wins(run, metric)
        rows.append({"metric": metric, "what": what, "A": a, "B": b,
                     "ratio": b / a if a and b is not None else None, "b_better": better, "pairs": of})
    return rows


def _digits(metric: str) -> int:
    return 0 if metric == "rps" else 3


def text_table(run: PairsRun) -> str:
    connections = run.settings.get("connections", "N")
    lines = [f"A = {run.labels.get('A', 'A')}, B = {run.labels.get('B', 'B')}",
             f"{'':<26}{'A (median)':>12}{'B (median)':>12}{'B / A':>8}  B better in"]
    for r in summary_rows(run):
        what = r["what"].replace("c=N", f"c={connections}")
        lines.append(f"{what:<26}{fmt(r['A'], _digits(r['metric'])):>12}{fmt(r['B'], _digits(r['metric'])):>12}"
                     f"{fmt(r['ratio'], 3):>8}  {r['b_better']} of {r['pairs']} pairs")
    return "\n".join(lines)


def render_markdown(run: PairsRun) -> str:
    connections = run.settings.get("connections", "N")
    out = ["# Two builds A/B in alternating pairs", "",
           f"- command: `{run.command}`",
           f"- date: {run.started} (finished {run.finished})",
           f"- A: {run.labels.get('A')}: {run.sides.get('A')}",
           f"- B: {run.labels.get('B')}: {run.sides.get('B')}",
           f"- {run.settings.get('pairs')} pairs, order alternating (A B, B A, ...); per measurement one server up "
           f"(plus the mock upstream and wrk), {run.settings.get('warmup'):g} s wrk warm-up, then "
           f"{run.settings.get('duration'):g} s wrk, {connections} connections, {run.settings.get('threads')} "
           "thread(s); server CPU = user + system of its process tree around the measured run.",
           f"- bodies: {run.bodies}", "",
           "## Summary", "",
           "| | A (median) | B (median) | B / A | B better in |", "|---|---:|---:|---:|---:|"]
    for r in summary_rows(run):
        what = r["what"].replace("c=N", f"c={connections}")
        out.append(f"| {what} | {fmt(r['A'], _digits(r['metric']))} | {fmt(r['B'], _digits(r['metric']))} | "
                   f"{fmt(r['ratio'], 3)} | {r['b_better']} of {r['pairs']} pairs |")
    out += ["", "## Every measurement (in the order run)", "",
            "| pair | side | req/s | p50 ms | p99 ms | server CPU ms / request | requests | errors |",
            "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for m in run.measurements:
        if m.error:
            out.append(f"| {m.pair + 1} | {m.side} | failed: {_md_cell(m.error)} | | | | | |")
            continue
        out.append(f"| {m.pair + 1} | {m.side} | {fmt(m.rps, 0)} | {fmt(m.p50_ms)} | {fmt(m.p99_ms)} | "
                   f"{fmt(m.cpu_ms_per_request, 3)} | {m.requests:,} | {m.errors} |")
    out += ["", "## Machine", "", "| | |", "|---|---|"]
    out += [f"| {k} | {v} |" for k, v in run.machine.items()]
    if run.notes:
        out += ["", "## Notes", ""] + [f"- {n}" for n in run.notes]
    out += ["", "The machine is shared and noisy: trust a difference when B wins (nearly) every pair, not a "
            "difference of medians smaller than the pairs' scatter.", ""]
    return "\n".join(out)


def _md_cell(error: str) -> str:
    """An error in one table cell: its first line and, for a server that died, the last line of its log."""
    lines = [line.strip() for line in error.splitlines() if line.strip()]
    text = lines[0] if len(lines) < 2 else f"{lines[0]} … {lines[-1]}"
    return text.replace("|", "\\|")


def jsonable(run: PairsRun) -> dict[str, Any]:
    data = asdict(run)
    data["summary"] = summary_rows(run)
    return data


def measure(variant: ProxyVariant, side: str, pair: int, args: argparse.Namespace, mock_url: str, workdir: Path,
            bodies: Bodies, services: Services) -> Measurement:
    result = Measurement(side, pair)
    variant = dataclasses.replace(variant, key=f"{variant.key}-{pair}")  # a decision log of its own
    service = proxy_service(variant, mock_url, workdir, args.python, REPO_ROOT, {})
    try:
        services.start(service, timeout_s=args.start_timeout)
        assert service.proc is not None
        tag = f"{side}{pair}"
        if args.warmup > 0:
            run_wrk(service.url, MODEL, duration_s=args.warmup, connections=args.connections, threads=args.threads,
                    workdir=workdir, bodies=bodies, tag=f"{tag}w")
        run = run_wrk(service.url, MODEL, duration_s=args.duration, connections=args.connections,
                      threads=args.threads, workdir=workdir, bodies=bodies, tag=tag,
                      cpu_pids={"server": service.proc.pid})
    except (ServiceError, subprocess.SubprocessError, OSError, ValueError) as exc:
        result.error = f"{type(exc).__name__}: {exc}" if not isinstance(exc, ServiceError) else str(exc)
        return result
    finally:
        service.stop()
    result.rps, result.p50_ms, result.p99_ms = run.rps, run.p50_ms, run.p99_ms
    result.requests, result.errors = run.requests, run.errors
    if run.errors:  # a build that answers errors fast must not win: the measurement does not count
        result.error = f"{run.errors} of {run.requests:,} requests failed (wrk errors or non-2xx answers)"
    server = run.cpu.get("server")
    result.cpu_ms_per_request = server.ms_per_request if server else None
    return result


def side_description(variant: ProxyVariant, python: str) -> str:
    """What one side runs: the variant, its checkout's commit and the compiled parts that checkout loads."""
    checkout = variant.repo or REPO_ROOT
    return f"{variant.describe()}, commit {git_rev(checkout)}; {compiled_parts_in(checkout, python)}"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.overhead.pairs", allow_abbrev=False,
                                description="Two thinkgate builds A/B, one server at a time, in alternating pairs: "
                                "req/s, latency and server CPU per request at concurrency under wrk.")
    p.add_argument("a", metavar="A", help="NAME=DIR[,KEY=VALUE...]: thinkgate from checkout DIR, with extra "
                   "environment KEY=VALUE; policy=P picks the policy (default never), e.g. "
                   "before=/tmp/old,policy=classifier")
    p.add_argument("b", metavar="B", help="the same for B, e.g. after=.,policy=classifier")
    p.add_argument("--artifact", default=str(DEFAULT_ARTIFACT),
                   help="decision model for policy=classifier, the same directory for both sides (relative to the "
                   "current directory; default: the shipped smollm2-135m-ifeval)")
    p.add_argument("--pairs", type=int, default=5, help="alternating pairs (default 5)")
    p.add_argument("--duration", type=int, default=10, help="measured wrk seconds per server (default 10)")
    p.add_argument("--warmup", type=int, default=2, help="wrk warm-up seconds per server, not measured; 0: none "
                   "(default 2)")
    p.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    p.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    p.add_argument("--start-timeout", type=float, default=60.0, help="seconds a server gets to start (default 60)")
    add_common_args(p, DEFAULT_OUT)
    return p


def main(argv: list[str] | None = None) -> int:
    offline_environment()
    args = _parser().parse_args(argv)
    log = progress_log(args.quiet)
    if wrk_path() is None:
        print("thinkgate bench pairs: wrk not found on PATH; install it, e.g. `apt-get install -y wrk`",
              file=sys.stderr)
        return 2
    if not (args.pairs >= 1 and args.duration >= 1 and args.warmup >= 0 and args.connections >= 1
            and args.threads >= 1 and args.start_timeout > 0):
        print("--pairs, --duration, --connections, --threads and --start-timeout must be positive (--warmup at "
              "least 0)", file=sys.stderr)
        return 2
    artifact = Path(args.artifact).resolve()
    variants: dict[str, ProxyVariant] = {}
    for side, spec in zip(SIDES, (args.a, args.b)):
        try:
            variants[side] = variant_from_spec(spec, str(artifact), key=f"pairs-{side}", label_prefix="thinkgate")
        except ValueError as exc:
            print(f"{side}: {exc}", file=sys.stderr)
            return 2
    if any(v.policy == "classifier" for v in variants.values()) and not artifact.is_dir():
        print(f"--artifact {args.artifact}: no such directory (policy=classifier needs a decision model)",
              file=sys.stderr)
        return 2
    bodies = bodies_of(args)
    if bodies is None:
        return 2

    run = PairsRun(command=command_line("benchmarks.overhead.pairs", argv), started=now())
    run.settings = {k: v for k, v in vars(args).items() if k != "quiet"}
    run.machine = machine_info(args.python)
    run.bodies = bodies.describe()
    run.labels = {side: v.label for side, v in variants.items()}
    run.sides = {side: side_description(v, args.python) for side, v in variants.items()}
    if bodies.note:
        run.notes.append(bodies.note)

    with sigterm_raises(), tempfile.TemporaryDirectory(prefix="thinkgate-pairs-") as tmp, Services() as services:
        workdir = Path(tmp)
        try:
            mock = services.start(mock_service(workdir, args.python))
        except ServiceError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        try:
            for pair in range(args.pairs):
                for side in order(pair):
                    m = measure(variants[side], side, pair, args, mock.url, workdir, bodies, services)
                    run.measurements.append(m)
                    log(f"pair {pair + 1}/{args.pairs} {side}: " + (f"failed: {m.error}" if m.error
                        else f"{fmt(m.rps, 0)} req/s, {fmt(m.cpu_ms_per_request, 3)} ms CPU/request"))
        except (KeyboardInterrupt, Terminated):
            log("interrupted: stopping the servers")
            interrupted = True
        else:
            interrupted = False
    if interrupted:  # what was measured is still reported, marked as cut short
        run.notes.append(f"interrupted after {len(run.measurements)} measurement(s): the summary covers the "
                         "complete pairs only")
        close_run(run, args, text_table, render_markdown, jsonable)
        return 130
    close_run(run, args, text_table, render_markdown, jsonable)
    return 1 if any(m.error for m in run.measurements) else 0


if __name__ == "__main__":
    sys.exit(main())
