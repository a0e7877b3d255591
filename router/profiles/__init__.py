"""Reasoning switches ("profiles"): a registry from name to class. See `base.ReasoningProfile`.

A switch says how one upstream family turns thinking on or off in one call (a pure `prepare`). Strategies
that make several calls (`self-reflect`, `few-shot`, ...) live in `router.strategies` and wrap any switch.
`ALIASES` keeps older configuration names working: a name that is not a switch but a strategy over a switch.
"""

from __future__ import annotations

from typing import Any

from ..registry import lookup
from .base import ReasoningProfile, Switch
from .cot import ForcedCotProfile, PromptCotProfile
from .native import (AnthropicThinkingProfile, ModelPairProfile, NoneProfile, Qwen3Profile,
                     ReasoningEffortProfile)

PROFILES: dict[str, type[Switch]] = {
    cls.name: cls
    for cls in (PromptCotProfile, ForcedCotProfile, ReasoningEffortProfile, AnthropicThinkingProfile,
                Qwen3Profile, ModelPairProfile, NoneProfile)
}


def make_profile(name: str, options: dict[str, Any] | None = None) -> Switch:
    return lookup("reasoning profile", name, PROFILES)(options)


__all__ = ["PROFILES", "ReasoningProfile", "Switch", "make_profile"]
