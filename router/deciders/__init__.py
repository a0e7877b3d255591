"""Policy registry and the fallback wrapper that keeps a failing decider from failing a request.

The bound on a decision's work, whatever the decider: it reads at most `DECISION_TEXT_BUDGET` characters from
the head and as many from the tail of the decision text (constraints sit at the start or the end of a prompt;
the middle of a pasted document carries none), and it answers within `timeout_s` or the route's default is
used. CPU deciders run in their own thread (see `Decider.inline_max_chars`), so the event loop keeps serving
other requests, `/healthz` included, while a long prompt is decided.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from dataclasses import replace
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


DECISION_TEXT_BUDGET = 8192  # characters from each end of the decision text: about 20 ms of classifier work


def budgeted_text(text: str, budget: int = DECISION_TEXT_BUDGET) -> str:
    """`text` itself, or its first and last `budget` characters when it is longer than twice that."""
    if len(text) <= 2 * budget:
        return text
    return text[:budget] + "\n\n" + text[-budget:]


class CPUDeciderAwaited(RuntimeError):
    """A decider declared as CPU-only (`io_bound = False`) awaited something: it must declare `io_bound`."""


def _run_to_end(decider: Decider, ctx: DecisionContext) -> Decision:
    """Drive a CPU decider's coroutine in its worker thread: it must finish without suspending."""
    coro = decider.decide(ctx)
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise CPUDeciderAwaited("a CPU decider awaited I/O; declare io_bound = True")


async def _run(decider: Decider, ctx: DecisionContext, timeout_s: float) -> Decision:
    if decider.io_bound:
        return await asyncio.wait_for(decider.decide(ctx), timeout_s)
    if len(ctx.text) <= decider.inline_max_chars:
        return await decider.decide(ctx)
    work = asyncio.get_running_loop().run_in_executor(decider.executor(), _run_to_end, decider, ctx)
    return await asyncio.wait_for(work, timeout_s)


async def decide_with_fallback(decider: Decider, ctx: DecisionContext, *, timeout_s: float,
                               default_think: bool, text_budget: int = DECISION_TEXT_BUDGET) -> Decision:
    """Run the decider on the budgeted text under a deadline; on any failure return the configured default,
    marked as fallback."""
    start = time.perf_counter()
    text = budgeted_text(ctx.text, text_budget)
    if text is not ctx.text:
        ctx = replace(ctx, text=text)
    try:
        decision = await _run(decider, ctx, timeout_s)
    except asyncio.TimeoutError:
        reason = "timeout"
    except Exception as exc:  # noqa: BLE001 - a decider must never fail the request
        reason = type(exc).__name__
    else:
        ms = (time.perf_counter() - start) * 1000
        return dataclasses.replace(decision, ms=ms)
    ms = (time.perf_counter() - start) * 1000
    return Decision(default_think, decider.name, None, ms, "fallback", reason)


__all__ = ["DECIDERS", "DECISION_TEXT_BUDGET", "Decider", "Decision", "DecisionContext", "budgeted_text",
           "decide_with_fallback", "make_decider"]
