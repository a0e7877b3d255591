"""Chain-of-thought profiles for plain instruct models, which have no reasoning switch of their own.

- `prompt-cot`: "on" asks for reasoning inside `<think>…</think>` in a system instruction and splits the
  reply. Small models ignore the instruction (SmolLM2-135M: no tag in 48 of 48 replies), in which case the
  whole reply is the answer and there is no reasoning (see `router.thinksplit`).
- `forced-cot`: "on" *makes* the model think: the assistant turn is opened with `<think>`, the model writes
  up to `think_budget` tokens or until it closes the tag, the tag is closed, then it writes the answer with
  that reasoning in context. Done natively by the local backend (one batched request), by prefill where the
  upstream continues an assistant message (vLLM `continue_final_message`, Anthropic), and otherwise in two
  calls (`two-call`): one for the reasoning only, one for the answer with the reasoning in context.
- `two-call-cot`: the two-call variant chosen explicitly.

"Off" sends the request unchanged in every case.
"""

from __future__ import annotations

import copy
from typing import AsyncIterator, Literal

from ..backends.base import Backend, Body, Chunk, aclose
from ..thinksplit import CLOSE_TAG, OPEN_TAG, ThinkSplitter
from .base import (Prepared, ProfileOptions, ReasoningProfile, SplitRule, delta_chunk, merged_usage, message_text,
                   stream_answer, usage_counts, wants_usage, with_system_instruction, with_usage)

COT_INSTRUCTION = (
    f"Before answering, think step by step inside {OPEN_TAG} and {CLOSE_TAG} tags. After {CLOSE_TAG}, write "
    "only your final answer, following every instruction in the request exactly."
)
REASONING_ONLY_INSTRUCTION = (
    "Think step by step about how to answer the user's last message so that the answer follows every "
    "instruction in it exactly. Write only this reasoning; do not write the answer itself."
)
ANSWER_WITH_REASONING = (
    "Your private reasoning about the request (the user does not see it):\n{reasoning}\n\n"
    "Now write only your final answer to the user's last message."
)


class PromptCotOptions(ProfileOptions):
    instruction: str = COT_INSTRUCTION


class PromptCotProfile(ReasoningProfile):
    name = "prompt-cot"
    Options = PromptCotOptions

    def prepare(self, body: Body, think: bool, budget: int = 0) -> Prepared:
        if not think:
            return Prepared(body)
        opts: PromptCotOptions = self.options  # type: ignore[assignment]
        out = {**body, "messages": with_system_instruction(body["messages"], opts.instruction)}
        return Prepared(out, SplitRule())


class ForcedCotOptions(ProfileOptions):
    mode: Literal["auto", "native", "prefill", "two-call"] = "auto"


class ForcedCotProfile(ReasoningProfile):
    name = "forced-cot"
    Options = ForcedCotOptions

    def prepare(self, body: Body, think: bool, budget: int = 0) -> Prepared:
        return Prepared(body)  # only used for "off" (and side calls): the request goes unchanged

    def _mode(self, backend: Backend) -> str:
        mode = self.options.mode  # type: ignore[attr-defined]
        if mode != "auto":
            return mode
        if backend.native_forced_thinking:
            return "native"
        return "prefill" if backend.supports_prefill else "two-call"

    async def complete(self, backend: Backend, body: Body, *, think: bool, budget: int) -> Body:
        if not think:
            return await backend.complete(body)
        mode = self._mode(backend)
        if mode == "native":
            return await backend.complete_forced_think(body, budget)
        phases = _Phases(body, budget, prefill=mode == "prefill")
        first = await backend.complete(phases.reasoning_body(), prefill=phases.prefill)
        reasoning = phases.clean_reasoning(message_text(first))
        second = await backend.complete(phases.answer_body(reasoning), prefill=phases.prefill)
        return combine(first, second, reasoning)

    def stream(self, backend: Backend, body: Body, *, think: bool, budget: int) -> AsyncIterator[Chunk]:
        if not think:
            return backend.stream(body)
        mode = self._mode(backend)
        if mode == "native":
            return backend.stream_forced_think(body, budget)
        return _stream_phases(backend, _Phases(body, budget, prefill=mode == "prefill"))


class TwoCallCotProfile(ForcedCotProfile):
    name = "two-call-cot"

    def _mode(self, backend: Backend) -> str:
        return "two-call"


class _Phases:
    """Builds the two requests of forced thinking without native support."""

    def __init__(self, body: Body, budget: int, *, prefill: bool) -> None:
        self.body, self.budget, self.prefill = body, budget, prefill

    def reasoning_body(self) -> Body:
        out = {k: v for k, v in self.body.items() if k not in ("max_completion_tokens", "stop", "n")}
        out["max_tokens"] = self.budget
        if self.prefill:
            out["messages"] = [*self.body["messages"], {"role": "assistant", "content": f"{OPEN_TAG}\n"}]
            out["stop"] = [CLOSE_TAG]
        else:
            out["messages"] = with_system_instruction(self.body["messages"], REASONING_ONLY_INSTRUCTION)
        return out

    def answer_body(self, reasoning: str) -> Body:
        messages = copy.copy(self.body["messages"])
        if self.prefill:
            messages.append({"role": "assistant", "content": f"{OPEN_TAG}\n{reasoning}\n{CLOSE_TAG}\n"})
        else:
            messages.append({"role": "system", "content": ANSWER_WITH_REASONING.format(reasoning=reasoning)})
        return {**self.body, "messages": messages}

    @staticmethod
    def clean_reasoning(text: str) -> str:
        """Keep only the reasoning: drop an echoed open tag and anything after a close tag."""
        text = text.strip()
        if text.startswith(OPEN_TAG):
            text = text[len(OPEN_TAG):]
        return text.split(CLOSE_TAG, 1)[0].strip()


def combine(first: Body, second: Body, reasoning: str) -> Body:
    """The last call's response, carrying `reasoning` and the usage of both calls (both are billed)."""
    out = copy.deepcopy(second)
    for choice in out.get("choices") or []:
        message = choice.setdefault("message", {})
        message["content"] = (message.get("content") or "").lstrip()
        message["reasoning_content"] = reasoning
    out["usage"] = merged_usage(usage_counts(first), usage_counts(second))
    return out


async def _stream_phases(backend: Backend, phases: _Phases) -> AsyncIterator[Chunk]:
    """Stream the reasoning call as `reasoning_content` deltas, then the answer call as `content` deltas."""
    splitter = ThinkSplitter(start_in_think=True)
    reasoning_parts: list[str] = []
    first_usage = usage_counts(None)
    first_stream = backend.stream(with_usage(phases.reasoning_body()), prefill=phases.prefill)
    try:
        async for chunk in first_stream:
            if chunk.get("usage"):
                first_usage = usage_counts(chunk)
            text = "".join((c.get("delta") or {}).get("content") or "" for c in chunk.get("choices") or [])
            parts = splitter.feed(text)
            reasoning = "".join(t for kind, t in parts if kind == "reasoning")
            if reasoning:
                reasoning_parts.append(reasoning)
                yield delta_chunk(chunk, {"reasoning_content": reasoning})
    finally:
        await aclose(first_stream)
    reasoning = phases.clean_reasoning("".join(reasoning_parts))
    second_stream = backend.stream(with_usage(phases.answer_body(reasoning)), prefill=phases.prefill)
    answer = stream_answer(second_stream, first_usage, client_wants_usage=wants_usage(phases.body))
    try:
        async for chunk in answer:
            yield chunk
    finally:
        await aclose(answer)
