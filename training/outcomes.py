"""Reading outcome tables (JSONL of `Outcome`), pairing modes per example, and summarising them."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from .jobs import read_table
from .records import MODES, Outcome

HEADLINE = "inst_level_loose"
# The metric a decision is trained on, per benchmark (the example id's prefix); every other dataset is
# scored with IFEval's checkers. Both are per-example fractions of satisfied requirements.
HEADLINES = {"ifeval": HEADLINE, "complexbench": "complexbench_drfr"}


def headline_metric(example_id: str) -> str:
    """`inst_level_loose` for IFEval (and prompts scored like it), `complexbench_drfr` for ComplexBench."""
    return HEADLINES.get(example_id.split(":", 1)[0], HEADLINE)


def requirement_count(scores: dict[str, object]) -> int:
    """How many requirements an example's score averages over: IFEval instructions or ComplexBench questions."""
    per = scores.get("per_instruction") or scores.get("per_question") or {}
    return max(1, len(per)) if isinstance(per, dict) else 1


def read_outcomes(path: str | Path) -> list[Outcome]:
    """All records of a table; for a repeated (id, mode) the last line wins (a resumed retry)."""
    latest = {(o.id, o.mode): o for o in read_table(path, Outcome.from_json, "an outcome record")}
    return list(latest.values())


def table_hash(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


@dataclass(frozen=True)
class Pair:
    """One example's outcome in both modes."""

    id: str
    direct: Outcome
    think: Outcome

    def of(self, mode: str) -> Outcome:
        return self.direct if mode == "direct" else self.think

    def score(self, mode: str, metric: str | None = None) -> float:
        """The score in `mode` on `metric` (default: the example's benchmark headline, `headline_metric`)."""
        return float(self.of(mode).scores[metric or headline_metric(self.id)])

    def gain(self, metric: str | None = None) -> float:
        """Score with thinking minus score without: > 0 thinking helps, < 0 it hurts, 0 a tie."""
        return self.score("think", metric) - self.score("direct", metric)


def pair_outcomes(outcomes: Iterable[Outcome]) -> list[Pair]:
    """Examples that have a scored, error-free outcome in both modes, in first-seen order."""
    by_id: dict[str, dict[str, Outcome]] = defaultdict(dict)
    for o in outcomes:
        if o.error is None and o.scores:
            by_id[o.id][o.mode] = o
    return [Pair(i, m["direct"], m["think"]) for i, m in by_id.items() if set(MODES) <= set(m)]
