"""Split a model's output into reasoning and answer at `<think>…</think>` tags, incrementally.

Works on a whole string (`split_think`) or on a stream (`ThinkSplitter.feed` per chunk, then `finish`),
with tags split across chunk boundaries. The rules, identical in both modes:

- Leading whitespace is ignored. If the output *starts* with the open tag, the text up to the close tag is
  reasoning and the text after it (leading whitespace removed) is the answer.
- A model that **never opens** the tag (its first non-space text is not `<think>`): everything is answer
  and there is no reasoning.
- A model that opens the tag and **never closes** it (e.g. cut off by `max_tokens`): everything after the
  open tag is reasoning and the answer is empty; the upstream's `finish_reason` (usually `length`) says why.
  Streaming cannot take back text already sent as reasoning, so both modes behave this way.
- `start_in_think=True` is for outputs that begin inside the block because the prompt already opened it
  (forced thinking by prefill, Qwen3's template): the open tag is then optional.
"""

from __future__ import annotations

from typing import Literal

Part = tuple[Literal["reasoning", "content"], str]

OPEN_TAG = "<think>"
CLOSE_TAG = "</think>"


class ThinkSplitter:
    def __init__(self, *, start_in_think: bool = False, open_tag: str = OPEN_TAG,
                 close_tag: str = CLOSE_TAG) -> None:
        self.open_tag, self.close_tag = open_tag, close_tag
        self._state = "maybe_open"  # maybe_open -> think -> answer_start -> answer
        self._start_in_think = start_in_think
        self._buf = ""
        self.saw_reasoning = False

    def feed(self, text: str) -> list[Part]:
        self._buf += text
        out: list[Part] = []
        while True:
            if self._state == "maybe_open":
                stripped = self._buf.lstrip()
                if stripped.startswith(self.open_tag):
                    self._buf = stripped[len(self.open_tag):]
                    self._state = "think"
                    self.saw_reasoning = True
                    continue
                if self.open_tag.startswith(stripped):
                    return out  # still could be the tag (or only whitespace): wait for more
                self._state = "think" if self._start_in_think else "answer"
                if self._start_in_think:
                    self.saw_reasoning = True
                else:
                    self._buf = stripped
                continue
            if self._state == "think":
                idx = self._buf.find(self.close_tag)
                if idx >= 0:
                    if idx:
                        out.append(("reasoning", self._buf[:idx]))
                    self._buf = self._buf[idx + len(self.close_tag):]
                    self._state = "answer_start"
                    continue
                keep = _partial_suffix(self._buf, self.close_tag)
                emit = self._buf[: len(self._buf) - keep]
                if emit:
                    out.append(("reasoning", emit))
                self._buf = self._buf[len(emit):]
                return out
            if self._state == "answer_start":
                stripped = self._buf.lstrip()
                if not stripped:
                    self._buf = ""
                    return out
                self._buf = stripped
                self._state = "answer"
                continue
            if self._buf:
                out.append(("content", self._buf))
                self._buf = ""
            return out

    def finish(self) -> list[Part]:
        """Flush what is held back at the end of the stream."""
        buf, self._buf = self._buf, ""
        if self._state == "maybe_open":
            stripped = buf.lstrip()
            if self._start_in_think and stripped:
                self.saw_reasoning = True
                return [("reasoning", stripped)]
            return [("content", stripped)] if stripped else []
        if self._state == "think":
            return [("reasoning", buf)] if buf else []
        if self._state == "answer_start":
            return []
        return [("content", buf)] if buf else []


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest suffix of `text` that is a proper prefix of `tag` (a tag cut by a chunk)."""
    for n in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:n]):
            return n
    return 0


def split_think(text: str, *, start_in_think: bool = False) -> tuple[str | None, str]:
    """Return `(reasoning or None, answer)` for a complete output."""
    splitter = ThinkSplitter(start_in_think=start_in_think)
    parts = splitter.feed(text) + splitter.finish()
    reasoning = "".join(t for kind, t in parts if kind == "reasoning")
    content = "".join(t for kind, t in parts if kind == "content")
    return (reasoning if splitter.saw_reasoning else None), content
