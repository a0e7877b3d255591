"""The report's PNGs: the accuracy/cost Pareto view and per-instruction-type accuracy by arm."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from .results import ArmResult, Results

HIGHLIGHT = {"classifier": "#d62728", "oracle": "#7f7f7f", "never": "#1f77b4", "always": "#ff7f0e"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def _frontier(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points no other point beats on both cost (lower) and accuracy (higher), by increasing cost."""
    best: list[tuple[float, float]] = []
    for cost, acc in sorted(points, key=lambda p: (p[0], -p[1])):
        if not best or acc > best[-1][1]:
            best.append((cost, acc))
    return best


def pareto_plot(results: Results, path: Path, title: str) -> Path:
    plt = _pyplot()
    arms: list[ArmResult] = list(results.arms.values())
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4), sharey=True)
    for ax, (attr, label) in zip(axes, (("latency_mean_s", "mean latency per request (s)"),
                                        ("completion_tokens", "mean output tokens per request (incl. reasoning)"))):
        points = [(getattr(a, attr), a.metrics[results.measure.headline]) for a in arms]
        front = _frontier(points)
        ax.plot(*zip(*front), color="#bbbbbb", linestyle="--", zorder=1, label="Pareto frontier")
        labels: dict[tuple[float, float], list[str]] = {}
        for arm, (x, y) in zip(arms, points):
            ax.scatter([x], [y], s=60, zorder=2, color=HIGHLIGHT.get(arm.arm, "#2ca02c"),
                       marker="*" if arm.arm == "oracle" else "o")
            labels.setdefault((round(x, 2), round(y, 2)), []).append(arm.arm)
        for (x, y), names in labels.items():  # arms on the same spot share one label
            ax.annotate(", ".join(names), (x, y), textcoords="offset points", xytext=(6, 4), fontsize=9)
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"{results.measure.headline_name} (%)")
    axes[0].legend(loc="best", fontsize=8)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def per_type_plot(results: Results, path: Path, title: str) -> Path:
    import numpy as np

    plt = _pyplot()
    arms = list(results.arms)
    types = list(results.type_counts)
    grid = np.array([[results.arms[a].per_type.get(t, np.nan) for a in arms] for t in types])
    fig, ax = plt.subplots(figsize=(1.1 * len(arms) + 4.5, 0.32 * len(types) + 1.6))
    image = ax.imshow(grid, cmap="viridis", vmin=0, vmax=100, aspect="auto")
    ax.set_xticks(range(len(arms)), arms, rotation=30, ha="right")
    ax.set_yticks(range(len(types)), [f"{t} (n={results.type_counts[t]})" for t in types], fontsize=8)
    for i in range(len(types)):
        for j in range(len(arms)):
            value = grid[i, j]
            if not np.isnan(value):
                ax.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=7,
                        color="white" if value < 55 else "black")
    fig.colorbar(image, ax=ax, label=results.measure.followed, fraction=0.03)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
