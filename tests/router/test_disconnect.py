"""`unless_disconnected`: the work is cancelled when the client leaves, and only then.

Each behaviour is checked for both ways of hearing of a disconnect: a watcher on `receive()` (any ASGI server)
and the server's `ClientGone` signal in the scope (`thinkgate serve`'s protocol)."""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable

import pytest

from router.disconnect import CLIENT_GONE, ClientGone, unless_disconnected
from router.errors import ClientDisconnected

WAYS = ["receive", "signal"]


async def _never() -> dict:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


def _guarded(way: str, leaves_after: float | None, work: Awaitable[Any]) -> Awaitable[Any]:
    """`unless_disconnected(..., work)` for a client that leaves after `leaves_after` seconds (None: stays),
    heard of the given way."""
    async def run() -> Any:
        if way == "receive":
            async def receive() -> dict:
                if leaves_after is None:
                    return await _never()
                await asyncio.sleep(leaves_after)
                return {"type": "http.disconnect"}

            return await unless_disconnected(receive, work)
        signal = ClientGone()
        if leaves_after is not None:
            asyncio.get_running_loop().call_later(leaves_after, signal)
        return await unless_disconnected(_never, work, {"extensions": {CLIENT_GONE: signal}})

    return run()


@pytest.mark.parametrize("way", WAYS)
def test_work_finishes_when_the_client_stays(way: str) -> None:
    assert asyncio.run(_guarded(way, None, asyncio.sleep(0.01, result="done"))) == "done"


@pytest.mark.parametrize("way", WAYS)
def test_work_is_cancelled_when_the_client_leaves(way: str) -> None:
    cancelled = []

    async def work() -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
        return "late"

    async def run() -> None:
        with pytest.raises(ClientDisconnected):
            await _guarded(way, 0.05, work())

    asyncio.run(run())
    assert cancelled == [True]


def test_a_client_gone_before_the_work_starts_never_runs_it() -> None:
    ran = []

    async def work() -> None:
        ran.append(True)

    signal = ClientGone()
    signal()
    with pytest.raises(ClientDisconnected):
        asyncio.run(unless_disconnected(_never, work(), {"extensions": {CLIENT_GONE: signal}}))
    assert ran == []


@pytest.mark.parametrize("way", WAYS)
def test_errors_of_the_work_propagate(way: str) -> None:
    async def work() -> str:
        raise ValueError("boom")

    with pytest.raises(ValueError):
        asyncio.run(_guarded(way, None, work()))


def _shut_down_after(seconds: float, guarded: Awaitable[Any]) -> None:
    """Run `guarded` as a task and cancel it from outside after `seconds`, as a server shutting down does:
    that CancelledError must propagate, not turn into a ClientDisconnected."""
    async def run() -> None:
        task = asyncio.ensure_future(guarded)
        await asyncio.sleep(seconds)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())


@pytest.mark.parametrize("way", WAYS)
def test_a_cancellation_from_elsewhere_is_not_taken_for_a_disconnect(way: str) -> None:
    _shut_down_after(0.01, _guarded(way, None, asyncio.sleep(10)))


@pytest.mark.parametrize("way", WAYS)
def test_a_shutdown_after_the_client_left_still_propagates(way: str) -> None:
    async def work() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            await asyncio.sleep(0.1)  # cleanup that outlasts the disconnect and the shutdown's cancel
            raise

    _shut_down_after(0.05, _guarded(way, 0.01, work()))  # at 0.05 s the client has left; the work cleans up


@pytest.mark.parametrize("way", WAYS)
def test_work_that_swallows_the_cancel_still_reports_the_disconnect(way: str) -> None:
    async def work() -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            return "swallowed"
        return "late"

    async def run() -> None:
        with pytest.raises(ClientDisconnected):
            await _guarded(way, 0.01, work())
        assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]  # no stray cancel left

    asyncio.run(run())


@pytest.mark.parametrize("way", WAYS)
def test_after_a_finished_answer_the_caller_is_never_cancelled(way: str) -> None:
    """Nothing listens once the work returns: the caller's later awaits (sending the answer) run."""
    async def run() -> str:
        result = await _guarded(way, 0.02, asyncio.sleep(0.001, result="done"))
        await asyncio.sleep(0.05)  # past the moment the client leaves
        return result

    assert asyncio.run(run()) == "done"
