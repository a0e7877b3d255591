from __future__ import annotations

import random

import pytest

from router.thinksplit import ThinkSplitter, split_think

CASES = [
    ("<think>plan</think>\n\nanswer", "plan", "answer"),
    ("  \n<think>plan</think>answer", "plan", "answer"),
    ("no tags at all", None, "no tags at all"),
    ("<thinking is not the tag", None, "<thinking is not the tag"),
    ("<think>never closed", "never closed", ""),
    ("answer with </think> inside", None, "answer with </think> inside"),
    ("<think></think>answer", "", "answer"),
    ("<", None, "<"),
    ("", None, ""),
]


@pytest.mark.parametrize("text,reasoning,answer", CASES)
def test_split_whole(text, reasoning, answer):
    assert split_think(text) == (reasoning, answer)


@pytest.mark.parametrize("text,reasoning,answer", CASES)
def test_stream_split_equals_whole_split_for_random_chunkings(text, reasoning, answer):
    rng = random.Random(7)
    for _ in range(50):
        splitter = ThinkSplitter()
        parts, i = [], 0
        while i < len(text):
            n = rng.randint(1, 6)
            parts += splitter.feed(text[i:i + n])
            i += n
        parts += splitter.finish()
        got_r = "".join(t for k, t in parts if k == "reasoning")
        got_a = "".join(t for k, t in parts if k == "content")
        assert (got_r if splitter.saw_reasoning else None, got_a) == (reasoning, answer)


def test_start_in_think_makes_the_open_tag_optional():
    assert split_think("plan</think>answer", start_in_think=True) == ("plan", "answer")
    assert split_think("<think>plan</think>answer", start_in_think=True) == ("plan", "answer")
    assert split_think("cut off", start_in_think=True) == ("cut off", "")
