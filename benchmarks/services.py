"""Benchmark subprocesses (a proxy, a mock upstream): start, wait until ready, always stop.

Readiness is polled with the standard library, so the A/B harness needs no HTTP client extra.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _answers_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2.0) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


class ServiceError(RuntimeError):
    pass


@dataclass
class Service:
    """One server subprocess: its command, its base URL, its log file."""

    name: str
    argv: list[str]
    port: int
    log_path: Path
    ready_path: str = "/readyz"
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path = REPO_ROOT
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self, timeout_s: float = 60.0) -> "Service":
        log = open(self.log_path, "wb")
        try:
            self.proc = subprocess.Popen(self.argv, cwd=self.cwd, env={**os.environ, **self.env}, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        finally:
            log.close()
        deadline = time.monotonic() + timeout_s
        while True:
            if self.proc.poll() is not None:
                raise ServiceError(f"{self.name} exited with code {self.proc.returncode} during start-up:\n"
                                   f"{self.log_tail()}")
            if _answers_ok(self.url + self.ready_path):
                return self
            if time.monotonic() > deadline:
                raise ServiceError(f"{self.name} not ready after {timeout_s:.0f} s:\n{self.log_tail()}")
            time.sleep(0.05)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout_s: float = 10.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


class Services(contextlib.AbstractContextManager["Services"]):
    """Starts services and always stops every one it started, newest first."""

    def __init__(self) -> None:
        self.started: list[Service] = []

    def start(self, service: Service, timeout_s: float = 60.0) -> Service:
        self.started.append(service)  # registered first, so a half-started one is stopped too
        return service.start(timeout_s)

    def stop_all(self) -> None:
        """Stop every started service, newest first (again on exit: a no-op)."""
        while self.started:
            with contextlib.suppress(Exception):
                self.started.pop().stop()

    def __exit__(self, *exc: Any) -> None:
        self.stop_all()


