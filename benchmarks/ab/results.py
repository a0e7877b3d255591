"""From A/B records to per-arm results: accuracy, think-rate, latency, tokens, per type.

Accuracy is IFEval's four metrics (per instruction type) or, for ComplexBench records, DRFR and the
all-passed rate (per category); the `Measure` says which. Every arm is scored on the same examples: those
that have an error-free record in every proxied arm (missing ones are counted and reported, never silently
dropped). The oracle arm picks, per example, the better of `never` and `always` on the headline metric
(ties go to `never`, which costs less).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np

from training.outcome_report import METRICS, instruction_type
from training.outcomes import headline_metric, requirement_count
from training.scoring.complexbench import METRIC_ALL_PASSED, METRIC_DRFR
from training.scoring.complexbench import aggregate as complexbench_aggregate
from training.scoring.ifeval import aggregate

from ..stats import percentile
from .arms import ARMS, ORACLE
from .records import ABRecord, latest_ok


@dataclass(frozen=True)
class Measure:
    """What accuracy means in a report: the metrics (headline first) and how the report names them."""

    benchmark: str
    metrics: tuple[str, ...]
    labels: dict[str, str]
    headline_name: str
    type_name: str  # what `per_type` groups by
    followed: str  # what a per-type cell counts

    @property
    def headline(self) -> str:
        return self.metrics[0]


IFEVAL = Measure("IFEval", tuple(METRICS), {"inst_level_loose": "inst loose", "inst_level_strict": "inst strict",
                                             "prompt_level_loose": "prompt loose",
                                             "prompt_level_strict": "prompt strict"},
                 "instruction-level loose", "instruction type", "instructions followed (loose, %)")
COMPLEXBENCH = Measure("ComplexBench", (METRIC_DRFR, METRIC_ALL_PASSED),
                       {METRIC_DRFR: "DRFR", METRIC_ALL_PASSED: "all passed"}, "DRFR", "category",
                       "scoring questions satisfied (%)")


def measure_of(records: Sequence[ABRecord]) -> Measure:
    return COMPLEXBENCH if any(METRIC_DRFR in r.scores for r in records) else IFEVAL


def _metrics(records: Sequence[ABRecord], measure: Measure) -> dict[str, float]:
    if measure is IFEVAL:
        return {k: round(v, 2) for k, v in aggregate(r.scores for r in records).items() if k != "n"}
    drfr = complexbench_aggregate([r.scores for r in records])["overall_drfr"]  # micro-averaged over questions
    return {METRIC_DRFR: round(100 * drfr, 2),
            METRIC_ALL_PASSED: round(100 * statistics.fmean(r.scores[METRIC_ALL_PASSED] for r in records), 2)}


def requirements(record: ABRecord) -> list[tuple[str, int]]:
    """(type, 0/1) per requirement: IFEval instructions by type, ComplexBench questions by category."""
    if "per_instruction" in record.scores:
        return [(instruction_type(k), int(ok)) for k, ok in record.scores["per_instruction"].items()]
    category = str(record.scores.get("category") or "unknown").split("_")[0]
    return [(category, int(ok)) for ok in record.scores.get("per_question", {}).values()]


@dataclass(frozen=True)
class ArmResult:
    arm: str
    n: int
    metrics: dict[str, float]
    think_rate: float
    latency_p50_s: float
    latency_p95_s: float
    latency_mean_s: float
    prompt_tokens: float  # means per request
    completion_tokens: float
    reasoning_tokens: float
    fallbacks: int
    per_type: dict[str, float]

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Comparison:
    """Paired bootstrap of the headline accuracy difference `arm - reference` (percentage points)."""

    arm: str
    reference: str
    diff: float
    low: float
    high: float


@dataclass
class Results:
    ids: list[str]
    arms: dict[str, ArmResult]
    records: dict[str, list[ABRecord]]
    missing: dict[str, int] = field(default_factory=dict)  # arm -> selected examples without a usable record
    comparisons: list[Comparison] = field(default_factory=list)
    type_counts: dict[str, int] = field(default_factory=dict)
    replayed: dict[str, ArmResult] = field(default_factory=dict)
    measure: Measure = IFEVAL


def arm_result(arm: str, records: Sequence[ABRecord], measure: Measure = IFEVAL) -> ArmResult:
    n = len(records)
    metrics = _metrics(records, measure)
    followed: dict[str, list[int]] = {}
    for r in records:
        for kind, ok in requirements(r):
            followed.setdefault(kind, []).append(ok)
    latencies = [r.latency_s for r in records]
    return ArmResult(
        arm=arm, n=n, metrics=metrics, think_rate=round(sum(r.decision == "think" for r in records) / n, 3),
        latency_p50_s=round(statistics.median(latencies), 2), latency_p95_s=round(percentile(latencies, 95), 2),
        latency_mean_s=round(statistics.fmean(latencies), 2),
        prompt_tokens=round(statistics.fmean(r.prompt_tokens for r in records), 1),
        completion_tokens=round(statistics.fmean(r.completion_tokens for r in records), 1),
        reasoning_tokens=round(statistics.fmean(r.reasoning_tokens for r in records), 1),
        fallbacks=sum(r.decision_source == "fallback" for r in records),
        per_type={t: round(100 * sum(v) / len(v), 1) for t, v in sorted(followed.items())},
    )


def _headline(record: ABRecord) -> float:
    return float(record.scores[headline_metric(record.id)])


def oracle_records(never: Sequence[ABRecord], always: Sequence[ABRecord]) -> list[ABRecord]:
    out = []
    for direct, think in zip(never, always, strict=True):
        best = think if _headline(think) > _headline(direct) else direct
        out.append(replace(best, arm=ORACLE))
    return out


def replayed_records(decided: Sequence[ABRecord], never: Sequence[ABRecord],
                     always: Sequence[ABRecord]) -> list[ABRecord]:
    """An arm's own decisions applied to the `never`/`always` arms' answers.

    Batched bfloat16 inference does not repeat itself exactly (a row's logits depend on its batch), so two
    runs of the same decision can differ; replaying isolates what the policy's decisions are worth.
    """
    return [replace(think if r.decision == "think" else direct, arm=r.arm)
            for r, direct, think in zip(decided, never, always, strict=True)]


def _followed_and_total(records: Sequence[ABRecord]) -> tuple[np.ndarray, np.ndarray]:
    totals = np.array([requirement_count(r.scores) for r in records], dtype=float)
    return np.array([_headline(r) for r in records]) * totals, totals


def bootstrap(records: dict[str, list[ABRecord]], pairs: Sequence[tuple[str, str]], *, resamples: int,
              seed: int = 0) -> list[Comparison]:
    """95% percentile intervals of micro-averaged accuracy differences, resampling examples (paired)."""
    return paired_bootstrap({arm: _followed_and_total(recs) for arm, recs in records.items()}, pairs,
                            resamples=resamples, seed=seed)


def paired_bootstrap(followed: dict[str, tuple[np.ndarray, np.ndarray]], pairs: Sequence[tuple[str, str]], *,
                     resamples: int, seed: int = 0) -> list[Comparison]:
    """Like `bootstrap`, from per-example (instructions followed, instructions) arrays of each arm."""
    if not followed:
        return []
    n = len(next(iter(followed.values()))[0])
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n, size=(resamples, n))
    out = []
    for arm, reference in pairs:
        (fa, ta), (fr, tr) = followed[arm], followed[reference]
        diff = 100 * (fa.sum() / ta.sum() - fr.sum() / tr.sum())
        boot = 100 * (fa[draws].sum(1) / ta[draws].sum(1) - fr[draws].sum(1) / tr[draws].sum(1))
        low, high = np.percentile(boot, [2.5, 97.5])
        out.append(Comparison(arm, reference, round(float(diff), 2), round(float(low), 2), round(float(high), 2)))
    return out


def build_results(all_records: Sequence[ABRecord], arms: Sequence[str], ids: Sequence[str], *,
                  resamples: int = 2000) -> Results:
    ok = latest_ok(list(all_records))
    proxied = [a for a in arms if a != ORACLE]
    present = [a for a in proxied if any((a, i) in ok for i in ids)]
    missing = {a: sum((a, i) not in ok for i in ids) for a in proxied}
    common = [i for i in ids if all((a, i) in ok for a in present)]
    if not present or not common:
        raise ValueError("no example has a finished record in every arm yet; run the arms first")
    records = {a: [ok[(a, i)] for i in common] for a in present}
    if ORACLE in arms and {"never", "always"} <= set(records):
        records[ORACLE] = oracle_records(records["never"], records["always"])
    measure = measure_of(next(iter(records.values())))
    results = Results(ids=common, arms={a: arm_result(a, recs, measure) for a, recs in records.items()},
                      records=records, missing=missing, measure=measure)
    pairs = [(a, ref) for ref in ("always", "never") if ref in records for a in records if a != ref]
    results.comparisons = bootstrap(records, pairs, resamples=resamples)
    counts: dict[str, int] = {}
    for r in next(iter(records.values())):
        for kind, _ in requirements(r):
            counts[kind] = counts.get(kind, 0) + 1
    results.type_counts = dict(sorted(counts.items()))
    if {"never", "always"} <= set(records):
        results.replayed = {a: arm_result(a, replayed_records(records[a], records["never"], records["always"]),
                                          measure)
                            for a in records if ARMS.get(a) is not None and ARMS[a].profile is None
                            and ARMS[a].strategy is None and a not in ("never", "always")}
    return results


@dataclass(frozen=True)
class GuardSummary:
    """What the guard arm did: its outcomes (`x-thinkgate-guard`), upstream calls per request, added latency."""

    n: int
    outcomes: dict[str, int]
    calls_per_request: float
    escalation_rate: float  # share of requests with more than one call
    accuracy: float
    oracle: float | None
    added_latency_s: float | None  # mean latency minus `never`'s


def guard_summary(results: Results) -> GuardSummary | None:
    records = results.records.get("guard")
    if not records:
        return None
    outcomes: dict[str, int] = {}
    calls = []
    for r in records:
        outcome = r.extra.get("x-thinkgate-guard", "none")
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        calls.append(int(r.extra.get("x-thinkgate-guard-attempts", 1)))
    never, oracle = results.arms.get("never"), results.arms.get(ORACLE)
    return GuardSummary(
        n=len(records), outcomes=dict(sorted(outcomes.items())),
        calls_per_request=round(statistics.fmean(calls), 3),
        escalation_rate=round(sum(c > 1 for c in calls) / len(calls), 3),
        accuracy=results.arms["guard"].metrics[results.measure.headline],
        oracle=None if oracle is None else oracle.metrics[results.measure.headline],
        added_latency_s=None if never is None else round(results.arms["guard"].latency_mean_s - never.latency_mean_s, 2),
    )


@dataclass(frozen=True)
class GoalCheck:
    """The issue's goal for the classifier arm, each part with its measured margin."""

    best_fixed: str
    accuracy_ok: bool
    accuracy_margin: float  # classifier - best fixed (points)
    gap_fraction: float | None  # share of (oracle - best fixed) the classifier closed
    gap_ok: bool
    token_ratio: float  # classifier mean completion tokens / always's
    tokens_ok: bool


def goal_check(results: Results) -> GoalCheck | None:
    arms, headline = results.arms, results.measure.headline
    if not {"classifier", "never", "always", ORACLE} <= set(arms):
        return None
    best = max(("never", "always"), key=lambda a: arms[a].metrics[headline])
    clf, best_acc, oracle = (arms["classifier"].metrics[headline], arms[best].metrics[headline],
                             arms[ORACLE].metrics[headline])
    gap = oracle - best_acc
    fraction = (clf - best_acc) / gap if gap > 0 else None
    ratio = arms["classifier"].completion_tokens / max(arms["always"].completion_tokens, 1e-9)
    return GoalCheck(best_fixed=best, accuracy_ok=clf >= best_acc, accuracy_margin=round(clf - best_acc, 2),
                     gap_fraction=None if fraction is None else round(fraction, 3),
                     gap_ok=fraction is not None and fraction >= 0.5, token_ratio=round(ratio, 3),
                     tokens_ok=ratio <= 0.5)
