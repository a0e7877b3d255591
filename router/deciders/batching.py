"""Score the decision texts that arrive in one event-loop iteration back to back, while the CPU caches are warm.

A classifier decision on an IFEval prompt is about 60 µs when its working set (the detector's code and regexes,
the model's n-gram tables) is in the CPU caches, and about 4× that when it is not: `python -m benchmarks.tfidf_parts
--detector --cold 32 --repeat 3` (best of 3 per prompt, thread CPU; benchmarks/reports/tfidf-parts-*.txt) gave p50
63 µs warm and 263 µs after writing 32 MB before each call; the detector alone 58 -> 197 µs, the two TF-IDF parts
25 -> 52 µs. A proxy under load interleaves each decision with parsing, the upstream call and answering other
connections, which evict that working set, so inside a loaded server the same decisions were p50 137-158 µs (read
back from its decision log). In a one-off experiment (no committed command) after the same kind of sweep, 8
decisions in a row cost 119 µs each and 16 in a row 101 µs.

Requests that reach their decision in the same iteration of the event loop (under load, those whose bytes
arrived together) wait for one callback scheduled with `call_soon`, which scores them one after the other and
wakes them. The CPU work is the same, in a better order; a request alone waits one loop iteration longer (a few
microseconds). Under load the batches are large: a one-off count at c=32 (no committed command) found 12,623 texts
in 1,400 flushes, a mean of 9, a third of the texts in full batches of 16. Measured with
`python -m benchmarks.overhead.pairs before=<checkout of 9a79881>,policy=classifier after=.,policy=classifier`
(wrk at c=32 on IFEval bodies with unique suffixes, one server at a time, 5 alternating pairs of 10 s):
1,600 -> 2,018 req/s (batching won 5 of 5 pairs) and 0.634 -> 0.505 ms of server CPU per request (4 of 5; medians;
benchmarks/reports/pairs-batching.md). An earlier run of that command: 1,318 -> 1,594 req/s, 0.762 -> 0.639 ms; a
by-hand run of the same method before the command existed: 1,931 -> 2,287 req/s, 0.525 -> 0.447 ms.
`python -m benchmarks.overhead ... --compare before=<checkout of 9a79881>,policy=classifier`, which interleaves 7
targets per round, measured 0.532 -> 0.522 ms (within its round-to-round noise) and, in a run before the
`MAX_BATCH` cap, 0.513 -> 0.456.

What a batched decision's `ms` (the `x-thinkgate-decision-ms` header, the log's `decision_ms`) means changes with
it: it is still the wall time from the start of the decision to its end, which now includes waiting for the batch's
other decisions and for the loop iterations before and after the flush. Under saturation that is milliseconds (p50
4.7 ms at c=32 in the overhead benchmark, against 0.16 ms without batching), although the requests' c=32 p50 went
down (16.2 -> 14.9 ms there): the wait is CPU time the request would have waited for anyway, elsewhere in its life.
With `batch = false` the field measures the decision's own work again.

Only where there is a running event loop: the decider's thread (long texts) scores directly. A flush scores at
most `MAX_BATCH` texts and leaves the rest to the next iteration, so the loop never runs more than 16 decisions
(about 1 ms on IFEval prompts; at most ~16 ms on texts at the inline limit) before it serves I/O again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

MAX_BATCH = 16  # texts per flush: most of the warm-cache gain (16 in a row: 101 µs each; 8: 119; 1: 275)


class DecisionBatcher:
    """`await batcher.score(text)`: `compute(text)`, run in a batch with the other texts of this loop iteration."""

    def __init__(self, compute: Callable[[str], float]) -> None:
        self._compute = compute
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: list[tuple[str, asyncio.Future[float]]] = []
        self._scheduled = False  # a flush is queued on `_loop`
        self.batches = 0  # flushes that scored at least one text (for tests and curiosity)
        self.scored = 0

    async def score(self, text: str) -> float:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # a worker thread: no loop to batch on
            return self._compute(text)
        if self._pending and loop is not self._loop:
            if self._loop is None or not self._loop.is_closed():  # another loop has a batch open: do not mix them
                return self._compute(text)
            self._pending, self._scheduled = [], False  # left by a loop that closed before its flush ran
        future: asyncio.Future[float] = loop.create_future()
        self._pending.append((text, future))
        if not self._scheduled:
            self._loop, self._scheduled = loop, True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
        if self._pending and self._loop is not None:
            self._loop.call_soon(self._flush)  # the rest after the loop's other ready work
        else:
            self._scheduled = False
        scored = 0
        for text, future in batch:
            if future.done():  # cancelled while waiting (the client left): no work for it
                continue
            try:
                value = self._compute(text)
            except Exception as exc:  # noqa: BLE001 - one text's failure is its own request's (a fallback)
                future.set_exception(exc)
            else:
                future.set_result(value)
            scored += 1
        if scored:
            self.batches += 1
            self.scored += scored


__all__ = ["DecisionBatcher"]
