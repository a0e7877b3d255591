"""The local engine's per-row program, driven token by token with a fake tokenizer (no torch, no model).

`run` plays the engine's part: each step a row either feeds its next forced token or takes the model's next
token; the tokens fed to the "model" (what would enter the KV cache) are recorded, so the forced `</think>`
is checked as context, not only as reported text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import pytest

from router.local_model.generation import (Delta, Event, Failed, Finished, GenerationRequest, Handle,
                                           SamplingParams)
from router.local_model.rowstate import RowState, TokenCodec

EOS = 1


class FakeCodec:
    """Characters are tokens (id = code point + 10); `pieces` are extra multi-character tokens, matched first."""

    eos_ids = frozenset({EOS})

    def __init__(self, pieces: Sequence[str] = ()) -> None:
        self.pieces = sorted(pieces, key=len, reverse=True)
        self.ids = {piece: 10**7 + i for i, piece in enumerate(self.pieces)}
        self.texts = {i: piece for piece, i in self.ids.items()}

    @property
    def newline_id(self) -> int:
        return self.encode("\n")[0]

    def encode(self, text: str) -> list[int]:
        ids, i = [], 0
        while i < len(text):
            piece = next((p for p in self.pieces if text.startswith(p, i)), text[i])
            ids.append(self.ids[piece] if piece in self.ids else ord(piece) + 10)
            i += len(piece)
        return ids

    def decode(self, ids: Sequence[int]) -> str:  # special tokens (< 10) are skipped
        return "".join(self.texts.get(i) or chr(i - 10) for i in ids if i >= 10)


@dataclass
class Run:
    row: RowState
    events: list[Event]
    fed: list[int] = field(default_factory=list)  # every token that became the model's input, in order

    @property
    def finished(self) -> Finished:
        assert isinstance(self.events[-1], Finished), self.events
        return self.events[-1]

    def deltas(self, reasoning: bool) -> str:
        return "".join(e.text for e in self.events if isinstance(e, Delta) and e.reasoning is reasoning)


def start(codec: TokenCodec, *, think_budget: int | None = None, answer_limit: int = 100, stream: bool = True,
          **params: object) -> Run:
    events: list[Event] = []
    request = GenerationRequest("prompt", SamplingParams(**params), think_budget, stream)
    return Run(RowState(codec, Handle(1), request, events.append, [5, 6, 7], answer_limit), events)


def run(r: Run, model_tokens: Sequence[int]) -> Run:
    """Step until the row finishes or the model has nothing more to say."""
    tokens = list(model_tokens)
    while not r.row.done:
        if r.row.take_forced():
            r.fed.append(r.row.pending)
            continue
        if not tokens:
            break
        if not r.row.accept(tokens.pop(0)):
            r.fed.append(r.row.pending)  # the model's token, or the forced one that replaced it
    return r


def say(codec: FakeCodec, text: str, eos: bool = True) -> list[int]:
    return codec.encode(text) + ([EOS] if eos else [])


def context(codec: FakeCodec, r: Run) -> str:
    return codec.decode(r.fed)


# ------------------------------------------------------------------------------------------------ plain rows


def test_plain_answer_ends_at_eos_and_streams_every_character() -> None:
    codec = FakeCodec()
    r = run(start(codec), say(codec, "Hello world"))
    f = r.finished
    assert (f.finish_reason, f.content, f.reasoning) == ("stop", "Hello world", None)
    assert (f.prompt_tokens, f.completion_tokens, f.reasoning_tokens) == (3, 11, 0)
    assert r.deltas(reasoning=False) == "Hello world" and r.deltas(reasoning=True) == ""
    assert sum(isinstance(e, Delta) for e in r.events) == 11  # one delta per token: nothing held back


def test_max_tokens_ends_with_length() -> None:
    codec = FakeCodec()
    r = run(start(codec, answer_limit=5), say(codec, "Hello world"))
    assert (r.finished.finish_reason, r.finished.content, r.finished.completion_tokens) == ("length", "Hello", 5)


def test_stop_string_cuts_the_answer_and_is_never_streamed() -> None:
    codec = FakeCodec()
    r = run(start(codec, stop=("END",)), say(codec, "abcENxENDxyz", eos=False))
    assert (r.finished.finish_reason, r.finished.content) == ("stop", "abcENx")
    assert r.deltas(reasoning=False) == "abcENx"
    partial = [e.text for e in r.events if isinstance(e, Delta)]
    assert "abcEN" not in "".join(partial[:3])  # "EN" was held back until "x" showed it was no stop


def test_ignore_eos_generates_up_to_max_tokens() -> None:
    codec = FakeCodec()
    r = run(start(codec, answer_limit=4, ignore_eos=True), [EOS, *codec.encode("abc")])
    assert (r.finished.finish_reason, r.finished.content, r.finished.completion_tokens) == ("length", "abc", 4)


def test_plain_answer_keeps_its_whitespace() -> None:
    codec = FakeCodec()
    assert run(start(codec), say(codec, "\n\nYes ")).finished.content == "\n\nYes "


def test_not_streaming_sends_only_the_final_event() -> None:
    codec = FakeCodec()
    r = run(start(codec, think_budget=3, stream=False), say(codec, "abcdef"))
    assert len(r.events) == 1 and r.finished.reasoning == "abc" and r.finished.content == "def"


# ------------------------------------------------------------------------------------------------ thinking


def test_think_budget_closes_the_tag_and_answers() -> None:
    codec = FakeCodec(["</think>"])
    r = run(start(codec, think_budget=4), say(codec, "abcdYes"))
    f = r.finished
    assert (f.reasoning, f.content, f.reasoning_tokens, f.completion_tokens) == ("abcd", "Yes", 4, 7)
    assert context(codec, r) == "abcd\n</think>\nYes"  # the forced close entered the context, uncounted
    assert r.deltas(reasoning=True) == "abcd" and r.deltas(reasoning=False) == "Yes"


def test_model_closing_the_tag_itself() -> None:
    codec = FakeCodec(["</think>"])
    r = run(start(codec, think_budget=50), say(codec, "plan</think>", eos=False) + say(codec, "Done"))
    f = r.finished
    assert (f.reasoning, f.content, f.reasoning_tokens) == ("plan", "Done", 5)
    assert context(codec, r) == "plan</think>\nDone"  # the model's tag token is replaced by the forced close


def test_text_past_the_tag_in_the_closing_token_is_dropped_from_the_context() -> None:
    codec = FakeCodec(["</thin", "k>\nHi"])  # the token that completes the tag carries answer text too
    r = run(start(codec, think_budget=50), say(codec, "ab</think>\nHi", eos=False) + say(codec, "Ok"))
    assert (r.finished.reasoning, r.finished.content) == ("ab", "Ok")
    assert context(codec, r) == "ab</think>\nOk"


def test_end_of_turn_inside_the_reasoning_forces_the_close_and_answers_anyway() -> None:
    codec = FakeCodec(["</think>"])
    r = run(start(codec, think_budget=50), [*codec.encode("ab"), EOS, *say(codec, "Yes")])
    f = r.finished
    assert (f.reasoning, f.content, f.finish_reason) == ("ab", "Yes", "stop")
    assert EOS not in r.fed and context(codec, r) == "ab\n</think>\nYes"


def test_zero_budget_closes_at_once() -> None:
    codec = FakeCodec(["</think>"])
    r = run(start(codec, think_budget=0), say(codec, "xYes"))
    assert (r.finished.reasoning, r.finished.content, r.finished.reasoning_tokens) == ("", "Yes", 0)
    assert context(codec, r) == "</think>\nYes"  # the first model token was dropped for the close


def test_forced_thinking_strips_reasoning_and_the_answer_start() -> None:
    codec = FakeCodec(["</think>"])
    r = run(start(codec, think_budget=6), say(codec, "\nhmm \n\n\nYes"))
    assert (r.finished.reasoning, r.finished.content) == ("hmm", "Yes")
    assert r.deltas(reasoning=True) == "hmm" and r.deltas(reasoning=False) == "Yes"


def test_stop_strings_apply_to_the_answer_not_the_reasoning() -> None:
    codec = FakeCodec(["</think>"])
    r = run(start(codec, think_budget=3, stop=("!",)), say(codec, "a!bYes!no"))
    assert (r.finished.reasoning, r.finished.content, r.finished.finish_reason) == ("a!b", "Yes", "stop")


def test_answer_limit_after_thinking() -> None:
    codec = FakeCodec(["</think>"])
    r = run(start(codec, think_budget=2, answer_limit=3), say(codec, "abcdefg"))
    f = r.finished
    assert (f.reasoning, f.content, f.finish_reason, f.completion_tokens) == ("ab", "cde", "length", 5)


# ------------------------------------------------------------------------------------------------ failures


def test_fail_sends_one_final_event() -> None:
    codec = FakeCodec()
    r = start(codec)
    r.row.fail("engine stopping", 503)
    r.row.fail("again")
    assert r.events == [Failed("engine stopping", 503)] and r.row.done


def test_a_sink_that_raises_cancels_the_request() -> None:
    def broken(event: Event) -> None:
        raise RuntimeError("event loop closed")

    request = GenerationRequest("p", SamplingParams())
    row = RowState(FakeCodec(), Handle(7), request, broken, [1], 10)
    row.accept(FakeCodec().encode("a")[0])
    assert row.handle.cancelled
