"""Write the A/B report: markdown, a self-contained HTML page (plots inlined), results JSON and PNGs."""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import platform
import re
from pathlib import Path
from typing import Any, Sequence

from .arms import ARMS, ORACLE
from .records import read_records
from .results import GoalCheck, GuardSummary, Results, build_results, goal_check, guard_summary
DESCRIPTIONS = {**{name: arm.description for name, arm in ARMS.items()},
                ORACLE: "best of never/always per prompt (computed, the ceiling)"}


def _delta(value: float, base: float | None) -> str:
    if base is None:
        return f"{value:.2f}"
    d = value - base
    arrow = "↑" if d > 0 else "↓" if d < 0 else "="
    return f"{value:.2f} {arrow}{abs(d):.2f}"


def table_rows(results: Results) -> tuple[list[str], list[list[str]]]:
    """The per-arm table (metrics with their change against `always`, think-rate, latency, tokens)."""
    base, measure = results.arms.get("always"), results.measure
    header = [*(measure.labels[m] for m in measure.metrics), "think-rate", "p50 s", "p95 s", "mean s", "out tok", "reason tok",
              "in tok"]
    rows = []
    for arm in results.arms.values():
        cells = [_delta(arm.metrics[m], None if base is None or arm.arm == "always" else base.metrics[m])
                 for m in measure.metrics]
        cells += [f"{arm.think_rate:.2f}", f"{arm.latency_p50_s:.2f}", f"{arm.latency_p95_s:.2f}",
                  f"{arm.latency_mean_s:.2f}", f"{arm.completion_tokens:.0f}", f"{arm.reasoning_tokens:.0f}",
                  f"{arm.prompt_tokens:.0f}"]
        rows.append([arm.arm, *cells])
    return ["arm", *header], rows


def goal_lines(check: GoalCheck | None, results: Results) -> list[str]:
    if check is None:
        return ["The goal check needs the classifier, never, always and oracle arms."]
    arms, headline = results.arms, results.measure.headline
    clf = arms["classifier"].metrics[headline]
    met = lambda ok: "**met**" if ok else "**not met**"  # noqa: E731
    gap = ("no gap to close (oracle = best fixed)" if check.gap_fraction is None
           else f"closed {100 * check.gap_fraction:.0f}% of the gap to the oracle "
                f"({arms[check.best_fixed].metrics[headline]:.2f} → {arms[ORACLE].metrics[headline]:.2f}; goal ≥ 50%)")
    return [
        f"- accuracy ≥ the better fixed choice (`{check.best_fixed}`): classifier {clf:.2f} vs "
        f"{arms[check.best_fixed].metrics[headline]:.2f} ({check.accuracy_margin:+.2f} points): {met(check.accuracy_ok)}",
        f"- half the gap to the oracle: {gap}: {met(check.gap_ok)}",
        f"- at most half of `always`'s mean output tokens: {arms['classifier'].completion_tokens:.0f} vs "
        f"{arms['always'].completion_tokens:.0f} ({100 * check.token_ratio:.0f}%): {met(check.tokens_ok)}",
    ]


def self_select_lines(results: Results) -> list[str]:
    """Per self-select arm: how often it decided on its own, and how well its score ranks the prompts where
    thinking helped (AUC against `always` beating `never` on the same prompts)."""
    lines = []
    gains = None
    if {"never", "always"} <= set(results.records):
        headline = results.measure.headline
        gains = {d.id: float(t.scores[headline]) - float(d.scores[headline])
                 for d, t in zip(results.records["never"], results.records["always"])}
    for arm in (a for a in results.arms if ARMS.get(a) is not None and ARMS[a].policy == "self-select"):
        records = results.records[arm]
        scored = [r for r in records if r.decision_source != "fallback" and r.score is not None]
        line = (f"- `{arm}`: decided on {len(scored)} of {len(records)} requests without falling back "
                f"({100 * len(scored) / max(1, len(records)):.1f}%); think-rate {results.arms[arm].think_rate:.2f}")
        if gains is not None and scored:
            labels = [gains[r.id] > 0 for r in scored]
            from training.fit import auc as roc_auc

            auc = roc_auc(labels, [r.score for r in scored])
            if auc is not None:
                line += f"; AUC of its score for \"thinking helps\" (always beat never here): {auc:.3f}"
        spent = [r.extra.get("decision_tokens") for r in records if r.extra.get("decision_tokens")]
        if spent:
            line += f"; the question cost {sum(spent) / len(spent):.0f} tokens per request"
        lines.append(line)
    return lines


def replay_rows(results: Results) -> tuple[list[str], list[list[str]]]:
    headline = results.measure.headline
    label = results.measure.labels[headline]
    never = results.arms["never"].metrics[headline] if "never" in results.arms else None
    rows = [[a, f"{r.think_rate:.2f}", _delta(r.metrics[headline], never),
             f"{results.arms[a].metrics[headline]:.2f}", f"{r.completion_tokens:.0f}"]
            for a, r in results.replayed.items()]
    return ["arm", "think-rate", f"{label}, replayed (vs never)", f"{label}, live", "out tok, replayed"], rows


CI_NOTE = ("The intervals cover which prompts were sampled, not run-to-run inference noise (see the replayed "
           "decisions below).")
REPLAY_NOTE = ("The same decisions applied to the `never` and `always` arms' own answers. Batched bfloat16 "
               "inference does not repeat itself exactly (a row's numbers depend on what else is in its batch), "
               "so a live arm that answers directly can still differ from `never`; the replayed accuracy is what "
               "the decisions themselves are worth.")


def guard_lines(summary: GuardSummary | None) -> list[str]:
    """The guard arm: outcomes, calls per request, added latency, and its goal (above the two-mode oracle)."""
    if summary is None:
        return []
    outcomes = ", ".join(f"{k} {v}" for k, v in summary.outcomes.items())
    lines = [f"Outcomes (`x-thinkgate-guard`) over {summary.n} requests: {outcomes}.",
             f"Upstream calls per request: {summary.calls_per_request:.2f}; requests with an extra call: "
             f"{100 * summary.escalation_rate:.0f}%."]
    if summary.added_latency_s is not None:
        lines.append(f"Mean latency added over `never`: {summary.added_latency_s:+.2f} s.")
    if summary.oracle is not None:
        met = "met" if summary.accuracy > summary.oracle else "not met"
        lines.append(f"Goal: above the two-mode oracle ({summary.oracle:.2f}): {met} "
                     f"({summary.accuracy:.2f}, {summary.accuracy - summary.oracle:+.2f}).")
    return lines


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return out


def _comparison_rows(results: Results) -> list[list[str]]:
    return [[f"{c.arm} − {c.reference}", f"{c.diff:+.2f}", f"[{c.low:+.2f}, {c.high:+.2f}]",
             "yes" if c.low > 0 or c.high < 0 else "no"] for c in results.comparisons]


def _type_rows(results: Results) -> tuple[list[str], list[list[str]]]:
    arms = list(results.arms)
    rows = [[t, str(n), *(f"{results.arms[a].per_type.get(t, float('nan')):.0f}" for a in arms)]
            for t, n in results.type_counts.items()]
    return [results.measure.type_name, "n", *arms], rows


def _context(results: Results, ids_note: str, command: str, settings: dict[str, Any]) -> list[str]:
    missing = {a: m for a, m in results.missing.items() if m}
    fallbacks = {a.arm: a.fallbacks for a in results.arms.values() if a.fallbacks and a.arm != ORACLE}
    lines = [
        f"- command: `{command}`",
        f"- examples: {len(results.ids)} — {ids_note}; the list is in `evaluated_ids.txt`.",
        f"- every arm went through the real proxy over HTTP (routes in `proxy.yaml`), non-streaming, greedy, "
        f"max_tokens {settings.get('max_tokens')}, thinking budget {settings.get('think_budget')} tokens, "
        f"{settings.get('concurrency')} requests in flight per arm (arms run one after another).",
        "- latency is measured by the client per request, so it includes queueing behind the other requests "
        "in flight (the same load for every arm); tokens are the proxy's reported usage (all passes of "
        "multi-call strategies); the self-select question is not in them: its tokens are counted apart "
        "(`x-thinkgate-decision-tokens`, in the Self-selection section).",
        f"- machine: {platform.machine()}, {platform.system()}, Python {platform.python_version()}; "
        f"report written {_dt.datetime.now().strftime('%Y-%m-%d %H:%M')}.",
    ]
    if missing:
        lines.append("- examples without a finished record (excluded from every arm so all arms see the same "
                     "examples): " + ", ".join(f"{a} {m}" for a, m in missing.items()))
    if fallbacks:
        lines.append("- decisions that fell back to the route default (the policy failed or timed out): "
                     + ", ".join(f"{a} {n}" for a, n in fallbacks.items()))
    return lines


def markdown(results: Results, check: GoalCheck | None, title: str, context: list[str]) -> str:
    header, rows = table_rows(results)
    guard = guard_lines(guard_summary(results))
    type_header, type_rows = _type_rows(results)
    m = results.measure
    lines = [f"# {title}", "", *context, "", "## Arms", "",
             f"Accuracy in % ({m.benchmark}; {m.headline_name} first); ↑/↓ = change against `always`.", "",
             *_md_table(header, rows), "",
             *[f"- `{a}`: {DESCRIPTIONS.get(a, a)}" for a in results.arms], "",
             "![accuracy against latency and tokens](pareto.png)", "",
             f"## Accuracy differences ({m.headline_name}, paired bootstrap 95% CI over examples)", "",
             CI_NOTE, "",
             *_md_table(["difference", "points", "95% CI", "excludes 0"], _comparison_rows(results)), "",
             *(["## Decisions replayed on the never/always answers", "", REPLAY_NOTE, "",
                *_md_table(*replay_rows(results)), ""] if results.replayed else []),
             *(["## Self-selection", "", *self_select_lines(results), ""] if self_select_lines(results) else []),
             "## Goal (classifier arm)", "", *goal_lines(check, results), "",
             *(["## Guard (verify and escalate, with repair)", "", *[f"- {x}" for x in guard], ""] if guard else []),
             f"## Per {m.type_name} ({m.followed})", "", "![per-type accuracy](per_type.png)", "",
             *_md_table(type_header, type_rows), ""]
    return "\n".join(lines)


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _inline_md(text: str) -> str:
    """The few inline marks the context lines use (`code`, **bold**), escaped."""
    text = html.escape(text.lstrip("- "))
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", text)


def html_page(results: Results, check: GoalCheck | None, title: str, context: list[str], out: Path) -> str:
    header, rows = table_rows(results)
    guard = guard_lines(guard_summary(results))
    type_header, type_rows = _type_rows(results)
    m = results.measure
    items = lambda lines: "<ul>" + "".join(f"<li>{_inline_md(x)}</li>" for x in lines) + "</ul>"  # noqa: E731
    style = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
             "table{border-collapse:collapse;margin:1em 0;font-size:14px}th,td{border:1px solid #ccc;"
             "padding:4px 8px;text-align:right}th:first-child,td:first-child{text-align:left}"
             "thead{background:#f3f3f3}img{max-width:100%}code{background:#f3f3f3;padding:0 3px}")
    return "".join([
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1>", items(context),
        f"<h2>Arms</h2><p>Accuracy in % ({m.benchmark}; {m.headline_name} first); ↑/↓ = change against "
        "<code>always</code>.</p>", _html_table(header, rows),
        items([f"`{a}`: {DESCRIPTIONS.get(a, a)}" for a in results.arms]),
        _img(out / "pareto.png", "accuracy against latency and tokens"),
        f"<h2>Accuracy differences ({m.headline_name}, paired bootstrap 95% CI)</h2>", f"<p>{CI_NOTE}</p>",
        _html_table(["difference", "points", "95% CI", "excludes 0"], _comparison_rows(results)),
        *([f"<h2>Decisions replayed on the never/always answers</h2><p>{_inline_md(REPLAY_NOTE)}</p>",
           _html_table(*replay_rows(results))] if results.replayed else []),
        *(["<h2>Self-selection</h2>", items(self_select_lines(results))] if self_select_lines(results) else []),
        "<h2>Goal (classifier arm)</h2>", items(goal_lines(check, results)),
        *(["<h2>Guard (verify and escalate, with repair)</h2>", items(guard)] if guard else []),
        f"<h2>Per {m.type_name} ({html.escape(m.followed)})</h2>", _img(out / "per_type.png", "per-type accuracy"),
        _html_table(type_header, type_rows), "</body></html>",
    ])


def write_report(out: Path, arms: Sequence[str], examples: Sequence[Any], *, ids_note: str, command: str,
                 settings: dict[str, Any], resamples: int = 2000, title: str | None = None) -> list[Path]:
    from .plots import pareto_plot, per_type_plot

    results = build_results(read_records(out / "records.jsonl"), arms, [ex.id for ex in examples],
                            resamples=resamples)
    check = goal_check(results)
    title = title or f"A/B: thinking policies and strategies ({len(results.ids)} examples)"
    context = _context(results, ids_note, command, settings)
    paths = [pareto_plot(results, out / "pareto.png", title),
             per_type_plot(results, out / "per_type.png",
                           f"{results.measure.followed} by {results.measure.type_name} and arm")]
    (out / "report.md").write_text(markdown(results, check, title, context), encoding="utf-8")
    (out / "report.html").write_text(html_page(results, check, title, context, out), encoding="utf-8")
    payload = {"ids": results.ids, "missing": results.missing, "settings": settings, "command": command,
               "arms": {a: r.to_json() for a, r in results.arms.items()},
               "comparisons": [c.__dict__ for c in results.comparisons],
               "replayed": {a: r.to_json() for a, r in results.replayed.items()},
               "goal": None if check is None else check.__dict__, "benchmark": results.measure.benchmark,
               "guard": None if (g := guard_summary(results)) is None else g.__dict__}
    (out / "results.json").write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return [out / "report.md", out / "report.html", out / "results.json", *paths]
