"""What one generation asks for (`GenerationRequest`, `SamplingParams`) and what it reports (`Delta`, `Finished`,
`Failed`), plus the `Handle` that cancels it. Plain values, no torch: the engine and its callers share them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class SamplingParams:
    """How one request samples. `temperature <= 0` (the default) is greedy."""

    max_tokens: int = 512
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    ignore_eos: bool = False  # benchmarks: always generate max_tokens

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0 or self.top_k == 1


@dataclass(frozen=True)
class GenerationRequest:
    """One generation. `prompt` is the fully rendered prompt text (chat template applied).

    `think_budget` turns on forced thinking: `prompt` must end with the opening tag; the row thinks for up to
    that many tokens, the engine closes the tag, and the row answers with up to `params.max_tokens` tokens.
    `stream=False` delivers only the final event (no per-token deltas).
    """

    prompt: str
    params: SamplingParams = SamplingParams()
    think_budget: int | None = None
    stream: bool = True
    # Token ids whose next-token probabilities the caller wants (a `TokenProbs` event is sent before the first
    # token is chosen): how self-selection reads the model's P(YES) against P(NO) without parsing text.
    score_token_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class Delta:
    """New text for a streaming request: answer text, or reasoning text when `reasoning` is set."""

    text: str
    reasoning: bool = False


@dataclass(frozen=True)
class Finished:
    finish_reason: str  # "stop" | "length"
    content: str
    reasoning: str | None
    prompt_tokens: int
    completion_tokens: int  # reasoning + answer tokens (forced closing-tag tokens are not counted)
    reasoning_tokens: int


@dataclass(frozen=True)
class Failed:
    message: str
    status: int = 500  # 400: the request cannot be served (e.g. prompt too long); 503: engine shutting down


@dataclass(frozen=True)
class TokenProbs:
    """Probabilities of `GenerationRequest.score_token_ids` at the first answer position, in the same order."""

    probs: tuple[float, ...]


Event = Delta | Finished | Failed | TokenProbs
Sink = Callable[[Event], None]


class Handle:
    """A submitted request. `cancel()` is safe from any thread; the row leaves the batch at the next step."""

    __slots__ = ("id", "cancelled")

    def __init__(self, request_id: int) -> None:
        self.id = request_id
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
