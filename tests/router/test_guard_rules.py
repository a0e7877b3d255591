"""The guard's rules without a server: what is checked, which answer wins, what the headers say."""

from __future__ import annotations

import pytest

from router.guard import (
    GuardOptions,
    GuardRules,
    attempts_record,
    guard_headers,
    guard_switch,
)

PROMPT = "Describe tea in all lowercase letters and do not use any commas."


def _rules(**options) -> GuardRules:
    return GuardRules(GuardOptions(**options))


def test_measured_kinds_are_the_shipped_ones_and_all_means_every_kind():
    assert "punctuation:no_comma" in _rules().kinds
    assert _rules(act_on="all").kinds is None
    assert _rules(act_on=["punctuation:no_comma"]).constraints(PROMPT)[0].kind == "punctuation:no_comma"
    with pytest.raises(ValueError, match="no check for punctuation:no_commas"):
        _rules(act_on=["punctuation:no_commas"])


def test_a_prompt_without_constraints_is_unverified():
    rules = _rules()
    found = rules.constraints("Tell me about tea.")
    first = rules.check("first", "Tea is a drink, Sir.", found)
    assert found == [] and rules.unverifiable(first)
    assert rules.outcome([first], 0) == "unverified"


def test_outcomes_follow_the_kept_answer():
    rules = _rules()
    found = rules.constraints(PROMPT)
    bad = rules.check("first", "Tea, Mostly.", found)
    good = rules.check("escalate", "tea is calm", found)
    assert not bad.ok and good.ok
    assert rules.outcome([rules.check("first", "tea is calm", found)], 0) == "pass"
    attempts = [bad, good]
    kept = rules.best(attempts)
    assert (kept, rules.outcome(attempts, kept)) == (1, "escalated")
    repaired = [bad, rules.check("escalate", "Tea, hot.", found), rules.check("repair", "tea is hot", found)]
    assert rules.outcome(repaired, rules.best(repaired)) == "repaired"
    still = [bad, rules.check("escalate", "Tea, hot.", found)]
    assert (rules.best(still), rules.outcome(still, rules.best(still))) == (0, "failed")  # tie: the cheaper


def test_headers_record_and_repair_message():
    rules = _rules()
    found = rules.constraints(PROMPT)
    bad = rules.check("first", "Tea, Mostly.", found)
    headers = guard_headers("failed", [bad], 0)
    assert headers == {"x-thinkgate-guard": "failed", "x-thinkgate-guard-checks": "0/2",
                       "x-thinkgate-guard-attempts": "1"}
    record = attempts_record([bad], 0, "failed")
    assert record["attempts"][0]["verdicts"][1] == {"kind": "punctuation:no_comma", "status": "fail",
                                                    "reason": "1 commas"}
    msgs = rules.repair_message("Tea, Mostly.", bad.failures)
    assert msgs[0] == {"role": "assistant", "content": "Tea, Mostly."}
    assert "- no comma: 1 commas" in msgs[1]["content"] and "english lowercase" in msgs[1]["content"]


def test_request_switch_header():
    assert guard_switch(None) is None and guard_switch(" Auto ") is None and guard_switch("on") is None
    assert guard_switch("OFF") is False
    with pytest.raises(ValueError, match="must be off, on or auto"):
        guard_switch("maybe")


def test_options_are_bounded():
    with pytest.raises(ValueError):
        GuardOptions(max_attempts=0)
    with pytest.raises(ValueError):
        GuardOptions(verify_budget_s=5)
    with pytest.raises(ValueError):
        GuardOptions(unknown=1)
