"""Streaming plumbing shared by every strategy: one module for what the three old helpers did.

- `split_stream`: re-label one call's content deltas as reasoning or answer (tags may be cut anywhere);
- `Tally`: what a stream added up to (content, reasoning, usage, finish reason) as an `Attempt`;
- `as_answer`: forward the last call of several as the answer, with the usage of all calls;
- `client_view`: the one rule for usage on streams (always requested upstream, shown only if asked).
"""

from __future__ import annotations

from typing import Any, AsyncIterator, Sequence

from ..backends.base import Body, Chunk, aclose
from ..profiles.base import SplitRule
from ..thinksplit import ThinkSplitter
from .attempt import Attempt, Usage


def wants_usage(body: Body) -> bool:
    return bool((body.get("stream_options") or {}).get("include_usage"))


def with_usage(body: Body) -> Body:
    """The body with a usage chunk requested (needed to merge usage across calls and for the log)."""
    return {**body, "stream_options": {**(body.get("stream_options") or {}), "include_usage": True}}


def client_view(chunk: Chunk, client_wants_usage: bool) -> Chunk | None:
    """The chunk as a client sees it: without usage unless it asked (None: nothing left to send)."""
    if client_wants_usage or not chunk.get("usage"):
        return chunk
    return {k: v for k, v in chunk.items() if k != "usage"} if chunk.get("choices") else None


def delta_chunk(template: Chunk, delta: dict[str, Any]) -> Chunk:
    return {"id": template.get("id"), "object": "chat.completion.chunk", "created": template.get("created"),
            "model": template.get("model"), "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}


class Tally:
    """Adds up the first choice of a stream as it passes: the streamed counterpart of `Attempt`."""

    def __init__(self) -> None:
        self._content: list[str] = []
        self._reasoning: list[str] = []
        self.usage = Usage()
        self.finish_reason: str | None = None
        self._last: Chunk = {}

    def feed(self, chunk: Chunk) -> None:
        self._last = chunk
        if chunk.get("usage"):
            self.usage = Usage.of(chunk["usage"])
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            self._content.append(delta.get("content") or "")
            self._reasoning.append(delta.get("reasoning_content") or "")
            self.finish_reason = choice.get("finish_reason") or self.finish_reason

    @property
    def content(self) -> str:
        return "".join(self._content)

    @property
    def reasoning(self) -> str:
        return "".join(self._reasoning)

    def attempt(self) -> Attempt:
        message = {"role": "assistant", "content": self.content, "reasoning_content": self.reasoning or None}
        response = {"id": self._last.get("id"), "object": "chat.completion", "model": self._last.get("model"),
                    "choices": [{"index": 0, "message": message, "finish_reason": self.finish_reason}],
                    "usage": self.usage.to_dict()}
        return Attempt(self.content, self.reasoning or None, self.usage, self.finish_reason, response)


def split_stream(chunks: AsyncIterator[Chunk], rule: SplitRule | None) -> AsyncIterator[Chunk]:
    """Re-label streamed content deltas as reasoning or answer; tags may be cut anywhere between chunks."""
    return chunks if rule is None else _split_stream(chunks, rule)


async def _split_stream(chunks: AsyncIterator[Chunk], rule: SplitRule) -> AsyncIterator[Chunk]:
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


def _apply_parts(delta: dict[str, Any], parts: Sequence[tuple[str, str]]) -> None:
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


async def as_answer(chunks: AsyncIterator[Chunk], earlier: Usage, *, client_wants_usage: bool,
                    fallback: str = "") -> AsyncIterator[Chunk]:
    """Forward the last call of a multi-call strategy as the answer.

    Content is left-stripped at its start, the usage chunk carries the usage of all calls (shown only if the
    client asked for it), and `fallback` becomes the content if the call wrote none.
    """
    at_start = True
    try:
        async for chunk in chunks:
            if chunk.get("usage"):
                chunk["usage"] = earlier.then(Usage.of(chunk["usage"])).to_dict()
                visible = client_view(chunk, client_wants_usage)
                if visible is None:
                    continue
                chunk = visible
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
