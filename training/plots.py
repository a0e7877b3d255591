"""Plots of the offline pipeline (matplotlib, imported only when a plot is asked for)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence


def learning_curve_plot(rows: Sequence[dict[str, Any]], path: str | Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [r["train_examples"] for r in rows]
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    policy = [r["policy_accuracy"]["mean"] for r in rows]
    sd = [r["policy_accuracy"]["std"] for r in rows]
    ax.errorbar(x, policy, yerr=sd, marker="o", color="#d62728", capsize=3, label="decision model (± sd)")
    for key, colour, label in (("never_accuracy", "#1f77b4", "never"), ("always_accuracy", "#ff7f0e", "always"),
                               ("oracle_accuracy", "#7f7f7f", "oracle")):
        ax.plot(x, [r[key]["mean"] for r in rows], linestyle="--", color=colour, label=label)
    ax.set_xlabel("training examples (part of each training half)")
    ax.set_ylabel("held-out instruction-level loose accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"learning curve: {title}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
