"""Type stub of the optional C extension built from _native_tfidf.c (see classifiers/native.py)."""

from collections.abc import Callable
from typing import Any, final

NATIVE_VERSION: int
SOURCE_SHA256: str

@final
class TfidfDot:
    """A TF-IDF part's dot product with its coefficients, for one prompt."""

    def __call__(self, text: str, dets: Any = None, /) -> float: ...
    def counts(self, text: str, /) -> dict[int, int] | None: ...

def char_dot(terms: list[str], columns: bytes, lo: int, hi: int, num_w: bytes, w: bytes, lowercase: bool,
             binary: bool, sublinear: bool, norm: int, fallback: Callable[[str, Any], float], /) -> TfidfDot: ...
def word_dot(terms: list[str], columns: bytes, lo: int, hi: int, num_w: bytes, w: bytes, lowercase: bool,
             binary: bool, sublinear: bool, norm: int, fallback: Callable[[str, Any], float], /) -> TfidfDot: ...
def classify(start: int, stop: int, /) -> bytes: ...
