"""Reasoning profiles: a registry from name to class. See `base.ReasoningProfile`."""

from __future__ import annotations

from typing import Any

from ..registry import lookup
from .base import ReasoningProfile
from .cot import ForcedCotProfile, PromptCotProfile, TwoCallCotProfile
from .native import (AnthropicThinkingProfile, ModelPairProfile, NoneProfile, Qwen3Profile,
                     ReasoningEffortProfile)

PROFILES: dict[str, type[ReasoningProfile]] = {
    cls.name: cls
    for cls in (PromptCotProfile, ForcedCotProfile, TwoCallCotProfile, ReasoningEffortProfile,
                AnthropicThinkingProfile, Qwen3Profile, ModelPairProfile, NoneProfile)
}


def make_profile(name: str, options: dict[str, Any] | None = None) -> ReasoningProfile:
    return lookup("reasoning profile", name, PROFILES)(options)


__all__ = ["PROFILES", "ReasoningProfile", "make_profile"]
