"""What each mode of an example cost: tokens (recorded, or estimated and labelled so) and US dollars.

Token counts come from the outcome table when it has them. Imported answers often do not: then prompt and
answer tokens are **estimated from characters** (`CHARS_PER_TOKEN`, OpenAI's rule of thumb for English),
and a reasoning model's hidden reasoning tokens, which no answer file shows, are an explicit assumption
(`reasoning_tokens`, default 0, so a cost is a lower bound) rather than a guess made here. Every `Spend`
says whether it is estimated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from router.pricing import PriceTable

from .outcomes import Pair
from .records import Mode, Outcome

CHARS_PER_TOKEN = 4.0


@dataclass(frozen=True)
class Spend:
    """One call: prompt and output tokens (output includes reasoning) and its price in USD."""

    prompt_tokens: float
    output_tokens: float
    usd: float
    estimated: bool


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN) if text else 0


@dataclass(frozen=True)
class CostModel:
    prices: PriceTable
    reasoning_tokens: int = 0  # assumed hidden reasoning tokens per think-mode answer whose count is unknown

    def spend(self, outcome: Outcome, prompt: str) -> Spend:
        estimated = outcome.prompt_tokens is None or outcome.completion_tokens is None
        prompt_tokens = outcome.prompt_tokens if outcome.prompt_tokens is not None else estimate_tokens(prompt)
        if outcome.completion_tokens is not None:
            output = outcome.completion_tokens
        else:
            output = estimate_tokens(outcome.answer) + (self.reasoning_tokens if outcome.mode == "think" else 0)
        usd = self.prices.price(outcome.model).cost(prompt_tokens, output)
        return Spend(float(prompt_tokens), float(output), usd, estimated)

    def describe(self, estimated: bool) -> str:
        if not estimated:
            return "tokens as recorded in the table"
        reasoning = (f"plus an assumed {self.reasoning_tokens} hidden reasoning tokens per think answer"
                     if self.reasoning_tokens else "hidden reasoning tokens not counted (unknown), so think costs "
                                                    "are lower bounds")
        return (f"tokens ESTIMATED from characters ({CHARS_PER_TOKEN:g} characters per token) for answers whose "
                f"source has no counts; {reasoning}")


def mode_spends(pairs: Sequence[Pair], prompts: Sequence[str], costs: CostModel) -> dict[Mode, list[Spend]]:
    """Per mode, the spend of each pair's answer (pairs and prompts aligned)."""
    return {mode: [costs.spend(p.of(mode), prompt) for p, prompt in zip(pairs, prompts, strict=True)]
            for mode in ("direct", "think")}
