"""A scripted in-process backend: the counterpart of httpx's `MockTransport` for the request path.

`ScriptedBackend` is a real `router.backends.base.Backend`: the app factory, routes, strategies and switches
run unchanged on top of it, with no socket and no thread. Each upstream call takes the next scripted reply
(a string, a `Reply`, an exception to raise, or a function of the request body); every call is recorded in
`calls` (body, prefill, kind) so a test can assert what the proxy sent. Streams cut each text into
word-sized chunks, end with a finish chunk and, when the body asks for it, a usage chunk; `closed` lists the
streams that were closed (by name), so tests can check that closing reaches the upstream.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable, Union

from router.backends.base import Backend, Body, Chunk


@dataclass(frozen=True)
class Reply:
    content: str = ""
    reasoning: str | None = None
    finish_reason: str = "stop"
    usage: tuple[int, int] | None = None  # (prompt, completion); None: counted in words


Script = Union[str, Reply, BaseException, Callable[[Body], Union[str, Reply]]]


@dataclass(frozen=True)
class Call:
    kind: str  # "complete", "stream", "complete_forced_think" or "stream_forced_think"
    body: Body
    prefill: bool = False
    budget: int | None = None


def words(text: str) -> int:
    return len(text.split())


class ScriptedBackend(Backend):
    name = "scripted"

    def __init__(self, *replies: Script, default: Script | None = None, supports_prefill: bool = False,
                 native_forced_thinking: bool = False) -> None:
        self.script: deque[Script] = deque(replies)
        self.default = default
        self.supports_prefill = supports_prefill
        self.native_forced_thinking = native_forced_thinking
        self.calls: list[Call] = []
        self.closed: list[str] = []

    @property
    def bodies(self) -> list[Body]:
        return [call.body for call in self.calls]

    def _reply(self, call: Call) -> Reply:
        self.calls.append(call)
        if self.script:
            script = self.script.popleft()
        elif self.default is not None:
            script = self.default
        else:
            raise AssertionError(f"ScriptedBackend: no reply scripted for call {len(self.calls)} ({call.kind})")
        if isinstance(script, BaseException):
            raise script
        if callable(script):
            script = script(call.body)
        return Reply(script) if isinstance(script, str) else script

    @staticmethod
    def _usage(body: Body, reply: Reply) -> dict[str, Any]:
        if reply.usage is not None:
            prompt, completion = reply.usage
        else:
            prompt = sum(words(str(m.get("content") or "")) for m in body.get("messages") or [])
            completion = words(reply.content) + words(reply.reasoning or "")
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def _response(self, body: Body, reply: Reply) -> Body:
        message: dict[str, Any] = {"role": "assistant", "content": reply.content}
        if reply.reasoning is not None:
            message["reasoning_content"] = reply.reasoning
        return {"id": "chatcmpl-scripted", "object": "chat.completion", "created": 0, "model": body.get("model"),
                "choices": [{"index": 0, "message": message, "finish_reason": reply.finish_reason}],
                "usage": self._usage(body, reply)}

    async def _chunks(self, name: str, call: Call) -> AsyncIterator[Chunk]:
        """Like an HTTP stream: nothing is sent (or fails) until the first chunk is awaited."""
        body = call.body
        reply = self._reply(call)

        def chunk(delta: dict[str, Any], finish: str | None = None) -> Chunk:
            return {"id": f"chatcmpl-{name}", "object": "chat.completion.chunk", "created": 0,
                    "model": body.get("model"), "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        try:
            yield chunk({"role": "assistant", "content": ""})
            for piece in re.findall(r"\S*\s*", reply.reasoning or ""):
                if piece:
                    yield chunk({"reasoning_content": piece})
            for piece in re.findall(r"\s*\S*", reply.content):
                if piece:
                    yield chunk({"content": piece})
            yield chunk({}, reply.finish_reason)
            if (body.get("stream_options") or {}).get("include_usage"):
                yield {"id": f"chatcmpl-{name}", "object": "chat.completion.chunk", "created": 0,
                       "model": body.get("model"), "choices": [], "usage": self._usage(body, reply)}
        finally:
            self.closed.append(name)

    async def complete(self, body: Body, *, prefill: bool = False) -> Body:
        return self._response(body, self._reply(Call("complete", body, prefill)))

    def stream(self, body: Body, *, prefill: bool = False) -> AsyncIterator[Chunk]:
        return self._chunks(f"stream{len(self.calls) + 1}", Call("stream", body, prefill))

    async def complete_forced_think(self, body: Body, budget: int) -> Body:
        return self._response(body, self._reply(Call("complete_forced_think", body, budget=budget)))

    def stream_forced_think(self, body: Body, budget: int) -> AsyncIterator[Chunk]:
        return self._chunks(f"forced{len(self.calls) + 1}", Call("stream_forced_think", body, budget=budget))
