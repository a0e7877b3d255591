from __future__ import annotations

from typing import Any

from .servers import ThreadedServer


def openai_client(server: ThreadedServer, **kwargs: Any):
    """The official OpenAI SDK pointed at a server, with retries off so errors surface at once."""
    import openai

    return openai.OpenAI(base_url=server.url + "/v1", api_key=kwargs.pop("api_key", "unused"), max_retries=0,
                         **kwargs)


def reasoning_of(message: Any) -> str | None:
    """`reasoning_content` is not in the SDK's typed model; it arrives as an extra field."""
    extra = getattr(message, "model_extra", None) or {}
    return extra.get("reasoning_content")


def collect_stream(stream: Any) -> tuple[str, str, list[Any]]:
    content, reasoning, chunks = [], [], []
    for chunk in stream:
        chunks.append(chunk)
        for choice in chunk.choices:
            if choice.delta.content:
                content.append(choice.delta.content)
            r = reasoning_of(choice.delta)
            if r:
                reasoning.append(r)
    return "".join(content), "".join(reasoning), chunks
