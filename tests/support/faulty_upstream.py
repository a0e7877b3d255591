"""A fault-injecting OpenAI-compatible upstream on a raw asyncio socket, so it can break HTTP itself.

The fault is chosen per request by the last user message: `fault:NAME` (anything else is answered normally).
Each fault answers a streamed and a non-streamed request in its own way; `FAULTS` lists what the proxy must
make of it. Runs in a background thread with its own event loop, like `servers.ThreadedServer`.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
import time
from typing import Any

SECRET_KEY = "sk-test-Zq8XWv3LbN5pR7tY2uK9mJ4h"  # what the proxy sends upstream as its key in fault tests

# fault -> (expected non-streamed status, expected streamed outcome). A streamed outcome is a status when the
# fault shows before the first chunk, or "event" for a 200 that ends with an error event and no [DONE].
FAULTS: dict[str, tuple[int, int | str]] = {
    "ok": (200, 200),
    "usage_string": (200, 200),
    "usage_list": (200, 200),
    "usage_number": (200, 200),
    "usage_bad_counts": (200, 200),
    "gzip": (200, 200),
    "body_list": (502, 502),
    "body_null": (502, 502),
    "body_number": (502, 502),
    "choices_string": (502, 502),
    "choices_empty": (502, 200),  # a stream chunk may have no choices (usage-only); the stream still finishes
    "content_number": (502, 502),
    "index_list": (502, 502),
    "invalid_json": (502, 502),
    "non_sse": (200, 502),  # a JSON completion where a stream was asked for
    "text_plain": (502, 502),
    "close_mid": (502, "event"),
    "no_done": (200, "event"),  # a stream without [DONE] and without finish_reason
    "long_line": (200, 502),  # one SSE line over max_line_bytes
    "huge": (502, "event"),  # over max_response_bytes (the fault tests set a small limit)
    "trickle": (504, 504),  # one byte at a time, each within timeout_s, the whole past total_timeout_s
    "echo_key": (502, 502),  # a 401 whose body echoes the key it was sent
    "error_event": (200, "event"),
}

HUGE_BYTES = 3 * 1024 * 1024
LONG_LINE_BYTES = 2 * 1024 * 1024 + 10


def _completion(text: str, usage: Any = None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": "chatcmpl-faulty", "object": "chat.completion", "created": 0, "model": "faulty",
                           "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                        "finish_reason": "stop"}]}
    out["usage"] = usage if usage is not None else {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    return out


def _chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> bytes:
    data = {"id": "chatcmpl-faulty", "object": "chat.completion.chunk", "created": 0, "model": "faulty",
            "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}], **extra}
    return b"data: " + json.dumps(data).encode() + b"\n\n"


_USAGES = {
    "usage_string": "lots", "usage_list": [1, 2], "usage_number": 7,
    "usage_bad_counts": {"prompt_tokens": -5, "completion_tokens": 1e30, "total_tokens": "x",
                         "completion_tokens_details": {"reasoning_tokens": -1}},
}


class FaultyUpstream:
    def __init__(self) -> None:
        self.port = 0
        self.requests: list[dict[str, Any]] = []
        self.auth_headers: list[str] = []
        self.open_streams = 0
        self.abandoned = 0  # held requests whose client (the proxy) hung up before `release`
        self.release = threading.Event()  # `hold` streams wait for it
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._ready = threading.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> "FaultyUpstream":
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("faulty upstream did not start")
        return self

    def stop(self) -> None:
        self.release.set()
        if self._loop is not None:
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    def _run(self) -> None:
        self._loop = loop = asyncio.new_event_loop()
        self._server = loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                headers = {}
                for line in head.decode("latin-1").split("\r\n")[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                body = json.loads(await reader.readexactly(int(headers.get("content-length", "0"))))
                self.requests.append(body)
                self.auth_headers.append(headers.get("authorization", ""))
                keep = await self._answer(reader, writer, body, headers.get("authorization", ""))
                if not keep:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _answer(self, r: asyncio.StreamReader, w: asyncio.StreamWriter, body: dict[str, Any], auth: str) -> bool:
        """Write the response; return whether the connection stays open."""
        last = next((m.get("content") for m in reversed(body.get("messages", [])) if m.get("role") == "user"), "")
        fault = last[6:] if isinstance(last, str) and last.startswith("fault:") else "ok"
        if fault.startswith("hold"):  # a stream (or call) that stays open until `release` is set
            return await self._hold(r, w, body)
        stream = bool(body.get("stream"))
        if fault == "echo_key":
            self._send(w, 401, json.dumps({"error": {"message": f"Incorrect API key provided: {auth}. "
                                                     f"Your key {auth.removeprefix('Bearer ')} is invalid."}}).encode())
            return True
        if fault == "trickle":
            payload = json.dumps(_completion("slow")).encode() if not stream else _chunk({"content": "slow"}) * 5
            w.write(self._head(200, "text/event-stream" if stream else "application/json", len(payload)))
            for i in range(len(payload)):
                w.write(payload[i:i + 1])
                await w.drain()
                await asyncio.sleep(0.05)
            return True
        return await (self._stream(w, fault) if stream else self._complete(w, fault))

    async def _complete(self, w: asyncio.StreamWriter, fault: str) -> bool:
        bodies: dict[str, Any] = {"body_list": [1, 2], "body_null": None, "body_number": 3,
                                  "choices_string": {"choices": "nope"}, "choices_empty": {"choices": []},
                                  "content_number": {"choices": [{"message": {"content": 5}}]},
                                  "index_list": {"choices": [{"index": [0], "message": {"content": "x"}}]}}
        if fault in bodies:
            self._send(w, 200, json.dumps(bodies[fault]).encode())
        elif fault == "invalid_json" or fault == "text_plain":
            self._send(w, 200, b"{not json", "text/plain")
        elif fault == "close_mid":
            w.write(self._head(200, "application/json", 1000) + b'{"choices": [')
            await w.drain()
            return False
        elif fault == "huge":
            self._send(w, 200, b'{"pad": "' + b"x" * HUGE_BYTES + b'"}')
        elif fault == "gzip":
            payload = gzip.compress(json.dumps(_completion("zipped")).encode())
            w.write(self._head(200, "application/json", len(payload), b"content-encoding: gzip\r\n") + payload)
        elif fault == "error_event":
            self._send(w, 200, json.dumps(_completion("fine")).encode())
        else:
            self._send(w, 200, json.dumps(_completion("fine", _USAGES.get(fault))).encode())
        await w.drain()
        return True

    async def _stream(self, w: asyncio.StreamWriter, fault: str) -> bool:
        first = _chunk({"role": "assistant", "content": "he"})
        events: dict[str, bytes] = {
            "body_list": b"data: [1, 2]\n\n", "body_null": b"data: null\n\n", "body_number": b"data: 3\n\n",
            "choices_string": b'data: {"choices": "nope"}\n\n',
            "choices_empty": b'data: {"choices": []}\n\n' + _chunk({}, "stop") + b"data: [DONE]\n\n",
            "content_number": _chunk({"content": 5}), "index_list": b'data: {"choices": [{"index": [0]}]}\n\n',
            "invalid_json": b"data: {not json\n\n", "text_plain": b"just some text\nand more\n",
            "no_done": _chunk({"content": "partial"}),
            "long_line": b"data: " + b"x" * LONG_LINE_BYTES + b"\n\n",
            "error_event": first + b'data: {"error": {"message": "overloaded mid-stream"}}\n\n',
        }
        if fault == "non_sse":
            self._send(w, 200, json.dumps(_completion("not a stream")).encode())
        elif fault == "text_plain":
            self._send(w, 200, events[fault], "text/plain")
        elif fault in events:
            self._send(w, 200, events[fault], "text/event-stream")
        elif fault == "close_mid":
            w.write(self._head(200, "text/event-stream", None) + self._piece(first * 2))
            await w.drain()
            return False
        elif fault == "huge":
            w.write(self._head(200, "text/event-stream", None))
            w.write(self._piece(first))
            for _ in range(HUGE_BYTES // 65536 + 1):
                w.write(self._piece(_chunk({"content": "x" * 65000})))
                await w.drain()
            w.write(self._piece(_chunk({}, "stop") + b"data: [DONE]\n\n") + b"0\r\n\r\n")
        elif fault == "gzip":
            payload = gzip.compress(first + _chunk({"content": "llo"}) + _chunk({}, "stop") + b"data: [DONE]\n\n")
            w.write(self._head(200, "text/event-stream", len(payload), b"content-encoding: gzip\r\n") + payload)
        else:
            usage = _USAGES.get(fault, {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5})
            payload = (first + _chunk({"content": "llo"}) + _chunk({}, "stop")
                       + b"data: " + json.dumps({"choices": [], "usage": usage}).encode() + b"\n\n"
                       + b"data: [DONE]\n\n")
            self._send(w, 200, payload, "text/event-stream")
        await w.drain()
        return True

    async def _hold(self, r: asyncio.StreamReader, w: asyncio.StreamWriter, body: dict[str, Any]) -> bool:
        self.open_streams += 1
        try:
            if body.get("stream") and body["messages"][-1]["content"] != "fault:hold_before_first":
                w.write(self._head(200, "text/event-stream", None) + self._piece(_chunk({"content": "held"})))
                await w.drain()
            while not self.release.is_set():
                if r.at_eof():
                    self.abandoned += 1
                    return False
                await asyncio.sleep(0.02)
            if body.get("stream"):
                w.write(self._piece(_chunk({}, "stop") + b"data: [DONE]\n\n") + b"0\r\n\r\n")
            else:
                self._send(w, 200, json.dumps(_completion("released")).encode())
            await w.drain()
        finally:
            self.open_streams -= 1
        return True

    @staticmethod
    def _head(status: int, content_type: str, length: int | None, extra: bytes = b"") -> bytes:
        framing = b"transfer-encoding: chunked\r\n" if length is None else b"content-length: %d\r\n" % length
        return (b"HTTP/1.1 %d X\r\ncontent-type: %s\r\n" % (status, content_type.encode()) + framing + extra
                + b"\r\n")

    @staticmethod
    def _piece(data: bytes) -> bytes:
        return b"%x\r\n%s\r\n" % (len(data), data)

    def _send(self, w: asyncio.StreamWriter, status: int, payload: bytes, content_type: str = "application/json") -> None:
        w.write(self._head(status, content_type, len(payload)) + payload)


def wait_until(predicate: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False
