"""The token sequences to teacher-force, rebuilt as the local backend fed them to the model.

Base run: the chat-templated prompt, then the recorded answer. CoT run (`forced-cot`, see
`router/local_model/engine.py`): the templated prompt ending in the opening `<think>\\n`, the reasoning, the
closing `</think>\\n` the engine forces in (preceded by a newline when the reasoning does not end with one; when
the model wrote the tag itself the engine adds no newline, so such a run is replayed with one newline more),
then the answer. The engine tokenises the prompt on its own, so the prompt is tokenised separately from what follows.
The table stores the reasoning and (in forced mode) the answer with surrounding whitespace stripped, so blank
lines the model wrote at their edges are not replayed; everything else is the scored text, token for token up
to re-tokenisation (the model's own token choices for the same text may split differently).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from router.local_model.text import THINK_CLOSE, THINK_OPEN, message_text, render_prompt

from .spans import Span, content_offset, tokens_in_spans


@dataclass(frozen=True)
class TeacherForced:
    """One teacher-forced run: token ids and where its phases start (token indices into `ids`)."""

    ids: list[int]
    prompt_len: int  # the first generated token (reasoning for CoT, answer for base)
    answer_start: int
    constraint_idx: list[int]  # prompt tokens inside constraint spans
    control_idx: tuple[int, ...] = ()  # the rest of the user message's tokens (a control for length effects)

    @property
    def think_len(self) -> int:
        """Generated tokens before the answer (reasoning plus the forced closing tag; 0 for a base run)."""
        return self.answer_start - self.prompt_len

    @property
    def answer_len(self) -> int:
        return len(self.ids) - self.answer_start


def last_user_index(messages: Sequence[dict[str, Any]]) -> int:
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].get("role") == "user":
            return i
    raise ValueError("the example has no user message")


def _encode(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer.encode(text, add_special_tokens=False)) if text else []


def build_sequence(tokenizer: Any, messages: Sequence[dict[str, Any]], spans: Sequence[Span], answer: str,
                   reasoning: str | None = None, *, max_answer_tokens: int | None = None) -> TeacherForced:
    """The base run (`reasoning is None`) or the CoT run of one example, with its constraint token indices.

    `spans` are character spans in the text of the last user message; `max_answer_tokens` keeps only the
    first answer tokens (None: all).
    """
    messages = [dict(m) for m in messages]
    user = last_user_index(messages)
    suffix = THINK_OPEN if reasoning is not None else ""

    def render(content: str) -> str:
        msgs = [dict(m) for m in messages]
        msgs[user]["content"] = content
        return render_prompt(tokenizer, msgs, suffix=suffix)

    content = message_text(messages[user].get("content"))
    shift = content_offset(render, content)
    prompt = render(content)
    enc = tokenizer(prompt, return_offsets_mapping=True, add_special_tokens=False)
    ids = list(enc["input_ids"])
    offsets = [tuple(o) for o in enc["offset_mapping"]]
    constraint_idx = tokens_in_spans(offsets, spans, shift)
    claimed = set(constraint_idx)
    control_idx = tuple(i for i in tokens_in_spans(offsets, [(0, len(content))], shift) if i not in claimed)
    prompt_len = len(ids)
    if reasoning is not None:
        ids += _encode(tokenizer, reasoning)
        sep = "" if not reasoning or reasoning.endswith("\n") else "\n"
        ids += _encode(tokenizer, sep + THINK_CLOSE + "\n")
    answer_start = len(ids)
    answer_ids = _encode(tokenizer, answer)
    if max_answer_tokens is not None:
        answer_ids = answer_ids[:max_answer_tokens]
    return TeacherForced(ids + answer_ids, prompt_len, answer_start, constraint_idx, control_idx)
