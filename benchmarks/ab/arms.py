"""The arms of the A/B benchmark and the proxy routes that implement them.

Every arm is one route of the same proxy, built from one base route (the upstream, its reasoning profile
and budget) by changing only the policy and, for the mitigation strategies, the profile (`few-shot`,
`self-reflect`) or the strategy (`guard`). `oracle` is not a route: it is computed afterwards from the `never`
and `always` arms' own outcomes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ROUTE_PREFIX = "ab-"
ORACLE = "oracle"


@dataclass(frozen=True)
class Arm:
    name: str
    policy: str
    profile: str | None  # None: the base route's profile
    description: str
    strategy: str | None = None  # None: the base route's strategy
    strategy_options: dict[str, Any] = field(default_factory=dict)


ARMS: dict[str, Arm] = {arm.name: arm for arm in (
    Arm("never", "never", None, "never think"),
    Arm("always", "always", None, "always think (the base route's profile)"),
    Arm("few-shot", "always", "few-shot", "always think, with worked examples of thinking failures"),
    Arm("self-reflect", "always", "self-reflect", "always think, then review and keep or revise the answer"),
    Arm("self-select", "self-select", None, "the model is asked whether to think (P(YES) ≥ 0.5)"),
    Arm("self-select-calibrated", "self-select", None,
        "the model is asked whether to think, threshold calibrated on the training half"),
    Arm("classifier", "classifier", None, "the trained decision model decides"),
    Arm("guard", "never", None, "answer directly, check the answer against the prompt's constraints; on a "
        "failed check think, then repair", strategy="guard",
        strategy_options={"repair": True, "max_total_s": 1800}),  # a loaded CPU takes minutes per call
)}
ALL_ARMS = (*ARMS, ORACLE)
# The calibrated self-select arm needs a calibration file for the model under test, and the guard makes up to
# three calls per request, so both are asked for by name.
DEFAULT_ARMS = tuple(a for a in ALL_ARMS if a not in ("self-select-calibrated", "guard"))


def parse_arms(text: str) -> list[str]:
    """`never,always,oracle` -> names in the canonical order; unknown names raise ValueError."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in ALL_ARMS]
    if unknown or not names:
        raise ValueError(f"unknown arm(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(ALL_ARMS)}")
    if ORACLE in names and not {"never", "always"} <= set(names):
        raise ValueError("the oracle arm is computed from the never and always arms: select both")
    return [n for n in ALL_ARMS if n in names]


def route_alias(arm: str) -> str:
    return ROUTE_PREFIX + arm


def arm_routes(base: dict[str, Any], arms: list[str], *, artifact: str | None,
               self_select_calibration: str | None = None) -> dict[str, dict[str, Any]]:
    """One route config (as a dict, ready for a config file) per proxied arm."""
    routes: dict[str, dict[str, Any]] = {}
    for name in arms:
        if name == ORACLE:
            continue
        arm = ARMS[name]
        route = {k: v for k, v in base.items() if k not in ("policy", "policy_options")}
        route["policy"] = arm.policy
        if arm.profile is not None:
            route["profile"] = arm.profile  # an old profile name: a strategy over forced-cot (router.strategies)
            route["profile_options"], route["strategy"], route["strategy_options"] = {}, "single", {}
        if arm.strategy is not None:
            route["strategy"], route["strategy_options"] = arm.strategy, dict(arm.strategy_options)
        if arm.policy == "classifier" and artifact:
            route["policy_options"] = {"artifact": artifact}
        if name == "self-select-calibrated":
            if not self_select_calibration:
                raise ValueError("the self-select-calibrated arm needs a calibration file "
                                 "(--self-select-calibration, from `thinkgate self-select calibrate`)")
            route["policy_options"] = {"calibration": self_select_calibration}
        routes[route_alias(name)] = route
    return routes
