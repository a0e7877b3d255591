"""The decider base and the fallback wrapper: a decider that raises or is slow never fails a request."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import pytest

from router.deciders import Decider, DecisionContext, decide_with_fallback, make_decider
from router.deciders.base import DeciderOptions

CTX = DecisionContext(text="Write a haiku about rain.", route="mock-model")


class Fixed(Decider):
    name = "fixed"

    def __init__(self, options: dict[str, Any] | None = None, *, score: float = 0.7) -> None:
        super().__init__(options)
        self._score = score

    async def score(self, ctx: DecisionContext) -> float:
        return self._score


class Broken(Decider):
    name = "broken"

    async def score(self, ctx: DecisionContext) -> float:
        raise ValueError("the model file is corrupt")


class Slow(Decider):
    name = "slow"
    io_bound: ClassVar[bool] = True

    async def score(self, ctx: DecisionContext) -> float:
        await asyncio.sleep(5)
        return 1.0


def run(decider: Decider, *, timeout_s: float = 1.0, default_think: bool = False):
    return asyncio.run(decide_with_fallback(decider, CTX, timeout_s=timeout_s, default_think=default_think))


@pytest.mark.parametrize("score,threshold,think", [(0.7, 0.5, True), (0.5, 0.5, True), (0.49, 0.5, False),
                                                   (0.7, 0.9, False)])
def test_score_is_thresholded(score: float, threshold: float, think: bool) -> None:
    decision = asyncio.run(Fixed({"threshold": threshold}, score=score).decide(CTX))
    assert (decision.think, decision.score, decision.policy, decision.source) == (think, score, "fixed", "policy")
    assert decision.label == ("think" if think else "direct")


def test_unknown_option_is_a_config_error_naming_the_policy() -> None:
    from router.errors import ConfigError

    with pytest.raises(ConfigError, match="fixed"):
        Fixed({"treshold": 0.3})
    assert Fixed.Options is DeciderOptions


def test_success_passes_through_with_its_time() -> None:
    decision = run(Fixed(score=0.9), default_think=False)
    assert decision.think and decision.score == 0.9 and decision.source == "policy"
    assert decision.fallback_reason is None and decision.ms >= 0


@pytest.mark.parametrize("default_think", [False, True])
def test_a_raising_decider_falls_back_with_the_reason(default_think: bool) -> None:
    decision = run(Broken(), default_think=default_think)
    assert decision.think is default_think
    assert (decision.source, decision.fallback_reason, decision.policy, decision.score) == \
        ("fallback", "ValueError", "broken", None)


def test_a_slow_io_decider_times_out_to_the_default() -> None:
    decision = run(Slow(), timeout_s=0.05, default_think=True)
    assert decision.think is True
    assert (decision.source, decision.fallback_reason) == ("fallback", "timeout")
    assert decision.ms < 2000  # it gave up at the deadline, not after the 5 s the decider wanted


def test_registry_builds_the_simple_policies() -> None:
    assert asyncio.run(make_decider("always").decide(CTX)).think is True
    assert asyncio.run(make_decider("never").decide(CTX)).think is False
    first = asyncio.run(make_decider("random", {"p": 0.5, "seed": 3}).score(CTX))
    again = asyncio.run(make_decider("random", {"p": 0.5, "seed": 3}).score(CTX))
    assert first == again and 0.0 <= first < 1.0
