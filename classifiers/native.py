"""The optional C extension for the fast path's two TF-IDF dot products (`_native_tfidf.c`).

`_TfidfPart.bind` (fastpath.py) asks `char_dot` / `word_dot` for a native bound dot product and keeps its
Python one when they return None. The extension counts the same n-grams as the Python path (tests check the
counts and the numbers on arbitrary text) without its per-call numpy and Python overhead.

It is used only when all of these hold, else the Python path computes the same numbers (one log line says why):

* it was built (`pip install -e .` compiles it when a C compiler is there; `make native` rebuilds it);
* its `NATIVE_VERSION` is this file's (an older or newer build is never used), and when the C source sits next
  to it (an editable install), the source's SHA-256 compiled into it is the source's current one;
* the environment variable `THINKGATE_PURE_PYTHON` is unset, empty or `0` (`1` forces the Python path).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from .optional_build import PURE_PYTHON_ENV, OptionalBuild

__all__ = ["NATIVE_VERSION", "PURE_PYTHON_ENV", "char_dot", "native_module", "native_status", "word_dot"]

NATIVE_VERSION = 1  # must equal NATIVE_VERSION in _native_tfidf.c: bump both when the C interface changes
_SOURCE = Path(__file__).with_name("_native_tfidf.c")  # present in an editable install (a wheel has no C)
_NORMS = {None: 0, "l1": 1, "l2": 2}

log = logging.getLogger(__name__)


def _import() -> tuple[ModuleType | None, str]:
    try:
        from . import _native_tfidf as module
    except ImportError as exc:
        return None, f"not built: {exc}"
    version = getattr(module, "NATIVE_VERSION", None)
    if version != NATIVE_VERSION:
        return None, f"stale build: NATIVE_VERSION {version!r}, expected {NATIVE_VERSION} (rebuild: make native)"
    built = getattr(module, "SOURCE_SHA256", "")
    if built and _SOURCE.is_file() and hashlib.sha256(_SOURCE.read_bytes()).hexdigest() != built:
        return None, f"stale build: {_SOURCE.name} changed since it was compiled (rebuild: make native)"
    return module, "loaded"


_build = OptionalBuild(_import, log,
                       "native TF-IDF extension not used (%s); the Python path computes the same scores")


native_module = _build.module
"""The checked module, or None (not built, stale, or THINKGATE_PURE_PYTHON set)."""
native_status = _build.status
"""'loaded', 'disabled by THINKGATE_PURE_PYTHON', or why the extension is not used."""


BoundDot = Callable[[str, Any], float]


def char_dot(vocab: Mapping[str, int], ngram_range: Sequence[int], num_w: np.ndarray, weight: np.ndarray, *,
             lowercase: bool, binary: bool, sublinear: bool, norm: str | None, fallback: BoundDot) -> BoundDot | None:
    """scikit-learn's char analyzer's dot product (`num_w` = idf * coef, `weight` = idf, per column), or None
    where the extension is not used. `fallback` computes it for what the extension declines (a str subclass)."""
    return _bound("char_dot", vocab, ngram_range, num_w, weight, lowercase, binary, sublinear, norm, fallback)


def word_dot(vocab: Mapping[str, int], ngram_range: Sequence[int], num_w: np.ndarray, weight: np.ndarray, *,
             lowercase: bool, binary: bool, sublinear: bool, norm: str | None, fallback: BoundDot) -> BoundDot | None:
    """The same for the word analyzer with scikit-learn's default token pattern (n-grams of up to 8 words)."""
    return _bound("word_dot", vocab, ngram_range, num_w, weight, lowercase, binary, sublinear, norm, fallback)


def _bound(kind: str, vocab: Mapping[str, int], ngram_range: Sequence[int], num_w: np.ndarray, weight: np.ndarray,
           lowercase: bool, binary: bool, sublinear: bool, norm: str | None, fallback: BoundDot) -> BoundDot | None:
    module = native_module()
    lo, hi = (int(n) for n in ngram_range)
    if module is None or norm not in _NORMS or not len(num_w) or len(num_w) != len(weight):
        return None
    columns = np.fromiter(vocab.values(), dtype=np.int32, count=len(vocab)).tobytes()
    try:
        dot: BoundDot = getattr(module, kind)(
            list(vocab), columns, lo, hi, np.ascontiguousarray(num_w, dtype=np.float64).tobytes(),
            np.ascontiguousarray(weight, dtype=np.float64).tobytes(), lowercase, binary, sublinear, _NORMS[norm],
            fallback)
    except ValueError as exc:  # a vocabulary the tables cannot hold (e.g. a huge alphabet): the Python path
        log.warning("native TF-IDF %s not used for this part (%s); the Python path computes it", kind, exc)
        return None
    return dot
