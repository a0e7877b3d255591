"""Stop working for a client that has left: the upstream call is cancelled when the client disconnects.

A streamed answer notices a disconnect through the response (starlette stops iterating and closes the
stream); a non-streamed call, or a stream before its first chunk, has no response yet, so the disconnect is
watched for here while the work runs.

Two ways to hear of it. Under `thinkgate serve`, the server's protocol (`server_limits.guarded_protocol`) puts a
`ClientGone` in each request's scope (`scope["extensions"][CLIENT_GONE]`) and calls it from `connection_lost`:
no task and no timer per request. Under any other ASGI server, a watcher task waits on `receive()`, which
returns `http.disconnect` once the client is gone.
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable, Mapping, TypeVar

from .errors import ClientDisconnected

T = TypeVar("T")
Receive = Callable[[], Awaitable[Any]]  # an ASGI receive: returns a message mapping
LEFT = "client disconnected before the answer was ready"
CLIENT_GONE = "thinkgate.client_gone"  # the scope extension holding a request's ClientGone


class ClientGone:
    """Set by the server when a request's connection is lost; calls the callback registered at that moment."""

    __slots__ = ("gone", "callback")

    def __init__(self) -> None:
        self.gone = False
        self.callback: Callable[[], None] | None = None

    def __call__(self) -> None:
        self.gone = True
        callback, self.callback = self.callback, None
        if callback is not None:
            callback()


def client_gone_of(scope: Mapping[str, Any]) -> ClientGone | None:
    extensions = scope.get("extensions")
    signal = extensions.get(CLIENT_GONE) if extensions else None
    return signal if isinstance(signal, ClientGone) else None


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def unless_disconnected(receive: Receive, work: Awaitable[T], scope: Mapping[str, Any] | None = None) -> T:
    """Run `work`; if the client disconnects first, cancel it and raise `ClientDisconnected`.

    Call it only after the request body has been read: from then on `receive()` returns only on disconnect.
    The work runs in the calling task (no task of its own, no `asyncio.wait`). Whoever hears of the disconnect
    (the server through the scope's `ClientGone`, else one watcher task) cancels the caller, whose cancellation
    is then told apart from any other by `left` and the task's cancel count.
    """
    current = asyncio.current_task()
    if current is None:  # not in a task (cannot happen under ASGI): nothing to cancel, just run it
        return await work
    left = False

    def leave() -> None:
        nonlocal left
        left = True
        current.cancel()  # lands in `work`, at the await the caller is suspended in

    signal = client_gone_of(scope) if scope is not None else None
    watcher: asyncio.Future[None] | None = None
    if signal is not None:
        if signal.gone:
            if asyncio.iscoroutine(work):
                work.close()  # never awaited: no "coroutine was never awaited" warning
            raise ClientDisconnected(LEFT)
        signal.callback = leave
    else:
        async def watch() -> None:
            await _disconnected(receive)
            leave()

        watcher = asyncio.ensure_future(watch())
    try:
        result = await work
    except (asyncio.CancelledError, Exception):
        # ours alone: the client left and nobody else cancelled the caller (a server shutting down still wins)
        if left and current.uncancel() == 0:
            raise ClientDisconnected(LEFT) from None
        raise
    finally:
        if watcher is not None:
            watcher.cancel()
        elif signal is not None:
            signal.callback = None
    if left:  # the work swallowed the cancellation and finished: the client is gone all the same
        current.uncancel()
        raise ClientDisconnected(LEFT)
    return result
