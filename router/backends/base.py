"""The contract every upstream implements.

Requests and responses are OpenAI chat-completion dicts, so unknown request fields survive the trip.
A backend raises only `router.errors.UpstreamError` (or a subclass) for upstream failures.

Capabilities a reasoning profile may rely on:

- `supports_prefill`: with `prefill=True` the backend continues the trailing assistant message instead of
  starting a new turn (vLLM's `continue_final_message`, Anthropic prefill, the local model).
- `native_forced_thinking`: the backend runs "open `<think>`, think up to a budget, close the tag, answer"
  as one generation request (`complete_forced_think` / `stream_forced_think`), returning the reasoning in
  `message.reasoning_content` (the local model does this inside one batched job).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, AsyncIterator

Body = dict[str, Any]
Chunk = dict[str, Any]


class Backend(ABC):
    name: str = "backend"
    supports_prefill: bool = False
    native_forced_thinking: bool = False

    async def start(self) -> None:
        """Begin any slow initialisation (e.g. load a model). Must return quickly; see `is_ready`."""

    def is_ready(self) -> bool:
        return True

    async def wait_ready(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for readiness; return whether the backend is ready."""
        return self.is_ready()

    async def aclose(self) -> None:
        """Release connections, threads and models."""

    @abstractmethod
    async def complete(self, body: Body, *, prefill: bool = False) -> Body:
        """Send a non-streaming chat completion and return the upstream's response dict."""

    @abstractmethod
    def stream(self, body: Body, *, prefill: bool = False) -> AsyncIterator[Chunk]:
        """Yield `chat.completion.chunk` dicts. Closing the iterator cancels the upstream call."""

    async def complete_forced_think(self, body: Body, budget: int) -> Body:
        raise NotImplementedError(f"{self.name} has no native forced thinking")

    def stream_forced_think(self, body: Body, budget: int) -> AsyncIterator[Chunk]:
        raise NotImplementedError(f"{self.name} has no native forced thinking")


async def aclose(iterator: Any) -> None:
    """Close a chunk iterator if it can be closed (closing a backend stream cancels the upstream call)."""
    close = getattr(iterator, "aclose", None)
    if close is not None:
        await close()
