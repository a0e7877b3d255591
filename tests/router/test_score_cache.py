"""The classifier's score cache: bounded, LRU, keyed by text and model, never caches errors."""

from __future__ import annotations

import pytest

from router.deciders.score_cache import ScoreCache


def counting():
    calls: list[str] = []

    def compute(text: str) -> float:
        calls.append(text)
        return len(text) / 100

    return calls, compute


def test_hits_skip_the_computation_and_the_size_is_bounded_lru() -> None:
    calls, compute = counting()
    cache = ScoreCache(2, "model-a")
    assert cache.score("aa", compute) == 0.02 and cache.score("aa", compute) == 0.02
    assert calls == ["aa"] and (cache.hits, cache.misses) == (1, 1)
    cache.score("bbb", compute)
    cache.score("aa", compute)  # "aa" is now the most recent
    cache.score("c", compute)  # evicts "bbb", the least recent
    assert len(cache) == 2
    cache.score("aa", compute)
    cache.score("bbb", compute)
    assert calls == ["aa", "bbb", "c", "bbb"]


def test_keys_depend_on_the_model_and_hold_no_text() -> None:
    a, b = ScoreCache(8, "model-a"), ScoreCache(8, "model-b")
    assert a.key("same text") != b.key("same text")
    assert a.key("same text") != a.key("same text ")
    assert b"same" not in a.key("same text") and len(a.key("x" * 100_000)) == 16
    assert a.key("lone \ud800 surrogate")  # any str can be hashed


def test_errors_are_not_cached_and_size_zero_disables() -> None:
    cache = ScoreCache(4, "m")

    def boom(text: str) -> float:
        raise RuntimeError("model broke")

    with pytest.raises(RuntimeError):
        cache.score("x", boom)
    assert len(cache) == 0
    calls, compute = counting()
    off = ScoreCache(0, "m")
    off.score("x", compute)
    off.score("x", compute)
    assert calls == ["x", "x"] and len(off) == 0
    with pytest.raises(ValueError):
        ScoreCache(-1, "m")


def test_get_answers_only_from_the_cache_and_counts_only_hits() -> None:
    calls, compute = counting()
    cache = ScoreCache(4, "m")
    assert cache.get("aa") is None and (cache.hits, cache.misses) == (0, 0)
    cache.score("aa", compute)
    assert cache.get("aa") == 0.02 and (cache.hits, cache.misses) == (1, 1) and calls == ["aa"]
    assert ScoreCache(0, "m").get("aa") is None
