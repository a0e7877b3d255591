"""From paired outcomes to what a decision model learns from.

Per example: `direct` and `think` are its scores in each mode (instruction-level loose by default, a
fraction in [0, 1]); the **gain** is think − direct. The label is 1 ("think") only when the gain is
positive. **Ties** (gain 0, most examples for a small model) are labelled 0: thinking that does not change
the score still costs tokens and latency, so the cheaper mode wins the tie. The decision rule then thinks
when the score reaches a threshold calibrated on training data (see `classifiers.calibration`).

Accuracy is reported like IFEval's instruction-level metric (a micro-average over instructions), so each
example is weighted by its number of instructions: `weighted()` rescales per-example scores so that their
plain mean equals that micro-average, which lets the calibration code (plain means) optimise the right thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from .outcomes import HEADLINE, Pair
from .records import Example


@dataclass(frozen=True)
class TrainingSet:
    ids: tuple[str, ...]
    texts: tuple[str, ...]
    direct: np.ndarray
    think: np.ndarray
    weights: np.ndarray  # instructions per example
    extra_cost: np.ndarray  # what thinking costs beyond direct (`cost_unit`); NaN where unknown
    cost_unit: str = "tokens"  # or "usd", "requests" (see `with_cost`)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def gain(self) -> np.ndarray:
        return self.think - self.direct

    @property
    def labels(self) -> np.ndarray:
        return (self.gain > 0).astype(int)

    @property
    def strata(self) -> np.ndarray:
        """0 = thinking loses, 1 = tie, 2 = thinking wins: splits keep these proportions."""
        return np.sign(self.gain).astype(int) + 1

    def weighted(self, values: np.ndarray) -> np.ndarray:
        return values * self.weights / self.weights.mean()

    def with_cost(self, extra_cost: np.ndarray, unit: str) -> "TrainingSet":
        return TrainingSet(self.ids, self.texts, self.direct, self.think, self.weights,
                           np.asarray(extra_cost, dtype=float), unit)

    def subset(self, idx: Sequence[int] | np.ndarray) -> "TrainingSet":
        idx = np.asarray(idx)
        return TrainingSet(tuple(self.ids[i] for i in idx), tuple(self.texts[i] for i in idx), self.direct[idx],
                           self.think[idx], self.weights[idx], self.extra_cost[idx], self.cost_unit)


def build_training_set(pairs: Sequence[Pair], examples: Mapping[str, Example], metric: str = HEADLINE) -> TrainingSet:
    """Join outcomes to their prompts (the text the proxy's decider sees); pairs without a prompt are an error."""
    missing = [p.id for p in pairs if p.id not in examples]
    if missing:
        raise ValueError(f"{len(missing)} outcome id(s) are not in the dataset (first: {missing[0]}); "
                         "was the table collected on another dataset version?")
    return TrainingSet(
        ids=tuple(p.id for p in pairs),
        texts=tuple(examples[p.id].prompt for p in pairs),
        direct=np.array([p.score("direct", metric) for p in pairs], dtype=float),
        think=np.array([p.score("think", metric) for p in pairs], dtype=float),
        weights=np.array([max(1, len(p.direct.scores.get("per_instruction") or {})) for p in pairs], dtype=float),
        extra_cost=np.array([_extra_tokens(p) for p in pairs], dtype=float),
    )


def _extra_tokens(pair: Pair) -> float:
    """Completion tokens thinking spent beyond direct, NaN when a count is unknown (an imported table)."""
    think, direct = pair.think.completion_tokens, pair.direct.completion_tokens
    return float("nan") if think is None or direct is None else float(think - direct)
