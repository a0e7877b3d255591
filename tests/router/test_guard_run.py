"""The guard's loop with scripted calls: bounds, failures of extra calls, usage over every call."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest

from router.guard import GuardOptions, GuardRules
from router.guard_run import run_guard

PROMPT = "Describe tea in all lowercase letters and do not use any commas."


@dataclass
class A:
    content: str


def _calls(*answers: str, log: list[str] | None = None, delay: float = 0.0):
    def make(text: str):
        async def call():
            if log is not None:
                log.append(text)
            await asyncio.sleep(delay)
            return A(text)
        return call
    return [make(t) for t in answers]


def _run(rules, first, ladder, repair=None, text=PROMPT):
    return asyncio.run(run_guard(rules, text, first, ladder, repair))


def test_no_constraint_means_one_call_and_the_same_answer():
    log: list[str] = []
    first, second = _calls("Tea, Sir.", "never", log=log)
    r = _run(GuardRules(GuardOptions()), first, [second], text="Tell me about tea.")
    assert (r.outcome, r.answer.content, log) == ("unverified", "Tea, Sir.", ["Tea, Sir."])


def test_pass_escalate_repair_and_failed():
    rules = GuardRules(GuardOptions(repair=True))
    first, second = _calls("tea is calm", "unused")
    assert _run(rules, first, [second]).outcome == "pass"

    first, second = _calls("Tea, hot.", "tea is hot")
    r = _run(rules, first, [second])
    assert (r.outcome, r.answer.content, len(r.attempts)) == ("escalated", "tea is hot", 2)

    seen: list[Any] = []

    async def repair(best, checked):
        seen.append((best.content, [v.kind for v in checked.failures]))
        return A("tea is fixed")

    first, second = _calls("Tea, hot.", "Tea, still.")
    r = _run(rules, first, [second], repair)
    assert (r.outcome, r.answer.content) == ("repaired", "tea is fixed")
    assert seen == [("Tea, hot.", ["change_case:english_lowercase", "punctuation:no_comma"])]

    async def bad_repair(best, checked):
        return A("Still, Bad.")

    first, second = _calls("Tea, hot.", "Tea hot.")
    r = _run(rules, first, [second], bad_repair)
    assert (r.outcome, r.answer.content, len(r.attempts)) == ("failed", "Tea hot.", 3)  # passes more checks


def test_attempts_are_bounded():
    log: list[str] = []
    first, *ladder = _calls("Tea, a.", "Tea, b.", "Tea, c.", "Tea, d.", log=log)
    r = _run(GuardRules(GuardOptions(max_attempts=2)), first, ladder)
    assert log == ["Tea, a.", "Tea, b."] and r.outcome == "failed" and "max_attempts" in r.stopped


def test_total_time_is_bounded_and_a_slow_rung_is_cut_off():
    first, = _calls("Tea, a.")
    slow, = _calls("tea b", delay=5.0)
    r = _run(GuardRules(GuardOptions(max_total_s=0.2)), first, [slow])
    assert r.outcome == "failed" and r.answer.content == "Tea, a." and "cut off" in r.stopped


def test_a_failing_extra_call_keeps_the_first_answer():
    first, = _calls("Tea, a.")

    async def broken():
        raise RuntimeError("upstream 500")

    r = _run(GuardRules(GuardOptions()), first, [broken])
    assert (r.outcome, r.answer.content, r.stopped) == ("failed", "Tea, a.", "escalate call failed: RuntimeError")


def test_the_first_calls_error_propagates():
    async def broken():
        raise RuntimeError("upstream 500")

    with pytest.raises(RuntimeError):
        _run(GuardRules(GuardOptions()), broken, [])


def test_report_headers_and_record():
    from router.guard_run import GuardReport

    assert GuardReport().headers() == {} and GuardReport().record() is None  # a route without a guard
    off = GuardReport(enabled=False)
    off.off()
    assert off.headers() == {"x-thinkgate-guard": "off", "x-thinkgate-guard-attempts": "1"}
    first, second = _calls("Tea, hot.", "tea is hot")
    report = GuardReport()
    report.done(_run(GuardRules(GuardOptions()), first, [second]))
    assert report.headers() == {"x-thinkgate-guard": "escalated", "x-thinkgate-guard-checks": "2/2",
                                "x-thinkgate-guard-attempts": "2"}
    record = report.record()
    assert record["outcome"] == "escalated" and record["kept"] == 1 and len(record["ms"]) == 2
    assert [a["step"] for a in record["attempts"]] == ["first", "escalate"]
