"""The constraint detector on phrasings written for these tests (not IFEval's templates)."""

from __future__ import annotations

import time

import pytest

from classifiers.constraints import (
    EXTENSION_KINDS,
    IFEVAL_KINDS,
    KINDS,
    constraint_counts,
    detect_constraints,
    parse_number,
)


def _find(text: str, kind: str) -> list:
    return [d for d in detect_constraints(text) if d.kind == kind]


POSITIVES = [
    # length: words
    ("Describe your ideal weekend in no more than 120 words.", "length_constraints:number_words",
     {"relation": "at most", "num_words": 120}),
    ("Give me a summary that is at least two hundred and fifty words long.", "length_constraints:number_words",
     {"relation": "at least", "num_words": 250}),
    ("Please keep the reply under 80 words.", "length_constraints:number_words",
     {"relation": "less than", "num_words": 80}),
    ("Compose a 500-word essay on tides.", "length_constraints:number_words", {"num_words": 500}),
    ("Write a 300+ word review of the film.", "length_constraints:number_words",
     {"relation": "at least", "num_words": 300}),
    ("The story needs more than 1,000 words.", "length_constraints:number_words",
     {"relation": "at least", "num_words": 1001}),
    ("Limit your answer to 50 words.", "length_constraints:number_words", {"relation": "at most", "num_words": 50}),
    ("Your reply should be 45 or fewer words.", "length_constraints:number_words",
     {"relation": "at most", "num_words": 45}),
    ("Respond in exactly twenty-five words.", "length_constraints:number_words",
     {"relation": "exactly", "num_words": 25}),
    # length: sentences / paragraphs / characters
    ("Answer in 3 sentences or fewer.", "length_constraints:number_sentences",
     {"relation": "at most", "num_sentences": 3}),
    ("Summarize the plot in one sentence.", "length_constraints:number_sentences",
     {"relation": "exactly", "num_sentences": 1}),
    ("Use no fewer than ten sentences.", "length_constraints:number_sentences",
     {"relation": "at least", "num_sentences": 10}),
    ("I need a four-paragraph cover letter.", "length_constraints:number_paragraphs",
     {"relation": "exactly", "num_paragraphs": 4}),
    ("Write exactly 3 paragraphs, separated from each other by the markdown divider ***.",
     "length_constraints:number_paragraphs", {"num_paragraphs": 3}),
    ("Give me 4 parts separated by a *** divider.", "length_constraints:number_paragraphs", {"num_paragraphs": 4}),
    ("Write a tweet in under 280 characters.", "length_constraints:number_characters",
     {"relation": "less than", "num_characters": 280}),
    ("Begin the third paragraph with the word 'Meanwhile'.", "length_constraints:nth_paragraph_first_word",
     {"first_word": "meanwhile", "nth_paragraph": 3}),
    ("Paragraph 2 should start with \"However\".", "length_constraints:nth_paragraph_first_word",
     {"first_word": "however", "nth_paragraph": 2}),
    # case
    ("Your reply must be written entirely in lowercase.", "change_case:english_lowercase", {}),
    ("Please do not capitalize any letters at all.", "change_case:english_lowercase", {}),
    ("Make sure there are no capital letters anywhere.", "change_case:english_lowercase", {}),
    ("RESPOND ONLY IN UPPERCASE LETTERS PLEASE", "change_case:english_capital", {}),
    ("Shout it: the whole thing in all caps.", "change_case:english_capital", {}),
    ("Use at most 10 words in all capital letters.", "change_case:capital_word_frequency",
     {"capital_relation": "at most", "capital_frequency": 10}),
    ("Stress key ideas with words in all caps, at least 4 times.", "change_case:capital_word_frequency",
     {"capital_relation": "at least", "capital_frequency": 4}),
    # punctuation and letters
    ("No commas please.", "punctuation:no_comma", {}),
    ("Avoid using a single comma in the text.", "punctuation:no_comma", {}),
    ("Commas are not allowed.", "punctuation:no_comma", {}),
    ("The letter z must appear at least 5 times.", "keywords:letter_frequency",
     {"letter": "z", "let_relation": "at least", "let_frequency": 5}),
    ("Never use the letter 'e' in your reply.", "keywords:letter_frequency",
     {"letter": "e", "let_relation": "less than", "let_frequency": 1}),
    ("Use fewer than 3 exclamation marks.", "keywords:letter_frequency",
     {"letter": "!", "let_relation": "less than", "let_frequency": 3}),
    # keywords
    ("Include the keywords apple, banana and cherry.", "keywords:existence",
     {"keywords": ["apple", "banana", "cherry"]}),
    ("Make sure to mention \"Kyoto\" somewhere.", "keywords:existence", {"keywords": ["Kyoto"]}),
    ("Never use the words 'very' or 'really'.", "keywords:forbidden_words", {"forbidden_words": ["very", "really"]}),
    ("Don't say the word synergy.", "keywords:forbidden_words", {"forbidden_words": ["synergy"]}),
    ("The word \"basically\" must not appear.", "keywords:forbidden_words", {"forbidden_words": ["basically"]}),
    ("Mention 'ocean' at least three times.", "keywords:frequency",
     {"keyword": "ocean", "relation": "at least", "frequency": 3}),
    ("Use the word river twice.", "keywords:frequency", {"keyword": "river", "frequency": 2}),
    # formats
    ("Output valid JSON only, with keys name and age.", "detectable_format:json_format", {}),
    ("Give me exactly 4 bullet points.", "detectable_format:number_bullet_lists",
     {"relation": "exactly", "num_bullets": 4}),
    ("Make a bulleted list with 6 items.", "detectable_format:number_bullet_lists", {"num_bullets": 6}),
    ("Italicize at least two phrases using markdown.", "detectable_format:number_highlighted_sections",
     {"num_highlights": 2}),
    ("Bold at least 3 key terms.", "detectable_format:number_highlighted_sections", {"num_highlights": 3}),
    ("Split your answer into 3 sections, each starting with SECTION X.", "detectable_format:multiple_sections",
     {"section_spliter": "SECTION", "num_sections": 3}),
    ("Put a title in double angle brackets, e.g. <<Night Train>>.", "detectable_format:title", {}),
    ("Pick one of the following options: yes, no, maybe.", "detectable_format:constrained_response", {}),
    ("Give me a numbered list of steps.", "detectable_format:numbered_list", {}),
    ("Format the comparison as a markdown table.", "detectable_format:table", {}),
    ("Reply using markdown.", "detectable_format:markdown", {}),
    # start / end / quotes
    ("Enclose your whole answer in double quotes.", "startend:quotation", {}),
    ("Double quotes should wrap the entire response.", "startend:quotation", {}),
    ("Conclude with the sentence \"Thanks for reading!\"", "startend:end_checker",
     {"end_phrase": "Thanks for reading!"}),
    ("Finish your reply with this exact phrase: See you soon.", "startend:end_checker",
     {"end_phrase": "See you soon."}),
    ("Begin your response with the word \"Indeed\".", "startend:start_checker", {"start_phrase": "Indeed"}),
    # content / combination / language
    ("Add a P.S. at the end.", "detectable_content:postscript", {"postscript_marker": "P.S."}),
    ("Close with a postscript that starts with P.P.S", "detectable_content:postscript", {"postscript_marker": "P.P.S"}),
    ("Include at least 3 placeholders such as [name].", "detectable_content:number_placeholders",
     {"relation": "at least", "num_placeholders": 3}),
    ("Repeat the question verbatim before answering.", "combination:repeat_prompt", {}),
    ("Before you answer, copy my request word for word.", "combination:repeat_prompt", {}),
    ("Write two different responses, separated by ******.", "combination:two_responses", {}),
    ("Reply in Spanish only.", "language:response_language", {"language": "es"}),
    ("please respond in french", "language:response_language", {"language": "fr"}),
    ("Your whole answer must be in Japanese, no other language.", "language:response_language", {"language": "ja"}),
]


@pytest.mark.parametrize("text,kind,params", POSITIVES, ids=[p[0][:40] for p in POSITIVES])
def test_detects_varied_phrasings(text: str, kind: str, params: dict) -> None:
    found = _find(text, kind)
    assert found, f"{kind} not found in {text!r}: {detect_constraints(text)}"
    got = found[0].params
    for key, value in params.items():
        assert got.get(key) == value, f"{key}: {got}"


NEGATIVES = [
    ("What is the capital of France?", None),
    ("What's 12 times 7?", None),
    ("Explain the history of the Latin language in Europe.", "language:response_language"),
    ("Can you explain how commas work in English?", "punctuation:no_comma"),
    ("Can you explain how commas work in English?", "language:response_language"),
    ("Section 2 of the contract covers refunds.", "detectable_format:multiple_sections"),
    ("Each bullet should be under 10 words.", "length_constraints:number_words"),
    ("Do not give me any bullet points.", "detectable_format:number_bullet_lists"),
    ("Use words in all capital letters at least 3 times.", "change_case:english_capital"),
    ("Do not use any commas.", "keywords:forbidden_words"),
    ("Do not say any words before repeating the request.", "keywords:forbidden_words"),
    ("Write a letter to your friend who lives in Paris.", "language:response_language"),
    ("Tell me about the keywords people search for.", "keywords:existence"),
    ("Not a single word should be in lowercase.", "length_constraints:number_words"),
]


@pytest.mark.parametrize("text,kind", NEGATIVES, ids=[f"{n[0][:30]}-{n[1]}" for n in NEGATIVES])
def test_does_not_overfire(text: str, kind: str | None) -> None:
    found = detect_constraints(text)
    if kind is None:
        assert found == []
    else:
        assert not [d for d in found if d.kind == kind], found


def test_spans_point_at_the_instruction() -> None:
    text = "Tell me about owls. Use fewer than 50 words and do not use any commas."
    found = {d.kind: d for d in detect_constraints(text)}
    s, e = found["length_constraints:number_words"].span
    assert text[s:e] == "fewer than 50 words"
    s, e = found["punctuation:no_comma"].span
    assert "comma" in text[s:e]


def test_spans_survive_case_folding_that_changes_length() -> None:
    text = "İstanbul trip notes. Reply in at most 30 words."  # "İ".lower() is two code points
    (d,) = _find(text, "length_constraints:number_words")
    assert text[d.span[0]:d.span[1]] == "at most 30 words"


def test_multiple_constraints_of_one_kind_are_counted() -> None:
    text = "Use the word war at least 8 times, and the word peace at least 10 times. No commas."
    counts = constraint_counts(text)
    assert counts["keywords:frequency"] == 2
    assert counts["punctuation:no_comma"] == 1
    kws = sorted(d.params["keyword"] for d in _find(text, "keywords:frequency"))
    assert kws == ["peace", "war"]


def test_range_gives_both_bounds() -> None:
    found = _find("Write between 200 and 300 words about owls.", "length_constraints:number_words")
    assert {(d.params["relation"], d.params["num_words"]) for d in found} == {("at least", 200), ("at most", 300)}


def test_constraint_counts_accepts_detections() -> None:
    text = "Answer in JSON. Use all lowercase letters."
    assert constraint_counts(detect_constraints(text)) == constraint_counts(text)
    assert set(constraint_counts(text)) == {"detectable_format:json_format", "change_case:english_lowercase"}


def test_kinds_are_fixed_and_complete() -> None:
    assert len(IFEVAL_KINDS) == 25 and len(set(KINDS)) == len(KINDS)
    assert KINDS[:25] == IFEVAL_KINDS and KINDS[25:] == EXTENSION_KINDS
    assert all(k.count(":") == 1 for k in KINDS)
    text = " ".join(p[0] for p in POSITIVES)
    assert {d.kind for d in detect_constraints(text)} <= set(KINDS)


@pytest.mark.parametrize("s,n", [("300", 300), ("1,000", 1000), ("2k", 2000), ("twenty-five", 25),
                                 ("two hundred and fifty", 250), ("a dozen", 12), ("eleven", 11), ("nope", None),
                                 ("1e1100", None), ("1e999k", None)])
def test_parse_number(s: str, n: int | None) -> None:
    assert parse_number(s) == n


def test_an_infinite_count_is_no_count_not_a_crash() -> None:
    """"1e1100" parses as an infinite float (found by the equivalence property test): detection goes on."""
    detected = detect_constraints("Answer in less than 1e1100 words. Answer in JSON.")
    assert "detectable_format:json_format" in {d.kind for d in detected}


def test_empty_and_non_english_text() -> None:
    assert detect_constraints("") == []
    assert detect_constraints("请用中文回答，不超过一百字。") == []


def test_fast_enough_for_every_request() -> None:
    text = ("Write a 300+ word summary of the history of tea. Do not use any commas, highlight at least 3 "
            "sections with markdown, and end your response with the exact phrase \"Any other questions?\"")
    detect_constraints(text)
    best = float("inf")
    for _ in range(5):  # best batch of CPU time: robust to other processes taking the CPU
        start = time.thread_time()
        for _ in range(50):
            detect_constraints(text)
        best = min(best, (time.thread_time() - start) / 50)
    assert best < 1e-3  # tens of microseconds normally; generous for a loaded CI machine
