"""The mitigation profiles `self-reflect` and `few-shot`, through the real proxy over HTTP (openai SDK).

The mock upstream plays forced thinking in two calls (or by prefill with `prefill = "vllm"`) and the review
call; the last tests run both profiles on the real embedded model.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from pathlib import Path
from typing import Any, AsyncIterator

import httpx
import pytest

from router.backends.base import Backend, Body, Chunk
from router.errors import ConfigError
from router.strategies import build_strategy as make_profile  # the old profile names are strategy aliases
from router.strategies.fewshot import BUNDLED_EXAMPLES, estimate_tokens, load_examples, render_block
from router.strategies.reflect import REVIEW_INSTRUCTION
from support.clients import collect_stream, openai_client, reasoning_of
from support.local_model import needs_model
from support.servers import serve

REPO_ROOT = Path(__file__).resolve().parents[2]
USER_TEXT = "Write a haiku about rain. Do not use commas."
USER = [{"role": "user", "content": USER_TEXT}]
REASONING = "Three short lines about rain and no commas."
DRAFT = "Rain taps, soft and slow"
FINAL = "Rain taps soft and slow"
LABELLED = f"{REASONING}\n\nDraft answer:\n{DRAFT}"


def _thinking_reply(body: dict[str, Any]) -> str:
    """Forced thinking as the upstream sees it: by prefill, or a reasoning call then an answer call."""
    last = body["messages"][-1]
    if body.get("continue_final_message") and last["role"] == "assistant":
        return f"{REASONING}</think>ignored" if last["content"] == "<think>\n" else f" {DRAFT}"
    system = " ".join(m["content"] for m in body["messages"] if m["role"] == "system")
    if "Write only this reasoning" in system:
        return REASONING
    if "Your private reasoning" in system:
        return f"\n{DRAFT}"
    return "unexpected"


def _reflect_reply(review: str):
    def reply(body: dict[str, Any]) -> str:
        last = body["messages"][-1]
        if last["role"] == "user" and last["content"] != USER_TEXT:
            return review
        return _thinking_reply(body)
    return reply


def _ask(server, stream: bool, **kwargs: Any) -> tuple[str, str, dict[str, Any]]:
    """content, reasoning and usage of one request (streamed requests ask for the usage chunk)."""
    client = openai_client(server)
    if stream:
        content, reasoning, chunks = collect_stream(client.chat.completions.create(
            model="mock-model", messages=USER, stream=True, stream_options={"include_usage": True}, **kwargs))
        usages = [c.usage for c in chunks if c.usage]
        assert len(usages) == 1 and chunks[-1].usage
        return content, reasoning, usages[0].model_dump()
    message_and_usage = client.chat.completions.create(model="mock-model", messages=USER, **kwargs)
    message = message_and_usage.choices[0].message
    return message.content, reasoning_of(message) or "", message_and_usage.usage.model_dump()


def _expected_usage(mock, thinking_calls: list[dict], last_call: dict) -> dict[str, int]:
    """What the mock billed for each call, summed; everything before the last call is reasoning."""
    per_call = [mock.usage(body, mock._text(body)) for body in [*thinking_calls, last_call]]
    prompt = sum(u["prompt_tokens"] for u in per_call)
    completion = sum(u["completion_tokens"] for u in per_call)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "reasoning_tokens": sum(u["completion_tokens"] for u in per_call[:-1])}


def _flat(usage: dict[str, Any]) -> dict[str, int]:
    return {"prompt_tokens": usage["prompt_tokens"], "completion_tokens": usage["completion_tokens"],
            "total_tokens": usage["total_tokens"],
            "reasoning_tokens": usage["completion_tokens_details"]["reasoning_tokens"]}


def _unchanged(sent: dict[str, Any]) -> bool:
    return {k: v for k, v in sent.items() if k not in ("stream", "stream_options")} == {
        "model": "upstream-model", "messages": USER}


# ------------------------------------------------------------------------------------------------ self-reflect


@pytest.mark.parametrize("prefill", ["none", "vllm"])
@pytest.mark.parametrize("stream", [False, True])
def test_self_reflect_thinks_then_reviews_the_draft(proxy, mock, stream, prefill):
    mock.reply = _reflect_reply(FINAL)
    with proxy({"policy": "always", "profile": "self-reflect", "prefill": prefill, "think_budget": 40}) as server:
        content, reasoning, usage = _ask(server, stream, max_tokens=50)
    assert (content, reasoning) == (FINAL, LABELLED)
    *thinking, review = mock.requests
    assert len(thinking) == 2
    assert ("continue_final_message" in thinking[0]) == (prefill == "vllm")
    assert thinking[0]["max_tokens"] == 40
    assert review["messages"][:-1] == USER  # the original conversation, then the review message
    message = review["messages"][-1]
    assert message["role"] == "user"
    text = message["content"]
    assert text.index(REASONING) < text.index(f"Draft answer:\n{DRAFT}") < text.index(REVIEW_INSTRUCTION)
    assert "continue_final_message" not in review and review["max_tokens"] == 50  # thinking off, client limit
    assert _flat(usage) == _expected_usage(mock, thinking, review)


def test_self_reflect_stream_sends_reasoning_before_the_answer_and_usage_only_if_asked(proxy, mock):
    mock.reply = _reflect_reply(FINAL)
    with proxy({"policy": "always", "profile": "self-reflect"}) as server:
        stream = openai_client(server).chat.completions.create(model="mock-model", messages=USER, stream=True)
        content, reasoning, chunks = collect_stream(stream)
    assert (content, reasoning) == (FINAL, LABELLED)
    kinds = ["content" if c.choices and c.choices[0].delta.content else
             "reasoning" if c.choices and reasoning_of(c.choices[0].delta) else "other" for c in chunks]
    assert kinds.index("content") > max(i for i, k in enumerate(kinds) if k == "reasoning")
    assert not any(c.usage for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


@pytest.mark.parametrize("review", ["", "  \n"])
@pytest.mark.parametrize("stream", [False, True])
def test_self_reflect_empty_review_gives_the_draft(proxy, mock, stream, review):
    mock.reply = _reflect_reply(review)
    with proxy({"policy": "always", "profile": "self-reflect"}) as server:
        content, reasoning, _ = _ask(server, stream)
    assert (content, reasoning) == (DRAFT, LABELLED)
    assert len(mock.requests) == 3


def test_self_reflect_options(proxy, mock):
    mock.reply = _reflect_reply(FINAL)
    options = {"review_instruction": "Fix the draft if needed.", "review_max_tokens": 7, "mode": "two-call"}
    with proxy({"policy": "always", "profile": "self-reflect", "prefill": "vllm",
                "profile_options": options}) as server:
        content, _, _ = _ask(server, False, max_completion_tokens=50)
    assert content == FINAL
    *thinking, review = mock.requests
    assert not any("continue_final_message" in body for body in thinking)  # mode two-call despite prefill
    assert review["messages"][-1]["content"].endswith("Fix the draft if needed.")
    assert REVIEW_INSTRUCTION not in review["messages"][-1]["content"]
    assert review["max_tokens"] == 7 and "max_completion_tokens" not in review


@pytest.mark.parametrize("profile", ["self-reflect", "few-shot"])
@pytest.mark.parametrize("stream", [False, True])
def test_direct_decision_sends_one_unchanged_request(proxy, mock, profile, stream):
    with proxy({"policy": "never", "profile": profile, "prefill": "vllm"}) as server:
        content, reasoning, _ = _ask(server, stream)
    assert (content, reasoning) == ("echo: " + USER_TEXT, "")
    assert len(mock.requests) == 1 and _unchanged(mock.requests[0])


@pytest.mark.parametrize("long_pass", ["thinking", "review"])
def test_self_reflect_client_disconnect_cancels_the_upstream_call(proxy, mock, long_pass):
    long_text = "word " * 400
    mock.reply = (lambda body: long_text) if long_pass == "thinking" else _reflect_reply(long_text)
    mock.chunk_size, mock.chunk_delay_s = 5, 0.02
    with proxy({"policy": "always", "profile": "self-reflect"}) as server:
        with httpx.stream("POST", server.url + "/v1/chat/completions",
                          json={"model": "mock-model", "messages": USER, "stream": True}) as r:
            for line in r.iter_lines():
                if long_pass == "thinking" or ('"content"' in line and '"reasoning_content"' not in line):
                    break
        deadline = time.monotonic() + 5
        while mock.cancelled_streams == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert mock.cancelled_streams == 1
    assert len(mock.requests) == (1 if long_pass == "thinking" else 3)  # no review call after a disconnect


class _NativeThinker(Backend):
    """A backend with native forced thinking (as the local model has), for the one-request pass-1 path.
    `closed` lists the streams closed so far ("thinking", "review"), in order."""

    native_forced_thinking = True

    def __init__(self) -> None:
        self.bodies: list[Body] = []
        self.closed: list[str] = []

    def _usage(self, completion: int, reasoning: int = 0) -> dict[str, Any]:
        return {"prompt_tokens": 10, "completion_tokens": completion, "total_tokens": 10 + completion,
                "completion_tokens_details": {"reasoning_tokens": reasoning}}

    async def _chunks(self, name: str, deltas: list[dict[str, Any]], usage: dict[str, Any],
                      body: Body) -> AsyncIterator[Chunk]:
        try:
            for delta in deltas:
                yield {"id": name, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
            yield {"id": name, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
            if (body.get("stream_options") or {}).get("include_usage"):
                yield {"id": name, "choices": [], "usage": usage}
        finally:
            self.closed.append(name)

    async def complete_forced_think(self, body: Body, budget: int) -> Body:
        return {"choices": [{"index": 0, "message": {"content": DRAFT, "reasoning_content": REASONING}}],
                "usage": self._usage(12, 8)}

    def stream_forced_think(self, body: Body, budget: int) -> AsyncIterator[Chunk]:
        deltas = [{"role": "assistant", "content": ""}, {"reasoning_content": REASONING[:9]},
                  {"reasoning_content": REASONING[9:]}, {"content": " "}, {"content": DRAFT}]
        return self._chunks("thinking", deltas, self._usage(12, 8), body)

    async def complete(self, body: Body, *, prefill: bool = False) -> Body:
        self.bodies.append(body)
        return {"choices": [{"index": 0, "message": {"content": FINAL}}], "usage": self._usage(5)}

    def stream(self, body: Body, *, prefill: bool = False) -> AsyncIterator[Chunk]:
        self.bodies.append(body)
        return self._chunks("review", [{"role": "assistant", "content": FINAL}, {"content": "."}],
                            self._usage(5), body)


@pytest.mark.parametrize("stream", [False, True])
def test_self_reflect_on_a_native_thinking_backend(stream):
    backend, profile = _NativeThinker(), make_profile("self-reflect")
    body = {"model": "m", "messages": USER, "stream_options": {"include_usage": True}}

    async def run() -> tuple[str, str, dict[str, Any]]:
        if not stream:
            out = await profile.complete(backend, body, think=True, budget=16)
            message = out["choices"][0]["message"]
            return message["content"], message["reasoning_content"], out["usage"]
        chunks = [c async for c in profile.stream(backend, body, think=True, budget=16)]
        text = {k: "".join(c["choices"][0]["delta"].get(k) or "" for c in chunks if c["choices"])
                for k in ("content", "reasoning_content")}
        return text["content"], text["reasoning_content"], chunks[-1]["usage"]

    content, reasoning, usage = asyncio.run(run())
    assert (content, reasoning) == ((FINAL + "." if stream else FINAL), LABELLED)
    assert _flat(usage) == {"prompt_tokens": 20, "completion_tokens": 17, "total_tokens": 37,
                            "reasoning_tokens": 12}
    assert f"Draft answer:\n{DRAFT}\n" in backend.bodies[0]["messages"][-1]["content"]


def test_self_reflect_stream_has_no_usage_chunk_unless_the_body_asks():
    backend = _NativeThinker()

    async def run() -> list[Chunk]:
        body = {"model": "m", "messages": USER}
        return [c async for c in make_profile("self-reflect").stream(backend, body, think=True, budget=16)]

    chunks = asyncio.run(run())
    assert not any("usage" in c for c in chunks) and chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert backend.closed == ["thinking", "review"]


@pytest.mark.parametrize("stop_at,closed", [("reasoning_content", ["thinking"]),
                                            ("content", ["thinking", "review"])])
def test_self_reflect_closing_the_stream_closes_the_upstream_stream_at_once(stop_at, closed):
    backend = _NativeThinker()

    async def run() -> list[str]:
        stream = make_profile("self-reflect").stream(backend, {"model": "m", "messages": USER}, think=True,
                                                     budget=16)
        async for chunk in stream:
            if chunk["choices"] and chunk["choices"][0]["delta"].get(stop_at):
                break
        await stream.aclose()  # what the proxy does when the client goes away
        return list(backend.closed)  # before the event loop runs again: no garbage-collection finaliser

    assert asyncio.run(run()) == closed


# ---------------------------------------------------------------------------------------------------- few-shot


@pytest.mark.parametrize("prefill,mode,by_prefill", [("vllm", None, True), ("none", None, False),
                                                     ("vllm", "two-call", False)])
@pytest.mark.parametrize("stream", [False, True])
def test_few_shot_sends_the_examples_and_thinks(proxy, mock, stream, prefill, mode, by_prefill):
    mock.reply = _thinking_reply
    options = {"mode": mode} if mode else {}
    with proxy({"policy": "always", "profile": "few-shot", "prefill": prefill, "think_budget": 30,
                "profile_options": options}) as server:
        content, reasoning, usage = _ask(server, stream, max_tokens=50)
    assert (content, reasoning) == (DRAFT, REASONING)
    first, second = mock.requests
    assert ("continue_final_message" in first) == by_prefill and first["max_tokens"] == 30
    for sent in (first, second):
        system, user = sent["messages"][:2]
        assert system["role"] == "system" and user == USER[0]
        for example in load_examples(BUNDLED_EXAMPLES):
            assert f"Request: {example.request}" in system["content"]
            assert example.corrected_answer in system["content"]
    assert _flat(usage) == _expected_usage(mock, [first], second)


def _examples_file(tmp_path: Path, count: int) -> Path:
    examples = [{"request": f"Request number {i}, in lowercase.", "flawed_thinking": f"Thought {i} forgets it.",
                 "corrected_answer": f"answer {i}"} for i in range(count)]
    path = tmp_path / "examples.json"
    path.write_text(json.dumps(examples), encoding="utf-8")
    return path


def _examples_sent(profile, body: dict[str, Any], budget: int = 0) -> int:
    messages = profile.prepare(body, True, budget).body["messages"]
    system = messages[0]["content"] if messages[0]["role"] == "system" else ""
    return len(re.findall(r"^Request: Request number \d", system, flags=re.M))


def test_few_shot_budget_and_context_trim_examples_from_the_end(tmp_path):
    path = str(_examples_file(tmp_path, 4))
    examples = load_examples(path)
    body = {"model": "m", "messages": USER, "max_tokens": 100}

    def sent(body: dict[str, Any] = body, budget: int = 0, **options: Any) -> int:
        return _examples_sent(make_profile("few-shot", {"examples_path": path, **options}), body, budget)

    assert sent() == 4
    assert sent(max_examples=3) == 3
    assert sent(examples_token_budget=estimate_tokens(render_block(examples[:2]))) == 2
    assert sent(examples_token_budget=5) == 0

    fixed = estimate_tokens(USER_TEXT) + 4 + 100 + 50  # request + one message's overhead + max_tokens + think budget
    context = fixed + estimate_tokens(render_block(examples[:1]))
    assert sent(budget=50, context_tokens=context) == 1
    assert sent({**body, "max_tokens": 99}, 50, context_tokens=context) == 1  # one spare token: not an example
    assert sent(budget=0, context_tokens=context) == 2  # no thinking budget: room for one more
    assert make_profile("few-shot", {"examples_path": path, "context_tokens": fixed}).prepare(
        body, True, 50).body == body  # nothing fits: the request is sent as it is


def test_bundled_examples_fit_the_default_budget():
    profile = make_profile("few-shot")
    examples = load_examples(BUNDLED_EXAMPLES)
    assert 5 <= len(examples) == len(profile.blocks) - 1
    assert estimate_tokens(profile.blocks[-1]) <= 600
    assert all(example.kind for example in examples)


@pytest.mark.parametrize("content,message", [
    (None, "cannot read it"),
    ("not json", "not valid JSON"),
    ('{"request": "x"}', "must be a JSON list"),
    ("[]", "holds no examples"),
    ('[{"request": "x", "flawed_thinking": "y"}]', "example 1, field 'corrected_answer': Field required"),
    ('[{"request": "x", "flawed_thinking": "y", "corrected_answer": "z", "answer": "z"}]',
     "example 1, field 'answer': Extra inputs are not permitted"),
])
def test_few_shot_bad_examples_file_is_a_clear_config_error(proxy, tmp_path, content, message):
    path = tmp_path / "mine.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(f"few-shot examples file '{path}'") + ".*" + re.escape(message)):
        with proxy({"policy": "always", "profile": "few-shot", "profile_options": {"examples_path": str(path)}}):
            pass


def _shingles(text: str, n: int = 6) -> set[tuple[str, ...]]:
    words = re.findall(r"[a-z0-9<>*']+", text.lower())
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def test_no_example_request_comes_from_ifeval():
    path = Path(os.environ.get("THINKGATE_IFEVAL_DATA", REPO_ROOT / "../shared/data/ifeval/input_data.jsonl"))
    if not path.exists():
        pytest.skip(f"IFEval prompts not found at {path} (set THINKGATE_IFEVAL_DATA to check the examples)")
    prompts = [json.loads(line)["prompt"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(prompts) > 100
    normalised = [" ".join(p.lower().split()) for p in prompts]
    ifeval_shingles = set().union(*(_shingles(p) for p in prompts))
    for example in load_examples(BUNDLED_EXAMPLES):
        request = " ".join(example.request.lower().split())
        assert not any(request in p for p in normalised), example.request
        shared = _shingles(example.request) & ifeval_shingles
        assert not shared, f"{example.request!r} shares {sorted(shared)} with IFEval prompts"


# ---------------------------------------------------------------------------------------- the embedded model


@pytest.fixture(scope="module")
def local_strategies(tmp_path_factory):
    """Both profiles as routes on one embedded model (they share the backend, so it loads once)."""
    from router.app import create_app
    from router.settings import parse_config

    routes = {name: {"backend": "local", "profile": name, "policy": "always", "think_budget": 16}
              for name in ("self-reflect", "few-shot")}
    log_path = tmp_path_factory.mktemp("log") / "decisions.sqlite3"
    config = parse_config({"routes": routes, "decision_log": {"path": str(log_path)}, "server": {"ready_wait_s": 300}})
    with serve(create_app(config, environ={})) as server:
        yield server


@pytest.mark.slow
@needs_model
@pytest.mark.parametrize("profile", ["self-reflect", "few-shot"])
def test_embedded_model_runs_the_strategy(local_strategies, profile):
    resp = openai_client(local_strategies, timeout=600).chat.completions.create(
        model=profile, messages=[{"role": "user", "content": "Name a colour. Answer in one word."}], max_tokens=24)
    message, usage = resp.choices[0].message, resp.usage
    reasoning = reasoning_of(message) or ""
    assert 0 < usage.completion_tokens_details.reasoning_tokens < usage.completion_tokens
    if profile == "self-reflect":
        assert message.content.strip() and "\n\nDraft answer:\n" in reasoning
        assert usage.completion_tokens <= 16 + 24 + 24  # thinking + draft, then the review
    else:
        assert reasoning.strip() and usage.completion_tokens <= 16 + 24
        assert usage.prompt_tokens > 300  # the examples reached the model
