"""`unless_disconnected`: the work is cancelled when the client leaves, and only then."""

from __future__ import annotations

import asyncio

import pytest

from router.disconnect import unless_disconnected
from router.errors import ClientDisconnected


def _receive_after(seconds: float | None):
    async def receive() -> dict:
        if seconds is None:
            await asyncio.Event().wait()  # never
        await asyncio.sleep(seconds)
        return {"type": "http.disconnect"}
    return receive


def test_work_finishes_when_the_client_stays() -> None:
    async def work() -> str:
        await asyncio.sleep(0.01)
        return "done"

    assert asyncio.run(unless_disconnected(_receive_after(None), work())) == "done"


def test_work_is_cancelled_when_the_client_leaves() -> None:
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
            await unless_disconnected(_receive_after(0.05), work())

    asyncio.run(run())
    assert cancelled == [True]


def test_errors_of_the_work_propagate() -> None:
    async def work() -> str:
        raise ValueError("boom")

    with pytest.raises(ValueError):
        asyncio.run(unless_disconnected(_receive_after(None), work()))


def _shut_down_after(seconds: float, receive, work) -> None:
    """Run `unless_disconnected(receive, work)` as a task and cancel it from outside after `seconds`, as a
    server shutting down does: that CancelledError must propagate, not turn into a ClientDisconnected."""
    async def run() -> None:
        task = asyncio.ensure_future(unless_disconnected(receive, work))
        await asyncio.sleep(seconds)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())


def test_a_cancellation_from_elsewhere_is_not_taken_for_a_disconnect() -> None:
    _shut_down_after(0.01, _receive_after(None), asyncio.sleep(10))


def test_a_shutdown_after_the_client_left_still_propagates() -> None:
    async def work() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            await asyncio.sleep(0.1)  # cleanup that outlasts the disconnect and the shutdown's cancel
            raise

    _shut_down_after(0.05, _receive_after(0.01), work())  # at 0.05 s the client has left; the work cleans up


def test_work_that_swallows_the_cancel_still_reports_the_disconnect() -> None:
    async def work() -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            return "swallowed"
        return "late"

    async def run() -> None:
        with pytest.raises(ClientDisconnected):
            await unless_disconnected(_receive_after(0.01), work())
        assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]  # no stray cancel left

    asyncio.run(run())


def test_after_a_finished_answer_the_caller_is_never_cancelled() -> None:
    """The watcher is gone once the work returns: the caller's later awaits (sending the answer) run."""
    async def run() -> str:
        result = await unless_disconnected(_receive_after(0.02), asyncio.sleep(0.001, result="done"))
        await asyncio.sleep(0.05)  # past the moment the client leaves
        return result

    assert asyncio.run(run()) == "done"
