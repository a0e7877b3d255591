"""`self-reflect`: think, draft, then review the draft against the request in a second pass.

Thinking makes models plan content and drop simple mechanical constraints (word limits, lowercase only,
a required title or closing phrase). Self-reflection is one of the mitigations in Li et al. (arXiv
2505.11423): a second pass that checks the draft against the instructions and revises it. It helped there on
simple tasks, hurt on complex ones, and doubles the cost, so it is a profile a route opts into.

"On": pass 1 is `forced-cot` (native on the local backend, prefill or two calls elsewhere) and yields
reasoning plus a draft answer. Pass 2 is one call with thinking off: the original conversation, then a user
message holding the reasoning, the draft and the review instruction; its reply is the final answer (the
draft if the reply is empty). The client sees the final answer in `content` and the reasoning plus the
labelled draft in `reasoning_content`; usage adds both passes, and all of pass 1's completion tokens count
as reasoning tokens. Streaming sends pass 1 as `reasoning_content` deltas, then pass 2 as `content` deltas.

"Off" sends the request unchanged.
"""

from __future__ import annotations

from typing import Any, AsyncIterator

from pydantic import Field

from ..backends.base import Backend, Body, Chunk, aclose
from .base import (Prepared, ReasoningProfile, delta_chunk, message_text, stream_answer, usage_counts,
                   wants_usage, with_usage)
from .cot import ForcedCotOptions, ForcedCotProfile, combine

REVIEW_INSTRUCTION = (
    "Check the draft answer against every instruction in my request above: format, length, words to include "
    "or avoid, letter case, punctuation, sections. If the draft follows all of them, repeat it unchanged. "
    "If not, write a corrected answer that follows them all. Output only the final answer."
)
DRAFT_LABEL = "Draft answer:\n"


class SelfReflectOptions(ForcedCotOptions):
    review_instruction: str = Field(default=REVIEW_INSTRUCTION, min_length=1)
    review_max_tokens: int | None = Field(default=None, ge=1)  # None: the request's own max_tokens


class SelfReflectProfile(ReasoningProfile):
    name = "self-reflect"
    Options = SelfReflectOptions

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.thinker = ForcedCotProfile({"mode": self.options.mode})  # type: ignore[attr-defined]

    def prepare(self, body: Body, think: bool, budget: int = 0) -> Prepared:
        return Prepared(body)  # only used for "off" (and side calls): the request goes unchanged

    def review_body(self, body: Body, reasoning: str, draft: str) -> Body:
        """Pass 2: the conversation, then the reasoning, the draft and the review instruction."""
        opts: SelfReflectOptions = self.options  # type: ignore[assignment]
        review = {"role": "user", "content": review_message(reasoning, draft, opts.review_instruction)}
        out = {**body, "messages": [*body["messages"], review]}
        if opts.review_max_tokens is not None:
            out.pop("max_completion_tokens", None)
            out["max_tokens"] = opts.review_max_tokens
        return out

    async def complete(self, backend: Backend, body: Body, *, think: bool, budget: int) -> Body:
        if not think:
            return await self.thinker.complete(backend, body, think=False, budget=budget)
        first = await self.thinker.complete(backend, body, think=True, budget=budget)
        reasoning = message_text(first, "reasoning_content").strip()
        draft = message_text(first).strip()
        second = await backend.complete(self.review_body(body, reasoning, draft))
        out = combine(first, second, labelled_draft(reasoning, draft))
        for choice in out.get("choices") or []:
            message = choice["message"]
            if not message["content"].strip():
                message["content"] = draft
        return out

    def stream(self, backend: Backend, body: Body, *, think: bool, budget: int) -> AsyncIterator[Chunk]:
        if not think:
            return self.thinker.stream(backend, body, think=False, budget=budget)
        return self._stream(backend, body, budget)

    async def _stream(self, backend: Backend, body: Body, budget: int) -> AsyncIterator[Chunk]:
        first = _FirstPass()
        thinking = self.thinker.stream(backend, with_usage(body), think=True, budget=budget)
        try:
            async for chunk in thinking:
                relabelled = first.relabel(chunk)
                if relabelled is not None:
                    yield relabelled
        finally:
            await aclose(thinking)
        review = backend.stream(with_usage(self.review_body(body, first.reasoning, first.draft)))
        answer = stream_answer(review, first.usage, client_wants_usage=wants_usage(body), fallback=first.draft)
        try:
            async for chunk in answer:
                yield chunk
        finally:
            await aclose(answer)


def review_message(reasoning: str, draft: str, instruction: str) -> str:
    notes = f"Your reasoning:\n{reasoning}\n\n" if reasoning else ""
    return f"{notes}{DRAFT_LABEL}{draft}\n\n{instruction}"


def labelled_draft(reasoning: str, draft: str) -> str:
    """What the client sees as `reasoning_content`: the reasoning, then the draft under a label."""
    return f"{reasoning}{_label(bool(reasoning))}{draft}"


def _label(after_reasoning: bool) -> str:
    return f"\n\n{DRAFT_LABEL}" if after_reasoning else DRAFT_LABEL


class _FirstPass:
    """Re-labels the thinking pass's stream for the client: reasoning, then the labelled draft, all as
    `reasoning_content`; keeps the texts and the usage for the review call."""

    def __init__(self) -> None:
        self._reasoning: list[str] = []
        self._draft: list[str] = []
        self.usage = usage_counts(None)

    @property
    def reasoning(self) -> str:
        return "".join(self._reasoning).strip()

    @property
    def draft(self) -> str:
        return "".join(self._draft).strip()

    def relabel(self, chunk: Chunk) -> Chunk | None:
        if chunk.get("usage"):
            self.usage = usage_counts(chunk)
        text = ""
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            text += self._add_reasoning(delta.get("reasoning_content") or "")
            text += self._add_draft(delta.get("content") or "")
        return delta_chunk(chunk, {"reasoning_content": text}) if text else None

    def _add_reasoning(self, text: str) -> str:
        if text:
            self._reasoning.append(text)
        return text

    def _add_draft(self, text: str) -> str:
        label = ""
        if not self._draft:
            text = text.lstrip()
            label = _label(bool(self.reasoning)) if text else ""
        if text:
            self._draft.append(text)
        return label + text
