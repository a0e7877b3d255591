"""Switches for upstreams that switch reasoning natively, and the no-op profile."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ..backends.base import Body
from ..conversation import strip_client_reasoning
from .base import Prepared, ProfileOptions, ReasoningProfile, SplitRule


class NoneProfile(ReasoningProfile[ProfileOptions]):
    """Forward unchanged whatever was decided: for logging or shadow-testing a policy."""

    name = "none"

    def prepare(self, body: Body, think: bool, budget: int = 0) -> Prepared:
        return Prepared(body)


class ReasoningEffortOptions(ProfileOptions):
    on_effort: str = "medium"
    # "none" turns reasoning off on models that allow it (e.g. gpt-5.1); `null` removes the field, which is
    # right only for non-reasoning models. Models that cannot stop reasoning (o3) need `model-pair`.
    off_effort: str | None = "none"
    parse_think_tags: bool = False


class ReasoningEffortProfile(ReasoningProfile[ReasoningEffortOptions]):
    """OpenAI-style `reasoning_effort` (OpenAI, vLLM, DeepSeek, Groq, OpenRouter, ...)."""

    name = "reasoning-effort"
    Options = ReasoningEffortOptions

    def prepare(self, body: Body, think: bool, budget: int = 0) -> Prepared:
        opts = self.options
        out = strip_client_reasoning(body)
        effort = opts.on_effort if think else opts.off_effort
        if effort is not None:
            out["reasoning_effort"] = effort
        return Prepared(out, SplitRule() if opts.parse_think_tags else None)


class AnthropicThinkingOptions(ProfileOptions):
    min_budget_tokens: int = Field(default=1024, ge=1024)


class AnthropicThinkingProfile(ReasoningProfile[AnthropicThinkingOptions]):
    """Anthropic extended thinking through litellm: `thinking={"type": "enabled", "budget_tokens": N}`.

    Anthropic requires `budget_tokens >= 1024` and `max_tokens > budget_tokens`; when the client's
    `max_tokens` is too small for the budget, the budget is added on top of it so the answer keeps its room.
    "Off" sends `{"type": "disabled"}` explicitly.
    """

    name = "anthropic-thinking"
    Options = AnthropicThinkingOptions

    def prepare(self, body: Body, think: bool, budget: int = 0) -> Prepared:
        opts = self.options
        out = strip_client_reasoning(body)
        if not think:
            out["thinking"] = {"type": "disabled"}
            return Prepared(out)
        budget = max(opts.min_budget_tokens, budget)
        out["thinking"] = {"type": "enabled", "budget_tokens": budget}
        max_tokens = out.pop("max_completion_tokens", None) or out.get("max_tokens")
        if not max_tokens or max_tokens <= budget:
            out["max_tokens"] = budget + (max_tokens or 1024)
        else:
            out["max_tokens"] = max_tokens
        out.pop("temperature", None)  # Anthropic rejects a temperature other than 1 with thinking on
        out.pop("top_p", None)
        return Prepared(out)


class Qwen3Options(ProfileOptions):
    # Set true for templates that open `<think>` in the prompt, so the output starts inside the block.
    start_in_think: bool = False


class Qwen3Profile(ReasoningProfile[Qwen3Options]):
    """Qwen3 hybrid models on vLLM/SGLang: `chat_template_kwargs.enable_thinking`, `<think>` parsed out."""

    name = "qwen3"
    Options = Qwen3Options

    def prepare(self, body: Body, think: bool, budget: int = 0) -> Prepared:
        opts = self.options
        out = strip_client_reasoning(body)
        out["chat_template_kwargs"] = {**(out.get("chat_template_kwargs") or {}), "enable_thinking": think}
        # Off still parses: the template may echo an empty `<think></think>` block that must not reach content.
        return Prepared(out, SplitRule(start_in_think=opts.start_in_think and think))


class ModelPairOptions(ProfileOptions):
    think_model: str
    direct_model: str
    parse_think_tags: bool = True
    think_fields: dict[str, Any] = Field(default_factory=dict)
    direct_fields: dict[str, Any] = Field(default_factory=dict)


class ModelPairProfile(ReasoningProfile[ModelPairOptions]):
    """Send "on" to a reasoning model and "off" to a non-reasoning one (e.g. R1-distill vs its base)."""

    name = "model-pair"
    Options = ModelPairOptions

    def prepare(self, body: Body, think: bool, budget: int = 0) -> Prepared:
        opts = self.options
        out = strip_client_reasoning(body)
        out.update(opts.think_fields if think else opts.direct_fields)
        out["model"] = opts.think_model if think else opts.direct_model
        return Prepared(out, SplitRule() if opts.parse_think_tags else None)


