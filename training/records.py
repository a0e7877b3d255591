"""The two records the offline pipeline passes around: an example to run, and an outcome of running it.

`Example` is what every dataset loader yields; `Outcome` is one line of an outcome table (one example run
in one mode). Both are plain frozen dataclasses so they serialise to JSON without surprises.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from router.conversation import decision_text

Mode = Literal["direct", "think"]
MODES: tuple[Mode, ...] = ("direct", "think")


@dataclass(frozen=True)
class Constraint:
    """One verifiable instruction attached to an example (IFEval style `category:name` id + its kwargs)."""

    id: str
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Example:
    """A prompt to run. `id` is `dataset:key`, e.g. `ifeval:1000`.

    `messages` is an OpenAI chat message list (usually a single user turn). `constraints` holds the
    dataset's own annotations (empty when the dataset has none). `meta` carries dataset-specific extras
    (e.g. ComplexBench scoring questions) that a scorer needs.
    """

    id: str
    messages: tuple[dict[str, Any], ...]
    constraints: tuple[Constraint, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def dataset(self) -> str:
        return self.id.split(":", 1)[0]

    @property
    def prompt(self) -> str:
        """The text the decision sees: the system prompt(s) and the latest user turn, joined."""
        return decision_text(list(self.messages))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Outcome:
    """One example run in one mode, scored. One JSON line of an outcome table.

    `scores` maps metric names to numbers in [0, 1] (for IFEval: `prompt_level_strict`, `inst_level_strict`,
    `prompt_level_loose`, `inst_level_loose`) and may hold `per_instruction` (`{instruction_id: 0/1}`, loose).
    `error` is set (and scores empty) when the run failed after retries. Token counts and latency are None
    when unknown (outcomes imported from files that do not record them; see `training.imports`).
    """

    id: str
    mode: Mode
    model: str
    profile: str
    answer: str
    reasoning: str | None
    scores: dict[str, Any]
    prompt_tokens: int | None  # None: unknown (an imported answer whose source had no counts)
    completion_tokens: int | None
    reasoning_tokens: int | None
    latency_s: float | None
    dataset_version: str
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Outcome":
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__ if k in data or k == "error"})
