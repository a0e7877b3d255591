"""Switches: what "think on" and "think off" mean for one upstream family, as one pure `prepare`.

A switch (historically a "reasoning profile") receives the (already decided) `think` flag and a thinking
budget and returns the body to send, plus how to read the reply: where reasoning hides inside `content`
(`SplitRule`) and whether the backend must force a thinking phase (`ForcedThinking`). Switches never call a
backend; calling, splitting and combining calls is the job of `router.strategies`.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Literal, TypeVar, cast

from pydantic import BaseModel, ConfigDict

from ..backends.base import Body
from ..registry import validate_options


class ProfileOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")


OptionsT = TypeVar("OptionsT", bound=ProfileOptions)
ForcedMode = Literal["auto", "native", "prefill", "two-call"]


@dataclass(frozen=True)
class SplitRule:
    """How to find reasoning inside `content`: None on a profile means "do not look for tags"."""

    start_in_think: bool = False


@dataclass(frozen=True)
class ForcedThinking:
    """Open `<think>`, think up to the budget, close the tag, answer: natively, by prefill or in two calls."""

    mode: ForcedMode = "auto"


@dataclass(frozen=True)
class Prepared:
    body: Body
    split: SplitRule | None = None
    forced: ForcedThinking | None = None


class ReasoningProfile(ABC, Generic[OptionsT]):
    """A switch. Subclasses name their options class twice: `ReasoningProfile[XOptions]` and `Options`."""

    name: ClassVar[str]
    Options: ClassVar[type[ProfileOptions]] = ProfileOptions

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        self.options = cast(OptionsT, validate_options(self.Options, options, f"profile '{self.name}'"))

    @abstractmethod
    def prepare(self, body: Body, think: bool, budget: int = 0) -> Prepared:
        """Return the body to send for this decision (never mutate the caller's dict)."""

    def direct_body(self, body: Body) -> Body:
        """A body with thinking off, for side calls such as the self-select question."""
        return self.prepare(body, False).body


Switch = ReasoningProfile[Any]


def with_system_instruction(messages: list[dict[str, Any]], instruction: str) -> list[dict[str, Any]]:
    """Append `instruction` to the first system message, or add one at the front."""
    messages = copy.copy(messages)
    for i, m in enumerate(messages):
        if m.get("role") in ("system", "developer") and isinstance(m.get("content"), str):
            messages[i] = {**m, "content": f"{m['content']}\n\n{instruction}"}
            return messages
    return [{"role": "system", "content": instruction}, *messages]
