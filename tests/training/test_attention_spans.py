"""Constraint spans -> token indices, inside the chat-templated prompt (a real fast tokenizer built in-test)."""

from __future__ import annotations

import pytest

from training.attention.sequences import build_sequence
from training.attention.spans import TemplateError, constraint_spans, content_offset, tokens_in_spans

pytest.importorskip("transformers")
from support.tiny_tokenizer import tiny_tokenizer  # noqa: E402

START = "Answer in lowercase letters only. Tell me a joke about cats"
END = "Tell me a joke about cats. End your reply with the phrase see you"
REASONING = "cats are funny"
ANSWER = "a cat sat"


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer([START, END, REASONING, ANSWER, "user assistant system"])


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def constraint_text(tok, seq) -> str:
    return "".join(tok.convert_ids_to_tokens([seq.ids[i] for i in seq.constraint_idx]))


def test_overlap_rules_on_hand_made_offsets():
    offsets = [(0, 0), (0, 5), (5, 6), (6, 11), (11, 12), (12, 12)]  # special, "Hello", " ", "world", "!", special
    assert tokens_in_spans(offsets, [(0, 5)]) == [1]  # from the very first character
    assert tokens_in_spans(offsets, [(6, 12)]) == [3, 4]  # to the very last; zero-width tokens never count
    assert tokens_in_spans(offsets, [(3, 8)]) == [1, 2, 3]  # both edges inside tokens: straddlers count
    assert tokens_in_spans(offsets, [(5, 6)]) == [2]  # touching a token's edge is not overlapping it
    assert tokens_in_spans(offsets, [(0, 3)], shift=6) == [3]
    assert tokens_in_spans(offsets, []) == []


def test_constraint_at_the_very_start_of_the_prompt(tok):
    span = (0, len("Answer in lowercase letters only"))
    seq = build_sequence(tok, user(START), [span], ANSWER)
    assert constraint_text(tok, seq) == "Answer in lowercase letters only"
    rest = "".join(tok.convert_ids_to_tokens([seq.ids[i] for i in seq.control_idx]))
    assert rest == ". Tell me a joke about cats"  # the control: the rest of the user message
    # the template puts "<|im_start|>user\n" first: the first constraint token is right after it
    assert seq.constraint_idx[0] == 3


def test_constraint_at_the_very_end_of_the_prompt(tok):
    start = END.index("End")
    seq = build_sequence(tok, user(END), [(start, len(END))], ANSWER)
    assert constraint_text(tok, seq) == "End your reply with the phrase see you"
    assert tok.convert_ids_to_tokens(seq.ids[seq.constraint_idx[-1] + 1]) == "<|im_end|>"


def test_tokens_straddling_a_span_edge_are_included(tok):
    # the span starts inside "lowercase" and ends inside "letters": both whole tokens count
    start, end = START.index("case"), START.index("letters") + 3
    seq = build_sequence(tok, user(START), [(start, end)], ANSWER)
    assert constraint_text(tok, seq) == "lowercase letters"


def test_spans_are_placed_inside_the_templated_text_with_a_system_prompt(tok):
    messages = [{"role": "system", "content": "system"}, *user(START)]
    seq = build_sequence(tok, messages, [(0, len("Answer"))], ANSWER)
    assert constraint_text(tok, seq) == "Answer"


def test_cot_sequence_is_what_the_engine_fed_the_model(tok):
    base = build_sequence(tok, user(START), [(0, 6)], ANSWER)
    cot = build_sequence(tok, user(START), [(0, 6)], ANSWER, REASONING)
    enc = lambda s: tok.encode(s, add_special_tokens=False)  # noqa: E731
    assert cot.ids[:cot.prompt_len] == base.ids[:base.prompt_len] + enc("<think>\n")
    assert cot.ids[cot.prompt_len:cot.answer_start] == enc(REASONING) + enc("\n</think>\n")
    assert cot.ids[cot.answer_start:] == base.ids[base.answer_start:] == enc(ANSWER)
    assert base.think_len == 0 and cot.think_len == len(enc(REASONING + "\n</think>\n"))
    assert cot.constraint_idx == base.constraint_idx
    capped = build_sequence(tok, user(START), [(0, 6)], ANSWER, REASONING, max_answer_tokens=2)
    assert capped.answer_len == 2 and capped.ids == cot.ids[:cot.answer_start + 2]


def test_a_template_that_alters_the_text_is_refused(tok):
    with pytest.raises(TemplateError):
        content_offset(lambda c: "<s>" + c.strip() + "</s>", " padded ")
    with pytest.raises(TemplateError):
        content_offset(lambda c: c + c, "twice")
    assert content_offset(lambda c: "<s>" + c + "</s>", "fine") == 3


def test_detector_spans_are_merged_and_found():
    text = "Write a poem. Your entire response should be in English, and in all lowercase letters."
    spans = constraint_spans(text)
    assert spans and all(a < b for a, b in spans)
    assert all(spans[i][1] < spans[i + 1][0] for i in range(len(spans) - 1))
    assert any("lowercase" in text[a:b] for a, b in spans)
    assert constraint_spans("Tell me about the history of Rome.") == []
