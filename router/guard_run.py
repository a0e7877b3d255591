"""The guard's loop: answer, check, climb the escalation ladder, optionally repair, keep the best answer.

Upstream calls are injected as async callables (one per rung of the ladder, plus the repair call), so the loop
knows nothing of switches, backends or HTTP; `router.strategies.guard` supplies them. An attempt is any object
with `content` (the answer); the strategy sums the usage of every call.

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
from typing import Any, Generic, Protocol, TypeVar

from .guard import HEADER_ATTEMPTS, HEADER_GUARD, Checked, GuardRules, Outcome, Step, attempts_record, guard_headers

log = logging.getLogger("thinkgate")


class AttemptLike(Protocol):
    @property
    def content(self) -> str: ...


A = TypeVar("A", bound=AttemptLike)


@dataclass
class GuardResult(Generic[A]):
    """What the loop did: every attempt, its check, which one is kept, the outcome and why it stopped."""

    attempts: list[A]
    checked: list[Checked]
    kept: int
    outcome: Outcome
    stopped: str | None = None  # why the loop ended early (an upstream error, the time bound), if it did
    ms: list[float] = field(default_factory=list)

    @property
    def answer(self) -> A:
        return self.attempts[self.kept]


@dataclass
class GuardReport:
    """One request's guard: whether the client allows it (`x-thinkgate-guard-enable: off` does not), and what it
    did, for the response headers and the decision log. `outcome` stays None on routes without a guard."""

    enabled: bool = True
    outcome: str | None = None  # an Outcome, or "off"
    result: GuardResult[Any] | None = None

    def off(self) -> None:
        self.outcome = "off"

    def unverified(self) -> None:
        self.outcome = "unverified"

    def done(self, result: GuardResult[Any]) -> None:
        self.result, self.outcome = result, result.outcome

    def headers(self) -> dict[str, str]:
        if self.outcome is None:
            return {}
        if self.result is None:
            return {HEADER_GUARD: self.outcome, HEADER_ATTEMPTS: "1"}
        return guard_headers(self.result.outcome, self.result.checked, self.result.kept)

    def record(self) -> dict[str, Any] | None:
        """Attempts, verdicts and reasons (future training data); None on routes without a guard."""
        if self.outcome is None:
            return None
        if self.result is None:
            return {"outcome": self.outcome}
        out = attempts_record(self.result.checked, self.result.kept, self.result.outcome)
        out["stopped"] = self.result.stopped
        out["ms"] = [round(m, 3) for m in self.result.ms]
        return out


async def run_guard(rules: GuardRules, text: str, first: Callable[[], Awaitable[A]],
                    ladder: Sequence[Callable[[], Awaitable[A]]], repair: Callable[[A, Checked], Awaitable[A]] | None,
                    *, clock: Callable[[], float] = time.monotonic) -> GuardResult[A]:
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

    steps: list[tuple[Step, Callable[[], Awaitable[A]]]] = [("escalate", rung) for rung in ladder]
    if repair is not None:
        fix = repair
        steps.append(("repair", lambda: fix(result.answer, result.checked[result.kept])))
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
