"""Deciders (policies): score a request, then threshold the score into think / direct.

Splitting the score from the decision (as RouteLLM does) lets a threshold be calibrated from data and
lets every response report the score next to the decision.
"""

from __future__ import annotations

import sys
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
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
    # Deciders that wait on I/O run on the event loop under a deadline.
    io_bound: ClassVar[bool] = False
    # CPU deciders run in the decider's own thread under the same deadline, so that no decision can stall the
    # event loop, except on texts up to this many characters, where the decider promises its work is too small
    # to be worth a thread hop (0: always in the thread; never/always/random: always inline).
    inline_max_chars: ClassVar[int] = 0

    def __init__(self, options: dict[str, Any] | None = None, **deps: Any) -> None:
        self.options = cast(OptionsT, validate_options(self.Options, options, f"policy '{self.name}'"))
        self._executor: ThreadPoolExecutor | None = None

    def executor(self) -> ThreadPoolExecutor:
        """The thread CPU decisions run in (one per decider, created on first use; a decision past its
        deadline keeps it busy until it ends, and decisions queued behind it are dropped when they time out)."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"decider-{self.name}")
        return self._executor

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
        """Release anything the decider holds (subclasses call this too)."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


INLINE_ALWAYS = sys.maxsize  # `inline_max_chars` of a decider whose work does not depend on the text
