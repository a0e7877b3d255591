"""`self-reflect`: think, draft, then review the draft against the request in a second pass.

Thinking makes models plan content and drop simple mechanical constraints (word limits, lowercase only,
a required title or closing phrase). Self-reflection is one of the mitigations in Li et al. (arXiv
2505.11423): a second pass that checks the draft against the instructions and revises it. It helped there on
simple tasks, hurt on complex ones, and doubles the cost, so it is a strategy a route opts into.

"On": pass 1 is the route's switch with thinking on (`forced-cot` for the old `self-reflect` profile name:
native on the local backend, prefill or two calls elsewhere) and yields reasoning plus a draft answer. Pass 2
is one call through the same switch with thinking off: the original conversation, then a user
message holding the reasoning, the draft and the review instruction; its reply is the final answer (the
draft if the reply is empty). The client sees the final answer in `content` and the reasoning plus the
labelled draft in `reasoning_content`; usage adds both passes, and all of pass 1's completion tokens count
as reasoning tokens. Streaming sends pass 1 as `reasoning_content` deltas, then pass 2 as `content` deltas.

"Off" is the switch's own "off".
"""

from __future__ import annotations

from typing import AsyncIterator

from pydantic import Field

from ..backends.base import Backend, Body, Chunk, aclose
from .attempt import Attempt
from .base import Strategy, StrategyOptions
from .calls import call, stream_call
from .streaming import Tally, as_answer, delta_chunk, wants_usage, with_usage

REVIEW_INSTRUCTION = (
    "Check the draft answer against every instruction in my request above: format, length, words to include "
    "or avoid, letter case, punctuation, sections. If the draft follows all of them, repeat it unchanged. "
    "If not, write a corrected answer that follows them all. Output only the final answer."
)
DRAFT_LABEL = "Draft answer:\n"


class SelfReflectOptions(StrategyOptions):
    review_instruction: str = Field(default=REVIEW_INSTRUCTION, min_length=1)
    review_max_tokens: int | None = Field(default=None, ge=1)  # None: the request's own max_tokens


class SelfReflectStrategy(Strategy[SelfReflectOptions]):
    name = "self-reflect"
    Options = SelfReflectOptions

    def review_body(self, body: Body, reasoning: str, draft: str) -> Body:
        """Pass 2: the conversation, then the reasoning, the draft and the review instruction."""
        opts = self.options
        review = {"role": "user", "content": review_message(reasoning, draft, opts.review_instruction)}
        out = {**body, "messages": [*body["messages"], review]}
        if opts.review_max_tokens is not None:
            out.pop("max_completion_tokens", None)
            out["max_tokens"] = opts.review_max_tokens
        return out

    async def attempt(self, backend: Backend, body: Body, *, think: bool, budget: int) -> Attempt:
        first = await call(self.switch, backend, body, think=think, budget=budget)
        if not think:
            return first
        reasoning, draft = (first.reasoning or "").strip(), first.content.strip()
        review = await call(self.switch, backend, self.review_body(body, reasoning, draft), think=False,
                            budget=budget)
        return first.followed_by(review, labelled_draft(reasoning, draft)).or_content(draft)

    def stream(self, backend: Backend, body: Body, *, think: bool, budget: int) -> AsyncIterator[Chunk]:
        if not think:
            return stream_call(self.switch, backend, body, think=False, budget=budget)
        return self._stream(backend, body, budget)

    async def _stream(self, backend: Backend, body: Body, budget: int) -> AsyncIterator[Chunk]:
        first = _FirstPass()
        thinking = stream_call(self.switch, backend, with_usage(body), think=True, budget=budget)
        try:
            async for chunk in thinking:
                relabelled = first.relabel(chunk)
                if relabelled is not None:
                    yield relabelled
        finally:
            await aclose(thinking)
        review_body = with_usage(self.review_body(body, first.reasoning, first.draft))
        review = stream_call(self.switch, backend, review_body, think=False, budget=budget)
        answer = as_answer(review, first.tally.usage, client_wants_usage=wants_usage(body), fallback=first.draft)
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
    `reasoning_content`; its tally keeps the texts and the usage for the review call."""

    def __init__(self) -> None:
        self.tally = Tally()

    @property
    def reasoning(self) -> str:
        return self.tally.reasoning.strip()

    @property
    def draft(self) -> str:
        return self.tally.content.strip()

    def relabel(self, chunk: Chunk) -> Chunk | None:
        had_draft = bool(self.draft)
        self.tally.feed(chunk)
        text = ""
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            text += delta.get("reasoning_content") or ""
            draft = delta.get("content") or ""
            if not had_draft and draft.strip():
                draft, had_draft = _label(bool(self.reasoning)) + draft.lstrip(), True
            elif not had_draft:
                draft = ""
            text += draft
        return delta_chunk(chunk, {"reasoning_content": text}) if text else None
