"""Threads that interleave as often as the interpreter allows: for tests of code shared across threads."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable


def run_interleaved(work: Callable[[int], None], threads: int = 4) -> None:
    """`work(0)` ... `work(threads - 1)`, each in its own thread, at the shortest switch interval (restored after)."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        started = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
        for t in started:
            t.start()
        for t in started:
            t.join()
    finally:
        sys.setswitchinterval(interval)
