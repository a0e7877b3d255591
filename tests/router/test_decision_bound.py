"""A decision's work is bounded however the decider is written: the text budget, the thread and the deadline.

Over real HTTP: `/healthz` keeps answering while a CPU-hungry decider or a multi-megabyte prompt is decided.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Iterator

import httpx
import pytest

from router import deciders
from router.deciders import DECISION_TEXT_BUDGET, Decider, DecisionContext, budgeted_text, decide_with_fallback


class BusyDecider(Decider):
    """Burns CPU with no await: the kind of decider that used to stall the event loop. It burns until the test
    sets `release` (at most `seconds`), so a test can check what happened while it burned (`started` set,
    `stopped` not yet) instead of assuming how long anything takes on the machine at hand."""

    name = "busy"
    seconds = 30.0
    seen: list[int] = []
    started = threading.Event()
    stopped = threading.Event()
    release = threading.Event()

    async def score(self, ctx: DecisionContext) -> float:
        BusyDecider.seen.append(len(ctx.text))
        started, stopped, release = BusyDecider.started, BusyDecider.stopped, BusyDecider.release  # this test's
        started.set()
        end = time.monotonic() + self.seconds
        while time.monotonic() < end and not release.is_set():
            pass
        stopped.set()
        return 1.0


@pytest.fixture(autouse=True)
def _fresh_busy_events() -> Iterator[None]:
    BusyDecider.started, BusyDecider.stopped, BusyDecider.release = (threading.Event() for _ in range(3))
    yield
    BusyDecider.release.set()  # a decider still burning in its thread stops with its test


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
    async def run() -> tuple[deciders.Decision, bool]:
        decider = BusyDecider()
        ticks = 0

        async def ticker() -> None:  # the loop must stay free while the decider burns CPU
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        decision = await decide_with_fallback(decider, DecisionContext("hi", "r"), timeout_s=0.3,
                                              default_think=False)
        then = ticks
        while ticks < then + 5:  # the loop keeps ticking too
            await asyncio.sleep(0.01)
        burning_throughout = not BusyDecider.stopped.is_set()
        task.cancel()
        BusyDecider.release.set()
        await decider.aclose()
        return decision, burning_throughout

    decision, burning_throughout = asyncio.run(run())
    assert decision.source == "fallback" and decision.fallback_reason == "timeout" and not decision.think
    assert decision.ms >= 300  # at the deadline, not before it
    # The decider burns until released: the deadline fell, and the loop ticked on, while it still burned.
    assert burning_throughout


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
    """Round trips that begin after the decider started burning and end before it stopped were served by the
    loop meanwhile; how long each one takes depends on the machine and is not asserted."""
    monkeypatch.setitem(deciders.DECIDERS, "busy", BusyDecider)
    body = {"model": "mock-model", "messages": [{"role": "user", "content": "hello"}]}
    result: dict[str, httpx.Response] = {}
    with proxy({"policy": "busy"}, server={"decider_timeout_s": 1.0}) as server:
        def post() -> None:
            result["r"] = httpx.post(server.url + "/v1/chat/completions", json=body, timeout=60)

        thread = threading.Thread(target=post)
        thread.start()
        assert BusyDecider.started.wait(60), "the decider never ran"
        with httpx.Client(timeout=60) as client:
            for _ in range(5):
                assert client.get(server.url + "/healthz").status_code == 200
        thread.join(60)  # answered at the decider's deadline, with the decider still burning
        burning_throughout = not BusyDecider.stopped.is_set()
        BusyDecider.release.set()
    assert burning_throughout
    r = result["r"]
    assert r.status_code == 200
    assert r.headers["x-thinkgate-decision-source"] == "fallback"


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
