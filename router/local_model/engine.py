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
That per-row program (phases, the forced close, stop strings, limits, streamed deltas) lives in `rowstate`,
free of torch; the engine is its `TokenCodec` (`encode`, `decode`, `eos_ids`, `newline_id`).

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
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from .generation import (Delta, Event, Failed, Finished, GenerationRequest, Handle,  # noqa: F401 - re-exported
                         SamplingParams, Sink, TokenProbs)
from .kv import new_cache
from .rowstate import RowState
from .text import THINK_CLOSE

log = logging.getLogger(__name__)


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


class _Row(RowState):
    """A row inside the engine: its program (RowState), its place in the KV cache, its sampling generator."""

    def __init__(self, engine: Engine, handle: Handle, request: GenerationRequest, sink: Sink,
                 prompt_ids: list[int], answer_limit: int) -> None:
        super().__init__(engine, handle, request, sink, prompt_ids, answer_limit)
        self.length = 0  # tokens of this row in the KV cache
        self._generator: torch.Generator | None = None

    @property
    def generator(self) -> torch.Generator:
        if self._generator is None:
            seed = self.params.seed if self.params.seed is not None else random.getrandbits(63)
            self._generator = torch.Generator().manual_seed(seed)
        return self._generator


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
        self.eos_ids = self._find_eos_ids(model, tokenizer)
        pad = getattr(tokenizer, "pad_token_id", None)
        self._pad_id = pad if pad is not None else min(self.eos_ids)
        self.newline_id = (self.encode("\n") or [self._pad_id])[0]
        self._close_tokens = len(self.encode("\n" + THINK_CLOSE + "\n"))  # the most a forced close adds
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

    def encode(self, text: str) -> list[int]:
        if self._tk is not None:
            return list(self._tk.encode(text, add_special_tokens=False).ids)
        with self._tk_lock:
            return list(self._tokenizer.encode(text, add_special_tokens=False))

    def decode(self, ids: Sequence[int]) -> str:
        if not ids:
            return ""
        if self._tk is not None:
            return self._tk.decode(list(ids), skip_special_tokens=True)
        with self._tk_lock:
            return self._tokenizer.decode(list(ids), skip_special_tokens=True)

    def count_tokens(self, text: str) -> int:
        """How many tokens `text` is (as a prompt: no special tokens added)."""
        return len(self.encode(text))

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
            prompt_ids = self.encode(request.prompt)
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
        self._send_token_probs(rows, out.logits[:, -1, :])
        finished = self._choose(rows, out.logits[:, -1, :])
        keep = [i for i in range(len(rows)) if i not in finished]
        if not keep:
            return
        if len(keep) < len(rows):
            index = torch.tensor(keep, dtype=torch.long)
            _select(cache, index)
            mask = mask[index]
        self._join(rows if len(keep) == len(rows) else [rows[i] for i in keep], cache, mask)

    def _send_token_probs(self, rows: list[_Row], logits: torch.Tensor) -> None:
        """For rows that asked for them, the probabilities of their score tokens at the first position."""
        for i, row in enumerate(rows):
            ids = row.request.score_token_ids
            if ids and row.request.think_budget is None and max(ids) < logits.shape[-1] and min(ids) >= 0:
                probs = torch.softmax(logits[i].float(), dim=-1)[list(ids)].tolist()
                self._safe_sink(row.sink, TokenProbs(tuple(probs)))

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
            if row.take_forced():
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
