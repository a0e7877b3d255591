"""What "think on" and "think off" mean for one upstream family, and how the answer is split out.

A profile receives the (already decided) `think` flag and a thinking budget, talks to the backend, and
returns OpenAI-format results in which `content` holds only the answer and `reasoning_content` the
reasoning. Single-call profiles only implement `prepare`; multi-call ones override `complete`/`stream` and
use the helpers at the end of this module to read responses, merge usage and stream the final call.
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


# ------------------------------------------------------------------------------ helpers for multi-call profiles


def message_text(response: Body | None, field: str = "content") -> str:
    """A text field of the first choice's message ("" when absent)."""
    try:
        return response["choices"][0]["message"].get(field) or ""  # type: ignore[index]
    except (KeyError, IndexError, TypeError, AttributeError):
        return ""


def usage_counts(response: Body | None) -> dict[str, int]:
    usage = (response or {}).get("usage") or {}
    return {k: int(usage.get(k) or 0) for k in ("prompt_tokens", "completion_tokens")}


def merged_usage(first: dict[str, int], second: dict[str, int]) -> dict[str, Any]:
    """Both calls are billed; everything the first call wrote is hidden reasoning."""
    prompt = first["prompt_tokens"] + second["prompt_tokens"]
    completion = first["completion_tokens"] + second["completion_tokens"]
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "completion_tokens_details": {"reasoning_tokens": first["completion_tokens"]}}


def wants_usage(body: Body) -> bool:
    return bool((body.get("stream_options") or {}).get("include_usage"))


def with_usage(body: Body) -> Body:
    """The body with a usage chunk requested (needed to merge usage across calls)."""
    return {**body, "stream_options": {"include_usage": True}}


def delta_chunk(template: Chunk, delta: dict[str, Any]) -> Chunk:
    return {"id": template.get("id"), "object": "chat.completion.chunk", "created": template.get("created"),
            "model": template.get("model"), "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}


async def stream_answer(chunks: AsyncIterator[Chunk], earlier_usage: dict[str, int], *, client_wants_usage: bool,
                        fallback: str = "") -> AsyncIterator[Chunk]:
    """Forward the last call of a multi-call profile as the answer.

    Content is left-stripped at its start, the usage chunk carries the usage of all calls (dropped unless the
    client asked for it), and `fallback` becomes the content if the call wrote none.
    """
    at_start = True
    try:
        async for chunk in chunks:
            if chunk.get("usage"):
                chunk["usage"] = merged_usage(earlier_usage, usage_counts(chunk))
                if not client_wants_usage:
                    continue
            for choice in chunk.get("choices") or []:
                delta = choice.get("delta") or {}
                delta.pop("role", None)
                if at_start and delta.get("content"):
                    delta["content"] = delta["content"].lstrip()
                    at_start = not delta["content"]
                if at_start and fallback and choice.get("finish_reason"):
                    delta["content"], at_start = fallback, False
                choice["delta"] = delta
            yield chunk
    finally:
        await aclose(chunks)
