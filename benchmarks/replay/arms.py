"""Replay arms: each is a function from one outcome-table row (+ the decision context) to a `Choice`.

A `Choice` is what the arm's policy would have returned for that example: which mode answered (a probability,
so a randomised arm is replayed by its exact expectation rather than one draw), how many upstream calls it
made, the tokens and dollars they cost, and the chosen answer's scores. Arms that call several times (a guard
that escalates after a failed check) return the sum of their calls' spend and the scores of the answer kept.
Register new arms with `register_arm`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from benchmarks.ab.results import IFEVAL, Measure
from training.costs import Spend
from training.outcomes import Pair, requirement_count


@dataclass(frozen=True)
class Row:
    """One example: its paired outcomes, what each mode cost, and the decision model's score (if any)."""

    id: str
    prompt: str
    pair: Pair
    spend: dict[str, Spend]
    score: float | None = None
    measure: Measure = IFEVAL

    @property
    def instructions(self) -> int:
        """The example's weight: its IFEval instructions or ComplexBench scoring questions."""
        return requirement_count(self.pair.direct.scores)


@dataclass(frozen=True)
class Context:
    """What the arms may know beyond the row: the classifier's threshold and the think-rate to match."""

    threshold: float | None = None
    rate: float = 0.0


@dataclass(frozen=True)
class Choice:
    think: float  # probability that the reasoning mode's answer was returned
    calls: float
    prompt_tokens: float
    output_tokens: float
    usd: float
    metrics: dict[str, float]  # the measure's metrics of the returned answer, fractions


def answer(row: Row, mode: str) -> Choice:
    """The row's answer in one mode, one call."""
    spend = row.spend[mode]
    scores = row.pair.of(mode).scores
    return Choice(float(mode == "think"), 1.0, spend.prompt_tokens, spend.output_tokens, spend.usd,
                  {m: float(scores[m]) for m in row.measure.metrics})


def mix(direct: Choice, think: Choice, p: float) -> Choice:
    """The expectation of answering with `think` with probability p, else `direct`."""
    blend = lambda a, b: (1 - p) * a + p * b  # noqa: E731
    return Choice(blend(direct.think, think.think), blend(direct.calls, think.calls),
                  blend(direct.prompt_tokens, think.prompt_tokens), blend(direct.output_tokens, think.output_tokens),
                  blend(direct.usd, think.usd), {m: blend(direct.metrics[m], think.metrics[m]) for m in direct.metrics})


ArmFn = Callable[[Row, Context], Choice]


@dataclass(frozen=True)
class ReplayArm:
    fn: ArmFn
    description: str
    needs_scores: bool = False


def _classifier(row: Row, ctx: Context) -> Choice:
    if row.score is None or ctx.threshold is None:
        raise ValueError("the classifier arm needs a decision model's scores and threshold")
    return answer(row, "think" if row.score >= ctx.threshold else "direct")


def _oracle(row: Row, ctx: Context) -> Choice:
    return answer(row, "think" if row.pair.gain() > 0 else "direct")


def _guard(row: Row, ctx: Context) -> Choice:
    """Answer direct; when an acted-on check of that answer fails, pay for the thinking answer too and keep the
    one passing more checks (`benchmarks.guard_replay.guard_pick`, the shipped acted-on kinds)."""
    from benchmarks.guard_replay import guard_pick
    from classifiers.constraints import detect_constraints
    from classifiers.verify import measured_kinds

    pick = guard_pick(detect_constraints(row.prompt), row.pair.direct.answer, row.pair.think.answer, measured_kinds())
    direct = answer(row, "direct")
    if not pick.escalated:
        return direct
    think = answer(row, "think")
    kept = think if pick.kept == "escalated" else direct
    return Choice(kept.think, 2.0, direct.prompt_tokens + think.prompt_tokens,
                  direct.output_tokens + think.output_tokens, direct.usd + think.usd, kept.metrics)


ARMS: dict[str, ReplayArm] = {
    "never": ReplayArm(lambda row, ctx: answer(row, "direct"), "always the direct mode / model"),
    "always": ReplayArm(lambda row, ctx: answer(row, "think"), "always the thinking mode / reasoning model"),
    "random": ReplayArm(lambda row, ctx: mix(answer(row, "direct"), answer(row, "think"), ctx.rate),
                        "thinks at random at the classifier's think-rate (exact expectation, not one draw)"),
    "classifier": ReplayArm(_classifier, "the decision model: thinks when its score reaches the calibrated threshold",
                            needs_scores=True),
    "oracle": ReplayArm(_oracle, "the better of the two answers per prompt (ties: direct); the ceiling"),
    "guard": ReplayArm(_guard, "answer direct; on a failed check of the answer against the prompt's constraints, "
                       "also the thinking answer, keeping the one passing more checks (both calls paid)"),
}


def register_arm(name: str, fn: ArmFn, description: str, *, needs_scores: bool = False) -> None:
    """Add a replayable strategy (e.g. a guard: answer direct, escalate to think when a check fails)."""
    if name in ARMS:
        raise ValueError(f"replay arm {name!r} already exists")
    ARMS[name] = ReplayArm(fn, description, needs_scores)
