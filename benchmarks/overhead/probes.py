"""Sequential and streamed timings of chat requests (the bodies come from `bodies`; default one fixed request)."""

from __future__ import annotations

import json
import math
import statistics
import time
from dataclasses import dataclass
from typing import Any, Iterator

import httpx

from ..stats import percentile

MODEL = "mock-model"
# A typical IFEval-style instruction: the same body goes to every target.
PROMPT = ("Write a short blog post about a trip to Japan using less than 300 words. Do not use any commas "
          "and wrap your entire response with double quotation marks.")


def chat_body(model: str, *, stream: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 64}
    if stream:
        body["stream"] = True
    return body


@dataclass
class Latency:
    n: int
    p50_ms: float
    p99_ms: float
    mean_ms: float
    errors: int = 0

    @classmethod
    def of(cls, samples_ms: list[float], errors: int = 0) -> "Latency":
        if not samples_ms:
            return cls(0, math.nan, math.nan, math.nan, errors)
        return cls(len(samples_ms), percentile(samples_ms, 50), percentile(samples_ms, 99),
                   statistics.fmean(samples_ms), errors)


def _fixed(body: dict[str, Any]) -> Iterator[bytes]:
    data = json.dumps(body).encode()
    while True:
        yield data


def measure_sequential(url: str, model: str, n: int, warmup: int, bodies: Iterator[bytes] | None = None) -> Latency:
    """n sequential non-streaming requests over one keep-alive connection; `bodies` (default: the fixed body)
    gives each request's body (built before the clock starts)."""
    bodies = bodies or _fixed(chat_body(model))
    headers = {"content-type": "application/json"}
    samples: list[float] = []
    errors = 0
    with httpx.Client(base_url=url, timeout=30.0) as client:
        for i in range(warmup + n):
            body = next(bodies)
            t0 = time.perf_counter()
            try:
                response = client.post("/v1/chat/completions", content=body, headers=headers)
                ok = response.status_code == 200
            except httpx.HTTPError:
                ok = False
            elapsed = (time.perf_counter() - t0) * 1000
            if i < warmup:
                continue
            if ok:
                samples.append(elapsed)
            else:
                errors += 1
    return Latency.of(samples, errors)


@dataclass
class StreamResult:
    ttfb: Latency
    total: Latency
    sample_ok: bool  # the last stream carried content and ended with [DONE]


def measure_stream(url: str, model: str, n: int, warmup: int, bodies: Iterator[bytes] | None = None) -> StreamResult:
    """n sequential streaming requests: time to the first body byte, and to the end of the stream; `bodies`
    must ask for a stream (default: the fixed body with "stream": true)."""
    bodies = bodies or _fixed(chat_body(model, stream=True))
    headers = {"content-type": "application/json"}
    ttfb: list[float] = []
    total: list[float] = []
    errors = 0
    last = b""
    with httpx.Client(base_url=url, timeout=30.0) as client:
        for i in range(warmup + n):
            body = next(bodies)
            t0 = time.perf_counter()
            first = None
            try:
                with client.stream("POST", "/v1/chat/completions", content=body, headers=headers) as response:
                    parts = []
                    for raw in response.iter_raw():
                        if first is None:
                            first = time.perf_counter()
                        parts.append(raw)
                    ok = response.status_code == 200
                end = time.perf_counter()
                last = b"".join(parts)
            except httpx.HTTPError:
                ok = False
            if i < warmup:
                continue
            if ok and first is not None:
                ttfb.append((first - t0) * 1000)
                total.append((end - t0) * 1000)
            else:
                errors += 1
    sample_ok = b'"content"' in last and last.rstrip().endswith(b"data: [DONE]")
    return StreamResult(Latency.of(ttfb, errors), Latency.of(total, errors), sample_ok)
