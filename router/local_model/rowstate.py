"""The per-row program of the local engine, free of torch: thinking and answer phases, the forced `</think>`,
stop strings, token limits, end of turn, and the streamed deltas.

The engine owns the model, the batch and the KV cache; a row only sees token ids and a `TokenCodec` (encode,
decode, the end-of-turn ids and a newline id), so it is tested with a fake tokenizer in milliseconds
(tests/router/test_rowstate.py) instead of against the real model.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Protocol, Sequence

from .generation import Delta, Event, Failed, Finished, GenerationRequest, Handle, Sink
from .text import THINK_CLOSE, IncrementalDecoder, find_stop, held_back

log = logging.getLogger(__name__)


class TokenCodec(Protocol):
    """What a row needs from the tokenizer."""

    @property
    def eos_ids(self) -> frozenset[int]:
        """Token ids that end the model's turn."""

    @property
    def newline_id(self) -> int:
        """A token to feed when a forced close has nothing else to feed."""

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, without special tokens."""

    def decode(self, ids: Sequence[int]) -> str:
        """Text of `ids`, special tokens skipped."""


class RowState:
    """One request's text program: thinking then answering, stop strings, token limits, streamed deltas.

    `accept(token)` takes the token the model chose; tokens the row must feed next regardless of the model
    (the forced closing tag) wait in `forced`, and `pending` is the next input token for the model.
    """

    def __init__(self, codec: TokenCodec, handle: Handle, request: GenerationRequest, sink: Sink,
                 prompt_ids: list[int], answer_limit: int) -> None:
        self.codec = codec
        self.handle = handle
        self.request = request
        self.params = request.params
        self.sink = sink
        self.prompt_ids = prompt_ids
        self.pending = -1  # the next input token (sampled or forced), not yet in the cache
        self.forced: deque[int] = deque()
        self.answer_limit = answer_limit
        self.thinking = request.think_budget is not None
        self.budget = max(0, request.think_budget or 0)
        self.think_ids: list[int] = []
        self.reasoning: str | None = None
        self.reasoning_tokens = 0
        self.answer_tokens = 0
        self.done = False  # a final event (Finished or Failed) was sent
        self._start_phase()

    def _start_phase(self) -> None:
        self.decoder = IncrementalDecoder(self.codec.decode)
        self.text = ""
        self.emitted = 0
        self.stops: tuple[str, ...] = (THINK_CLOSE,) if self.thinking else self.params.stop
        self.scan_from = 0
        self.limit = self.budget if self.thinking else self.answer_limit
        # Forced thinking: the reasoning is reported stripped, the answer after it without leading whitespace
        # (the model tends to open both with blank lines). Plain requests are reported exactly as generated.
        forced = self.request.think_budget is not None
        self.lstrip = forced
        self.rstrip = forced and self.thinking

    # -- events

    def _send(self, event: Event) -> None:
        try:
            self.sink(event)
        except Exception:  # the consumer is gone (e.g. its event loop closed): stop working for it
            log.debug("sink failed; cancelling request %s", self.handle.id, exc_info=True)
            self.handle.cancel()

    def _bounds(self, final: bool) -> tuple[int, int]:
        """The part of `text` that may be reported now: not a possible stop-string prefix, stripped if asked."""
        text = self.text
        start = len(text) - len(text.lstrip()) if self.lstrip else 0
        end = len(text)
        if not final and self.stops:
            end -= held_back(text[max(start, self.emitted):], self.stops)
        if self.rstrip:
            end = len(text[:end].rstrip())
        return start, max(start, end)

    def _output(self) -> str:
        start, end = self._bounds(final=True)
        return self.text[start:end]

    def _emit(self, final: bool = False) -> None:
        if not self.request.stream:
            return
        start, end = self._bounds(final)
        start = max(start, self.emitted)
        if end > start:
            self._send(Delta(self.text[start:end], reasoning=self.thinking))
            self.emitted = end

    def fail(self, message: str, status: int = 500) -> None:
        if not self.done:
            self.done = True
            self._send(Failed(message, status))

    def _finish(self, reason: str) -> bool:
        self.done = True
        self._emit(final=True)
        self._send(Finished(
            finish_reason=reason,
            content=self._output(),
            reasoning=self.reasoning,
            prompt_tokens=len(self.prompt_ids),
            completion_tokens=self.reasoning_tokens + self.answer_tokens,
            reasoning_tokens=self.reasoning_tokens,
        ))
        return True

    # -- the state machine

    def take_forced(self) -> bool:
        """Feed the next forced token instead of sampling; False when nothing is forced."""
        if not self.forced:
            return False
        self.pending = self.forced.popleft()
        return True

    def accept(self, token: int) -> bool:
        """Take the token the model chose; return True when the request is finished."""
        if self.thinking and self.reasoning_tokens >= self.budget:  # a zero budget: close at once
            self._end_thinking(token, dropped=True)
            return False
        if token in self.codec.eos_ids and not (self.params.ignore_eos and not self.thinking):
            if self.thinking:  # the model ended its turn inside the reasoning: close the tag and answer anyway
                self._end_thinking(token, dropped=True)
                return False
            self.text += self.decoder.flush()
            return self._finish("stop")

        self.pending = token
        if self.thinking:
            self.reasoning_tokens += 1
            self.think_ids.append(token)
        else:
            self.answer_tokens += 1
        self.text += self.decoder.push(token)
        done = (self.reasoning_tokens if self.thinking else self.answer_tokens) >= self.limit
        if done:
            self.text += self.decoder.flush()
        if self.stops and len(self.text) > self.scan_from:
            i = find_stop(self.text, self.stops, self.scan_from)
            if i >= 0:
                self.text = self.text[:i]
                if self.thinking:
                    self._end_thinking(token, dropped=False, closed_by_model=True)
                    return False
                return self._finish("stop")
            self.scan_from = max(0, len(self.text) - max(len(s) for s in self.stops) + 1)
        if done:
            if self.thinking:
                self._end_thinking(token, dropped=False)
                return False
            return self._finish("length")
        self._emit()
        return False

    def _end_thinking(self, token: int, *, dropped: bool, closed_by_model: bool = False) -> None:
        """Close the reasoning and switch the row to the answer, forcing the closing tag into its context.

        dropped: `token` was not accepted (end of turn, or a zero budget) and must not enter the cache.
        closed_by_model: the model wrote `</think>` itself; `token` (pending, not yet in the cache) completed it.
        """
        codec = self.codec
        if not closed_by_model:
            self.text += self.decoder.flush()
        reasoning = self.text
        sep = "" if not reasoning or reasoning.endswith("\n") else "\n"
        replace_pending = dropped
        if closed_by_model:
            # The cache holds every thinking token but the last. Force exactly what turns that text into
            # "<reasoning></think>\n", dropping the last token (which may carry text past the tag).
            in_cache = codec.decode(self.think_ids[:-1])
            target = reasoning + THINK_CLOSE + "\n"
            if target.startswith(in_cache) and len(target) > len(in_cache):
                forced = codec.encode(target[len(in_cache):])
                replace_pending = True
            else:  # odd tokenisation: keep what the model wrote and just end the line
                forced = codec.encode("\n")
        else:
            forced = codec.encode(sep + THINK_CLOSE + "\n")
        self.forced.extend(forced)
        if replace_pending:
            self.pending = self.forced.popleft() if self.forced else codec.newline_id
        self._emit(final=True)
        self.reasoning = self._output()
        self.thinking = False
        self._start_phase()
