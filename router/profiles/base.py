"""What "think on" and "think off" mean for one upstream family, and how the answer is split out.

A profile receives the (already decided) `think` flag and a thinking budget, talks to the backend, and
returns OpenAI-format results in which `content` holds only the answer and `reasoning_content` the
reasoning. Single-call profiles only implement `prepare`; multi-call ones override `complete`/`stream`.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, AsyncIterator, ClassVar

from pydantic import BaseModel, ConfigDict

from ..backends.base import Backend, Body, Chunk, aclose
from ..registry import validate_options
from ..thinksplit import ThinkSplitter, split_think


class ProfileOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class SplitRule:
    """How to find reasoning inside `content`: None on a profile means "do not look for tags"."""

    start_in_think: bool = False


@dataclass(frozen=True)
class Prepared:
    body: Body
    split: SplitRule | None = None


class ReasoningProfile(ABC):
    name: ClassVar[str]
    Options: ClassVar[type[ProfileOptions]] = ProfileOptions

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        self.options = validate_options(self.Options, options, f"profile '{self.name}'")

    @abstractmethod
    def prepare(self, body: Body, think: bool, budget: int = 0) -> Prepared:
        """Return the body to send for this decision (never mutate the caller's dict)."""

    def direct_body(self, body: Body) -> Body:
        """A body with thinking off, for side calls such as the self-select question."""
        return self.prepare(body, False).body

    async def complete(self, backend: Backend, body: Body, *, think: bool, budget: int) -> Body:
        prepared = self.prepare(body, think, budget)
        response = await backend.complete(prepared.body)
        return split_response(response, prepared.split)

    def stream(self, backend: Backend, body: Body, *, think: bool, budget: int) -> AsyncIterator[Chunk]:
        prepared = self.prepare(body, think, budget)
        return split_stream(backend.stream(prepared.body), prepared.split)


def split_response(response: Body, rule: SplitRule | None) -> Body:
    """Move tagged reasoning out of each choice's content into `reasoning_content`."""
    if rule is None:
        return response
    reasoning_chars = answer_chars = 0
    for choice in response.get("choices") or []:
        message = choice.get("message") or {}
        content = message.get("content")
        if isinstance(content, str):
            reasoning, answer = split_think(content, start_in_think=rule.start_in_think)
            message["content"] = answer
            if reasoning is not None:
                message["reasoning_content"] = (message.get("reasoning_content") or "") + reasoning
            reasoning_chars += len(reasoning or "")
            answer_chars += len(answer)
    _estimate_reasoning_tokens(response.get("usage"), reasoning_chars, answer_chars)
    return response


def _estimate_reasoning_tokens(usage: Any, reasoning_chars: int, answer_chars: int) -> None:
    """When the upstream does not count reasoning tokens, apportion completion tokens by characters."""
    if not isinstance(usage, dict) or not reasoning_chars:
        return
    details = usage.setdefault("completion_tokens_details", {}) or {}
    usage["completion_tokens_details"] = details
    if details.get("reasoning_tokens"):
        return
    total = usage.get("completion_tokens") or 0
    details["reasoning_tokens"] = round(total * reasoning_chars / max(1, reasoning_chars + answer_chars))


async def split_stream(chunks: AsyncIterator[Chunk], rule: SplitRule | None) -> AsyncIterator[Chunk]:
    """Re-label streamed content deltas as reasoning or answer; tags may be cut anywhere between chunks."""
    if rule is None:
        async for chunk in chunks:
            yield chunk
        return
    splitters: dict[int, ThinkSplitter] = {}
    try:
        async for chunk in chunks:
            for choice in chunk.get("choices") or []:
                delta = choice.get("delta") or {}
                splitter = splitters.setdefault(choice.get("index", 0),
                                                ThinkSplitter(start_in_think=rule.start_in_think))
                parts = splitter.feed(delta.pop("content", None) or "") if "content" in delta else []
                if choice.get("finish_reason"):
                    parts += splitter.finish()
                _apply_parts(delta, parts)
                choice["delta"] = delta
            if _is_empty(chunk):
                continue
            yield chunk
    finally:
        await aclose(chunks)


def _apply_parts(delta: dict[str, Any], parts: list[tuple[str, str]]) -> None:
    reasoning = "".join(t for kind, t in parts if kind == "reasoning")
    content = "".join(t for kind, t in parts if kind == "content")
    if reasoning:
        delta["reasoning_content"] = (delta.get("reasoning_content") or "") + reasoning
    if content:
        delta["content"] = content


def _is_empty(chunk: Chunk) -> bool:
    if chunk.get("usage"):
        return False
    for choice in chunk.get("choices") or []:
        if choice.get("finish_reason") or any(v not in (None, "") for v in (choice.get("delta") or {}).values()):
            return False
    return bool(chunk.get("choices"))


def with_system_instruction(messages: list[dict[str, Any]], instruction: str) -> list[dict[str, Any]]:
    """Append `instruction` to the first system message, or add one at the front."""
    messages = copy.copy(messages)
    for i, m in enumerate(messages):
        if m.get("role") in ("system", "developer") and isinstance(m.get("content"), str):
            messages[i] = {**m, "content": f"{m['content']}\n\n{instruction}"}
            return messages
    return [{"role": "system", "content": instruction}, *messages]
