"""The contract every upstream implements.

Requests and responses are OpenAI chat-completion dicts, so unknown request fields survive the trip.
A backend raises only `router.errors.UpstreamError` (or a subclass) for upstream failures.

Capabilities a reasoning profile may rely on:

- `supports_prefill`: with `prefill=True` the backend continues the trailing assistant message instead of
  starting a new turn (vLLM's `continue_final_message`, Anthropic prefill, the local model).
- `next_token_probs(body, words)`: the probability that the answer starts with each word (self-selection's
  P(YES) against P(NO)). The default asks the upstream for OpenAI's `top_logprobs` of one token; the local
  model overrides it with exact probabilities from its logits.
- `native_forced_thinking`: the backend runs "open `<think>`, think up to a budget, close the tag, answer"
  as one generation request (`complete_forced_think` / `stream_forced_think`), returning the reasoning in
  `message.reasoning_content` (the local model does this inside one batched job).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, AsyncIterator, Sequence

Body = dict[str, Any]
Chunk = dict[str, Any]


@dataclass(frozen=True)
class TokenProbs:
    """{word: probability} at the answer's first token (None: no log-probabilities), the tokens the call cost
    (prompt + completion) and the reply's text, if one was generated."""

    probs: dict[str, float] | None
    tokens: int = 0
    text: str = ""


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

    async def next_token_probs(self, body: Body, words: Sequence[str]) -> TokenProbs:
        """How likely the answer starts with each word (self-selection's YES against NO), plus the reply's text.

        One completion as `body` asks (its `max_tokens` bounds the reply), with `logprobs` and `top_logprobs=20`
        added (OpenAI's limit; vLLM and litellm's OpenAI-style providers answer the same way). A word's
        probability sums the first token's top entries equal to it after stripping whitespace and case-folding
        ("Yes", " YES", "yes" all count for "yes"); a word outside the top 20 counts 0. `probs` is None when the
        upstream returned no log-probabilities, so the caller can parse `text` instead, from the same call.
        """
        request = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
        request.update(logprobs=True, top_logprobs=20)
        response = await self.complete(request)
        return TokenProbs(probs_from_top_logprobs(response, words), usage_tokens(response), message_text(response))

    async def complete_forced_think(self, body: Body, budget: int) -> Body:
        raise NotImplementedError(f"{self.name} has no native forced thinking")

    def stream_forced_think(self, body: Body, budget: int) -> AsyncIterator[Chunk]:
        raise NotImplementedError(f"{self.name} has no native forced thinking")


async def aclose(iterator: Any) -> None:
    """Close a chunk iterator if it can be closed (closing a backend stream cancels the upstream call)."""
    close = getattr(iterator, "aclose", None)
    if close is not None:
        await close()


def probs_from_top_logprobs(response: Any, words: Sequence[str]) -> dict[str, float] | None:
    """Read OpenAI's `choices[0].logprobs.content[0].top_logprobs` into {word: probability}; None if absent."""
    try:
        top = response["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
    except (KeyError, IndexError, TypeError):
        return None
    if not isinstance(top, list) or not top:
        return None
    wanted = {word.strip().casefold(): word for word in words}
    probs = dict.fromkeys(words, 0.0)
    for entry in top:
        if not isinstance(entry, dict) or not isinstance(entry.get("token"), str):
            continue
        logprob = entry.get("logprob")
        if isinstance(logprob, bool) or not isinstance(logprob, (int, float)) or not math.isfinite(logprob) \
                or logprob > 0:
            continue
        word = wanted.get(entry["token"].strip().casefold())
        if word is not None:
            probs[word] += math.exp(logprob)
    return {word: min(1.0, p) for word, p in probs.items()}


def usage_tokens(response: Any) -> int:
    """prompt + completion tokens of a response's `usage`, 0 when absent or malformed."""
    usage = response.get("usage") if isinstance(response, dict) else None
    if not isinstance(usage, dict):
        return 0
    total = 0
    for key in ("prompt_tokens", "completion_tokens"):
        value = usage.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 31:
            total += value
    return total


def message_text(response: Any) -> str:
    """`choices[0].message.content` as a string ("" when absent or of the wrong shape)."""
    try:
        text = response["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        return ""
    return text if isinstance(text, str) else ""
