"""Reading outcome tables (JSONL of `Outcome`), pairing modes per example, and summarising them."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from .records import MODES, Outcome

HEADLINE = "inst_level_loose"


class OutcomeTableError(ValueError):
    pass


def read_outcomes(path: str | Path) -> list[Outcome]:
    """All records of a table; for a repeated (id, mode) the last line wins (a resumed retry)."""
    latest: dict[tuple[str, str], Outcome] = {}
    path = Path(path)
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                outcome = Outcome.from_json(json.loads(line))
            except (ValueError, TypeError) as exc:
                if lineno > 1 and not line.endswith("\n"):
                    continue  # a torn last line from an interrupted run: it will be redone
                raise OutcomeTableError(f"{path}:{lineno}: not an outcome record ({exc})") from None
            latest[(outcome.id, outcome.mode)] = outcome
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
