"""Decisions reached in one event-loop iteration are scored back to back, each with its own result."""

from __future__ import annotations

import asyncio
import threading

import pytest

from router.deciders import DecisionContext, decide_with_fallback, make_decider
from router.deciders import _run_to_end
from router.deciders.batching import MAX_BATCH, DecisionBatcher

ARTIFACT = "smollm2-135m-ifeval"
PROMPTS = ["Write a haiku about rain. Use no commas.", "Answer in JSON with the keys a and b.",
           "Write at least 300 words about bees and highlight 2 sections with markdown.", "hello"]


def recording() -> tuple[list[str], DecisionBatcher]:
    calls: list[str] = []

    def compute(text: str) -> float:
        calls.append(text)
        if text == "boom":
            raise RuntimeError("model broke")
        return len(text) / 100

    return calls, DecisionBatcher(compute)


def test_texts_of_one_iteration_are_scored_in_one_batch_each_with_its_own_score() -> None:
    calls, batcher = recording()

    async def main() -> list[float]:
        return await asyncio.gather(*(batcher.score(t) for t in ("a", "bb", "ccc")))

    assert asyncio.run(main()) == [0.01, 0.02, 0.03]
    assert calls == ["a", "bb", "ccc"] and (batcher.batches, batcher.scored) == (1, 3)


def test_a_later_iteration_starts_a_new_batch() -> None:
    calls, batcher = recording()

    async def main() -> None:
        assert await batcher.score("a") == 0.01
        assert await asyncio.gather(batcher.score("bb"), batcher.score("ccc")) == [0.02, 0.03]

    asyncio.run(main())
    assert (batcher.batches, batcher.scored) == (2, 3)


def test_a_failing_text_fails_only_its_own_request() -> None:
    calls, batcher = recording()

    async def main() -> list[object]:
        return await asyncio.gather(batcher.score("a"), batcher.score("boom"), batcher.score("ccc"),
                                    return_exceptions=True)

    a, boom, c = asyncio.run(main())
    assert a == 0.01 and c == 0.03 and isinstance(boom, RuntimeError)
    assert calls == ["a", "boom", "ccc"]


def test_a_cancelled_waiter_costs_no_work() -> None:
    calls, batcher = recording()

    async def main() -> float:
        gone = asyncio.ensure_future(batcher.score("gone"))
        kept = asyncio.ensure_future(batcher.score("kept"))
        await asyncio.sleep(0)  # both are waiting for the batch now
        gone.cancel()
        return await kept

    assert asyncio.run(main()) == 0.04
    assert calls == ["kept"]


def test_without_a_running_loop_it_scores_directly() -> None:
    calls, batcher = recording()
    coro = batcher.score("abc")
    with pytest.raises(StopIteration) as done:
        coro.send(None)  # finishes without suspending: usable from the decider's thread
    assert done.value.value == 0.03 and calls == ["abc"] and batcher.batches == 0


def classifier(**options: object):
    return make_decider("classifier", {"artifact": ARTIFACT, **options})


def contexts(texts: list[str]) -> list[DecisionContext]:
    return [DecisionContext(text=t, route="r") for t in texts]


def test_the_classifier_batches_concurrent_decisions_with_the_scores_it_gives_alone() -> None:
    alone = classifier(batch=False, cache_size=0)
    batched = classifier()

    async def decide_all(decider) -> list[float | None]:
        decisions = await asyncio.gather(*(decide_with_fallback(decider, c, timeout_s=5, default_think=False)
                                           for c in contexts(PROMPTS)))
        assert all(d.source == "policy" for d in decisions)
        return [d.score for d in decisions]

    expected = asyncio.run(decide_all(alone))
    assert asyncio.run(decide_all(batched)) == expected
    assert batched.batcher is not None and (batched.batcher.batches, batched.batcher.scored) == (1, len(PROMPTS))
    assert alone.batcher is None


def test_a_cache_hit_does_not_wait_for_a_batch() -> None:
    decider = classifier()

    async def main() -> None:
        first = await decide_with_fallback(decider, contexts(PROMPTS[:1])[0], timeout_s=5, default_think=False)
        again = await decide_with_fallback(decider, contexts(PROMPTS[:1])[0], timeout_s=5, default_think=False)
        assert again.score == first.score

    asyncio.run(main())
    assert decider.batcher.scored == 1 and decider.cache.hits == 1  # the repeat was answered from the cache


def test_a_long_text_decided_in_the_deciders_thread_is_not_batched() -> None:
    """Texts above `inline_max_chars` run in the decider's thread, where there is no loop to batch on."""
    decider = classifier()
    long_text = "Write a story about a lighthouse keeper. " * 100
    assert len(long_text) > decider.inline_max_chars
    got: list[object] = []
    worker = threading.Thread(target=lambda: got.append(_run_to_end(decider, contexts([long_text])[0])))
    worker.start()
    worker.join()
    alone = classifier(batch=False, cache_size=0)
    assert got[0].score == asyncio.run(alone.decide(contexts([long_text])[0])).score
    assert decider.batcher.batches == 0


def test_a_batch_left_by_a_closed_loop_does_not_stop_batching() -> None:
    calls, batcher = recording()
    dead = asyncio.new_event_loop()
    dead.create_task(batcher.score("left behind"))
    dead.call_soon(dead.stop)
    dead.run_forever()  # one iteration: the text is queued, its flush is left for an iteration that never comes
    dead.close()
    assert batcher._pending  # the situation this test is about

    async def main() -> list[float]:
        return await asyncio.gather(batcher.score("a"), batcher.score("bb"))

    assert asyncio.run(main()) == [0.01, 0.02]
    assert calls == ["a", "bb"] and batcher.batches == 1


def test_a_flush_scores_at_most_max_batch_texts_and_leaves_the_rest_to_the_next_iteration() -> None:
    calls, batcher = recording()
    texts = ["x" * n for n in range(1, 2 * MAX_BATCH + 9)]

    async def main() -> list[float]:
        return await asyncio.gather(*(batcher.score(t) for t in texts))

    assert asyncio.run(main()) == [len(t) / 100 for t in texts]
    assert calls == texts and (batcher.batches, batcher.scored) == (3, len(texts))
    assert not batcher._scheduled and not batcher._pending
