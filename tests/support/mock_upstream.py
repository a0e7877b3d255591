"""A scripted OpenAI-compatible upstream (a real Starlette server) that records what it receives.

`reply` decides the text from the request body. Streaming splits that text into `chunk_size`-character
deltas, so `<think>` tags are cut across chunk boundaries. Failures, delays and prefill continuation
(`continue_final_message`, as vLLM does it) are switchable per test. The wire shapes come from the
benchmarks' mock (benchmarks/mock_upstream_server.py), so the two mocks cannot drift apart.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from benchmarks.mock_upstream_server import chunk_body, completion_body, usage_chunk_body


def last_user_text(body: dict[str, Any]) -> str:
    for m in reversed(body.get("messages", [])):
        if m.get("role") == "user":
            return m.get("content") or ""
    return ""


class MockUpstream:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []  # the request headers, parallel to `requests`
        self.reply: Callable[[dict[str, Any]], str] = lambda body: f"echo: {last_user_text(body)}"
        self.chunk_size = 3
        self.fail: tuple[int, str] | None = None
        self.fail_times: int | None = None  # None: fail every request while `fail` is set
        self.delay_s = 0.0
        self.chunk_delay_s = 0.0
        # logprobs(body) -> [(token, logprob), ...]: the first token's top_logprobs, sent when the request asks
        # for `logprobs` (None: the upstream never returns log-probabilities, like many providers).
        self.logprobs: Callable[[dict[str, Any]], list[tuple[str, float]]] | None = None
        self.stream_cancelled = asyncio.Event()
        self.cancelled_streams = 0
        self.app = Starlette(routes=[Route("/v1/chat/completions", self.chat, methods=["POST"])])

    def usage(self, body: dict[str, Any], text: str) -> dict[str, int]:
        prompt = sum(len(str(m.get("content") or "").split()) for m in body.get("messages", []))
        completion = len(text.split())
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def _text(self, body: dict[str, Any]) -> str:
        text = self.reply(body)
        if body.get("stop"):
            for stop in [body["stop"]] if isinstance(body["stop"], str) else body["stop"]:
                text = text.split(stop, 1)[0]
        return text

    async def chat(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.fail and (self.fail_times is None or self.fail_times > 0):
            if self.fail_times is not None:
                self.fail_times -= 1
            status, message = self.fail
            return JSONResponse({"error": {"message": message, "type": "mock_error", "code": None}}, status)
        text = self._text(body)
        created = int(time.time())
        if not body.get("stream"):
            reply = completion_body(body["model"], text, self.usage(body, text), created)
            if body.get("logprobs") and self.logprobs is not None:
                top = [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in self.logprobs(body)]
                first = top[0] if top else {"token": "", "logprob": 0.0, "bytes": []}
                reply["choices"][0]["logprobs"] = {"content": [{**first, "top_logprobs": top}]}
            return JSONResponse(reply)
        return StreamingResponse(self._events(body, text, created), media_type="text/event-stream")

    async def _events(self, body: dict[str, Any], text: str, created: int):
        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            return f"data: {json.dumps(chunk_body(body['model'], created, delta, finish))}\n\n".encode()

        try:
            yield chunk({"role": "assistant", "content": ""})
            for i in range(0, len(text), self.chunk_size):
                if self.chunk_delay_s:
                    await asyncio.sleep(self.chunk_delay_s)
                yield chunk({"content": text[i:i + self.chunk_size]})
            yield chunk({}, "stop")
            if (body.get("stream_options") or {}).get("include_usage"):
                data = usage_chunk_body(body["model"], created, self.usage(body, text))
                yield f"data: {json.dumps(data)}\n\n".encode()
            yield b"data: [DONE]\n\n"
        except asyncio.CancelledError:
            self.cancelled_streams += 1
            raise
        finally:
            pass
