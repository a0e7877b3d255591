"""Reasoning profiles: a registry from name to class. See `base.ReasoningProfile`.

Besides switching thinking per upstream family, two profiles apply the paper's mitigations for "thinking
hurts instruction following" when the decision is think: `self-reflect` (a review pass over the draft)
and `few-shot` (examples of thinking failures and their corrections).
"""

from __future__ import annotations

from typing import Any

from ..registry import lookup
from .base import ReasoningProfile
from .cot import ForcedCotProfile, PromptCotProfile, TwoCallCotProfile
from .fewshot import FewShotProfile
from .native import (AnthropicThinkingProfile, ModelPairProfile, NoneProfile, Qwen3Profile,
                     ReasoningEffortProfile)
from .reflect import SelfReflectProfile

PROFILES: dict[str, type[ReasoningProfile]] = {
    cls.name: cls
    for cls in (PromptCotProfile, ForcedCotProfile, TwoCallCotProfile, ReasoningEffortProfile,
                AnthropicThinkingProfile, Qwen3Profile, ModelPairProfile, NoneProfile, SelfReflectProfile,
                FewShotProfile)
}


def make_profile(name: str, options: dict[str, Any] | None = None) -> ReasoningProfile:
    return lookup("reasoning profile", name, PROFILES)(options)


__all__ = ["PROFILES", "ReasoningProfile", "make_profile"]
