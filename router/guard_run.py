"""The guard's loop: answer, check, climb the escalation ladder, optionally repair, keep the best answer.

Upstream calls are injected as async callables (one per rung of the ladder, plus the repair call), so the loop
knows nothing of switches, backends or HTTP; `router.strategies.guard` supplies them. An attempt is any object
with `content` (the answer) and `usage` (an OpenAI usage dict or None).

Bounds: at most `max_attempts` calls (the first included) and `max_total_s` seconds; a rung still running at
the deadline is cancelled. A failing or timed-out escalation or repair call never fails the request: the best
answer so far is kept and the outcome says `failed`. Only the first call's errors propagate (as without the guard).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .guard import Checked, GuardRules, Outcome, Step

log = logging.getLogger("thinkgate")


class AttemptLike(Protocol):
    content: str
    usage: dict[str, Any] | None


Rung = Callable[[], Awaitable[AttemptLike]]
Repair = Callable[[AttemptLike, Checked], Awaitable[AttemptLike]]


@dataclass
class GuardResult:
    """What the loop did: every attempt, its check, which one is kept, the outcome and why it stopped."""

    attempts: list[AttemptLike]
    checked: list[Checked]
    kept: int
    outcome: Outcome
    stopped: str | None = None  # why the loop ended early (an upstream error, the time bound), if it did
    ms: list[float] = field(default_factory=list)

    @property
    def answer(self) -> AttemptLike:
        return self.attempts[self.kept]


def summed_usage(attempts: Sequence[AttemptLike]) -> dict[str, Any] | None:
    """Usage over every call: each upstream call is billed, whichever answer is kept."""
    usages = [a.usage for a in attempts if isinstance(a.usage, dict)]
    if not usages:
        return None
    prompt = sum(int(u.get("prompt_tokens") or 0) for u in usages)
    completion = sum(int(u.get("completion_tokens") or 0) for u in usages)
    reasoning = sum(int((u.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0) for u in usages)
    out: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    if reasoning:
        out["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return out


async def run_guard(rules: GuardRules, text: str, first: Rung, ladder: Sequence[Rung], repair: Repair | None,
                    *, clock: Callable[[], float] = time.monotonic) -> GuardResult:
    """Answer with `first`; while an acted-on check fails, try the next rung of `ladder`, then `repair`."""
    opts = rules.options
    deadline = clock() + opts.max_total_s
    constraints = rules.constraints(text)
    t0 = clock()
    attempt = await first()
    result = GuardResult([attempt], [rules.check("first", attempt.content, constraints)], 0, "unverified",
                         ms=[(clock() - t0) * 1000])
    if not constraints or rules.unverifiable(result.checked[0]):
        return result  # nothing to act on: answered as without the guard

    steps: list[tuple[Step, Callable[[], Awaitable[AttemptLike]]]] = [("escalate", rung) for rung in ladder]
    if repair is not None:
        steps.append(("repair", lambda: repair(result.answer, result.checked[result.kept])))
    for step, call in steps:
        if result.checked[result.kept].ok:
            break
        if len(result.attempts) >= opts.max_attempts:
            result.stopped = f"max_attempts ({opts.max_attempts}) reached"
            break
        remaining = deadline - clock()
        if remaining <= 0:
            result.stopped = f"max_total_s ({opts.max_total_s:g}) reached"
            break
        t0 = clock()
        try:
            attempt = await asyncio.wait_for(call(), remaining)
        except asyncio.TimeoutError:
            result.stopped = f"{step} call cut off at max_total_s ({opts.max_total_s:g})"
            break
        except Exception as exc:  # noqa: BLE001 - an extra call never fails the request
            log.warning("guard: %s call failed: %s", step, exc)
            result.stopped = f"{step} call failed: {type(exc).__name__}"
            break
        result.ms.append((clock() - t0) * 1000)
        result.attempts.append(attempt)
        result.checked.append(rules.check(step, attempt.content, constraints))
        result.kept = rules.best(result.checked)
    result.outcome = rules.outcome(result.checked, result.kept)
    return result
