"""Policy registry and the fallback wrapper that keeps a failing decider from failing a request."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

from ..registry import lookup
from .base import Decider, Decision, DecisionContext
from .classifier import ClassifierDecider
from .self_select import SelfSelectDecider
from .simple import AlwaysDecider, NeverDecider, RandomDecider

DECIDERS: dict[str, type[Decider[Any]]] = {
    cls.name: cls for cls in (NeverDecider, AlwaysDecider, RandomDecider, SelfSelectDecider, ClassifierDecider)
}


def make_decider(name: str, options: dict[str, Any] | None = None, **deps: Any) -> Decider:
    return lookup("policy", name, DECIDERS)(options, **deps)


async def decide_with_fallback(decider: Decider, ctx: DecisionContext, *, timeout_s: float,
                               default_think: bool) -> Decision:
    """Run the decider under a deadline; on any failure return the configured default, marked as fallback."""
    start = time.perf_counter()
    try:
        if decider.io_bound:
            decision = await asyncio.wait_for(decider.decide(ctx), timeout_s)
        else:
            decision = await decider.decide(ctx)
    except asyncio.TimeoutError:
        reason = "timeout"
    except Exception as exc:  # noqa: BLE001 - a decider must never fail the request
        reason = type(exc).__name__
    else:
        ms = (time.perf_counter() - start) * 1000
        return dataclasses.replace(decision, ms=ms)
    ms = (time.perf_counter() - start) * 1000
    return Decision(default_think, decider.name, None, ms, "fallback", reason)


__all__ = ["DECIDERS", "Decider", "Decision", "DecisionContext", "decide_with_fallback", "make_decider"]
