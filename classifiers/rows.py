"""One prompt's feature rows, computed from its text and detections: numpy only, no scikit-learn.

The feature transformers in `features.py` (training) and the serving paths (`fastpath.py`, `serving.py`) all
call these functions, so training and serving compute identical features, and a serving process that loads the
numpy serving form of a model never imports scikit-learn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from .constraints import DetectedConstraint

__all__ = ["FEATURE_VERSION", "STRUCTURE_COLUMNS", "constraint_row", "structure_row", "structure_values"]

# The meaning of the feature columns; see features.py.
FEATURE_VERSION = "1"


def constraint_row(kinds: tuple[str, ...], detections: Sequence[DetectedConstraint], binary: bool = False) -> np.ndarray:
    """Counts (or presence, with `binary`) of detected constraints per kind, in `kinds` order."""
    index = _index_of(kinds)
    row = np.zeros(len(kinds), dtype=np.float64)
    for d in detections:
        j = index.get(d.kind)
        if j is not None:
            row[j] = 1.0 if binary else row[j] + 1.0
    return row


@lru_cache(maxsize=8)
def _index_of(kinds: tuple[str, ...]) -> dict[str, int]:
    return {k: i for i, k in enumerate(kinds)}


STRUCTURE_COLUMNS: tuple[str, ...] = (
    "log_chars",
    "log_words",
    "log_sentences",
    "log_lines",
    "question_marks",
    "log_digits",
    "quotes",
    "frac_upper",
    "frac_non_ascii",
    "code_fences",
    "n_constraints",
    "n_constraint_kinds",
    "n_upper_length_limits",
    "n_lower_length_limits",
)

_LENGTH_KINDS = frozenset({
    "length_constraints:number_words", "length_constraints:number_sentences",
    "length_constraints:number_paragraphs", "length_constraints:number_characters",
})
_UPPER = frozenset({"at most", "less than", "exactly", "about"})
_LOWER = frozenset({"at least", "exactly", "about"})
_DIGITS = b"0123456789"
_UPPERCASE = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_SENTENCE_ENDS = (". ", "? ", "! ", ".\n", "?\n", "!\n")


def structure_row(text: str, detections: Sequence[DetectedConstraint]) -> np.ndarray:
    """Shape statistics of one prompt (`STRUCTURE_COLUMNS`), from its text and detections."""
    return np.array(structure_values(text, detections), dtype=np.float64)


def structure_values(text: str, detections: Sequence[DetectedConstraint]) -> list[float]:
    """`structure_row` as a list of Python numbers (what the serving path sums without numpy)."""
    n = len(text)
    count = text.count
    raw = text.encode("utf-8", "surrogatepass")
    size = len(raw)
    sentences = sum(map(count, _SENTENCE_ENDS)) + (1 if text.rstrip()[-1:] in (".", "?", "!") else 0)
    kinds = set()
    upper = lower = 0
    for d in detections:
        kinds.add(d.kind)
        if d.kind in _LENGTH_KINDS:
            rel = d.params.get("relation")
            upper += rel in _UPPER
            lower += rel in _LOWER
    return [
        math.log1p(n),
        math.log1p(len(text.split())),
        math.log1p(sentences),
        math.log1p(count("\n") + 1 if n else 0),
        count("?"),
        math.log1p(size - len(raw.translate(None, _DIGITS))),
        count('"') + count("“") + count("”"),
        (size - len(raw.translate(None, _UPPERCASE))) / n if n else 0.0,  # ASCII capitals
        (size - n) / n if n else 0.0,  # extra UTF-8 bytes: 0 for ASCII text
        count("```"),
        len(detections),
        len(kinds),
        upper,
        lower,
    ]

