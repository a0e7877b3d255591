"""Choose the decision threshold for a score, separately from the model that produces the score (RouteLLM style).

Inputs are arrays over the same examples:

* `scores`: the decision model's score per example (higher = more likely that thinking helps);
* `direct`, `think`: the example's quality in each mode (e.g. IFEval instruction-level loose accuracy), so the
  gain of thinking is `think - direct`;
* `extra_cost`: what thinking costs beyond answering directly on that example, in any one unit: tokens, or US
  dollars (for a model pair: the reasoning model's price minus the direct model's; see `training.costs`).

The policy is "think when score >= threshold". Its downstream accuracy is `mean(where(score >= t, think,
direct))`. Three ways to pick t:

* `max_accuracy`: maximise that accuracy; ties go to the highest threshold (think less, same accuracy).
* `think_rate`: the threshold whose think-rate on these scores is closest to a target.
* `cost`: maximise `accuracy - cost_penalty * mean(extra cost spent)` (a price per token or per dollar).
* `budget`: maximise accuracy while the mean extra cost per request stays within `budget`.

Candidate thresholds lie halfway between adjacent distinct scores (plus "think always" just at the lowest score
and "never think", +inf), so the chosen boundary keeps a margin on both sides. Pure numpy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "Threshold",
    "METHODS",
    "calibrate",
    "maximize_accuracy",
    "match_think_rate",
    "cost_aware",
    "within_budget",
    "evaluate",
]

METHODS = ("max_accuracy", "think_rate", "cost", "budget")


@dataclass(frozen=True)
class Threshold:
    """A calibrated decision threshold: think when `score >= value`.

    `method` says how it was chosen, `params` holds the method's inputs and training-set facts (think rate,
    accuracy, ...), `train_metric` is the method's objective on the calibration data. `value` may be +inf
    ("never think")."""

    value: float
    method: str
    params: Mapping[str, Any] = field(default_factory=dict, hash=False)
    train_metric: float = field(default=float("nan"), compare=False)  # NaN for "default": keep == usable

    def decide(self, score: float) -> bool:
        return score >= self.value

    def __float__(self) -> float:
        return self.value

    def to_json(self) -> dict[str, Any]:
        """JSON-safe dict: infinities and NaN become strings ("inf", "-inf", "nan")."""
        d = asdict(self)
        d["params"] = dict(self.params)
        d["value"] = _enc(self.value)
        d["train_metric"] = _enc(self.train_metric)
        return d

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Threshold":
        return cls(
            value=_dec(data["value"]),
            method=str(data["method"]),
            params=dict(data.get("params") or {}),
            train_metric=_dec(data.get("train_metric", "nan")),
        )


def _enc(x: float) -> float | str:
    return x if math.isfinite(x) else str(x)


def _dec(x: Any) -> float:
    return float(x)  # float("inf") / float("nan") parse the encoded strings


def _arrays(scores: Any, *others: Any) -> list[np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).ravel()
    if s.size == 0:
        raise ValueError("need at least one example to calibrate a threshold")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores must be finite")
    out = [s]
    for o in others:
        a = np.asarray(o, dtype=np.float64).ravel()
        if a.shape != s.shape:
            raise ValueError(f"expected {s.size} values per array, got {a.size}")
        out.append(a)
    return out


def _sweep(scores: np.ndarray, gain: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each candidate threshold (descending, from +inf), the summed gain and the count of examples with
    score >= threshold. Returns (thresholds, gain_sum, n_think)."""
    order = np.argsort(-scores, kind="stable")
    s, g = scores[order], gain[order]
    # cut points: after each run of equal scores
    last_of_run = np.flatnonzero(np.r_[s[1:] != s[:-1], True])
    cum = np.cumsum(g)
    gain_sum = np.r_[0.0, cum[last_of_run]]
    n_think = np.r_[0, last_of_run + 1]
    # threshold for "think for everything above this run": midpoint to the next lower distinct score,
    # or the score itself for the lowest run (think always)
    run_scores = s[last_of_run]
    lower = np.r_[run_scores[1:], np.nan]
    with np.errstate(invalid="ignore"):
        mids = (run_scores + lower) / 2.0
        # the lowest run (no lower neighbour), or neighbours so close their midpoint rounds onto the lower one
        mids = np.where(np.isnan(lower) | ~(mids > lower), run_scores, mids)
    thresholds = np.r_[np.inf, mids]
    return thresholds, gain_sum, n_think


def _pick_max(objective: np.ndarray) -> int:
    """Index of the best objective; ties go to the earliest candidate (highest threshold = fewest thinks)."""
    best = np.max(objective)
    return int(np.flatnonzero(np.isclose(objective, best, rtol=0.0, atol=1e-12))[0])


def maximize_accuracy(scores: Any, direct: Any, think: Any) -> Threshold:
    """The threshold that maximises mean(where(score >= t, think, direct)) on these examples."""
    s, d, t = _arrays(scores, direct, think)
    thresholds, gain_sum, n_think = _sweep(s, t - d)
    acc = d.mean() + gain_sum / s.size
    i = _pick_max(acc)
    return Threshold(
        float(thresholds[i]), "max_accuracy",
        _facts(s.size, n_think[i], acc[i], d, t),
        float(acc[i]),
    )


def match_think_rate(scores: Any, rate: float, direct: Any = None, think: Any = None) -> Threshold:
    """The threshold whose think-rate on `scores` is closest to `rate` (ties: the lower rate)."""
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must be within [0, 1], got {rate}")
    (s,) = _arrays(scores)
    thresholds, _, n_think = _sweep(s, np.zeros_like(s))
    rates = n_think / s.size
    i = int(np.argmin(np.abs(rates - rate) + 1e-12 * np.arange(rates.size)))
    params: dict[str, Any] = {"target_rate": float(rate), "think_rate": float(rates[i]), "n": int(s.size)}
    if direct is not None and think is not None:
        _, d, t = _arrays(s, direct, think)
        params.update(_facts(s.size, n_think[i], float(np.where(s >= thresholds[i], t, d).mean()), d, t))
    return Threshold(float(thresholds[i]), "think_rate", params, float(rates[i]))


def cost_aware(scores: Any, direct: Any, think: Any, extra_cost: Any, cost_penalty: float) -> Threshold:
    """Maximise accuracy - cost_penalty * mean(extra cost spent by thinking). In tokens, cost_penalty=1e-4 means
    1,000 extra tokens per request must buy at least 0.1 accuracy points; in dollars, cost_penalty=10 means
    each extra cent per request must buy at least 0.1 points."""
    if cost_penalty < 0:
        raise ValueError("cost_penalty must be >= 0")
    s, d, t, tok = _arrays(scores, direct, think, extra_cost)
    _finite_costs(tok)
    thresholds, gain_sum, n_think = _sweep(s, (t - d) - cost_penalty * tok)
    utility = d.mean() + gain_sum / s.size
    i = _pick_max(utility)
    mask = s >= thresholds[i]
    acc = float(np.where(mask, t, d).mean())
    params = _facts(s.size, n_think[i], acc, d, t)
    params.update({"cost_penalty": float(cost_penalty), "mean_extra_cost": float((tok * mask).mean())})
    return Threshold(float(thresholds[i]), "cost", params, float(utility[i]))


def within_budget(scores: Any, direct: Any, think: Any, extra_cost: Any, budget: float) -> Threshold:
    """The most accurate threshold whose mean extra cost per request (over these examples) is <= `budget`.

    The sweep adds examples in score order; a negative extra cost (thinking was cheaper there) counts as a
    saving, as it would on the bill. Never thinking always fits, so a threshold always exists."""
    if not (budget >= 0 and math.isfinite(budget)):
        raise ValueError("budget must be a finite number >= 0")
    s, d, t, tok = _arrays(scores, direct, think, extra_cost)
    _finite_costs(tok)
    thresholds, gain_sum, n_think = _sweep(s, t - d)
    _, cost_sum, _ = _sweep(s, tok)
    acc = d.mean() + gain_sum / s.size
    feasible = cost_sum / s.size <= budget + 1e-12
    i = _pick_max(np.where(feasible, acc, -np.inf))
    params = _facts(s.size, n_think[i], float(acc[i]), d, t)
    params.update({"budget": float(budget), "mean_extra_cost": float(cost_sum[i] / s.size)})
    return Threshold(float(thresholds[i]), "budget", params, float(acc[i]))


def _finite_costs(cost: np.ndarray) -> None:
    if not np.all(np.isfinite(cost)):
        raise ValueError("cost-aware calibration needs the extra cost of every example; some are unknown "
                         "(an imported table without token counts: calibrate in dollars with estimated tokens)")


def _facts(n: int, n_think: int, acc: float, direct: np.ndarray, think: np.ndarray) -> dict[str, Any]:
    return {
        "n": int(n),
        "think_rate": float(n_think / n),
        "accuracy": float(acc),
        "accuracy_never": float(direct.mean()),
        "accuracy_always": float(think.mean()),
        "accuracy_oracle": float(np.maximum(direct, think).mean()),
    }


def calibrate(scores: Any, method: str = "max_accuracy", *, direct: Any = None, think: Any = None,
              rate: float | None = None, extra_cost: Any = None, cost_penalty: float | None = None,
              budget: float | None = None) -> Threshold:
    """Dispatch to one of `METHODS` with the inputs it needs (a missing input is a ValueError)."""
    if method == "max_accuracy":
        _need(method, direct=direct, think=think)
        return maximize_accuracy(scores, direct, think)
    if method == "think_rate":
        _need(method, rate=rate)
        return match_think_rate(scores, float(rate), direct, think)  # type: ignore[arg-type]
    if method == "cost":
        _need(method, direct=direct, think=think, extra_cost=extra_cost, cost_penalty=cost_penalty)
        return cost_aware(scores, direct, think, extra_cost, float(cost_penalty))  # type: ignore[arg-type]
    if method == "budget":
        _need(method, direct=direct, think=think, extra_cost=extra_cost, budget=budget)
        return within_budget(scores, direct, think, extra_cost, float(budget))  # type: ignore[arg-type]
    raise ValueError(f"unknown calibration method {method!r}; choose one of {', '.join(METHODS)}")


def _need(method: str, **inputs: Any) -> None:
    missing = [k for k, v in inputs.items() if v is None]
    if missing:
        raise ValueError(f"method {method!r} needs {', '.join(missing)}")


def evaluate(threshold: Threshold | float, scores: Any, direct: Any, think: Any,
             extra_cost: Any = None) -> dict[str, float]:
    """How the policy does on (held-out) examples: accuracy, think-rate, and the never/always/oracle baselines."""
    value = threshold.value if isinstance(threshold, Threshold) else float(threshold)
    s, d, t = _arrays(scores, direct, think)
    mask = s >= value
    out = _facts(s.size, int(mask.sum()), float(np.where(mask, t, d).mean()), d, t)
    if extra_cost is not None:
        (_, tok) = _arrays(s, extra_cost)
        spent = float((tok * mask).mean()) if np.all(np.isfinite(tok)) else float("nan")
        out["mean_extra_cost"] = spent if math.isfinite(spent) else None  # None: some counts unknown
    return out
