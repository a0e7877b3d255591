"""The replay report: markdown (the live A/B's table style), results JSON and the accuracy–cost curve PNG."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from benchmarks.ab.report import _md_table

from .arms import ARMS
from .results import GOAL_HEADROOM_SHARE, GOAL_MAX_THINK_RATE, ReplayResults

COLOURS = {"classifier": "#d62728", "oracle": "#7f7f7f", "never": "#1f77b4", "always": "#ff7f0e",
           "random": "#9467bd"}


def arm_rows(results: ReplayResults) -> tuple[list[str], list[list[str]]]:
    metrics = results.measure.metrics
    header = ["arm", *(results.measure.labels[m] for m in metrics), "think-rate", "calls", "in tok", "out tok",
              "USD / 1k req"]
    rows = [[a.arm, *(f"{a.metrics[m]:.2f}" for m in metrics), f"{a.think_rate:.3f}", f"{a.calls:.2f}",
             f"{a.prompt_tokens:.0f}", f"{a.output_tokens:.0f}", f"{a.usd_per_1k:.3f}"]
            for a in results.arms.values()]
    return header, rows


def goal_lines(results: ReplayResults) -> list[str]:
    g = results.goal
    if g is None:
        return ["The goal check needs the classifier, never, always and oracle arms."]
    met = lambda ok: "**met**" if ok else "**not met**"  # noqa: E731
    share = "n/a" if g["share_of_headroom"] is None else f"{100 * g['share_of_headroom']:.0f}%"
    return [f"- gain over the better fixed mode (`{g['best_fixed']}`, {g['best_fixed_accuracy']:.2f}): "
            f"{g['gain']:+.2f} points = {share} of the oracle's headroom ({g['oracle_accuracy']:.2f}); goal ≥ "
            f"{100 * GOAL_HEADROOM_SHARE:.0f}% (≥ {g['needed_gain']:+.2f}): {met(g['gain_ok'])}",
            f"- requests sent to the thinking mode / reasoning model: {100 * g['think_rate']:.1f}%; goal ≤ "
            f"{100 * GOAL_MAX_THINK_RATE:.0f}%: {met(g['think_rate_ok'])}"]


def curve_plot(results: ReplayResults, path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    headline = results.measure.headline
    money = any(a.usd_per_1k > 0 for a in results.arms.values())
    x_of = (lambda p: p.usd_per_1k) if money else (lambda p: p.output_tokens)  # noqa: E731
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    if results.curve:
        ax.plot([x_of(p) for p in results.curve], [p.accuracy for p in results.curve], color="#d62728", alpha=0.6,
                marker=".", markersize=3, label="classifier, every threshold")
    for arm in results.arms.values():
        ax.scatter([x_of(arm)], [arm.metrics[headline]], s=80 if arm.arm != "oracle" else 140, zorder=3,
                   color=COLOURS.get(arm.arm, "#2ca02c"), marker="*" if arm.arm == "oracle" else "o",
                   label=f"{arm.arm} ({arm.metrics[headline]:.1f}, think {arm.think_rate:.2f})")
    ax.set_xlabel("USD per 1,000 requests" if money else "mean output tokens per request")
    ax.set_ylabel(f"{results.measure.headline_name} accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def markdown(results: ReplayResults, title: str, context: Sequence[str]) -> str:
    m = results.measure
    comparisons = [[f"{c.arm} − {c.reference}", f"{c.diff:+.2f}", f"[{c.low:+.2f}, {c.high:+.2f}]",
                    "yes" if c.low > 0 or c.high < 0 else "no"] for c in results.comparisons]
    return "\n".join([
        f"# {title}", "", *context, "", "## Arms (replayed on recorded answers; no model called)", "",
        f"Accuracy in % ({m.benchmark}; {m.headline_name} first); means per request.", "",
        *_md_table(*arm_rows(results)), "", *[f"- `{a}`: {ARMS[a].description}" for a in results.arms], "",
        f"## Accuracy differences ({m.headline_name}, paired bootstrap 95% CI over examples)", "",
        *_md_table(["difference", "points", "95% CI", "excludes 0"], comparisons), "",
        "## Goal (classifier arm)", "", *goal_lines(results), "",
        "## Accuracy against cost over the classifier's thresholds", "", "![accuracy-cost curve](curve.png)", "",
        "One point per threshold that changes a decision on these examples, from never thinking (left) to "
        "always thinking; the fixed modes and the oracle are marked.", ""])


def write_report(results: ReplayResults, out: Path, *, title: str, context: Sequence[str],
                 settings: dict) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    plot = curve_plot(results, out / "curve.png", title)
    (out / "report.md").write_text(markdown(results, title, context), encoding="utf-8")
    payload = {"settings": settings, "ids": results.ids, "arms": {a: s.to_json() for a, s in results.arms.items()},
               "comparisons": [c.__dict__ for c in results.comparisons], "goal": results.goal,
               "curve": [p.__dict__ for p in results.curve]}
    (out / "results.json").write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    return [out / "report.md", out / "results.json", plot]
