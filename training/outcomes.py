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

    def score(self, mode: str, metric: str = HEADLINE) -> float:
        return float(self.of(mode).scores[metric])

    def gain(self, metric: str = HEADLINE) -> float:
        """Score with thinking minus score without: > 0 thinking helps, < 0 it hurts, 0 a tie."""
        return self.score("think", metric) - self.score("direct", metric)


def pair_outcomes(outcomes: Iterable[Outcome]) -> list[Pair]:
    """Examples that have a scored, error-free outcome in both modes, in first-seen order."""
    by_id: dict[str, dict[str, Outcome]] = defaultdict(dict)
    for o in outcomes:
        if o.error is None and o.scores:
            by_id[o.id][o.mode] = o
    return [Pair(i, m["direct"], m["think"]) for i, m in by_id.items() if set(MODES) <= set(m)]
