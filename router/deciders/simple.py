"""Policies that need nothing but the request: never, always, random."""

from __future__ import annotations

import random

from pydantic import Field

from .base import Decider, DecisionContext, DeciderOptions


class NeverDecider(Decider[DeciderOptions]):
    name = "never"

    async def score(self, ctx: DecisionContext) -> float:
        return 0.0


class AlwaysDecider(Decider[DeciderOptions]):
    name = "always"

    async def score(self, ctx: DecisionContext) -> float:
        return 1.0


class RandomOptions(DeciderOptions):
    p: float = Field(default=0.5, ge=0.0, le=1.0)
    seed: int | None = None


class RandomDecider(Decider[RandomOptions]):
    """Think with probability `p`: for online A/B tests. Score is uniform; think when score < p."""

    name = "random"
    Options = RandomOptions

    def __init__(self, options: dict | None = None, **deps: object) -> None:
        super().__init__(options)
        self._rng = random.Random(self.options.seed)

    @property
    def threshold(self) -> float:
        return 1.0 - self.options.p

    async def score(self, ctx: DecisionContext) -> float:
        # Reported score u is uniform in [0, 1); think when u >= 1 - p, i.e. with probability p.
        return self._rng.random()
