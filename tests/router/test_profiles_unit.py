"""Profile request shaping that the mock upstream cannot show (providers reached through litellm)."""

from __future__ import annotations

import pytest

from router.errors import ConfigError
from router.profiles import PROFILES, make_profile

BODY = {"model": "anthropic/claude", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 500,
        "temperature": 0.2, "reasoning_effort": "high"}


def test_anthropic_thinking_on_sizes_the_budget_and_max_tokens():
    body = make_profile("anthropic-thinking").prepare(BODY, True, 160).body
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert body["max_tokens"] == 1524 and "temperature" not in body and "reasoning_effort" not in body


def test_anthropic_thinking_off_is_explicitly_disabled():
    body = make_profile("anthropic-thinking").prepare(BODY, False, 160).body
    assert body["thinking"] == {"type": "disabled"} and body["temperature"] == 0.2


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_off_never_leaves_a_thinking_switch_on(name):
    options = {"think_model": "a", "direct_model": "b"} if name == "model-pair" else None
    plain = {k: v for k, v in BODY.items() if k != "reasoning_effort"}  # the handler strips client fields
    body = make_profile(name, options).prepare(plain, False, 160).body
    assert body.get("reasoning_effort") in (None, "none")
    assert body.get("thinking") in (None, {"type": "disabled"})
    assert (body.get("chat_template_kwargs") or {}).get("enable_thinking") in (None, False)
    if name not in ("none",):
        assert all(m["role"] != "system" for m in body["messages"])


def test_unknown_profile_and_bad_options_are_config_errors():
    with pytest.raises(ConfigError, match="did you mean 'prompt-cot'"):
        make_profile("prompt-cott")
    with pytest.raises(ConfigError, match="option 'think_model'"):
        make_profile("model-pair", {"direct_model": "b"})
