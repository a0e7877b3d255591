"""A continuous-batching generation engine for one small causal LM on CPU, in a background thread.

Why a hand-written decode loop instead of `model.generate`:

- Every request carries its own sampling parameters, stop strings, seed, token limit and (for forced thinking)
  a two-phase program. `generate` takes one set per batch, so it would need one batch per parameter set and
  could not change a row's program midway.
- Requests arrive at different times. With `generate` a batch runs until its longest row ends, while finished
  rows keep costing compute and new arrivals wait for the whole batch. Here a row leaves the batch the step it
  finishes (or its client disconnects), and new requests join at the next step.
- Streaming per row falls out naturally: each step yields one token per row.

How it works: one left-padded batch with a shared `DynamicCache`. New requests are tokenised and prefilled
together (left-padded, in chunks of at most `max_prefill_tokens`), then their KV caches are left-padded to the
running batch's length and concatenated onto it along the batch dimension; a row's positions are its own token
count, so padding never shifts RoPE. Each decode step feeds every row its pending token (one forward pass for
the whole batch, logits for the last position only), then picks each row's next token: argmax (greedy), a
seeded sample (temperature / top-p / top-k), or a forced token. Finished and cancelled rows are dropped with an
index select, and columns that became padding in every row are trimmed.

Forced thinking is a per-row program: the prompt ends with the opening `<think>\\n`; the row generates until
the text contains `</think>`, the model ends its turn, or `think_budget` tokens; then the engine forces the
closing `</think>\\n` tokens into that same row (one per step; no second prefill) and the row generates the
answer with its reasoning in context. Both phases batch with whatever else is running.

When idle, the engine waits `gather_ms` after the first arrival so that requests sent together start together;
when busy, arrivals join at the next step (a step takes 40-150 ms here, which gathers on its own).

The engine is synchronous and thread-based; callers hand in a `sink` callable that receives `Delta`,
`Finished` and `Failed` events on the engine thread and must return quickly (the async backend forwards them
to its event loop with `call_soon_threadsafe`).

Numerics: a row's logits depend slightly on what else is in its batch (padding and batch shape change the
order of floating-point sums), so greedy output is reproducible for the same batch composition, and nearly
always, but not bit-for-bit guaranteed, across different ones.
"""

from __future__ import annotations

import itertools
import logging
import random
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F

from .kv import new_cache
from .text import THINK_CLOSE, IncrementalDecoder, find_stop, held_back

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class SamplingParams:
    """How one request samples. `temperature <= 0` (the default) is greedy."""

    max_tokens: int = 512
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    ignore_eos: bool = False  # benchmarks: always generate max_tokens

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0 or self.top_k == 1


@dataclass(frozen=True)
class GenerationRequest:
    """One generation. `prompt` is the fully rendered prompt text (chat template applied).

    `think_budget` turns on forced thinking: `prompt` must end with the opening tag; the row thinks for up to
    that many tokens, the engine closes the tag, and the row answers with up to `params.max_tokens` tokens.
    `stream=False` delivers only the final event (no per-token deltas).
    """

    prompt: str
    params: SamplingParams = SamplingParams()
    think_budget: int | None = None
    stream: bool = True


@dataclass(frozen=True)
class Delta:
    """New text for a streaming request: answer text, or reasoning text when `reasoning` is set."""

    text: str
    reasoning: bool = False


@dataclass(frozen=True)
class Finished:
    finish_reason: str  # "stop" | "length"
    content: str
    reasoning: str | None
    prompt_tokens: int
    completion_tokens: int  # reasoning + answer tokens (forced closing-tag tokens are not counted)
    reasoning_tokens: int


@dataclass(frozen=True)
class Failed:
    message: str
    status: int = 500  # 400: the request cannot be served (e.g. prompt too long); 503: engine shutting down


Event = Delta | Finished | Failed
Sink = Callable[[Event], None]


class Handle:
    """A submitted request. `cancel()` is safe from any thread; the row leaves the batch at the next step."""

    __slots__ = ("id", "cancelled")

    def __init__(self, request_id: int) -> None:
        self.id = request_id
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


@dataclass
class EngineStats:
    max_batch_size_seen: int = 0  # the largest batch a decode step ran with
    decode_steps: int = 0
    prefill_batches: int = 0
    prompt_tokens: int = 0
    generated_tokens: int = 0  # tokens sampled (forced tokens excluded)
    completed: int = 0
    cancelled: int = 0
    failed: int = 0


# ---------------------------------------------------------------------------------------------------- one row


class _Row:
    """A request inside the engine: its sampling state, its text, and its place in the KV cache."""

    def __init__(self, engine: Engine, handle: Handle, request: GenerationRequest, sink: Sink,
                 prompt_ids: list[int], answer_limit: int) -> None:
        self.engine = engine
        self.handle = handle
        self.request = request
        self.params = request.params
        self.sink = sink
        self.prompt_ids = prompt_ids
        self.length = 0  # tokens of this row in the KV cache
        self.pending = -1  # the next input token (sampled or forced), not yet in the cache
        self.forced: deque[int] = deque()
        self.answer_limit = answer_limit
        self.thinking = request.think_budget is not None
        self.budget = max(0, request.think_budget or 0)
        self.think_ids: list[int] = []
        self.reasoning: str | None = None
        self.reasoning_tokens = 0
        self.answer_tokens = 0
        self._generator: torch.Generator | None = None
        self.done = False  # a final event (Finished or Failed) was sent
        self._start_phase()

    def _start_phase(self) -> None:
        self.decoder = IncrementalDecoder(self.engine._decode)
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

    @property
    def generator(self) -> torch.Generator:
        if self._generator is None:
            seed = self.params.seed if self.params.seed is not None else random.getrandbits(63)
            self._generator = torch.Generator().manual_seed(seed)
        return self._generator

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

    def accept(self, token: int) -> bool:
        """Take the token the model chose; return True when the request is finished."""
        if self.thinking and self.reasoning_tokens >= self.budget:  # a zero budget: close at once
            self._end_thinking(token, dropped=True)
            return False
        if token in self.engine._eos_ids and not (self.params.ignore_eos and not self.thinking):
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
        engine = self.engine
        if not closed_by_model:
            self.text += self.decoder.flush()
        reasoning = self.text
        sep = "" if not reasoning or reasoning.endswith("\n") else "\n"
        replace_pending = dropped
        if closed_by_model:
            # The cache holds every thinking token but the last. Force exactly what turns that text into
            # "<reasoning></think>\n", dropping the last token (which may carry text past the tag).
            in_cache = engine._decode(self.think_ids[:-1])
            target = reasoning + THINK_CLOSE + "\n"
            if target.startswith(in_cache) and len(target) > len(in_cache):
                forced = engine._encode(target[len(in_cache):])
                replace_pending = True
            else:  # odd tokenisation: keep what the model wrote and just end the line
                forced = engine._encode("\n")
        else:
            forced = engine._encode(sep + THINK_CLOSE + "\n")
        self.forced.extend(forced)
        if replace_pending:
            self.pending = self.forced.popleft() if self.forced else engine._newline_id
        self._emit(final=True)
        self.reasoning = self._output()
        self.thinking = False
        self._start_phase()


# ---------------------------------------------------------------------------------------------------- engine


class Engine:
    """Serve many generation requests from one model with continuous batching (see the module docstring).

    Use: `engine.start()`, then `handle = engine.submit(request, sink)` from any thread; `engine.close()`.
    """

    def __init__(self, model: Any, tokenizer: Any, *, max_batch_size: int = 16, gather_ms: float = 8.0,
                 max_prefill_tokens: int = 2048, max_context: int | None = None,
                 name: str = "thinkgate-local-engine") -> None:
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        self._model = model
        self._tokenizer = tokenizer
        # The Rust tokenizer's encode/decode take no mutable borrow, so the engine thread and callers can use
        # it at once (the Python wrapper's __call__ may reconfigure padding/truncation, which is not safe).
        self._tk = getattr(tokenizer, "backend_tokenizer", None)
        self._tk_lock = threading.Lock()
        self.max_batch_size = max_batch_size
        self.gather_s = max(0.0, gather_ms / 1000.0)
        self.max_prefill_tokens = max(1, max_prefill_tokens)
        config = model.config
        self.max_context = max_context or getattr(config, "max_position_embeddings", None) or 4096
        self._eos_ids = self._find_eos_ids(model, tokenizer)
        pad = getattr(tokenizer, "pad_token_id", None)
        self._pad_id = pad if pad is not None else min(self._eos_ids)
        self._newline_id = (self._encode("\n") or [self._pad_id])[0]
        self._close_tokens = len(self._encode("\n" + THINK_CLOSE + "\n"))  # the most a forced close adds
        self._name = name

        self._cond = threading.Condition()
        self._pending: deque[tuple[Handle, GenerationRequest, Sink]] = deque()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._ids = itertools.count(1)

        # Engine-thread state: the running batch.
        self._rows: list[_Row] = []
        self._cache: Any = None
        self._mask: torch.Tensor | None = None  # [batch, cached length], 1 = real token
        self._admitting = 0  # rows taken off the queue and not yet in the batch (tokenising, prefilling)
        self._stats = EngineStats()

    # -- tokenizer helpers

    @staticmethod
    def _find_eos_ids(model: Any, tokenizer: Any) -> frozenset[int]:
        ids: set[int] = set()
        for source in (getattr(model, "generation_config", None), model.config, tokenizer):
            value = getattr(source, "eos_token_id", None)
            if isinstance(value, int):
                ids.add(value)
            elif isinstance(value, (list, tuple)):
                ids.update(v for v in value if isinstance(v, int))
        if not ids:
            raise ValueError("the model defines no end-of-sequence token")
        return frozenset(ids)

    def _encode(self, text: str) -> list[int]:
        if self._tk is not None:
            return list(self._tk.encode(text, add_special_tokens=False).ids)
        with self._tk_lock:
            return list(self._tokenizer.encode(text, add_special_tokens=False))

    def _decode(self, ids: Sequence[int]) -> str:
        if not ids:
            return ""
        if self._tk is not None:
            return self._tk.decode(list(ids), skip_special_tokens=True)
        with self._tk_lock:
            return self._tokenizer.decode(list(ids), skip_special_tokens=True)

    def count_tokens(self, text: str) -> int:
        """How many tokens `text` is (as a prompt: no special tokens added)."""
        return len(self._encode(text))

    # -- public API

    def start(self) -> Engine:
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
        return self

    def submit(self, request: GenerationRequest, sink: Sink) -> Handle:
        """Queue a request; events go to `sink` on the engine thread. Never blocks on generation."""
        handle = Handle(next(self._ids))
        with self._cond:
            if self._stopping:
                raise RuntimeError("the engine is closed")
            self._pending.append((handle, request, sink))
            self._cond.notify()
        return handle

    def close(self, timeout: float | None = 30.0) -> None:
        """Stop the thread; queued and running requests get `Failed(status=503)`."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stopping

    def stats(self) -> dict[str, int]:
        """A snapshot of the counters, plus the current number of running and queued requests."""
        snapshot = asdict(self._stats)
        snapshot["active"] = len(self._rows) + self._admitting
        snapshot["queued"] = len(self._pending)
        return snapshot

    def reset_stats(self) -> None:
        self._stats = EngineStats()

    # -- the loop

    def _run(self) -> None:
        try:
            with torch.inference_mode():
                while True:
                    admitted = self._admit()
                    if admitted is None:
                        break
                    try:
                        if admitted:
                            self._prefill(admitted)
                        self._admitting = 0
                        if self._rows:
                            self._step()
                    except Exception as exc:  # a bug in one step fails the batch, not the engine
                        self._admitting = 0
                        log.exception("the local model engine failed a step")
                        message = f"generation failed: {type(exc).__name__}: {exc}"
                        for row in self._rows + [r for r in admitted if r not in self._rows]:
                            if not row.done and not row.handle.cancelled:
                                self._stats.failed += 1
                                row.fail(message)
                        self._reset_batch()
        except BaseException as exc:  # never die silently: fail everything still waiting
            log.exception("the local model engine stopped")
            with self._cond:
                self._stopping = True
            self._fail_all(f"the local model engine stopped: {type(exc).__name__}", 500)
            raise
        self._fail_all("the local model engine is shutting down", 503)

    def _fail_all(self, message: str, status: int) -> None:
        with self._cond:
            queued = list(self._pending)
            self._pending.clear()
        for handle, _request, sink in queued:
            self._safe_sink(sink, Failed(message, status))
        for row in self._rows:
            row.fail(message, status)
        self._reset_batch()

    @staticmethod
    def _safe_sink(sink: Sink, event: Event) -> None:
        try:
            sink(event)
        except Exception:
            log.debug("sink failed", exc_info=True)

    def _admit(self) -> list[_Row] | None:
        """New rows for the batch (waiting for work when idle); None when the engine is stopping."""
        with self._cond:
            if not self._rows:
                while not self._pending and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return None
                deadline = time.monotonic() + self.gather_s
                while len(self._pending) < self.max_batch_size and not self._stopping:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
            if self._stopping:
                return None
            room = self.max_batch_size - len(self._rows)
            taken: list[tuple[Handle, GenerationRequest, Sink]] = []
            while self._pending and len(taken) < room:
                taken.append(self._pending.popleft())
            self._admitting = len(taken)
        rows = []
        for handle, request, sink in taken:
            if handle.cancelled:
                self._stats.cancelled += 1
                continue
            row = self._make_row(handle, request, sink)
            if row is not None:
                rows.append(row)
        return rows

    def _make_row(self, handle: Handle, request: GenerationRequest, sink: Sink) -> _Row | None:
        try:
            prompt_ids = self._encode(request.prompt)
        except Exception as exc:
            self._stats.failed += 1
            self._safe_sink(sink, Failed(f"could not tokenize the prompt: {exc}", 400))
            return None
        if not prompt_ids:
            self._stats.failed += 1
            self._safe_sink(sink, Failed("the prompt is empty", 400))
            return None
        room = self.max_context - len(prompt_ids)
        if request.think_budget is not None:
            room -= max(0, request.think_budget) + self._close_tokens
        if room < 1:
            self._stats.failed += 1
            self._safe_sink(sink, Failed(
                f"the prompt is too long: {len(prompt_ids)} tokens"
                + (f" plus a thinking budget of {request.think_budget}" if request.think_budget else "")
                + f" leave no room in the model's context of {self.max_context} tokens", 400))
            return None
        limit = max(1, min(request.params.max_tokens, room))
        return _Row(self, handle, request, sink, prompt_ids, limit)

    def _prefill(self, rows: list[_Row]) -> None:
        rows.sort(key=lambda r: len(r.prompt_ids))
        chunk: list[_Row] = []
        for row in rows:
            longest = max(len(row.prompt_ids), len(chunk[-1].prompt_ids) if chunk else 0)
            if chunk and (len(chunk) + 1) * longest > self.max_prefill_tokens:
                self._prefill_chunk(chunk)
                chunk = []
            chunk.append(row)
        if chunk:
            self._prefill_chunk(chunk)

    def _prefill_chunk(self, rows: list[_Row]) -> None:
        width = max(len(r.prompt_ids) for r in rows)
        ids = torch.full((len(rows), width), self._pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            n = len(row.prompt_ids)
            ids[i, width - n:] = torch.tensor(row.prompt_ids, dtype=torch.long)
            mask[i, width - n:] = 1
            row.length = n
        positions = (mask.cumsum(-1) - 1).clamp_(min=0)
        cache = new_cache(self._model.config)
        try:
            out = self._model(input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache,
                              use_cache=True, logits_to_keep=1)
        except Exception as exc:
            log.exception("prefill failed")
            for row in rows:
                self._stats.failed += 1
                row.fail(f"generation failed: {type(exc).__name__}: {exc}")
            return
        self._stats.prefill_batches += 1
        self._stats.prompt_tokens += int(mask.sum())
        finished = self._choose(rows, out.logits[:, -1, :])
        keep = [i for i in range(len(rows)) if i not in finished]
        if not keep:
            return
        if len(keep) < len(rows):
            index = torch.tensor(keep, dtype=torch.long)
            _select(cache, index)
            mask = mask[index]
        self._join(rows if len(keep) == len(rows) else [rows[i] for i in keep], cache, mask)

    def _join(self, rows: list[_Row], cache: Any, mask: torch.Tensor) -> None:
        """Append freshly prefilled rows (their cache and mask) to the running batch."""
        if not self._rows:
            self._rows, self._cache, self._mask = rows, cache, mask
            self._trim()
            return
        assert self._mask is not None
        width = max(self._mask.shape[1], mask.shape[1])
        pad_a, pad_b = width - self._mask.shape[1], width - mask.shape[1]
        for a, b in zip(self._cache.layers, cache.layers):
            a.keys = torch.cat([F.pad(a.keys, (0, 0, pad_a, 0)), F.pad(b.keys, (0, 0, pad_b, 0))], dim=0)
            a.values = torch.cat([F.pad(a.values, (0, 0, pad_a, 0)), F.pad(b.values, (0, 0, pad_b, 0))], dim=0)
        self._mask = torch.cat([F.pad(self._mask, (pad_a, 0)), F.pad(mask, (pad_b, 0))], dim=0)
        self._rows = self._rows + rows
        self._trim()

    def _step(self) -> None:
        """One decode step for the whole batch."""
        gone = [i for i, row in enumerate(self._rows) if row.handle.cancelled]
        if gone:
            self._stats.cancelled += len(gone)
            self._drop(gone)
            if not self._rows:
                return
        rows = self._rows
        assert self._mask is not None
        batch = len(rows)
        inputs = torch.tensor([[r.pending] for r in rows], dtype=torch.long)
        positions = torch.tensor([[r.length] for r in rows], dtype=torch.long)
        mask = torch.cat([self._mask, self._mask.new_ones((batch, 1))], dim=1)
        # A ready-made 4-D boolean mask: given a 2-D mask without padding, transformers drops it and runs
        # SDPA with `enable_gqa`, which on CPU in bfloat16 is several times slower than the packed-GQA path
        # it takes with a mask (measured: 16 rows x 1024 tokens, 1100 ms vs 400 ms a step).
        mask4d = mask.to(torch.bool)[:, None, None, :]
        try:
            out = self._model(input_ids=inputs, attention_mask=mask4d, position_ids=positions, cache=self._cache,
                              use_cache=True, logits_to_keep=1)
        except Exception as exc:
            log.exception("decode step failed")
            self._stats.failed += batch
            for row in rows:
                row.fail(f"generation failed: {type(exc).__name__}: {exc}")
            self._reset_batch()
            return
        self._mask = mask
        for row in rows:
            row.length += 1
        self._stats.decode_steps += 1
        self._stats.max_batch_size_seen = max(self._stats.max_batch_size_seen, batch)
        finished = self._choose(rows, out.logits[:, -1, :])
        if finished:
            self._drop(sorted(finished))

    def _choose(self, rows: list[_Row], logits: torch.Tensor) -> set[int]:
        """Pick each row's next token and advance it; return the indices of rows that finished."""
        greedy = logits.argmax(dim=-1).tolist()
        finished: set[int] = set()
        for i, row in enumerate(rows):
            if row.handle.cancelled:
                continue  # dropped before the next step
            if row.forced:
                row.pending = row.forced.popleft()
                continue
            params = row.params
            token = greedy[i] if params.greedy else _sample(logits[i], params, row.generator)
            self._stats.generated_tokens += 1
            if row.accept(token):
                finished.add(i)
                self._stats.completed += 1
        return finished

    def _drop(self, indices: list[int]) -> None:
        """Remove rows from the batch (and their cache), then trim all-padding columns."""
        drop = set(indices)
        keep = [i for i in range(len(self._rows)) if i not in drop]
        if not keep:
            self._reset_batch()
            return
        index = torch.tensor(keep, dtype=torch.long)
        _select(self._cache, index)
        assert self._mask is not None
        self._mask = self._mask[index]
        self._rows = [self._rows[i] for i in keep]
        self._trim()

    def _trim(self) -> None:
        assert self._mask is not None
        used = self._mask.any(dim=0).nonzero()
        start = int(used[0]) if len(used) else 0
        if start > 0:
            self._mask = self._mask[:, start:]
            for layer in self._cache.layers:
                layer.keys = layer.keys[:, :, start:, :]
                layer.values = layer.values[:, :, start:, :]

    def _reset_batch(self) -> None:
        self._rows, self._cache, self._mask = [], None, None


def _select(cache: Any, index: torch.Tensor) -> None:
    for layer in cache.layers:
        layer.keys = layer.keys.index_select(0, index)
        layer.values = layer.values.index_select(0, index)


def _sample(logits: torch.Tensor, params: SamplingParams, generator: torch.Generator) -> int:
    scores = logits.float() / max(params.temperature, 1e-5)
    if params.top_k > 0 and params.top_k < scores.shape[-1]:
        kth = torch.topk(scores, params.top_k).values[-1]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    probs = torch.softmax(scores, dim=-1)
    if params.top_p < 1.0:
        sorted_probs, order = torch.sort(probs, descending=True)
        cumulative = sorted_probs.cumsum(-1)
        sorted_probs[(cumulative - sorted_probs) >= params.top_p] = 0.0  # keeps at least the top token
        choice = torch.multinomial(sorted_probs, 1, generator=generator)
        return int(order[choice])
    return int(torch.multinomial(probs, 1, generator=generator))
