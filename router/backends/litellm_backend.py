"""Every provider that is not OpenAI-compatible (Anthropic, Gemini, Bedrock, ...), through litellm.

litellm is imported when the first such route is built (it takes seconds to import), never at module
import. Its client costs about 4 ms of CPU a call here, so OpenAI-compatible upstreams use the
pass-through backend instead.
"""

from __future__ import annotations

import os
from typing import Any, AsyncIterator

from ..errors import UpstreamError, UpstreamTimeout, UpstreamUnavailable, upstream_status
from ..redact import Redactor
from .base import Backend, Body, Chunk

# Providers whose API treats a trailing assistant message as the start of the reply (prefill).
_PREFILL_PROVIDERS = ("anthropic/", "bedrock/anthropic", "vertex_ai/claude")


class LiteLLMBackend(Backend):
    name = "litellm"

    def __init__(self, model: str, *, api_key: str | None = None, base_url: str | None = None,
                 timeout_s: float = 120.0, extra: dict[str, Any] | None = None) -> None:
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # else importing litellm goes online
        import litellm

        self._litellm = litellm
        self.model = model
        self._kwargs: dict[str, Any] = {"timeout": timeout_s, **(extra or {})}
        self._redact = Redactor([api_key])
        if api_key:
            self._kwargs["api_key"] = api_key
        if base_url:
            self._kwargs["api_base"] = base_url
        self.supports_prefill = model.startswith(_PREFILL_PROVIDERS)

    def _call_args(self, body: Body, stream: bool) -> dict[str, Any]:
        args = {**body, **self._kwargs, "stream": stream}
        args["model"] = body.get("model") or self.model  # litellm names carry the provider: `anthropic/...`
        return args

    async def complete(self, body: Body, *, prefill: bool = False) -> Body:
        try:
            response = await self._litellm.acompletion(**self._call_args(body, False))
        except Exception as exc:  # litellm raises its own tree; map it to ours
            raise _map_error(exc, self._redact) from None
        return response.model_dump(exclude_none=True)

    async def stream(self, body: Body, *, prefill: bool = False) -> AsyncIterator[Chunk]:
        try:
            response = await self._litellm.acompletion(**self._call_args(body, True))
            async for chunk in response:
                yield chunk.model_dump(exclude_none=True)
        except UpstreamError:
            raise
        except Exception as exc:
            raise _map_error(exc, self._redact) from None


def _map_error(exc: Exception, redact: Redactor) -> UpstreamError:
    """Our error for a litellm one; not chained to it (`from None`), since its text may hold the key."""
    name = type(exc).__name__
    message = redact(str(getattr(exc, "message", None) or exc).strip() or name)
    if "Timeout" in name:
        return UpstreamTimeout(f"upstream timed out: {message[:300]}")
    if name == "APIConnectionError":
        return UpstreamUnavailable(f"upstream unreachable: {message[:300]}")
    status = getattr(exc, "status_code", None)
    return UpstreamError(f"upstream error: {message[:500]}",
                         status=upstream_status(int(status)) if isinstance(status, int) else 502)
