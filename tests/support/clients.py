from __future__ import annotations

from typing import Any

from .servers import ThreadedServer


_OPEN_CLIENTS: list[Any] = []


def openai_client(server: ThreadedServer, **kwargs: Any):
    """The official OpenAI SDK pointed at a server, with retries off so errors surface at once. Closed after
    the test (`close_openai_clients`): an SDK error's traceback keeps the client in a reference cycle, and a
    socket the collector finds later, unclosed, fails whichever test is running then."""
    import openai

    client = openai.OpenAI(base_url=server.url + "/v1", api_key=kwargs.pop("api_key", "unused"), max_retries=0,
                           **kwargs)
    _OPEN_CLIENTS.append(client)
    return client


def close_openai_clients() -> None:
    while _OPEN_CLIENTS:
        _OPEN_CLIENTS.pop().close()


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
