"""A decision's work is bounded however the decider is written: the text budget, the thread and the deadline.

Over real HTTP: `/healthz` keeps answering while a CPU-hungry decider or a multi-megabyte prompt is decided.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time

import httpx
import pytest

from router import deciders
from router.deciders import DECISION_TEXT_BUDGET, Decider, DecisionContext, budgeted_text, decide_with_fallback


class BusyDecider(Decider):
    """Burns CPU for `seconds` with no await: the kind of decider that used to stall the event loop."""

    name = "busy"
    seconds = 3.0
    seen: list[int] = []

    async def score(self, ctx: DecisionContext) -> float:
        BusyDecider.seen.append(len(ctx.text))
        end = time.perf_counter() + self.seconds
        while time.perf_counter() < end:
            pass
        return 1.0


class AwaitingDecider(Decider):
    """Declared CPU-only but awaits: it must fall back, not hang or fail the request."""

    name = "awaiting"

    async def score(self, ctx: DecisionContext) -> float:
        await asyncio.sleep(0)  # yields to a loop that the decider's thread does not have
        return 1.0


def test_budgeted_text_keeps_both_ends() -> None:
    text = "HEAD" + "x" * 100_000 + "TAIL"
    out = budgeted_text(text, 100)
    assert out.startswith("HEAD") and out.endswith("TAIL") and len(out) <= 202
    short = "y" * 200
    assert budgeted_text(short, 100) is short


def test_cpu_decider_times_out_in_its_thread_and_falls_back() -> None:
    async def run() -> tuple[deciders.Decision, float]:
        decider = BusyDecider()
        start = time.perf_counter()
        ticks = 0

        async def ticker() -> None:  # the loop must stay free while the decider burns CPU
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        decision = await decide_with_fallback(decider, DecisionContext("hi", "r"), timeout_s=0.3,
                                              default_think=False)
        task.cancel()
        await decider.aclose()
        return decision, ticks

    decision, ticks = asyncio.run(run())
    assert decision.source == "fallback" and decision.fallback_reason == "timeout" and not decision.think
    assert decision.ms < 2000
    assert ticks >= 5


def test_decider_that_awaits_without_declaring_io_falls_back() -> None:
    decision = asyncio.run(decide_with_fallback(AwaitingDecider(), DecisionContext("x" * 5000, "r"),
                                                timeout_s=1.0, default_think=True))
    assert decision.source == "fallback" and decision.fallback_reason == "CPUDeciderAwaited" and decision.think


def test_decider_reads_at_most_the_budget() -> None:
    BusyDecider.seen.clear()
    decider = BusyDecider()
    decider.seconds = 0.0
    asyncio.run(decide_with_fallback(decider, DecisionContext("z" * 1_000_000, "r"), timeout_s=5,
                                     default_think=False))
    assert BusyDecider.seen == [2 * DECISION_TEXT_BUDGET + 2]


def _healthz_while(server_url: str, body: dict, headers: dict | None = None) -> tuple[list[float], httpx.Response]:
    """POST `body` in a thread; meanwhile time `/healthz` round trips. Returns (latencies, chat response)."""
    result: dict[str, httpx.Response] = {}

    def post() -> None:
        result["r"] = httpx.post(server_url + "/v1/chat/completions", json=body, headers=headers, timeout=60)

    thread = threading.Thread(target=post)
    thread.start()
    latencies = []
    with httpx.Client(timeout=5) as client:
        time.sleep(0.3)  # the big body is sent and being decided
        while thread.is_alive() and len(latencies) < 20:
            t = time.perf_counter()
            assert client.get(server_url + "/healthz").status_code == 200
            latencies.append(time.perf_counter() - t)
            time.sleep(0.05)
    thread.join(60)
    return latencies, result["r"]


def test_healthz_answers_while_a_slow_decider_runs(proxy, mock, monkeypatch):
    monkeypatch.setitem(deciders.DECIDERS, "busy", BusyDecider)
    BusyDecider.seconds = 3.0
    with proxy({"policy": "busy"}, server={"decider_timeout_s": 1.0}) as server:
        latencies, r = _healthz_while(server.url, {"model": "mock-model",
                                                   "messages": [{"role": "user", "content": "hello"}]})
    assert r.status_code == 200
    assert r.headers["x-thinkgate-decision-source"] == "fallback"
    assert latencies and max(latencies) < 0.5, latencies


def test_healthz_answers_while_a_4mb_prompt_is_classified(proxy, mock):
    mock.reply = lambda body: "ok"  # echoing 4 MB back is not what this test is about
    prompt = "Answer in at most 50 words. Do not use any commas. " * 80_000  # about 4 MB
    with proxy({"policy": "classifier", "policy_options": {"artifact": "smollm2-135m-ifeval"}},
               server={"max_body_bytes": 8 * 1024 * 1024}) as server:
        latencies, r = _healthz_while(server.url, {"model": "mock-model",
                                                   "messages": [{"role": "user", "content": prompt}]})
    assert r.status_code == 200, r.text
    assert r.headers["x-thinkgate-decision-source"] == "policy"
    assert float(r.headers["x-thinkgate-decision-ms"]) < 5000
    assert not latencies or max(latencies) < 1.0, latencies
