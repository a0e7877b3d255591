"""Replay every arm over the same rows and summarise: accuracy (the table's benchmark: IFEval or ComplexBench),
think-rate, calls, tokens, dollars, paired bootstrap intervals, the accuracy–cost curve over classifier
thresholds, and the goal check."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from benchmarks.ab.results import IFEVAL, Comparison, Measure, paired_bootstrap
from training.scoring.complexbench import METRIC_DRFR

from .arms import ARMS, Choice, Context, Row

# micro-averaged over requirements (instructions / scoring questions); the other metrics are means over examples
PER_REQUIREMENT = {"inst_level_loose", "inst_level_strict", METRIC_DRFR}
GOAL_HEADROOM_SHARE = 1 / 3  # the goal: a third of the oracle's headroom over the better fixed mode
GOAL_MAX_THINK_RATE = 0.30


@dataclass(frozen=True)
class ArmSummary:
    arm: str
    n: int
    metrics: dict[str, float]  # % (instruction-level ones and DRFR micro-averaged over requirements)
    think_rate: float
    calls: float  # means per request
    prompt_tokens: float
    output_tokens: float
    usd_per_1k: float  # dollars per 1,000 requests

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _measure(rows: Sequence[Row]) -> Measure:
    return rows[0].measure if rows else IFEVAL


def summarise(arm: str, rows: Sequence[Row], choices: Sequence[Choice]) -> ArmSummary:
    weights = np.array([r.instructions for r in rows], dtype=float)
    metrics = {}
    for m in _measure(rows).metrics:
        values = np.array([c.metrics[m] for c in choices])
        metrics[m] = round(100 * float((values * weights).sum() / weights.sum() if m in PER_REQUIREMENT
                                       else values.mean()), 2)
    mean = lambda attr: float(np.mean([getattr(c, attr) for c in choices]))  # noqa: E731
    return ArmSummary(arm, len(rows), metrics, round(mean("think"), 3), round(mean("calls"), 3),
                      round(mean("prompt_tokens"), 1), round(mean("output_tokens"), 1), round(1000 * mean("usd"), 4))


@dataclass(frozen=True)
class CurvePoint:
    threshold: float
    think_rate: float
    accuracy: float  # headline, %
    usd_per_1k: float
    output_tokens: float


def curve(rows: Sequence[Row]) -> list[CurvePoint]:
    """The classifier's policy at every threshold that changes a decision, from never to always thinking."""
    scores = np.array([r.score for r in rows], dtype=float)
    headline, points = _measure(rows).headline, []
    for t in [np.inf, *sorted(set(scores.tolist()), reverse=True)]:
        choices = [ARMS["classifier"].fn(r, Context(threshold=float(t))) for r in rows]
        s = summarise("curve", rows, choices)
        points.append(CurvePoint(float(t), s.think_rate, s.metrics[headline], s.usd_per_1k, s.output_tokens))
    return points


@dataclass
class ReplayResults:
    ids: list[str]
    arms: dict[str, ArmSummary]
    comparisons: list[Comparison] = field(default_factory=list)
    curve: list[CurvePoint] = field(default_factory=list)
    goal: dict[str, Any] | None = None
    measure: Measure = IFEVAL


def goal_check(arms: dict[str, ArmSummary], measure: Measure = IFEVAL) -> dict[str, Any] | None:
    if not {"classifier", "never", "always", "oracle"} <= set(arms):
        return None
    acc = {a: arms[a].metrics[measure.headline] for a in arms}
    best = max(("never", "always"), key=lambda a: acc[a])
    headroom = acc["oracle"] - acc[best]
    needed = GOAL_HEADROOM_SHARE * headroom
    gain = acc["classifier"] - acc[best]
    return {"best_fixed": best, "best_fixed_accuracy": acc[best], "oracle_accuracy": acc["oracle"],
            "classifier_accuracy": acc["classifier"], "gain": round(gain, 2), "needed_gain": round(needed, 2),
            "share_of_headroom": round(gain / headroom, 3) if headroom > 0 else None,
            "gain_ok": headroom > 0 and gain >= needed, "think_rate": arms["classifier"].think_rate,
            "think_rate_ok": arms["classifier"].think_rate <= GOAL_MAX_THINK_RATE}


def build(rows: Sequence[Row], arm_names: Sequence[str], ctx: Context, *, resamples: int = 2000,
          seed: int = 0) -> ReplayResults:
    if not rows:
        raise ValueError("nothing to replay: no example left")
    unknown = [a for a in arm_names if a not in ARMS]
    if unknown:
        raise ValueError(f"unknown replay arm(s) {', '.join(unknown)}; known: {', '.join(ARMS)}")
    choices = {a: [ARMS[a].fn(r, ctx) for r in rows] for a in arm_names}
    arms = {a: summarise(a, rows, c) for a, c in choices.items()}
    measure = _measure(rows)
    totals = np.array([r.instructions for r in rows], dtype=float)
    followed = {a: (np.array([ch.metrics[measure.headline] for ch in c]) * totals, totals)
                for a, c in choices.items()}
    pairs = [(a, ref) for ref in ("never", "always") if ref in arms for a in arms if a != ref
             and not (ref == "always" and a == "never")]
    results = ReplayResults([r.id for r in rows], arms, paired_bootstrap(followed, pairs, resamples=resamples,
                                                                           seed=seed), measure=measure)
    if all(r.score is not None for r in rows):
        results.curve = curve(rows)
    results.goal = goal_check(arms, measure)
    return results
