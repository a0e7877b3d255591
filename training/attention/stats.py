"""Summaries of per-prompt attention records: drops per group, bootstrap bands, the bump, AUCs (pure numpy).

Bootstrap intervals resample prompts (the unit that varies), 95 % percentile intervals, fixed seed.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

BUMP_WINDOW = 16  # steps on each side of the start of the answer


@dataclass(frozen=True)
class Measured:
    """The measured prompts as arrays (one row per prompt)."""

    ids: list[str]
    groups: np.ndarray  # "WIN" / "LOSE" / "TIE"
    beta_base: np.ndarray  # (prompts, layers)
    beta_cot: np.ndarray
    bump: np.ndarray  # CoT run: mean trace over the first answer steps minus over the last thinking steps
    control_base: np.ndarray  # layer-mean beta over the user message's other tokens (nan: none)
    control_cot: np.ndarray

    @property
    def delta(self) -> np.ndarray:
        """Delta beta(l) = beta_base(l) - beta_CoT(l), per prompt and layer."""
        return self.beta_base - self.beta_cot

    def where(self, group: str) -> np.ndarray:
        return self.groups == group

    @property
    def specific_drop(self) -> np.ndarray:
        """Per prompt: how much the constraint tokens' attention *relative to the other prompt tokens'* falls,
        (beta_C / beta_other)_base - (beta_C / beta_other)_CoT (layer means). 0 = the drop is a uniform shift
        away from the whole prompt; > 0 = the constraints lose more than the rest; nan without other tokens."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return (self.beta_base.mean(axis=1) / self.control_base - self.beta_cot.mean(axis=1) / self.control_cot)


def answer_bump(trace: Sequence[float], answer_start: int, window: int = BUMP_WINDOW) -> float:
    """Mean trace over the first `window` answer steps minus the mean over the last `window` steps before them."""
    t = np.asarray(trace, dtype=float)
    before, after = t[max(0, answer_start - window):answer_start], t[answer_start:answer_start + window]
    if before.size == 0 or after.size == 0:
        return float("nan")
    return float(after.mean() - before.mean())


def measured(records: Sequence[dict[str, Any]]) -> Measured:
    rows = [r for r in records if "skipped" not in r]
    return Measured(
        ids=[r["id"] for r in rows],
        groups=np.array([r["group"] for r in rows], dtype=object),
        beta_base=np.array([r["base"]["beta"] for r in rows], dtype=float).reshape(len(rows), -1),
        beta_cot=np.array([r["cot"]["beta"] for r in rows], dtype=float).reshape(len(rows), -1),
        bump=np.array([answer_bump(r["cot"]["trace"], r["cot"]["answer_start"]) for r in rows], dtype=float),
        control_base=np.array([_layer_mean(r["base"].get("beta_control")) for r in rows], dtype=float),
        control_cot=np.array([_layer_mean(r["cot"].get("beta_control")) for r in rows], dtype=float),
    )


def _layer_mean(values: Sequence[float] | None) -> float:
    return float(np.mean(values)) if values else float("nan")


def bootstrap(values: np.ndarray, stat: Callable[[np.ndarray], Any] = lambda v: v.mean(axis=0), *,
              reps: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """95 % percentile interval of `stat` over prompts (rows of `values`) resampled with replacement."""
    values = np.asarray(values)
    rng = np.random.default_rng(seed)
    n = len(values)
    if n == 0:
        raise ValueError("nothing to resample")
    draws = np.array([stat(values[rng.integers(0, n, n)]) for _ in range(reps)])
    with warnings.catch_warnings():  # a resample with one class gives nan; too few of them leave all-nan
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanpercentile(draws, 2.5, axis=0), np.nanpercentile(draws, 97.5, axis=0)


def auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of `scores` for the boolean `positive` (ties count half); nan if one class."""
    scores, positive = np.asarray(scores, dtype=float), np.asarray(positive, dtype=bool)
    pos, neg = scores[positive], scores[~positive]
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (pos.size * neg.size))


def auc_interval(scores: np.ndarray, positive: np.ndarray, *, reps: int = 2000, seed: int = 0) -> tuple[float, float]:
    if np.isnan(auc(scores, positive)):
        return float("nan"), float("nan")
    both = np.column_stack([np.asarray(scores, dtype=float), np.asarray(positive, dtype=float)])
    lo, hi = bootstrap(both, lambda b: auc(b[:, 0], b[:, 1] > 0.5), reps=reps, seed=seed)
    return float(lo), float(hi)


def rank(values: np.ndarray) -> np.ndarray:
    """Average ranks (ties share their mean rank), for Spearman's correlation."""
    values = np.asarray(values, dtype=float)
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(1, len(values) + 1)
    for v in np.unique(values):
        tied = values == v
        ranks[tied] = ranks[tied].mean()
    return ranks


def correlations(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Pearson and Spearman correlation of two equally long series."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    return {"pearson": float(np.corrcoef(x, y)[0, 1]), "spearman": float(np.corrcoef(rank(x), rank(y))[0, 1])}


def difference_interval(a: np.ndarray, b: np.ndarray, *, reps: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95 % bootstrap interval of mean(a) - mean(b), each sample resampled on its own."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.size == 0 or b.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    draws = [a[rng.integers(0, a.size, a.size)].mean() - b[rng.integers(0, b.size, b.size)].mean()
             for _ in range(reps)]
    return float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))
