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
from typing import Any, AsyncIterator, Literal

from ..backends.base import Backend, Body, Chunk, aclose
from ..thinksplit import CLOSE_TAG, OPEN_TAG, ThinkSplitter
from .base import Prepared, ProfileOptions, ReasoningProfile, SplitRule, with_system_instruction

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
        reasoning = phases.clean_reasoning(_message_text(first))
        second = await backend.complete(phases.answer_body(reasoning), prefill=phases.prefill)
        return _combine(first, second, reasoning)

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


def _message_text(response: Body) -> str:
    try:
        return response["choices"][0]["message"].get("content") or ""
    except (KeyError, IndexError, TypeError, AttributeError):
        return ""


def _usage(response: Body | None) -> dict[str, int]:
    usage = (response or {}).get("usage") or {}
    return {k: int(usage.get(k) or 0) for k in ("prompt_tokens", "completion_tokens")}


def _merged_usage(first: dict[str, int], second: dict[str, int]) -> dict[str, Any]:
    prompt = first["prompt_tokens"] + second["prompt_tokens"]
    completion = first["completion_tokens"] + second["completion_tokens"]
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "completion_tokens_details": {"reasoning_tokens": first["completion_tokens"]}}


def _combine(first: Body, second: Body, reasoning: str) -> Body:
    """The answer call's response, carrying the reasoning and the usage of both calls (both are billed)."""
    out = copy.deepcopy(second)
    for choice in out.get("choices") or []:
        message = choice.setdefault("message", {})
        message["content"] = (message.get("content") or "").lstrip()
        message["reasoning_content"] = reasoning
    out["usage"] = _merged_usage(_usage(first), _usage(second))
    return out


async def _stream_phases(backend: Backend, phases: _Phases) -> AsyncIterator[Chunk]:
    """Stream the reasoning call as `reasoning_content` deltas, then the answer call as `content` deltas."""
    client_wants_usage = bool((phases.body.get("stream_options") or {}).get("include_usage"))
    first_body = {**phases.reasoning_body(), "stream_options": {"include_usage": True}}
    splitter = ThinkSplitter(start_in_think=True)
    reasoning_parts: list[str] = []
    first_usage: dict[str, int] = {"prompt_tokens": 0, "completion_tokens": 0}
    first_stream = backend.stream(first_body, prefill=phases.prefill)
    try:
        async for chunk in first_stream:
            if chunk.get("usage"):
                first_usage = _usage(chunk)
            text = "".join((c.get("delta") or {}).get("content") or "" for c in chunk.get("choices") or [])
            parts = splitter.feed(text)
            reasoning = "".join(t for kind, t in parts if kind == "reasoning")
            if reasoning:
                reasoning_parts.append(reasoning)
                yield _delta_chunk(chunk, {"reasoning_content": reasoning})
    finally:
        await aclose(first_stream)
    reasoning = phases.clean_reasoning("".join(reasoning_parts))
    second_body = {**phases.answer_body(reasoning), "stream_options": {"include_usage": True}}
    at_start = True
    second_stream = backend.stream(second_body, prefill=phases.prefill)
    try:
        async for chunk in second_stream:
            if chunk.get("usage"):
                chunk["usage"] = _merged_usage(first_usage, _usage(chunk))
                if not client_wants_usage:
                    continue
            for choice in chunk.get("choices") or []:
                delta = choice.get("delta") or {}
                delta.pop("role", None)
                if at_start and delta.get("content"):
                    delta["content"] = delta["content"].lstrip()
                    at_start = not delta["content"]
            yield chunk
    finally:
        await aclose(second_stream)


def _delta_chunk(template: Chunk, delta: dict[str, Any]) -> Chunk:
    return {"id": template.get("id"), "object": "chat.completion.chunk", "created": template.get("created"),
            "model": template.get("model"), "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}


