"""Feature transformers that start from raw prompt text (scikit-learn API).

* `ConstraintFeatures`: how many constraints of each kind the prompt carries (columns follow `constraints.KINDS`).
* `StructureFeatures`: cheap shape statistics (length, sentences, lines, digits, how many constraints, ...).
* `text_vectorizers()`: bounded word and character TF-IDF vectorizers for the lexical view.

`FEATURE_VERSION` (defined in `rows.py`) names the meaning of these columns. Bump it whenever a change to this module or to the
constraint detector changes what a column means or how it is computed for some text; a saved model refuses to
load under a different version (see `artifact.py`), because its coefficients would silently mean something else.

Both transformers also expose `row(...)`, the same computation for one prompt from precomputed detections, which
the serving fast path uses so that training and serving compute identical features.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.utils.validation import check_is_fitted

from .constraints import KINDS, DetectedConstraint, detect_constraints
from .rows import FEATURE_VERSION, STRUCTURE_COLUMNS, constraint_row, structure_row

__all__ = ["FEATURE_VERSION", "ConstraintFeatures", "StructureFeatures", "STRUCTURE_COLUMNS", "TaxonomyFeatures",
           "TAXONOMY", "text_vectorizers"]



@lru_cache(maxsize=4096)
def _detect(text: str) -> tuple[DetectedConstraint, ...]:
    """Detections shared by the transformers of one pipeline (each would otherwise re-run the detector)."""
    return tuple(detect_constraints(text))


def _texts(X: Any) -> list[str]:
    if isinstance(X, str):
        raise TypeError("expected an iterable of strings, got a single string; wrap it in a list")
    out = []
    for x in X:
        if not isinstance(x, str):
            raise TypeError(f"expected strings, got {type(x).__name__}")
        out.append(x)
    return out


class ConstraintFeatures(TransformerMixin, BaseEstimator):
    """Counts of detected constraints per kind, one column per kind in `constraints.KINDS` order.

    Parameters
    ----------
    binary : bool, default=False
        Presence (0/1) instead of counts.
    """

    def __init__(self, binary: bool = False) -> None:
        self.binary = binary

    def fit(self, X: Iterable[str], y: Any = None) -> "ConstraintFeatures":
        _texts(X)
        self.kinds_: tuple[str, ...] = KINDS
        self.feature_version_: str = FEATURE_VERSION
        return self

    def transform(self, X: Iterable[str]) -> np.ndarray:
        check_is_fitted(self, "kinds_")
        texts = _texts(X)
        out = np.zeros((len(texts), len(self.kinds_)), dtype=np.float64)
        for r, text in enumerate(texts):
            out[r] = self.row(_detect(text))
        return out

    def row(self, detections: Sequence[DetectedConstraint]) -> np.ndarray:
        """The feature row of one prompt, from its detections."""
        return constraint_row(tuple(self.kinds_), detections, self.binary)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "kinds_")
        return np.asarray([f"constraint={k}" for k in self.kinds_], dtype=object)



class StructureFeatures(TransformerMixin, BaseEstimator):
    """Shape statistics of the prompt; columns are `STRUCTURE_COLUMNS` (counts log1p-scaled where unbounded).

    Everything is computed with `str.count`, `bytes.translate` and `len`, so a row costs a few microseconds.
    """

    def fit(self, X: Iterable[str], y: Any = None) -> "StructureFeatures":
        _texts(X)
        self.columns_: tuple[str, ...] = STRUCTURE_COLUMNS
        self.feature_version_: str = FEATURE_VERSION
        return self

    def transform(self, X: Iterable[str]) -> np.ndarray:
        check_is_fitted(self, "columns_")
        texts = _texts(X)
        out = np.zeros((len(texts), len(self.columns_)), dtype=np.float64)
        for r, text in enumerate(texts):
            out[r] = self.row(text, _detect(text))
        return out

    def row(self, text: str, detections: Sequence[DetectedConstraint]) -> np.ndarray:
        """The feature row of one prompt, from its text and detections."""
        return structure_row(text, detections)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "columns_")
        return np.asarray([f"structure={c}" for c in self.columns_], dtype=object)


# The failure taxonomy of Li et al. ("When Thinking Fails", 2025): reasoning tends to drop simple *mechanical*
# constraints (word limits, case, repeat the request, closing phrase, no commas, translations) while it helps
# with output *format* and *lexical precision* (counting letters, capital words, keywords, placeholders).
TAXONOMY: dict[str, frozenset[str]] = {
    "mechanical": frozenset({
        "length_constraints:number_words", "length_constraints:number_sentences",
        "length_constraints:number_characters", "change_case:english_lowercase", "change_case:english_capital",
        "combination:repeat_prompt", "combination:two_responses", "startend:end_checker", "startend:start_checker",
        "punctuation:no_comma", "language:response_language"}),
    "format": frozenset({
        "detectable_format:json_format", "startend:quotation", "detectable_format:title",
        "detectable_format:multiple_sections", "detectable_format:number_bullet_lists",
        "detectable_format:numbered_list", "detectable_format:number_highlighted_sections",
        "detectable_format:constrained_response", "detectable_format:table", "detectable_format:markdown",
        "length_constraints:number_paragraphs", "length_constraints:nth_paragraph_first_word",
        "detectable_content:postscript"}),
    "lexical": frozenset({
        "keywords:letter_frequency", "change_case:capital_word_frequency", "keywords:frequency",
        "keywords:existence", "keywords:forbidden_words", "detectable_content:number_placeholders"}),
}
TAXONOMY_COLUMNS = ("n_mechanical", "n_format", "n_lexical", "n_constraints", "mixed")


class TaxonomyFeatures(TransformerMixin, BaseEstimator):
    """How many detected constraints fall in each taxonomy group (`TAXONOMY`), the total, and whether the
    prompt mixes mechanical constraints with format/lexical ones (where a choice of mode is a trade-off)."""

    def fit(self, X: Iterable[str], y: Any = None) -> "TaxonomyFeatures":
        _texts(X)
        self.columns_: tuple[str, ...] = TAXONOMY_COLUMNS
        self.feature_version_: str = FEATURE_VERSION
        return self

    def transform(self, X: Iterable[str]) -> np.ndarray:
        check_is_fitted(self, "columns_")
        texts = _texts(X)
        return np.array([self.row(_detect(t)) for t in texts], dtype=np.float64).reshape(len(texts), -1)

    @staticmethod
    def row(detections: Sequence[DetectedConstraint]) -> np.ndarray:
        groups = [sum(d.kind in kinds for d in detections) for kinds in TAXONOMY.values()]
        mixed = float(groups[0] > 0 and (groups[1] + groups[2]) > 0)
        return np.array([*groups, len(detections), mixed], dtype=np.float64)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "columns_")
        return np.asarray([f"taxonomy={c}" for c in self.columns_], dtype=object)


def text_vectorizers(
    max_word_features: int = 20000,
    max_char_features: int = 30000,
    word_ngrams: tuple[int, int] = (1, 2),
    char_ngrams: tuple[int, int] = (2, 4),
    min_df: int | float = 2,
) -> list[tuple[str, TfidfVectorizer]]:
    """Word and character TF-IDF vectorizers with bounded vocabularies (sublinear tf, l2 norm).

    Character n-grams use `analyzer="char"`: scikit-learn builds `char_wb` n-grams in a Python loop per word,
    which costs several times more per request than the plain slicing `char` uses."""
    return [
        ("word", TfidfVectorizer(analyzer="word", ngram_range=word_ngrams, min_df=min_df,
                                 max_features=max_word_features, sublinear_tf=True, dtype=np.float64)),
        ("char", TfidfVectorizer(analyzer="char", ngram_range=char_ngrams, min_df=min_df,
                                 max_features=max_char_features, sublinear_tf=True, dtype=np.float64)),
    ]
