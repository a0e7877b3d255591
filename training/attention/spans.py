"""Constraint spans of a prompt, located inside the chat-templated text and mapped to token indices."""

from __future__ import annotations

from typing import Callable, Sequence

from classifiers.constraints import detect_constraints

Span = tuple[int, int]
_SENTINEL = "\u2063THINKGATE-CONTENT\u2063"


class TemplateError(ValueError):
    """The chat template changes the message text, so spans cannot be placed in the rendered prompt."""


def constraint_spans(text: str) -> list[Span]:
    """The character spans the constraint detector claims in `text`, merged where they overlap, sorted."""
    spans = sorted(d.span for d in detect_constraints(text) if d.span[1] > d.span[0])
    merged: list[Span] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def content_offset(render: Callable[[str], str], content: str) -> int:
    """Where `content` starts inside `render(content)` (the templated prompt).

    The template is rendered once with a sentinel in place of the content; the real rendering must equal the
    sentinel rendering with the content put back, or the template altered the text (stripped it, escaped it)
    and character offsets inside it would be wrong; that raises `TemplateError` instead of guessing.
    """
    marked = render(_SENTINEL)
    if marked.count(_SENTINEL) != 1:
        raise TemplateError("the chat template does not render the message content exactly once")
    prefix, suffix = marked.split(_SENTINEL)
    if render(content) != prefix + content + suffix:
        raise TemplateError("the chat template alters the message text; spans cannot be mapped into it")
    return len(prefix)


def tokens_in_spans(offsets: Sequence[tuple[int, int]], spans: Sequence[Span], shift: int = 0) -> list[int]:
    """Indices of the tokens whose characters overlap any span (spans shifted by `shift` characters).

    A token that straddles a span edge counts: it carries part of the constraint's text. Tokens with no
    characters (special tokens, whose offsets are (0, 0) or (n, n)) never count.
    """
    shifted = [(a + shift, b + shift) for a, b in spans]
    out = []
    for i, (start, end) in enumerate(offsets):
        if end > start and any(start < b and end > a for a, b in shifted):
            out.append(i)
    return out
