"""Strategies over switches: a registry from name to class, and the resolver routes use.

A route names a switch (`profile`, see `router.profiles`) and a strategy (`strategy`, default `single`).
Older configurations named three strategies as profiles; they keep working as aliases:

| old `profile`   | means                                                            |
|-----------------|------------------------------------------------------------------|
| `self-reflect`  | strategy `self-reflect` over switch `forced-cot` (`mode` option) |
| `few-shot`      | strategy `few-shot` over switch `forced-cot` (`mode` option)     |
| `two-call-cot`  | strategy `single` over switch `forced-cot` with `mode = "two-call"` |

With an alias, `profile_options` holds both parts' options (`mode` goes to the switch, the rest to the
strategy), as before.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from ..profiles import PROFILES, make_profile
from ..registry import lookup
from .attempt import Attempt, Usage
from .base import SingleCall, Strategy
from .fewshot import FewShotStrategy
from .guard import GuardStrategy
from .reflect import SelfReflectStrategy

STRATEGIES: dict[str, type[Strategy[Any]]] = {
    cls.name: cls for cls in (SingleCall, SelfReflectStrategy, FewShotStrategy, GuardStrategy)
}
# old profile name -> (strategy, switch, switch options fixed by the alias)
ALIASES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "self-reflect": ("self-reflect", "forced-cot", {}),
    "few-shot": ("few-shot", "forced-cot", {}),
    "two-call-cot": ("single", "forced-cot", {"mode": "two-call"}),
}
SWITCH_KEYS_OF_ALIASES = ("mode",)


def make_strategy(name: str, switch: Any, options: dict[str, Any] | None = None, *,
                  label: str | None = None) -> Strategy[Any]:
    return lookup("strategy", name, STRATEGIES)(switch, options, label=label)


def build_strategy(profile: str, profile_options: dict[str, Any] | None = None, strategy: str = "single",
                   strategy_options: dict[str, Any] | None = None) -> Strategy[Any]:
    """The strategy a route runs: `strategy` over the switch `profile`, or an old alias (see above)."""
    if profile not in ALIASES:
        if profile not in PROFILES:
            lookup("reasoning profile", profile, {**PROFILES, **ALIASES})  # raises, with "did you mean"
        return make_strategy(strategy, make_profile(profile, profile_options), strategy_options)
    if strategy != "single" or strategy_options:
        raise ConfigError(f"profile '{profile}' already names a strategy; set profile to a switch "
                          f"({', '.join(sorted(PROFILES))}) to choose strategy '{strategy}'")
    strategy_name, switch_name, fixed = ALIASES[profile]
    options = dict(profile_options or {})
    switch_options = {k: options.pop(k) for k in SWITCH_KEYS_OF_ALIASES if k in options}
    if strategy_name == "single":  # two-call-cot: every option belongs to the switch
        switch_options, options = {**switch_options, **options}, {}
    switch = make_profile(switch_name, {**switch_options, **fixed})
    return make_strategy(strategy_name, switch, options, label=profile)


__all__ = ["ALIASES", "Attempt", "STRATEGIES", "Strategy", "Usage", "build_strategy", "make_strategy"]
