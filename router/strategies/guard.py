"""`guard`: answer, check the answer against the prompt's own constraints, escalate or repair only on a failure.

The first call is the route's switch with the decided mode. If an acted-on check of the answer fails
(`router.guard`: constraints detected in the prompt, checked by `classifiers.verify`), the guard climbs the
switch's ladder and, with `repair = true`, makes one more call that lists the failed checks and their reasons.
The answer passing the most checks wins (ties: the cheaper, earlier one); calls and time are bounded
(`max_attempts`, `max_total_s`). Usage sums every call.

Escalation ladder by switch:

* CoT switches (`prompt-cot`, `forced-cot`, `qwen3`, `anthropic-thinking`, ...): direct -> think;
* `model-pair`: the direct model -> the reasoning model (the switch's "think");
* `reasoning-effort`: the "off" effort -> `on_effort` -> each higher effort up to `high`.
A request decided "think" starts at that rung and climbs from there (for a CoT switch there is none: repair only).

Streaming: a request whose prompt has no acted-on constraint (or with the guard off) streams live, untouched.
Otherwise the answer must exist before it can be judged: the guard makes its calls, then streams the kept
answer (its reasoning as `reasoning_content`, then `content`, then the usage chunk if asked), so the
`x-thinkgate-guard` headers are exact on streams too; time to first byte is the whole guarded answer.
"""

from __future__ import annotations

import copy
from functools import partial
from typing import Any, AsyncIterator

from ..backends.base import Backend, Body, Chunk
from ..conversation import decision_text
from ..errors import ConfigError
from ..guard import Checked, GuardOptions, GuardRules
from ..guard_run import GuardReport, GuardResult, run_guard
from ..profiles import make_profile
from ..profiles.base import Switch
from .attempt import Attempt, Usage
from .base import Strategy
from .calls import call, stream_call

EFFORTS = ("minimal", "low", "medium", "high")
"""Reasoning efforts in increasing order (OpenAI's names); the ladder climbs above the switch's `on_effort`."""


class GuardStrategy(Strategy[Any]):
    name = "guard"
    Options = GuardOptions  # type: ignore[assignment]

    def __init__(self, switch: Switch, options: dict[str, Any] | None = None, *, label: str | None = None) -> None:
        super().__init__(switch, options, label=label)
        try:
            self.rules = GuardRules(self.options)
        except ValueError as exc:
            raise ConfigError(f"strategy 'guard': {exc}") from None
        self._higher = self._higher_efforts(switch)

    @staticmethod
    def _higher_efforts(switch: Switch) -> list[Switch]:
        """For `reasoning-effort`: one switch per effort above `on_effort` (thinking on), lowest first."""
        if switch.name != "reasoning-effort":
            return []
        opts = switch.options.model_dump()
        on = opts.get("on_effort")
        if on not in EFFORTS:
            return []
        return [make_profile(switch.name, {**opts, "on_effort": e}) for e in EFFORTS[EFFORTS.index(on) + 1:]]

    def ladder(self, think: bool) -> list[tuple[Switch, bool]]:
        """The rungs above the decided one: (switch, think) for each escalation call, in order."""
        return ([] if think else [(self.switch, True)]) + [(s, True) for s in self._higher]

    # --------------------------------------------------------------------------------------- the guarded calls

    async def guarded(self, backend: Backend, body: Body, *, think: bool, budget: int,
                      report: GuardReport) -> Attempt:
        if not (report.enabled and self.options.enabled):
            report.off()
            return await call(self.switch, backend, body, think=think, budget=budget)
        rungs = [partial(call, s, backend, body, think=t, budget=budget) for s, t in self.ladder(think)]
        repair = partial(self._repair, backend, body, budget) if self.options.repair else None
        result = await run_guard(self.rules, decision_text(body["messages"]),
                                 partial(call, self.switch, backend, body, think=think, budget=budget), rungs, repair)
        report.done(result)
        return combined(result)

    async def _repair(self, backend: Backend, body: Body, budget: int, best: Attempt, checked: Checked) -> Attempt:
        messages = [*body["messages"], *self.rules.repair_message(best.content, checked.failures)]
        return await call(self.switch, backend, {**body, "messages": messages}, think=False, budget=budget)

    async def stream_guarded(self, backend: Backend, body: Body, *, think: bool, budget: int,
                             report: GuardReport) -> AsyncIterator[Chunk]:
        if not (report.enabled and self.options.enabled):
            report.off()
        elif not self.rules.constraints(decision_text(body["messages"])):
            report.unverified()
        else:
            whole = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}  # judged whole
            attempt = await self.guarded(backend, whole, think=think, budget=budget, report=report)
            for chunk in replay_chunks(attempt):
                yield chunk
            return
        async for chunk in stream_call(self.switch, backend, body, think=think, budget=budget):
            yield chunk

    # ------------------------------------------------------------------- the Strategy interface (guard always on)

    async def attempt(self, backend: Backend, body: Body, *, think: bool, budget: int) -> Attempt:
        return await self.guarded(backend, body, think=think, budget=budget, report=GuardReport())

    def stream(self, backend: Backend, body: Body, *, think: bool, budget: int) -> AsyncIterator[Chunk]:
        return self.stream_guarded(backend, body, think=think, budget=budget, report=GuardReport())


def combined(result: GuardResult[Attempt]) -> Attempt:
    """The kept attempt, billed for every call the guard made."""
    kept = result.answer
    if len(result.attempts) == 1:
        return kept
    usage = Usage()
    for a in result.attempts:
        u = a.usage
        usage = Usage(usage.prompt_tokens + u.prompt_tokens, usage.completion_tokens + u.completion_tokens,
                      (usage.reasoning_tokens or 0) + (u.reasoning_tokens or 0))
    response = copy.deepcopy(kept.response)
    response["usage"] = usage.to_dict()
    return Attempt.from_response(response)


def replay_chunks(attempt: Attempt) -> list[Chunk]:
    """A finished attempt as OpenAI stream chunks: role, reasoning, content, finish, usage."""
    r = attempt.response
    base = {"id": r.get("id"), "object": "chat.completion.chunk", "created": r.get("created"), "model": r.get("model")}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> Chunk:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    out = [chunk({"role": "assistant", "content": ""})]
    if attempt.reasoning:
        out.append(chunk({"reasoning_content": attempt.reasoning}))
    if attempt.content:
        out.append(chunk({"content": attempt.content}))
    out.append(chunk({}, attempt.finish_reason or "stop"))
    out.append({**base, "choices": [], "usage": attempt.usage.to_dict()})
    return out
