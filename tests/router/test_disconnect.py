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
