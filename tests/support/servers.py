"""Run an ASGI app on a real loopback port in a background thread (uvicorn), for over-the-wire tests."""

from __future__ import annotations

import asyncio
import threading
import time
from contextlib import contextmanager
from typing import Any, Iterator

import uvicorn


class ThreadedServer:
    def __init__(self, app: Any, **config_options: Any) -> None:
        """`config_options` go to `uvicorn.Config` (e.g. `http=` for a protocol class)."""
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on",
                                timeout_graceful_shutdown=5, **config_options)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.port = 0

    def _run(self) -> None:
        asyncio.run(self.server.serve())

    def start(self, timeout: float = 30.0) -> "ThreadedServer":
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("server thread died during start-up")
            if time.monotonic() > deadline:
                raise TimeoutError("server did not start")
            time.sleep(0.01)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self, timeout: float = 15.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)


@contextmanager
def serve(app: Any, **config_options: Any) -> Iterator[ThreadedServer]:
    server = ThreadedServer(app, **config_options).start()
    try:
        yield server
    finally:
        server.stop()
