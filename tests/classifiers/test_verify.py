"""The guard's checks, per kind, on answers written for these tests; budgets and "cannot tell" rules."""

from __future__ import annotations

import itertools
import time

import pytest

from classifiers.constraints import KINDS, DetectedConstraint, detect_constraints
from classifiers.verify import (
    CANNOT_TELL,
    CHECKS,
    FAIL,
    PASS,
    Verdict,
    Verification,
    check_for,
    loose_variants,
    measured_kinds,
    verify,
)

NO_CHECK = {"combination:repeat_prompt", "detectable_format:constrained_response"}


def _v(kind: str, params: dict, answer: str) -> str:
    return verify(answer, [DetectedConstraint(kind, (0, 1), params)]).verdicts[0].status


# (kind, params, an answer that passes, an answer that fails)
CASES = [
    ("change_case:capital_word_frequency", {"capital_relation": "at least", "capital_frequency": 2},
     "This is VERY IMPORTANT news.", "This is very important news."),
    ("change_case:capital_word_frequency", {"capital_relation": "less than", "capital_frequency": 2},
     "Only ONE shout here.", "TOO MANY SHOUTS HERE."),
    ("change_case:english_capital", {}, "ALL OF THIS IS LOUD.", "ALL OF THIS IS LOUD, almost."),
    ("change_case:english_lowercase", {}, "quiet words only.", "quiet words only, Mostly."),
    ("combination:two_responses", {}, "First take on it.\n******\nA second, different take.",
     "Just one take on it."),
    ("detectable_content:number_placeholders", {"relation": "at least", "num_placeholders": 2},
     "Dear [name], see you at [place].", "Dear [name], see you there."),
    ("detectable_content:postscript", {"postscript_marker": "P.S."}, "Hello friend.\n\nP.S. bring snacks",
     "Hello friend. Bring snacks."),
    ("detectable_format:json_format", {}, '```json\n{"a": [1, 2]}\n```', '{"a": [1, 2}'),
    ("detectable_format:multiple_sections", {"section_spliter": "Section", "num_sections": 2, "relation": "exactly"},
     "Section 1\nIntro here.\nSection 2\nMore here.", "Section 1\nEverything in one place."),
    ("detectable_format:number_bullet_lists", {"relation": "exactly", "num_bullets": 3},
     "* apples\n* pears\n* plums", "* apples\n* pears"),
    ("detectable_format:number_bullet_lists", {"relation": None, "num_bullets": None},
     "Some fruit:\n- apples", "Apples and pears are fruit."),
    ("detectable_format:number_highlighted_sections", {"relation": "at least", "num_highlights": 2},
     "The *first part* and the **second part**.", "The *first part* and the second part."),
    ("detectable_format:title", {}, "<<A Day at Sea>>\nWaves everywhere.", "A Day at Sea\nWaves everywhere."),
    ("keywords:existence", {"keywords": ["harbor", "gull"]}, "A gull circled the harbor.", "A gull circled."),
    ("keywords:forbidden_words", {"forbidden_words": ["very", "nice"]}, "A vast and lovely view.",
     "A very lovely view."),
    ("keywords:frequency", {"keyword": "tide", "relation": "at least", "frequency": 2},
     "The tide rose; tides always do.", "The tide rose."),
    ("keywords:letter_frequency", {"letter": "z", "let_relation": "at least", "let_frequency": 3},
     "Zebras zigzag in a maze.", "Horses trot in a field."),
    ("language:response_language", {"language": "ru"}, "Привет, как дела? Сегодня хорошая погода.",
     "Hello, how are you? The weather is lovely today."),
    ("language:response_language", {"language": "de"},
     "Das ist nicht die Antwort, die ich auf der Straße gehört habe, und sie ist auch nicht gut.",
     "This is not the answer that I heard on the street, and it is also not good for the town at all."),
    ("length_constraints:nth_paragraph_first_word",
     {"first_word": "however", "nth_paragraph": 2, "num_paragraphs": 2},
     "Tea is nice.\n\nHowever, coffee is stronger.", "Tea is nice.\n\nCoffee is stronger."),
    ("length_constraints:number_paragraphs", {"relation": "exactly", "num_paragraphs": 2},
     "One.\n***\nTwo.", "One.\n***\nTwo.\n***\nThree.\n***\nFour.\n***\nFive."),
    ("length_constraints:number_sentences", {"relation": "less than", "num_sentences": 3},
     "It rained. We stayed in.", "It rained. We stayed in. We read. We slept."),
    ("length_constraints:number_words", {"relation": "at most", "num_words": 5},
     "Short and sweet reply.", "This reply is far too long for the limit."),
    ("length_constraints:number_words", {"relation": "about", "num_words": 10},
     "one two three four five six seven eight nine ten eleven", "one two"),
    ("punctuation:no_comma", {}, "No commas here at all.", "Well, here is one."),
    ("startend:end_checker", {"end_phrase": "Any other questions?"}, "That is the plan. Any other questions?",
     "That is the plan."),
    ("startend:quotation", {}, '"All of it quoted."', 'Half "quoted."'),
    ("startend:start_checker", {"start_phrase": "Dear team"}, "Dear team, we shipped it.", "Hi all, we shipped it."),
    ("length_constraints:number_characters", {"relation": "less than", "num_characters": 20}, "Tiny answer.",
     "An answer that runs well past twenty characters."),
    ("detectable_format:numbered_list", {}, "Steps:\n1. Boil water.\n2. Add tea.", "Boil water, then add tea."),
    ("detectable_format:table", {}, "| a | b |\n|---|---|\n| 1 | 2 |", "a and b are 1 and 2."),
    ("detectable_format:markdown", {}, "# Heading\nSome **bold** text.", "Plain words and nothing else."),
]


@pytest.mark.parametrize("kind,params,good,bad", CASES, ids=[c[0] for c in CASES])
def test_each_kind_passes_a_following_answer_and_fails_a_breaking_one(kind, params, good, bad):
    assert _v(kind, params, good) == PASS
    assert _v(kind, params, bad) == FAIL


def test_every_kind_the_detector_emits_has_a_check_or_is_documented_as_unjudgeable():
    assert set(CHECKS) | NO_CHECK == set(KINDS)
    assert {kind for kind, *_ in CASES} == set(CHECKS)  # every check is exercised above


@pytest.mark.parametrize("kind,params", [
    ("length_constraints:number_words", {"relation": "at most", "num_words": None}),
    ("length_constraints:number_words", {"relation": None, "num_words": 5}),
    ("length_constraints:number_paragraphs", {"relation": None, "num_paragraphs": None}),
    ("keywords:existence", {"keywords": []}),
    ("keywords:forbidden_words", {"forbidden_words": None}),
    ("keywords:letter_frequency", {"letter": "ab", "let_relation": "at least", "let_frequency": 2}),
    ("startend:end_checker", {"end_phrase": ""}),
    ("detectable_format:multiple_sections", {"section_spliter": None, "num_sections": 3, "relation": "exactly"}),
    ("language:response_language", {"language": None}),
    ("combination:repeat_prompt", {}),
    ("detectable_format:constrained_response", {}),
])
def test_unreadable_parameters_are_cannot_tell_never_fail(kind, params):
    v = verify("Any answer at all, with words, Commas and CAPS.", [DetectedConstraint(kind, (0, 1), params)])
    assert v.verdicts[0].status == CANNOT_TELL
    assert not v.failures()


def test_reasons_say_what_was_counted():
    v = verify(" ".join(["word"] * 312), [DetectedConstraint("length_constraints:number_words", (0, 1),
                                                             {"relation": "at most", "num_words": 300})])
    assert v.verdicts[0].reason == "312 words; the limit is at most 300"


def test_loose_protocol_forgives_a_preamble_line():
    answer = 'Sure, here it is:\n"the whole answer, quoted"'
    assert _v("startend:quotation", {}, answer) == PASS
    assert '"the whole answer, quoted"' in loose_variants(answer)


def test_a_check_that_raises_is_cannot_tell():
    bad = DetectedConstraint("keywords:frequency", (0, 1), {"keyword": "x", "relation": "at least", "frequency": 2.5})
    assert verify("x x x", [bad]).verdicts[0].status in (CANNOT_TELL, PASS)
    weird = DetectedConstraint("length_constraints:nth_paragraph_first_word", (0, 1),
                               {"first_word": object(), "nth_paragraph": 1})
    assert verify("text", [weird]).verdicts[0].status == CANNOT_TELL


def test_empty_answer_fails_checkable_kinds_only():
    cs = [DetectedConstraint("punctuation:no_comma", (0, 1), {}), DetectedConstraint("combination:repeat_prompt", (0, 1))]
    assert [v.status for v in verify("   ", cs).verdicts] == [FAIL, CANNOT_TELL]


def test_answers_over_the_size_limit_are_not_read():
    cs = [DetectedConstraint("punctuation:no_comma", (0, 1), {})]
    v = verify("a, b" * 100, cs, max_chars=50)
    assert v.verdicts[0].status == CANNOT_TELL and "longer than 50" in v.verdicts[0].reason


def test_time_budget_turns_the_remaining_checks_into_cannot_tell():
    ticks = itertools.count()
    clock = lambda: next(ticks) * 1.0  # noqa: E731 - each reading of the clock is one second later
    cs = [DetectedConstraint("punctuation:no_comma", (0, 1), {})] * 5
    v = verify("a, b", cs, budget_s=2.5, clock=clock)
    statuses = [x.status for x in v.verdicts]
    assert statuses[0] == FAIL
    assert statuses[-1] == CANNOT_TELL and "budget" in v.verdicts[-1].reason


def test_budget_holds_on_a_large_hostile_answer():
    prompt = ("Answer in under 50 words, in all lowercase, with no commas, at least 3 bullet points, "
              "a title in <<double angular brackets>>, and end with \"Done.\"")
    found = detect_constraints(prompt)
    assert len(found) >= 5
    answer = ("*" * 5000 + "[" * 5000 + "\n\n" * 5000 + "word. " * 20000)[:150_000]
    t0 = time.thread_time()
    v = verify(answer, found, budget_s=0.05)
    # one check may run past the deadline before the next is refused; each is linear, so this stays small.
    # This thread's CPU time, not the wall clock: a busy machine or a paused process is not the checks' cost.
    assert time.thread_time() - t0 < 1.0
    assert len(v.verdicts) == len(found)


def test_verification_counts_respect_the_acted_on_kinds():
    v = Verification((
        Verdict("punctuation:no_comma", FAIL, "1 commas"),
        Verdict("detectable_format:title", PASS, "ok"),
    ))
    assert [x.kind for x in v.failures()] == ["punctuation:no_comma"]
    assert v.failures({"detectable_format:title"}) == []
    assert v.passed() == 1 and v.judged() == 2


def test_check_for_names_close_matches():
    assert check_for("punctuation:no_comma") is CHECKS["punctuation:no_comma"]
    with pytest.raises(KeyError, match="did you mean 'punctuation:no_comma'"):
        check_for("punctuation:no_commas")
    with pytest.raises(KeyError, match="always cannot_tell"):
        check_for("combination:repeat_prompt")


def test_measured_kinds_load_from_the_shipped_file_and_bad_files_say_why(tmp_path):
    kinds = measured_kinds()
    assert kinds and kinds <= set(CHECKS)
    bad = tmp_path / "k.json"
    bad.write_text('{"kinds": ["punctuation:no_commas"]}')
    with pytest.raises(ValueError, match="no check for punctuation:no_commas"):
        measured_kinds(bad)
    with pytest.raises(ValueError, match="cannot read"):
        measured_kinds(tmp_path / "absent.json")
