"""What the optional compiled parts share: the switch that turns them all off, and a module checked once.

`native.py` (the C extension of the TF-IDF dot products) and `compiled.py` (mypyc's build of the constraint
detector) each hold an `OptionalBuild`: it imports and checks its module the first time it is asked, remembers the
answer for the process, and logs once when the module is not used (info when it was simply not built, a warning
when a build is there but stale or broken). `THINKGATE_PURE_PYTHON=1` turns every part off, checked on each call.
This module imports nothing heavy (no numpy), so both can use it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from types import ModuleType

PURE_PYTHON_ENV = "THINKGATE_PURE_PYTHON"

Importer = Callable[[], tuple[ModuleType | None, str]]


def pure_python_forced() -> bool:
    """`THINKGATE_PURE_PYTHON` is set to something other than empty or `0`."""
    return os.environ.get(PURE_PYTHON_ENV, "") not in ("", "0")


class OptionalBuild:
    """`importer()` -> (module or None, status: 'loaded' or why not), run once; `message` % status is logged."""

    def __init__(self, importer: Importer, log: logging.Logger, message: str) -> None:
        self._importer, self._log, self._message = importer, log, message
        self.loaded: tuple[ModuleType | None, str] | None = None  # tests reset it to None

    def _load(self) -> tuple[ModuleType | None, str]:
        if self.loaded is None:
            module, status = self._importer()
            if module is None:  # a missing build is expected (no compiler); a stale or broken one is a mistake
                (self._log.info if status.startswith("not built") else self._log.warning)(self._message, status)
            self.loaded = module, status
        return self.loaded

    def module(self) -> ModuleType | None:
        """The checked module, or None (not built, stale, broken, or THINKGATE_PURE_PYTHON set)."""
        return None if pure_python_forced() else self._load()[0]

    def status(self) -> str:
        """'loaded', 'disabled by THINKGATE_PURE_PYTHON', or why the module is not used."""
        return f"disabled by {PURE_PYTHON_ENV}" if pure_python_forced() else self._load()[1]


__all__ = ["PURE_PYTHON_ENV", "OptionalBuild", "pure_python_forced"]
