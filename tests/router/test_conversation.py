from __future__ import annotations

import pytest

from router.conversation import (client_reasoning_choice, decision_text, strip_client_reasoning,
                                 strip_history_reasoning)


def test_decision_text_reads_system_prompts_and_the_latest_user_turn():
    messages = [{"role": "system", "content": "Use lowercase."}, {"role": "user", "content": "old"},
                {"role": "assistant", "content": "x"},
                {"role": "user", "content": [{"type": "text", "text": "new"}, {"type": "image_url"}]}]
    assert decision_text(messages) == "Use lowercase.\n\nnew"


@pytest.mark.parametrize("body,choice", [
    ({}, None), ({"reasoning_effort": "high"}, True), ({"reasoning_effort": "none"}, False),
    ({"thinking": {"type": "enabled", "budget_tokens": 2000}}, True), ({"thinking": {"type": "disabled"}}, False),
    ({"reasoning": {"enabled": False}}, False), ({"reasoning": {"effort": "low"}}, True),
    ({"chat_template_kwargs": {"enable_thinking": True}}, True),
])
def test_client_reasoning_choice(body, choice):
    assert client_reasoning_choice(body) is choice


def test_strip_client_reasoning_keeps_other_template_kwargs():
    body = {"model": "m", "reasoning_effort": "low", "thinking": {}, "chat_template_kwargs": {
        "enable_thinking": True, "foo": 1}}
    assert strip_client_reasoning(body) == {"model": "m", "chat_template_kwargs": {"foo": 1}}


def test_strip_history_reasoning_does_not_mutate_the_input():
    messages = [{"role": "assistant", "content": "<think>a</think>b", "reasoning_content": "a"}]
    assert strip_history_reasoning(messages) == [{"role": "assistant", "content": "b"}]
    assert messages[0]["reasoning_content"] == "a"
