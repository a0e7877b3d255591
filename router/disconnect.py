"""Stop working for a client that has left: the upstream call is cancelled when the client disconnects.

A streamed answer notices a disconnect through the response (starlette stops iterating and closes the
stream); a non-streamed call, or a stream before its first chunk, has no response yet, so the disconnect is
watched for here while the work runs.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Awaitable, Callable, TypeVar

from .errors import ClientDisconnected

T = TypeVar("T")
Receive = Callable[[], Awaitable[Any]]  # an ASGI receive: returns a message mapping


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def unless_disconnected(receive: Receive, work: Awaitable[T]) -> T:
    """Run `work`; if the client disconnects first, cancel it and raise `ClientDisconnected`.

    Call it only after the request body has been read: from then on `receive()` returns only on disconnect.
    """
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(receive))
    try:
        await asyncio.wait((task, watcher), return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()
        raise
    finally:
        watcher.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
    raise ClientDisconnected("client disconnected before the answer was ready")
