"""One answer through one switch: prepare, call the backend, split the reasoning out (forced thinking
included: native, by prefill, or in two calls). Every strategy reaches the upstream through here."""

from __future__ import annotations

from typing import Any, AsyncIterator

from ..backends.base import Backend, Body, Chunk, aclose
from ..profiles.base import SplitRule, Switch
from ..profiles.cot import ForcedPhases, resolve_forced_mode
from ..thinksplit import ThinkSplitter, split_think
from .attempt import Attempt
from .streaming import Tally, as_answer, delta_chunk, split_stream, wants_usage, with_usage


async def call(switch: Switch, backend: Backend, body: Body, *, think: bool, budget: int) -> Attempt:
    prepared = switch.prepare(body, think, budget)
    if prepared.forced is None:
        return Attempt.from_response(split_response(await backend.complete(prepared.body), prepared.split))
    mode = resolve_forced_mode(prepared.forced.mode, backend)
    if mode == "native":
        return Attempt.from_response(await backend.complete_forced_think(prepared.body, budget))
    phases = ForcedPhases(prepared.body, budget, prefill=mode == "prefill")
    first = Attempt.from_response(await backend.complete(phases.reasoning_body(), prefill=phases.prefill))
    reasoning = phases.clean_reasoning(first.content)
    second = Attempt.from_response(await backend.complete(phases.answer_body(reasoning), prefill=phases.prefill))
    return first.followed_by(second, reasoning)


def stream_call(switch: Switch, backend: Backend, body: Body, *, think: bool, budget: int) -> AsyncIterator[Chunk]:
    prepared = switch.prepare(body, think, budget)
    if prepared.forced is None:
        return split_stream(backend.stream(prepared.body), prepared.split)
    mode = resolve_forced_mode(prepared.forced.mode, backend)
    if mode == "native":
        return backend.stream_forced_think(prepared.body, budget)
    return _stream_phases(backend, ForcedPhases(prepared.body, budget, prefill=mode == "prefill"))


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


async def _stream_phases(backend: Backend, phases: ForcedPhases) -> AsyncIterator[Chunk]:
    """Stream the reasoning call as `reasoning_content` deltas, then the answer call as `content` deltas."""
    splitter = ThinkSplitter(start_in_think=True)
    reasoning_parts: list[str] = []
    first = Tally()
    first_stream = backend.stream(with_usage(phases.reasoning_body()), prefill=phases.prefill)
    try:
        async for chunk in first_stream:
            first.feed(chunk)
            text = "".join((c.get("delta") or {}).get("content") or "" for c in chunk.get("choices") or [])
            reasoning = "".join(t for kind, t in splitter.feed(text) if kind == "reasoning")
            if reasoning:
                reasoning_parts.append(reasoning)
                yield delta_chunk(chunk, {"reasoning_content": reasoning})
    finally:
        await aclose(first_stream)
    reasoning = phases.clean_reasoning("".join(reasoning_parts))
    second_stream = backend.stream(with_usage(phases.answer_body(reasoning)), prefill=phases.prefill)
    answer = as_answer(second_stream, first.usage, client_wants_usage=wants_usage(phases.body))
    try:
        async for chunk in answer:
            yield chunk
    finally:
        await aclose(answer)
