"""Reasoning profiles: a registry from name to class. See `base.ReasoningProfile`."""

from __future__ import annotations

import difflib
from typing import Any

from ..errors import ConfigError
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
    try:
        cls = PROFILES[name]
    except KeyError:
        close = difflib.get_close_matches(name, PROFILES, n=3)
        hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
        raise ConfigError(f"unknown reasoning profile '{name}'{hint}; known: {', '.join(sorted(PROFILES))}") from None
    return cls(options)


__all__ = ["PROFILES", "ReasoningProfile", "make_profile"]
