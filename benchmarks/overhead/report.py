"""The overhead report: the run's result, tables (markdown and terminal), verdicts against the targets."""

from __future__ import annotations

import contextlib
import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .decisions import DecisionBench
from .served_decisions import ServedDecisions
from .machine import package_version
from .probes import MODEL
from .targets import Target, TargetRound

# Earlier absolute targets (before the floor existed) and reference figures measured earlier on this machine.
TARGET_ADDED_P50_MS = 1.0
TARGET_RPS = 1000.0
REFERENCE = [
    ("direct (issue)", "~9,000 req/s"),
    ("LiteLLM proxy (issue)", "+10.5 ms p50, ~100 req/s"),
    ("RouteLLM (issue)", "+5.5 ms p50, ~290 req/s"),
]


def fmt(value: float | None, digits: int = 2, suffix: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:,.{digits}f}{suffix}"


def _signed(value: float | None, digits: int = 2) -> str:
    if value is None or math.isnan(value):
        return "–"
    return f"{value:+,.{digits}f}"



@dataclass
class RunInfo:
    """What a run of `overhead` or `instructions` records about itself, besides its targets."""

    command: str
    started: str
    finished: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    machine: dict[str, str] = field(default_factory=dict)
    bodies: str = ""
    notes: list[str] = field(default_factory=list)


@dataclass
class RunResult(RunInfo):
    targets: list[Target] = field(default_factory=list)
    litellm: str = ""
    decisions: list[DecisionBench] = field(default_factory=list)
    decisions_note: str = ""
    served: list[ServedDecisions] = field(default_factory=list)  # decision times logged by the run's servers
    local: str | None = None


def _floor_of(run: RunResult, workers: int) -> Target | None:
    return next((t for t in run.targets if t.kind == "floor" and t.workers == workers), None)


def _cpu(t: Target | None, name: str, attr: str = "ms_per_request") -> float | None:
    if t is None:
        return None

    def get(r: TargetRound) -> float | None:
        sample = r.wrk.cpu.get(name) if r.wrk else None
        return getattr(sample, attr) if sample is not None else None
    return t.med(get)


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 or math.isnan(a) or math.isnan(b) else a / b


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def summary_rows(run: RunResult) -> list[dict[str, Any]]:
    """One row per target: medians over rounds, added latency vs direct and vs the floor of the same worker
    count, CPU per request of the server's process tree (and of the mock and wrk) in the c=32 runs."""
    direct = next((t for t in run.targets if t.key == "direct"), None)
    d50 = direct.med(lambda r: r.seq.p50_ms) if direct else None
    d99 = direct.med(lambda r: r.seq.p99_ms) if direct else None
    dttfb = direct.med(lambda r: r.stream.ttfb.p50_ms) if direct else None
    rows = []
    for t in run.targets:
        floor = _floor_of(run, t.workers) if t.kind not in ("direct", "floor") else None
        p50, p99 = t.med(lambda r: r.seq.p50_ms), t.med(lambda r: r.seq.p99_ms)
        ttfb = t.med(lambda r: r.stream.ttfb.p50_ms)
        is_direct = t is direct
        rps, wrk_p50, wrk_p99 = (t.med(lambda r: r.wrk.rps), t.med(lambda r: r.wrk.p50_ms),
                                 t.med(lambda r: r.wrk.p99_ms))
        cpu_ms = _cpu(t, "server")
        floor_p50 = floor.med(lambda r: r.seq.p50_ms) if floor else None
        floor_rps = floor.med(lambda r: r.wrk.rps) if floor else None
        rows.append({
            "key": t.key, "target": t.label, "kind": t.kind, "workers": t.workers, "policy": t.policy,
            "seq_p50": p50, "seq_p99": p99,
            "added_p50": None if is_direct else _diff(p50, d50),
            "added_p99": None if is_direct else _diff(p99, d99),
            "vs_floor_p50": _diff(p50, floor_p50),
            "ttfb_p50": ttfb,
            "added_ttfb": None if is_direct else _diff(ttfb, dttfb),
            "rps": rps, "wrk_p50": wrk_p50, "wrk_p99": wrk_p99,
            "rps_x_floor": _ratio(rps, floor_rps),
            "p99_over_p50": _ratio(wrk_p99, wrk_p50),
            "cpu_ms": cpu_ms, "cpu_x_floor": _ratio(cpu_ms, _cpu(floor, "server")),
            "server_cores": _cpu(t, "server", "cores"),
            "mock_cpu_ms": _cpu(t, "mock"), "mock_cores": _cpu(t, "mock", "cores"),
            "wrk_cpu_ms": _cpu(t, "wrk"), "wrk_cores": _cpu(t, "wrk", "cores"),
            "machine_cores": _cpu(t, "machine", "cores"),
            "seq_cpu_ms": t.med(lambda r: r.seq_cpu.ms_per_request),
            "errors": sum((r.seq.errors if r.seq else 0) + (r.stream.ttfb.errors if r.stream else 0)
                          + (r.wrk.errors if r.wrk else 0) for r in t.rounds),
        })
    return rows


TABLE_COLUMNS = ("target", "seq p50 ms", "seq p99 ms", "added p50 ms", "added p99 ms", "p50 − floor ms",
                 "stream TTFB p50 ms", "added TTFB ms", "c=32 req/s", "req/s ÷ floor", "c=32 p50 ms", "c=32 p99 ms",
                 "p99 ÷ p50", "CPU ms/req", "CPU ÷ floor", "errors")


def _cells(row: dict[str, Any]) -> list[str]:
    return [row["target"], fmt(row["seq_p50"], 3), fmt(row["seq_p99"], 3), _signed(row["added_p50"], 3),
            _signed(row["added_p99"], 3), _signed(row["vs_floor_p50"], 3), fmt(row["ttfb_p50"], 3),
            _signed(row["added_ttfb"], 3), fmt(row["rps"], 0), fmt(row["rps_x_floor"], 2), fmt(row["wrk_p50"], 2),
            fmt(row["wrk_p99"], 2), fmt(row["p99_over_p50"], 1), fmt(row["cpu_ms"], 3), fmt(row["cpu_x_floor"], 2),
            str(row["errors"])]


def markdown_table(run: RunResult) -> str:
    lines = ["| " + " | ".join(TABLE_COLUMNS) + " |", "|" + "---|" * len(TABLE_COLUMNS)]
    lines += ["| " + " | ".join(_cells(row)) + " |" for row in summary_rows(run)]
    return "\n".join(lines)


CPU_COLUMNS = ("target", "server CPU ms/req", "server cores", "mock CPU ms/req", "mock cores", "wrk CPU ms/req",
               "wrk cores", "machine busy cores", "everything else, cores", "server CPU ms/req, sequential")


def _others(row: dict[str, Any]) -> float | None:
    """Cores the machine was busy with beyond server, mock and wrk (other jobs, this script, the kernel)."""
    parts = [row["machine_cores"], row["server_cores"], row["wrk_cores"],
             row["mock_cores"] if row["kind"] != "direct" else 0.0]
    if any(p is None for p in parts):
        return None
    machine, *ours = parts
    return float(machine) - sum(float(p) for p in ours)


def cpu_table(run: RunResult) -> str:
    lines = ["| " + " | ".join(CPU_COLUMNS) + " |", "|" + "---|" * len(CPU_COLUMNS)]
    for row in summary_rows(run):
        mock_ms = "(= server)" if row["kind"] == "direct" else fmt(row["mock_cpu_ms"], 3)
        mock_cores = "(= server)" if row["kind"] == "direct" else fmt(row["mock_cores"], 2)
        lines.append(f"| {row['target']} | {fmt(row['cpu_ms'], 3)} | {fmt(row['server_cores'], 2)} | {mock_ms} | "
                     f"{mock_cores} | {fmt(row['wrk_cpu_ms'], 3)} | {fmt(row['wrk_cores'], 2)} | "
                     f"{fmt(row['machine_cores'], 2)} | {fmt(_others(row), 2)} | {fmt(row['seq_cpu_ms'], 3)} |")
    return "\n".join(lines)


def text_table(run: RunResult) -> str:
    head = (f"{'target':<44} {'p50':>7} {'p99':>7} {'+p50':>7} {'-floor':>7} {'TTFB':>7} {'+TTFB':>7} "
            f"{'req/s':>7} {'/floor':>6} {'c32p50':>7} {'c32p99':>7} {'99/50':>5} {'CPUms':>6} {'/floor':>6} "
            f"{'err':>4}")
    lines = [head, "-" * len(head)]
    for r in summary_rows(run):
        lines.append(f"{r['target'][:44]:<44} {fmt(r['seq_p50'], 3):>7} {fmt(r['seq_p99'], 3):>7} "
                     f"{_signed(r['added_p50'], 3):>7} {_signed(r['vs_floor_p50'], 3):>7} {fmt(r['ttfb_p50'], 3):>7} "
                     f"{_signed(r['added_ttfb'], 3):>7} {fmt(r['rps'], 0):>7} {fmt(r['rps_x_floor'], 2):>6} "
                     f"{fmt(r['wrk_p50'], 2):>7} {fmt(r['wrk_p99'], 2):>7} {fmt(r['p99_over_p50'], 1):>5} "
                     f"{fmt(r['cpu_ms'], 3):>6} {fmt(r['cpu_x_floor'], 2):>6} {r['errors']:>4}")
    lines.append("(latencies in ms; seq = sequential httpx keep-alive; -floor = seq p50 minus the floor's at the same "
                 "worker count; c32 = wrk at concurrency 32; CPUms = the server's process-tree CPU per request in the "
                 "wrk run; medians over rounds)")
    return "\n".join(lines)


def decisions_table(run: RunResult) -> str:
    if not run.decisions:
        return run.decisions_note or "not measured"
    lines = ["| policy | samples | p50 µs | p99 µs | mean µs | think rate | fallbacks | note |",
             "|---|---|---|---|---|---|---|---|"]
    for d in run.decisions:
        lines.append(f"| {d.policy} | {d.n} | {fmt(d.p50_us, 2)} | {fmt(d.p99_us, 2)} | {fmt(d.mean_us, 2)} | "
                     f"{fmt(d.think_rate * 100 if d.n else None, 1, '%')} | {d.fallbacks} | {d.error or ''} |")
    return "\n".join(lines)


SERVED_NOTE = ("Each thinkgate server with a decision log (SQLite) records `decision_ms` for every request: the "
               "wall time of the policy's decision as the server measured it, while it was also parsing, calling "
               "the mock and answering other connections. Read back after the servers stopped; all rounds, "
               "sequential, streamed and wrk requests; records decided by the policy only.")


def served_table(run: RunResult) -> str:
    lines = ["| server | policy | decisions | p50 µs | p99 µs | mean µs | note |", "|---|---|---|---|---|---|---|"]
    for d in run.served:
        lines.append(f"| {d.label} | {d.policy} | {d.n} | {fmt(d.p50_ms * 1000, 1)} | {fmt(d.p99_ms * 1000, 1)} | "
                     f"{fmt(d.mean_ms * 1000, 1)} | {d.error or ''} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# verdicts: the criteria against the floor measured in the same run

ADDED_VS_FLOOR_MS = 0.1  # added p50 at most this much above the floor's
CPU_X_FLOOR = {"never": 2.0, "classifier": 2.5}  # CPU per request at most this many times the floor's
CLASSIFIER_RPS_X_FLOOR = 0.6  # classifier's c=32 req/s at least this fraction of the floor's
P99_OVER_P50 = 4.0  # c=32 p99 at most this many times its p50
CRITERIA_POLICIES = ("never", "classifier")


@dataclass
class Criterion:
    """One check of one target: `ok` is None when a number is missing."""

    target: str
    workers: int
    check: str  # p50 | cpu | rps | tail
    name: str
    value: str
    limit: str
    ok: bool | None

    def line(self) -> str:
        mark = {True: "PASS", False: "MISS", None: "n/a "}[self.ok]
        return f"- {mark} **{self.target}**: {self.name} {self.value} (criterion {self.limit})"


def _check(row: dict[str, Any], check: str, name: str, value: float | None, limit: float, *, at_most: bool,
           value_fmt: str, limit_fmt: str) -> Criterion:
    ok = None if value is None or math.isnan(value) else (value <= limit if at_most else value >= limit)
    shown = "–" if value is None else value_fmt.format(value)
    return Criterion(row["target"], row["workers"], check, name, shown, limit_fmt.format(limit), ok)


def criteria(run: RunResult, workers: int = 1) -> list[Criterion]:
    """The issue's criteria for thinkgate's never and classifier targets at `workers`, against the floor of the
    same worker count in the same run."""
    out = []
    for row in summary_rows(run):
        if row["kind"] != "thinkgate" or row["workers"] != workers or row["policy"] not in CRITERIA_POLICIES:
            continue
        policy = row["policy"]
        out.append(_check(row, "p50", "added p50 − floor's added p50", row["vs_floor_p50"], ADDED_VS_FLOOR_MS,
                          at_most=True, value_fmt="{:+.3f} ms", limit_fmt="≤ {:g} ms"))
        c = _check(row, "cpu", "CPU/request ÷ floor's", row["cpu_x_floor"], CPU_X_FLOOR[policy], at_most=True,
                   value_fmt="{:.2f}×", limit_fmt="≤ {:g}×")
        if row["cpu_ms"] is not None:
            c.value += f" ({row['cpu_ms']:.3f} ms/req)"
        out.append(c)
        if policy == "classifier":
            c = _check(row, "rps", "c=32 req/s ÷ floor's", row["rps_x_floor"], CLASSIFIER_RPS_X_FLOOR, at_most=False,
                       value_fmt="{:.0%}", limit_fmt="≥ {:.0%}")
            if row["rps"] is not None:
                c.value += f" ({row['rps']:,.0f} req/s)"
            out.append(c)
        c = _check(row, "tail", "c=32 p99 ÷ p50", row["p99_over_p50"], P99_OVER_P50, at_most=True,
                   value_fmt="{:.1f}×", limit_fmt="≤ {:g}×")
        if row["wrk_p50"] is not None and row["wrk_p99"] is not None:
            c.value += f" ({row['wrk_p99']:.2f} / {row['wrk_p50']:.2f} ms)"
        out.append(c)
    return out


def _base_key(key: str) -> str:
    head, sep, tail = key.rpartition("-w")
    return head if sep and tail.isdigit() else key


def scaling(run: RunResult) -> list[dict[str, Any]]:
    """req/s at every worker count against one worker, per target (floor, thinkgate variants, LiteLLM)."""
    rows = summary_rows(run)
    by_base: dict[str, dict[int, dict[str, Any]]] = {}
    for row in rows:
        if row["kind"] != "direct":
            by_base.setdefault(_base_key(row["key"]), {})[row["workers"]] = row
    out = []
    for base, per in by_base.items():
        one = per.get(1)
        for n, row in sorted(per.items()):
            if n == 1 or one is None:
                continue
            out.append({"target": one["target"], "workers": n, "rps_1": one["rps"], "rps_n": row["rps"],
                        "ratio": _ratio(row["rps"], one["rps"]), "cores_1": one["server_cores"],
                        "cores_n": row["server_cores"]})
    return out


def _limit_statement(run: RunResult) -> str:
    rows = [r for r in summary_rows(run) if r["kind"] != "direct" and r["server_cores"] is not None]
    cores = os.cpu_count() or 1
    text = (f"Machine limit: {cores} cores, shared by wrk ({run.settings.get('threads')} threads), the mock upstream "
            "and the server (and any other job on the machine), so N workers cannot get N cores: ")
    if not rows:
        return text + "no CPU figures were recorded."
    busiest = max(rows, key=lambda r: (r["server_cores"] or 0) + (r["mock_cores"] or 0) + (r["wrk_cores"] or 0))
    total = (busiest["server_cores"] or 0) + (busiest["mock_cores"] or 0) + (busiest["wrk_cores"] or 0)
    others = _others(busiest)
    return text + (f"in the busiest c=32 run ({busiest['target']}) the server used {fmt(busiest['server_cores'], 2)} "
                   f"cores, the mock {fmt(busiest['mock_cores'], 2)}, wrk {fmt(busiest['wrk_cores'], 2)}: "
                   f"{total:.2f} of {cores}, with {fmt(others, 2)} cores busy with everything else (other jobs, "
                   f"the kernel; machine busy {fmt(busiest['machine_cores'], 2)}). A worker count whose server "
                   "cores do not grow with it is limited by the machine, not by the server.")


def verdicts(run: RunResult) -> list[str]:
    if not any(t.kind == "floor" for t in run.targets):
        return ["- no floor measured (--no-floor or it failed to start): the criteria are computed against it"]
    worker_counts = sorted({t.workers for t in run.targets if t.kind == "thinkgate"}) or [1]
    out = ["One worker, against the floor (the issue's criteria):", ""]
    out += [c.line() for c in criteria(run, 1)] or ["- no thinkgate never/classifier target with one worker"]
    for n in (w for w in worker_counts if w > 1):
        out += ["", f"{n} workers, against the {n}-worker floor (the same criteria; the issue sets them for one "
                "worker only, so these are for information):", ""]
        out += [c.line() for c in criteria(run, n)]
    scale = scaling(run)
    if scale:
        out += ["", "More workers against one worker, same run (c=32 req/s):", ""]
        for s in scale:
            out.append(f"- **{s['target']}**: {s['workers']} workers {fmt(s['rps_n'], 0)} req/s vs 1 worker "
                       f"{fmt(s['rps_1'], 0)} req/s = {fmt(s['ratio'], 2)}× (server cores used: "
                       f"{fmt(s['cores_1'], 2)} → {fmt(s['cores_n'], 2)})")
        out += ["", _limit_statement(run)]
    return out


def earlier_targets(run: RunResult) -> list[str]:
    out = []
    for row in summary_rows(run):
        if row["kind"] != "thinkgate":
            continue
        added, rps = row["added_p50"], row["rps"]
        a = ("–" if added is None else
             f"{added:+.3f} ms → {'meets' if added <= TARGET_ADDED_P50_MS else 'MISSES'} ≤ {TARGET_ADDED_P50_MS:g} ms")
        b = ("–" if rps is None else
             f"{rps:,.0f} req/s → {'meets' if rps >= TARGET_RPS else 'MISSES'} ≥ {TARGET_RPS:,.0f} req/s")
        out.append(f"- {row['target']}: added p50 vs direct {a}; c=32 {b}")
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
        f"{MODEL} ...`), with `--workers N` for N > 1 (uvicorn's supervisor + N worker processes on one socket), "
        "log level warning; uvicorn picks its event loop and HTTP parser automatically (see uvloop/httptools "
        "above: 'not installed' means asyncio + h11). Worker counts measured: "
        f"{', '.join(map(str, s.get('worker_counts', [1])))}.",
        "- **the floor**: `benchmarks/overhead/floor_server.py`, a bare forwarder with no logic at all (aiohttp "
        "server passing the request bytes and content-type to one pooled aiohttp client and streaming the answer "
        "back, uvloop, no access log), at every worker count measured (N > 1: N forked processes accepting on one "
        "socket, like uvicorn's workers). It is what any Python HTTP hop costs; the criteria compare against it.",
        f"- bodies (`--bodies`): {run.bodies or 'fixed'}. The same rotation feeds the sequential, streamed and "
        "wrk requests.",
        f"- sequential: {s.get('requests')} non-streaming requests after {s.get('warmup')} warm-up, httpx "
        f"{package_version('httpx')} sync client, one keep-alive connection"
        + (f" (LiteLLM's proxy: {min(s.get('requests') or 0, s.get('litellm_requests') or 0)}, and as many "
           "streamed at most)" if any(t.kind == "litellm" for t in run.targets) else "") + ".",
        f"- streaming: {s.get('stream_requests')} sequential streamed requests; TTFB = time from sending to the "
        "first body byte (the proxy sends its headers only after the upstream's first chunk arrived).",
        (f"- throughput: wrk, {s.get('threads')} threads, {s.get('connections')} connections, "
         f"{s.get('duration')} s, non-streaming POST (Lua script), `--latency`." if s.get("wrk") else
         "- throughput: skipped (wrk not installed or --no-wrk)."),
        "- CPU per request: user + system CPU time of the server's whole process tree (supervisor + workers, via "
        "psutil) sampled before and after each wrk run, divided by the requests wrk completed; the same for the "
        "mock (its share of the run) and for wrk itself (this process's reaped-children usage). `cores` = CPU "
        "seconds ÷ wall seconds. The sequential column is the server's CPU over the sequential probe (warm-up "
        "included) per request.",
        "- always on in every proxy variant: Prometheus metrics (in-process counters/histograms), request ids, "
        "decision headers; access log off (thinkgate's default), log level warning, no client API keys.",
        "- targets:",
        *[f"  - {t.label}: {t.description}" for t in run.targets],
        f"- LiteLLM proxy: {run.litellm}.",
        "",
        "## Results",
        "",
        markdown_table(run),
        "",
        "added = median proxy − median direct (sequential; targets interleaved in each round); p50 − floor = "
        "sequential p50 minus the floor's at the same worker count (= added p50 − the floor's added p50); "
        "÷ floor = ratio to the floor at the same worker count; CPU ms/req = the server process tree's CPU per "
        "request in the c=32 run. A negative added p99 means the tail is noise (other jobs on the machine), not a "
        "speed-up; errors = failed requests of all kinds.",
        "",
        "### CPU during the c=32 runs",
        "",
        cpu_table(run),
        "",
        "### Verdicts: the issue's criteria against the floor in this run",
        "",
        *verdicts(run),
        "",
        "### Earlier absolute targets (added p50 vs direct ≤ 1 ms, c=32 ≥ 1,000 req/s)",
        "",
        *earlier_targets(run),
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
        *(["## Decision time inside the servers (from their decision logs)", "", SERVED_NOTE, "",
           served_table(run), ""] if run.served else []),
    ]
    if len(run.targets) and any(len(t.rounds) > 1 for t in run.targets):
        parts += ["## Per-round numbers", ""]
        for t in run.targets:
            for i, r in enumerate(t.rounds, 1):
                cpu = r.wrk.cpu.get("server") if r.wrk else None
                w = (f"{r.wrk.rps:,.0f} req/s p50 {r.wrk.p50_ms:.2f} / p99 {r.wrk.p99_ms:.2f} ms, server CPU "
                     f"{fmt(cpu.ms_per_request if cpu else None, 3)} ms/req" if r.wrk else (r.wrk_error or "–"))
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


def jsonable(run: RunResult) -> dict[str, Any]:
    data = asdict(run)
    data["summary"] = summary_rows(run)
    return json.loads(json.dumps(data, default=str).replace("NaN", "null"))


def write_report(out: Path, markdown: str, data: dict[str, Any]) -> None:
    """The markdown report, and the raw numbers as JSON next to it (same name, .json)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(markdown, encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps(data, indent=1), encoding="utf-8")
    print(f"\nreport: {out}")
