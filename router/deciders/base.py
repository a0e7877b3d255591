"""Deciders (policies): score a request, then threshold the score into think / direct.

Splitting the score from the decision (as RouteLLM does) lets a threshold be calibrated from data and
lets every response report the score next to the decision.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Literal, TypeVar, cast

from pydantic import BaseModel, ConfigDict

from ..registry import validate_options

Source = Literal["policy", "header", "client", "fallback"]


@dataclass(frozen=True)
class Decision:
    """Think or not, the score behind it, which policy decided and how long it took."""

    think: bool
    policy: str
    score: float | None = None
    ms: float = 0.0
    source: Source = "policy"
    fallback_reason: str | None = None
    method: str | None = None  # how the score was obtained, where a policy has several ways (self-select)
    tokens: int = 0  # tokens spent on the decision itself (self-select's question), not part of the answer

    @property
    def label(self) -> Literal["think", "direct"]:
        return "think" if self.think else "direct"


@dataclass(frozen=True)
class DecisionContext:
    """What a decider may look at: the decision text (system prompts + latest user turn) and the request."""

    text: str
    route: str
    body: dict[str, Any] = field(default_factory=dict)


class DeciderOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    threshold: float = 0.5


OptionsT = TypeVar("OptionsT", bound=DeciderOptions)


class Decider(ABC, Generic[OptionsT]):
    """Subclasses name their options class twice: `Decider[XOptions]` and `Options`."""

    name: ClassVar[str]
    Options: ClassVar[type[DeciderOptions]] = DeciderOptions
    # Deciders that wait on I/O run under a deadline; pure CPU ones skip the task that a deadline costs.
    io_bound: ClassVar[bool] = False

    def __init__(self, options: dict[str, Any] | None = None, **deps: Any) -> None:
        self.options = cast(OptionsT, validate_options(self.Options, options, f"policy '{self.name}'"))

    @property
    def threshold(self) -> float:
        return self.options.threshold

    @abstractmethod
    async def score(self, ctx: DecisionContext) -> float:
        """A number where higher means "thinking is more likely to help"."""

    async def decide(self, ctx: DecisionContext) -> Decision:
        score = await self.score(ctx)
        return Decision(think=score >= self.threshold, policy=self.name, score=score)

    async def aclose(self) -> None:
        """Release anything the decider holds."""
