"""Stop working for a client that has left: the upstream call is cancelled when the client disconnects.

A streamed answer notices a disconnect through the response (starlette stops iterating and closes the
stream); a non-streamed call, or a stream before its first chunk, has no response yet, so the disconnect is
watched for here while the work runs.
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable, TypeVar

from .errors import ClientDisconnected

T = TypeVar("T")
Receive = Callable[[], Awaitable[Any]]  # an ASGI receive: returns a message mapping
LEFT = "client disconnected before the answer was ready"


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def unless_disconnected(receive: Receive, work: Awaitable[T]) -> T:
    """Run `work`; if the client disconnects first, cancel it and raise `ClientDisconnected`.

    Call it only after the request body has been read: from then on `receive()` returns only on disconnect.
    The work runs in the calling task (no task of its own, no `asyncio.wait`); one watcher task waits for the
    disconnect and cancels the caller, whose cancellation is then told apart from any other by `left` and the
    task's cancel count. That is one task and no `asyncio.wait` machinery per request fewer than a task per
    side joined with `asyncio.wait`.
    """
    current = asyncio.current_task()
    if current is None:  # not in a task (cannot happen under ASGI): nothing to cancel, just run it
        return await work
    left = False

    async def watch() -> None:
        nonlocal left
        await _disconnected(receive)
        left = True
        current.cancel()  # lands in `work`, at the await the caller is suspended in

    watcher = asyncio.ensure_future(watch())
    try:
        result = await work
    except (asyncio.CancelledError, Exception):
        # ours alone: the client left and nobody else cancelled the caller (a server shutting down still wins)
        if left and current.uncancel() == 0:
            raise ClientDisconnected(LEFT) from None
        raise
    finally:
        watcher.cancel()
    if left:  # the work swallowed the cancellation and finished: the client is gone all the same
        current.uncancel()
        raise ClientDisconnected(LEFT)
    return result
