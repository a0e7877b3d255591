"""The optional mypyc build of the constraint detector (`_detectors.py` + `_phrasing.py`, as `classifiers._compiled`).

`constraints.detect_constraints` calls `run_detectors()`'s answer: the compiled `run_detectors` when it may be
used, else the Python one. Both give the same detections (tests compare them on every IFEval prompt and on
arbitrary text); the compiled one is about a quarter faster.

setup.py compiles copies of the two modules under other names (`classifiers._compiled._detectors`), never the
modules themselves: Python prefers an extension to a `.py` of the same name, so an edited source would silently
lose to an old build. The compiled copy is used only when all of these hold, else the Python detector (one log
line says why):

* it was built (`pip install -e .` compiles it when mypy's mypyc and a C compiler are there; `make native`
  rebuilds it);
* the `SOURCE_SHA256` compiled into it is `source_digest()`, the digest of the two sources next to this file
  (they ship in every install), so a build older than an edit is never used;
* the environment variable `THINKGATE_PURE_PYTHON` is unset, empty or `0` (`1` forces the Python path).

The choice is made once per process, when `classifiers.constraints` is imported (read by `run_detectors()`).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from . import _detectors
from ._compiled import COMPILED_SOURCES, source_digest
from .optional_build import PURE_PYTHON_ENV, OptionalBuild

__all__ = ["COMPILED_SOURCES", "PURE_PYTHON_ENV", "compiled_module", "compiled_status", "run_detectors", "source_digest"]

log = logging.getLogger(__name__)
_SOURCES: Path | None = None  # where the sources are read (None: classifiers/, next to this file); tests move it

RunDetectors = Callable[[str], list[_detectors.Found]]


def _import() -> tuple[ModuleType | None, str]:
    try:
        module = importlib.import_module("._compiled._detectors", __package__)  # an extension: no types
    except ImportError as exc:
        return None, f"not built: {exc}"
    except Exception as exc:  # e.g. its module initialisation failed: a broken build is not used either
        return None, f"broken build: {exc!r} (rebuild: make native)"
    built = getattr(module, "SOURCE_SHA256", None)
    try:
        current = source_digest(_SOURCES)
    except OSError as exc:  # cannot tell whether the build is current: do not use it
        return None, f"sources unreadable: {exc}"
    if built != current:
        return None, f"stale build: {' or '.join(COMPILED_SOURCES)} changed since it was compiled (rebuild: make native)"
    return module, "loaded"


_build = OptionalBuild(_import, log,
                       "compiled constraint detector not used (%s); the Python detector gives the same detections")


compiled_module = _build.module
"""The checked module, or None (not built, stale, or THINKGATE_PURE_PYTHON set)."""
compiled_status = _build.status
"""'loaded', 'disabled by THINKGATE_PURE_PYTHON', or why the compiled detector is not used."""


def run_detectors() -> RunDetectors:
    """The `run_detectors` to call: the compiled one when `compiled_module()` is not None, else the Python one."""
    module = compiled_module()
    return _detectors.run_detectors if module is None else module.run_detectors
