"""One answer from an upstream, as strategies combine it: content, reasoning, usage, finish reason.

`response` keeps the OpenAI response the attempt stands for (ids, other choices, tool calls, fields this
project does not know), so a single call reaches the client exactly as the upstream sent it (after the
reasoning split); combined attempts rewrite only the answer, the reasoning and the usage.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from ..backends.base import Body


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int | None = None

    @classmethod
    def of(cls, usage: Any) -> "Usage":
        """Read an OpenAI `usage` dict (anything else counts as zero)."""
        if not isinstance(usage, dict):
            return cls()
        details = usage.get("completion_tokens_details") or {}
        reasoning = details.get("reasoning_tokens") if isinstance(details, dict) else None
        return cls(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0),
                   None if reasoning is None else int(reasoning))

    def then(self, later: "Usage") -> "Usage":
        """Both calls are billed; everything this earlier call wrote is hidden reasoning."""
        return Usage(self.prompt_tokens + later.prompt_tokens, self.completion_tokens + later.completion_tokens,
                     self.completion_tokens)

    def to_dict(self) -> dict[str, Any]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens,
                "completion_tokens_details": {"reasoning_tokens": self.reasoning_tokens or 0}}


@dataclass(frozen=True)
class Attempt:
    content: str
    reasoning: str | None
    usage: Usage
    finish_reason: str | None
    response: Body = field(repr=False, compare=False)

    @classmethod
    def from_response(cls, response: Body) -> "Attempt":
        """The first choice of an (already split) OpenAI response."""
        choices = response.get("choices") or [{}]
        first = choices[0] if isinstance(choices[0], dict) else {}
        message = first.get("message") or {}
        content, reasoning = message.get("content"), message.get("reasoning_content")
        return cls(content if isinstance(content, str) else "", reasoning if isinstance(reasoning, str) else None,
                   Usage.of(response.get("usage")), first.get("finish_reason"), response)

    def followed_by(self, later: "Attempt", reasoning: str) -> "Attempt":
        """`later`'s answer (left-stripped), carrying `reasoning` and the usage of both attempts."""
        response = copy.deepcopy(later.response)
        for choice in response.get("choices") or []:
            message = choice.setdefault("message", {})
            message["content"] = (message.get("content") or "").lstrip()
            message["reasoning_content"] = reasoning
        response["usage"] = self.usage.then(later.usage).to_dict()
        return Attempt.from_response(response)

    def or_content(self, fallback: str) -> "Attempt":
        """This attempt with `fallback` as the answer of every choice that wrote none."""
        response = copy.deepcopy(self.response)
        for choice in response.get("choices") or []:
            message = choice.setdefault("message", {})
            if not (message.get("content") or "").strip():
                message["content"] = fallback
        return Attempt.from_response(response)
