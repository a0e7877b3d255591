"""Strategies over switches, on the scripted backend: attempts, usage, streaming, aliases and errors."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from router.errors import ConfigError
from router.strategies import Attempt, Usage, build_strategy
from router.strategies.streaming import Tally
from support.scripted import Reply, ScriptedBackend

USER = [{"role": "user", "content": "Write one word. Use lowercase."}]
BODY = {"model": "m", "messages": USER}


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _collect(stream: Any) -> tuple[str, str, list[dict[str, Any]]]:
    chunks = [c async for c in stream]
    text = {k: "".join(c["choices"][0]["delta"].get(k) or "" for c in chunks if c["choices"])
            for k in ("content", "reasoning_content")}
    return text["content"], text["reasoning_content"], chunks


def test_usage_of_an_earlier_call_counts_as_reasoning():
    merged = Usage(10, 6, None).then(Usage(20, 1, 0))
    assert merged == Usage(30, 7, 6)
    assert merged.to_dict()["total_tokens"] == 37 and Usage.of("not a dict") == Usage()


def test_attempt_followed_by_keeps_the_later_answer_and_falls_back_to_a_draft():
    first = Attempt.from_response({"choices": [{"message": {"content": "Draft"}}], "usage": {"completion_tokens": 3}})
    later = Attempt.from_response({"id": "x", "choices": [{"message": {"content": "   "}, "finish_reason": "stop"}]})
    combined = first.followed_by(later, "why").or_content("Draft")
    assert (combined.content, combined.reasoning, combined.finish_reason) == ("Draft", "why", "stop")
    assert combined.response["id"] == "x" and combined.usage.reasoning_tokens == 3


def test_two_call_cot_alias_is_forced_cot_in_two_calls():
    strategy = build_strategy("two-call-cot")
    assert (strategy.name, strategy.switch.name, strategy.label) == ("single", "forced-cot", "two-call-cot")
    backend = ScriptedBackend("think about case", "\nword", supports_prefill=True)  # two calls even so
    attempt = _run(strategy.attempt(backend, BODY, think=True, budget=8))
    assert (attempt.content, attempt.reasoning) == ("word", "think about case")
    reasoning_call, answer_call = backend.calls
    assert reasoning_call.body["max_tokens"] == 8 and not reasoning_call.prefill and not answer_call.prefill


def test_few_shot_over_prompt_cot_adds_examples_then_uses_the_switch():
    strategy = build_strategy("prompt-cot", None, "few-shot", {"max_examples": 1})
    backend = ScriptedBackend("<think>lowercase</think>word")
    attempt = _run(strategy.attempt(backend, BODY, think=True, budget=8))
    assert (attempt.content, attempt.reasoning, strategy.label) == ("word", "lowercase", "few-shot/prompt-cot")
    system = backend.bodies[0]["messages"][0]["content"]
    assert system.count("Request: ") == 1 and "<think>" in system  # one example, then the CoT instruction


@pytest.mark.parametrize("think", [False, True])
def test_self_reflect_over_qwen3_streams_like_it_completes(think):
    def replies() -> ScriptedBackend:
        return ScriptedBackend(Reply("<think>plan</think> Word", usage=(5, 4)), Reply("word", usage=(9, 1)))

    strategy = build_strategy("qwen3", None, "self-reflect")
    done = _run(strategy.attempt(backend := replies(), BODY, think=think, budget=8))
    content, reasoning, chunks = _run(_collect(strategy.stream(streamed := replies(), {
        **BODY, "stream_options": {"include_usage": True}}, think=think, budget=8)))
    assert (content, reasoning or None) == (done.content, done.reasoning)
    streamed_usage = Usage.of(chunks[-1]["usage"])
    assert (streamed_usage.prompt_tokens, streamed_usage.completion_tokens) == (done.usage.prompt_tokens,
                                                                                 done.usage.completion_tokens)
    if think:  # a single streamed call does not estimate reasoning tokens from characters (as before)
        assert streamed_usage == done.usage == Usage(14, 5, 4)
    switch_states = [b["chat_template_kwargs"]["enable_thinking"] for b in backend.bodies]
    assert switch_states == ([True, False] if think else [False])
    assert [b["chat_template_kwargs"] for b in streamed.bodies] == [b["chat_template_kwargs"] for b in backend.bodies]
    if think:
        assert done.reasoning == "plan\n\nDraft answer:\nWord" and done.content == "word"


def test_tally_adds_up_a_stream_into_an_attempt():
    tally = Tally()
    for chunk in ({"choices": [{"index": 0, "delta": {"reasoning_content": "a"}}]},
                  {"choices": [{"index": 0, "delta": {"content": "b"}}, {"index": 1, "delta": {"content": "x"}}]},
                  {"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]},
                  {"choices": [], "usage": {"prompt_tokens": 2, "completion_tokens": 3}}):
        tally.feed(chunk)
    attempt = tally.attempt()
    assert (attempt.content, attempt.reasoning, attempt.finish_reason, attempt.usage) == ("b", "a", "length",
                                                                                         Usage(2, 3))


@pytest.mark.parametrize("args,message", [
    (("self-reflect", None, "few-shot"), "already names a strategy"),
    (("prompt-cot", None, "self-reflekt"), "unknown strategy 'self-reflekt' (did you mean 'self-reflect'?)"),
    (("self-reflct",), "did you mean 'self-reflect'"),
    (("prompt-cot", None, "self-reflect", {"review_max_tokens": 0}), "strategy 'self-reflect': option 'review_max_tokens'"),
    (("few-shot", {"mode": "sideways"}), "profile 'forced-cot': option 'mode'"),
])
def test_configuration_mistakes_are_config_errors(args, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")):
        build_strategy(*args)
