"""The overhead report: the run's result, tables (markdown and terminal), verdicts against the targets."""

from __future__ import annotations

import contextlib
import json
import math
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from .decisions import DecisionBench
from .machine import package_version
from .probes import MODEL, PROMPT
from .targets import Target

# The targets and the reference figures measured earlier on this machine.
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


def summary_rows(run: RunResult) -> list[dict[str, Any]]:
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
    for row in summary_rows(run):
        lines.append(
            f"| {row['target']} | {fmt(row['seq_p50'], 3)} | {fmt(row['seq_p99'], 3)} | "
            f"{_signed(row['added_p50'], 3)} | {_signed(row['added_p99'], 3)} | {fmt(row['ttfb_p50'], 3)} | "
            f"{_signed(row['added_ttfb'], 3)} | {fmt(row['rps'], 0)} | {fmt(row['wrk_p50'], 2)} | "
            f"{fmt(row['wrk_p99'], 2)} | {row['errors']} |")
    return "\n".join(lines)


def text_table(run: RunResult) -> str:
    head = (f"{'target':<52} {'p50':>7} {'p99':>7} {'+p50':>7} {'+p99':>7} {'TTFB':>7} {'+TTFB':>7} "
            f"{'req/s':>8} {'c32p50':>7} {'c32p99':>7} {'err':>4}")
    lines = [head, "-" * len(head)]
    for r in summary_rows(run):
        lines.append(f"{r['target'][:52]:<52} {fmt(r['seq_p50'], 3):>7} {fmt(r['seq_p99'], 3):>7} "
                     f"{_signed(r['added_p50'], 3):>7} {_signed(r['added_p99'], 3):>7} {fmt(r['ttfb_p50'], 3):>7} "
                     f"{_signed(r['added_ttfb'], 3):>7} {fmt(r['rps'], 0):>8} {fmt(r['wrk_p50'], 2):>7} "
                     f"{fmt(r['wrk_p99'], 2):>7} {r['errors']:>4}")
    lines.append("(latencies in ms; seq = sequential httpx keep-alive; c32 = wrk at concurrency 32; medians over "
                 "rounds)")
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


def verdicts(run: RunResult) -> list[str]:
    rows = {r["key"]: r for r in summary_rows(run)}
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
        f"{package_version('httpx')} sync client, one keep-alive connection.",
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


def jsonable(run: RunResult) -> dict[str, Any]:
    data = asdict(run)
    data["summary"] = summary_rows(run)
    return json.loads(json.dumps(data, default=str).replace("NaN", "null"))


