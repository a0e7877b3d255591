"""Score one prompt with a fitted pipeline without the per-call overhead of `Pipeline.predict_proba([text])`.

Serving scores one string at a time. Through a Pipeline that means input validation, a FeatureUnion that
builds and stacks a sparse matrix, and a sparse dot product: hundreds of microseconds of overhead before any
real work. `compile_scorer(pipeline)` reads the *same fitted objects* (vocabularies, idf weights, scaler
statistics, coefficients) and computes the same number directly:

* the constraint detector runs once per prompt and feeds every part that needs it;
* a TF-IDF part is computed as a sparse (index, value) pair with the vectorizer's own analyzer;
* for a linear final model the score is `intercept + sum(part . coef_slice)` (then the logistic function for a
  classifier), so no feature matrix is ever built. Each part is bound to its coefficient slice once
  (`_Part.bind`): a TF-IDF part then only counts the prompt's known n-grams (char n-grams through numpy trie
  tables, word n-grams as token tuples) and sums tf * (idf * coef) / norm; the dense parts sum plain floats.
  Where the optional C extension is built (`native.py`), scikit-learn's char and default word analyzers are
  counted and summed by it instead, five to ten times faster, with the same n-grams and counts;
* any other final model gets one assembled feature row.

The result equals the pipeline's own score up to floating-point summation order (tests check this), so
training and serving compute identical features. Parts the compiler does not know fall back to their own
`transform([text])`, which is slower but still exact.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from itertools import repeat
from operator import mul
from typing import Any

import numpy as np

from .constraints import DetectedConstraint, detect_constraints
from .native import char_dot as native_char_dot
from .native import native_module
from .native import word_dot as native_word_dot
from .rows import STRUCTURE_COLUMNS, constraint_row, structure_row, structure_values

__all__ = ["LinearScorer", "Scorer", "compile_scorer"]

Scorer = Callable[[str], float]
BoundDot = Callable[[str, Sequence[DetectedConstraint]], float]


class _Part:
    """One FeatureUnion member compiled for a single prompt."""

    dim: int
    needs_detections: bool = False

    def dense(self, text: str, dets: Sequence[DetectedConstraint]) -> np.ndarray:
        raise NotImplementedError

    def dot(self, text: str, dets: Sequence[DetectedConstraint], coef: np.ndarray) -> float:
        return float(self.dense(text, dets) @ coef)

    def values(self, text: str, dets: Sequence[DetectedConstraint]) -> list[float]:
        """`dense` as a Python list (cheaper than numpy for the few columns of the dense parts)."""
        return self.dense(text, dets).tolist()

    def bind(self, coef: np.ndarray) -> BoundDot:
        """`(text, dets) -> self.dot(text, dets, coef)`, with what depends only on `coef` prepared once."""
        return lambda text, dets: self.dot(text, dets, coef)


class _PackedCharNgrams:
    """Character n-gram lookups done with numpy instead of one Python string per n-gram.

    The vocabulary's n-grams form a trie. Each trie node that starts a longer term gets a row of B = A + 1
    entries, one per character of the vocabulary's alphabet (digits 1..A) plus digit 0 for any other
    character; an entry holds the child node's row offset (`child * B`, 0 if the child starts no longer term)
    and, in a parallel table, the child's vocabulary column (-1 if the child is no term). Row 0 is a dead end:
    every entry leads back to it. A prompt's n-grams of length n are then found for all positions at once, one
    level per n: `offset = step[offset_of_previous_level[:-1] + digit[n - 1:]]`, the column is `column[...]`
    at the same index. No strings, no search: a few array operations whose cost barely grows with the
    prompt. Same n-grams as scikit-learn's `_char_ngrams` (same preprocessing and whitespace folding).
    `indices`/`counts` return None for text they cannot encode (lone surrogates), which then takes the
    ordinary path."""

    def __init__(self, preprocess: Callable[[str], str], white_spaces: "re.Pattern[str]", lo: int, hi: int,
                 vocab: dict[str, int]) -> None:
        self.preprocess, self.white_spaces = preprocess, white_spaces
        self.lo, self.hi = lo, hi
        terms = {t: j for t, j in vocab.items() if lo <= len(t) <= hi}
        alphabet = sorted({ch for t in terms for ch in t})
        digit_of = {ch: k for k, ch in enumerate(alphabet, 1)}
        self.base = base = len(alphabet) + 1
        # trie nodes with a row: every character of the alphabet (numbered by its digit) and every longer proper
        # prefix of a term; row 0 is the dead end. A term that starts no longer term needs no row of its own:
        # its entry in its parent's row leads to the dead end and holds its column.
        row: dict[str, int] = {ch: digit_of[ch] for ch in alphabet}
        for prefix in sorted({t[:n] for t in terms for n in range(2, len(t))}, key=lambda t: (len(t), t)):
            row[prefix] = len(row) + 1
        rows = 1 + len(row)
        if rows * base >= 2 ** 31:
            raise ValueError("character n-gram vocabulary too large for the packed tables")
        col_type = np.int16 if len(vocab) < 2 ** 15 else np.int32
        step = np.zeros(rows * base, dtype=np.int32)
        column = np.full(rows * base, -1, dtype=col_type)
        for gram in {*terms, *row}:
            if len(gram) > 1:
                at = row[gram[:-1]] * base + digit_of[gram[-1]]
                step[at] = row.get(gram, 0) * base
                column[at] = terms.get(gram, -1)
        self.step, self.column = step, column
        # per code point: its digit and (for 1-grams) its column; code points past the tables clip to their
        # last entry, which is no character of the alphabet
        size = max(0x10000, max((ord(ch) for ch in alphabet), default=0) + 2)
        self.digit = np.zeros(size, dtype=np.int32)
        self.first_column = np.full(size, -1, dtype=col_type)
        for ch, k in digit_of.items():
            self.digit[ord(ch)] = k
            self.first_column[ord(ch)] = terms.get(ch, -1)

    @classmethod
    def from_vectorizer(cls, vec: Any, vocab: dict[str, int]) -> "_PackedCharNgrams | None":
        from sklearn.feature_extraction.text import _VectorizerMixin

        lo, hi = (int(n) for n in vec.ngram_range)
        if not (vec.analyzer == "char" and type(vec)._char_ngrams is _VectorizerMixin._char_ngrams
                and 1 <= lo <= hi <= 4 and vec.input == "content"):
            return None
        decode, preprocess = vec.decode, vec.build_preprocessor()
        try:
            return cls(lambda text: preprocess(decode(text)), vec._white_spaces, lo, hi, vocab)
        except ValueError:
            return None

    def indices(self, text: str) -> np.ndarray | None:
        """Vocabulary columns of every n-gram occurrence in `text` that is in the vocabulary (unsorted)."""
        doc = self.white_spaces.sub(" ", self.preprocess(text))
        size = len(doc)
        if size < self.lo:
            return np.zeros(0, dtype=self.column.dtype)
        try:
            codes = np.frombuffer(doc.encode("utf-32-le"), dtype=np.uint32)
        except UnicodeEncodeError:  # lone surrogates
            return None
        digits = self.digit.take(codes, mode="clip")
        offsets = digits * self.base  # the row of each character's node (digit 0, no such node: the dead end)
        step, lo, hi = self.step, self.lo, self.hi
        entries: list[np.ndarray] = []
        for n in range(2, min(hi, size) + 1):
            at = offsets[:-1] + digits[n - 1:]  # the entry of each n-gram: its prefix's row, its last character
            if n >= lo:
                entries.append(at)
            if n < hi:
                offsets = step.take(at)
        column = self.column
        cols: np.ndarray = column.take(np.concatenate(entries) if len(entries) > 1 else entries[0]) if entries \
            else column[:0]
        if lo == 1:
            cols = np.concatenate([self.first_column.take(codes, mode="clip"), cols])
        return cols[cols >= 0]

    def counts(self, text: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(columns, counts) of the distinct vocabulary n-grams in `text`, columns ascending."""
        cols = self.indices(text)
        if cols is None or not len(cols):
            return None if cols is None else (cols, np.zeros(0, dtype=np.intp))
        cols.sort(kind="stable")  # a radix sort for 16-bit columns
        # the last index of each run of equal columns, after a -1 (numpy's helpers for this cost more here)
        inner = np.flatnonzero(cols[1:] != cols[:-1])
        ends = np.empty(len(inner) + 2, dtype=np.intp)
        ends[0] = -1
        ends[1:-1] = inner
        ends[-1] = len(cols) - 1
        last = ends[1:]
        return cols[last], last - ends[:-1]


class _TfidfPart(_Part):
    """A fitted TF-IDF vectorizer for one prompt, from plain values (vocabulary, idf, flags, an analyzer).

    `config` is how `serving.py` rebuilds the analyzer without scikit-learn (None: not rebuildable)."""

    def __init__(self, analyze: Callable[[str], list[str]], vocab: dict[str, int], packed: _PackedCharNgrams | None,
                 *, binary: bool, sublinear: bool, idf: np.ndarray | None, norm: str | None,
                 config: dict[str, Any] | None = None) -> None:
        self.analyze, self.vocab, self.packed = analyze, vocab, packed
        self.dim = len(vocab)
        self.binary, self.sublinear, self.idf, self.norm = binary, sublinear, idf, norm
        self.config = config

    @classmethod
    def from_vectorizer(cls, vec: Any) -> "_TfidfPart":
        # plain-int values: np.fromiter converts them faster than the numpy integers fitting leaves behind
        vocab = {term: int(i) for term, i in vec.vocabulary_.items()}
        return cls(vec.build_analyzer(), vocab, _PackedCharNgrams.from_vectorizer(vec, vocab),
                   binary=bool(vec.binary), sublinear=bool(vec.sublinear_tf),
                   idf=np.asarray(vec.idf_, dtype=np.float64) if vec.use_idf else None, norm=vec.norm,
                   config=analyzer_config(vec))

    def known_indices(self, text: str) -> np.ndarray:
        """The vocabulary column of every n-gram occurrence in `text` that is in the vocabulary."""
        if self.packed is not None:
            index = self.packed.indices(text)
            if index is not None:
                return index
        grams = self.analyze(text)
        # map() keeps the per-n-gram vocabulary lookups in C
        index = np.fromiter(map(self.vocab.get, grams, repeat(-1)), dtype=np.intp, count=len(grams))
        return index[index >= 0]

    def sparse(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        # sorting the known indices gives their counts (cheaper than a Counter over the n-gram strings, or
        # np.unique's Python-level overhead)
        index = self.known_indices(text)
        if not len(index):
            return index, np.zeros(0)
        index.sort()
        first = np.empty(len(index), dtype=bool)
        first[0] = True
        np.not_equal(index[1:], index[:-1], out=first[1:])
        starts = np.flatnonzero(first)
        values = np.diff(np.append(starts, len(index))).astype(np.float64)
        index = index[starts]
        if self.binary:
            values.fill(1.0)
        if self.sublinear:
            values = np.log(values) + 1.0
        if self.idf is not None:
            values *= self.idf[index]
        if self.norm == "l2":
            n = math.sqrt(float(values @ values))
            if n > 0:
                values /= n
        elif self.norm == "l1":
            n = float(np.abs(values).sum())
            if n > 0:
                values /= n
        return index, values

    def dense(self, text: str, dets: Sequence[DetectedConstraint]) -> np.ndarray:
        out = np.zeros(self.dim, dtype=np.float64)
        index, values = self.sparse(text)
        out[index] = values
        return out

    def dot(self, text: str, dets: Sequence[DetectedConstraint], coef: np.ndarray) -> float:
        index, values = self.sparse(text)
        return float(values @ coef[index]) if len(index) else 0.0

    def bind(self, coef: np.ndarray) -> BoundDot:
        """The part's dot product with `coef` without building the TF-IDF vector: the C extension's
        (`bind_native`) when it is available for this analyzer, else `bind_python`'s; both give the same."""
        python = self.bind_python(coef)
        return self.bind_native(coef, python) or python

    def bind_native(self, coef: np.ndarray, fallback: BoundDot | None = None) -> BoundDot | None:
        """`bind_python`'s dot product computed by the C extension (`native.py`), or None where it does not
        apply: no usable extension, or an analyzer other than scikit-learn's char / default-pattern word ones.
        `fallback` (default: `bind_python(coef)`) computes what the extension declines."""
        config = self.config
        if config is None or native_module() is None:
            return None
        coef = np.asarray(coef, dtype=np.float64)
        weight = self.idf if self.idf is not None else np.ones(self.dim)
        num_w = weight * coef
        fallback = fallback or self.bind_python(coef)
        if config["analyzer"] == "char":
            make = native_char_dot
        elif config["analyzer"] == "word" and config["token_pattern"] == _DEFAULT_TOKEN_PATTERN:
            make = native_word_dot
        else:
            return None
        return make(self.vocab, config["ngram_range"], num_w, weight, lowercase=bool(config["lowercase"]),
                    binary=self.binary, sublinear=self.sublinear, norm=self.norm, fallback=fallback)

    def bind_python(self, coef: np.ndarray) -> BoundDot:
        """The part's dot product with `coef`, in Python and numpy.

        With tf the (binary / sublinear) term frequency of each distinct known n-gram and w its idf weight, the
        vector is tf * w / norm(tf * w), so its dot product is sum(tf * (w * coef)) / norm(tf * w): the products
        `w * coef` are computed here once. Equal to `dot` up to floating-point rounding."""
        coef = np.asarray(coef, dtype=np.float64)
        weight = self.idf if self.idf is not None else np.ones(self.dim)
        num_w = weight * coef
        binary, sublinear, norm = self.binary, self.sublinear, self.norm
        packed = self.packed
        if packed is not None:
            t_num, t_w = num_w, weight
            log = np.log
            # tf for every count a prompt shorter than the table can have (a count is at most its length)
            tf_of = np.ones(_TF_TABLE) if binary else np.arange(_TF_TABLE, dtype=np.float64)
            if sublinear and not binary:
                tf_of[1:] = log(tf_of[1:]) + 1.0

            def packed_dot(text: str, dets: Sequence[DetectedConstraint]) -> float:
                got = packed.counts(text)
                if got is None:
                    return self.dot(text, dets, coef)
                pos, cnt = got
                if not len(pos):
                    return 0.0
                if len(text) < _TF_TABLE:
                    tf = tf_of.take(cnt)
                elif binary:
                    tf = np.ones(len(cnt))
                elif sublinear:
                    tf = log(cnt) + 1.0
                else:
                    tf = cnt.astype(np.float64)
                num = float(tf @ t_num.take(pos))
                if norm is None:
                    return num
                v = tf * t_w.take(pos)
                n = math.sqrt(float(v @ v)) if norm == "l2" else float(np.abs(v).sum())
                return num / n if n > 0 else num

            return packed_dot

        # any other analyzer: one Counter over the n-gram strings' columns, then plain-float arithmetic. Most
        # n-grams occur once (tf = 1 for every option), so the sums start as if all did, then correct the rest.
        num_at = num_w.tolist().__getitem__
        norm_w = (weight * weight) if norm == "l2" else np.abs(weight) if norm == "l1" else np.zeros(self.dim)
        norm_at = norm_w.tolist().__getitem__
        columns = _word_columns(self.config, self.vocab)
        if columns is None:
            analyze = build_analyzer_from(self.config) if self.config is not None else self.analyze
            get = self.vocab.get

            def columns(text: str) -> Counter[int]:
                return Counter(map(get, analyze(text), repeat(-1)))

        flog = math.log

        def python_dot(text: str, dets: Sequence[DetectedConstraint]) -> float:
            counts = columns(text)
            counts.pop(-1, None)
            num = float(sum(map(num_at, counts)))
            total = float(sum(map(norm_at, counts)))  # sum of w^2 (l2) or |w| (l1) over tf = 1
            if not binary and sum(counts.values()) != len(counts):
                for j, c in counts.items():
                    if c > 1:
                        tf = flog(c) + 1.0 if sublinear else float(c)
                        num += (tf - 1.0) * num_at(j)
                        total += (tf * tf - 1.0 if norm == "l2" else tf - 1.0) * norm_at(j)
            if norm is None:
                return num
            n = math.sqrt(total) if norm == "l2" else total
            return num / n if n > 0 else num

        return python_dot


class _ConstraintPart(_Part):
    needs_detections = True

    def __init__(self, kinds: tuple[str, ...], binary: bool) -> None:
        self.kinds, self.binary = kinds, binary
        self.dim = len(kinds)

    def dense(self, text: str, dets: Sequence[DetectedConstraint]) -> np.ndarray:
        return constraint_row(self.kinds, dets, self.binary)

    def bind(self, coef: np.ndarray) -> BoundDot:
        weight = dict(zip(self.kinds, np.asarray(coef, dtype=np.float64).tolist()))
        get = weight.get

        def constraint_dot(text: str, dets: Sequence[DetectedConstraint]) -> float:
            kinds = dict.fromkeys([d.kind for d in dets]) if self.binary else [d.kind for d in dets]
            return float(sum(map(get, kinds, repeat(0.0))))

        return constraint_dot


class _StructurePart(_Part):
    needs_detections = True

    def __init__(self, columns: tuple[str, ...]) -> None:
        if tuple(columns) != STRUCTURE_COLUMNS:
            raise ValueError(f"structure columns {columns} are not this version's {STRUCTURE_COLUMNS}")
        self.dim = len(columns)

    def dense(self, text: str, dets: Sequence[DetectedConstraint]) -> np.ndarray:
        return structure_row(text, dets)

    def values(self, text: str, dets: Sequence[DetectedConstraint]) -> list[float]:
        return structure_values(text, dets)


class _AffinePart(_Part):
    """A dense part followed by fitted scalers, folded into one `x * mul + add`."""

    def __init__(self, inner: _Part, mul: np.ndarray, add: np.ndarray) -> None:
        self.inner, self.mul, self.add = inner, mul, add
        self.dim = inner.dim
        self.needs_detections = inner.needs_detections

    def dense(self, text: str, dets: Sequence[DetectedConstraint]) -> np.ndarray:
        return self.inner.dense(text, dets) * self.mul + self.add

    def bind(self, coef: np.ndarray) -> BoundDot:
        # (x * mul + add) . coef = x . (mul * coef) + add . coef
        coef = np.asarray(coef, dtype=np.float64)
        weight = (self.mul * coef).tolist()
        const = float(self.add @ coef)
        values = self.inner.values

        def affine_dot(text: str, dets: Sequence[DetectedConstraint]) -> float:
            return const + float(sum(map(mul, values(text, dets), weight)))

        return affine_dot


class _GenericPart(_Part):
    """Anything else: the transformer's own transform on a one-element list (exact, not fast)."""

    def __init__(self, tr: Any, dim: int) -> None:
        self.tr = tr
        self.dim = dim

    def dense(self, text: str, dets: Sequence[DetectedConstraint]) -> np.ndarray:
        row = self.tr.transform([text])
        row = row.toarray() if hasattr(row, "toarray") else np.asarray(row)
        return np.asarray(row, dtype=np.float64).ravel()


def _scaler_affine(step: Any, dim: int) -> tuple[np.ndarray, np.ndarray] | None:
    from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, StandardScaler

    ones, zeros = np.ones(dim), np.zeros(dim)
    if isinstance(step, StandardScaler):
        scale = np.asarray(step.scale_, dtype=np.float64) if step.scale_ is not None else ones
        mean = np.asarray(step.mean_, dtype=np.float64) if step.with_mean and step.mean_ is not None else zeros
        return 1.0 / scale, -mean / scale
    if isinstance(step, MaxAbsScaler):
        return 1.0 / np.asarray(step.scale_, dtype=np.float64), zeros
    if isinstance(step, MinMaxScaler) and not step.clip:
        return np.asarray(step.scale_, dtype=np.float64), np.asarray(step.min_, dtype=np.float64)
    return None


def _compile_part(tr: Any) -> _Part | None:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import Pipeline

    from .features import ConstraintFeatures, StructureFeatures

    if isinstance(tr, TfidfVectorizer):
        return _TfidfPart.from_vectorizer(tr)
    if isinstance(tr, ConstraintFeatures):
        return _ConstraintPart(tuple(tr.kinds_), bool(tr.binary))
    if isinstance(tr, StructureFeatures):
        return _StructurePart(tuple(tr.columns_))
    if isinstance(tr, Pipeline):
        steps = [s for _, s in tr.steps if s not in (None, "passthrough")]
        first = _compile_part(steps[0]) if steps else None
        if first is not None and not isinstance(first, (_TfidfPart, _GenericPart)):
            mul, add = np.ones(first.dim), np.zeros(first.dim)
            for step in steps[1:]:
                affine = _scaler_affine(step, first.dim)
                if affine is None:
                    break
                mul, add = mul * affine[0], add * affine[0] + affine[1]
            else:
                return _AffinePart(first, mul, add)
    return None


def compile_scorer(pipeline: Any) -> Scorer | None:
    """A function text -> score equal to the pipeline's score for `[text]`, or None if the pipeline's shape is
    not `Pipeline([(_, FeatureUnion), (_, model)])` with a binary classifier or a single-output regressor."""
    from sklearn.base import is_classifier, is_regressor
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion, Pipeline

    if not isinstance(pipeline, Pipeline) or len(pipeline.steps) != 2:
        return None
    union, model = pipeline.steps[0][1], pipeline.steps[1][1]
    if not isinstance(union, FeatureUnion):
        return None
    if is_classifier(model) and len(getattr(model, "classes_", ())) != 2:
        return None
    weights = union.transformer_weights or {}
    parts: list[tuple[_Part, float]] = []
    for name, tr in union.transformer_list:
        if tr is None or tr == "drop":
            continue
        part = _compile_part(tr)
        if part is None:
            dim = tr.transform([""]).shape[1]
            part = _GenericPart(tr, dim)
        parts.append((part, float(weights.get(name, 1.0))))
    needs_dets = any(p.needs_detections for p, _ in parts)
    dim = sum(p.dim for p, _ in parts)

    def detections(text: str) -> Sequence[DetectedConstraint]:
        return detect_constraints(text) if needs_dets else ()

    linear = (isinstance(model, LogisticRegression) or (is_regressor(model) and hasattr(model, "coef_")))
    if linear:
        coef = np.asarray(model.coef_, dtype=np.float64)
        if coef.ndim == 2:
            if coef.shape[0] != 1:
                return None
            coef = coef[0]
        if coef.shape[0] != dim:
            return None
        intercept = float(np.ravel(model.intercept_)[0]) if np.ndim(model.intercept_) else float(model.intercept_)
        slices = []
        offset = 0
        for part, w in parts:
            slices.append((part, coef[offset:offset + part.dim] * w))
            offset += part.dim
        return LinearScorer(slices, intercept, proba=is_classifier(model))

    classify = is_classifier(model)
    if classify and not hasattr(model, "predict_proba"):
        return None
    forest = _GradientBoostedTrees.compile(model)

    def row(text: str) -> np.ndarray:
        dets = detections(text)
        return np.concatenate([part.dense(text, dets) * w if w != 1.0 else part.dense(text, dets) for part, w in parts])

    if forest is not None:
        return lambda text: forest.score(row(text))

    def row_score(text: str) -> float:
        X = row(text).reshape(1, -1)
        return float(model.predict_proba(X)[0, 1]) if classify else float(np.ravel(model.predict(X))[0])

    return row_score


class LinearScorer:
    """text -> intercept + sum(part . coef) (then the logistic function for a classifier); no matrix is built."""

    def __init__(self, slices: Sequence[tuple[_Part, np.ndarray]], intercept: float, *, proba: bool) -> None:
        self.slices = list(slices)
        self.intercept, self.proba = intercept, proba
        self.needs_detections = any(part.needs_detections for part, _ in self.slices)
        self._dots = [part.bind(c) for part, c in self.slices]

    def __call__(self, text: str) -> float:
        dets = detect_constraints(text) if self.needs_detections else ()
        z = self.intercept
        for dot in self._dots:
            z += dot(text, dets)
        if not self.proba:
            return z
        # expit, written to avoid overflow for large |z|
        return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


def analyzer_config(vec: Any) -> dict[str, Any] | None:
    """The settings `build_analyzer` needs, when they are ones `build_analyzer_from` reproduces exactly
    (scikit-learn's own word/char analyzers with its default preprocessing); otherwise None."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    if type(vec) is not TfidfVectorizer or vec.analyzer not in ("word", "char") or vec.input != "content":
        return None
    if vec.preprocessor is not None or vec.tokenizer is not None or vec.stop_words is not None:
        return None
    if vec.strip_accents is not None or vec._white_spaces.pattern != _WHITE_SPACES.pattern:
        return None
    if vec.analyzer == "word" and re.compile(vec.token_pattern).groups > 1:
        return None
    return {"analyzer": vec.analyzer, "lowercase": bool(vec.lowercase), "token_pattern": vec.token_pattern,
            "ngram_range": [int(n) for n in vec.ngram_range]}


_WHITE_SPACES = re.compile(r"\s\s+")
_TF_TABLE = 4096
_DEFAULT_TOKEN_PATTERN = r"(?u)\b\w\w+\b"


def build_analyzer_from(config: dict[str, Any]) -> Callable[[str], list[str]]:
    """scikit-learn's analyzer for `config` (see `analyzer_config`), written without scikit-learn: the same
    lowercasing, token pattern, whitespace folding and n-gram order as `_word_ngrams` / `_char_ngrams`."""
    lo, hi = (int(n) for n in config["ngram_range"])
    lower = bool(config["lowercase"])
    if config["analyzer"] == "char":
        def char_ngrams(doc: str) -> list[str]:
            doc = _WHITE_SPACES.sub(" ", doc.lower() if lower else doc)
            size, start = len(doc), lo
            grams = list(doc) if lo == 1 else []
            if lo == 1:
                start = 2
            for n in range(start, min(hi + 1, size + 1)):
                grams.extend(doc[i:i + n] for i in range(size - n + 1))
            return grams

        return char_ngrams
    # scikit-learn's default token pattern matches exactly the runs of two or more word characters; written
    # without the word boundaries, `re` finds them in about half the time
    pattern = r"\w{2,}" if config["token_pattern"] == _DEFAULT_TOKEN_PATTERN else config["token_pattern"]
    tokenize = re.compile(pattern).findall

    def word_ngrams(doc: str) -> list[str]:
        tokens = tokenize(doc.lower() if lower else doc)
        if hi == 1:
            return tokens
        grams = list(tokens) if lo == 1 else []
        for n in range(max(lo, 2), min(hi + 1, len(tokens) + 1)):
            # the n-grams in order: zip(tokens, tokens[1:], ...) stops at the last full one
            grams.extend(map(" ".join, zip(*[tokens[k:] for k in range(n)])))
        return grams

    return word_ngrams


def _word_columns(config: dict[str, Any] | None, vocab: dict[str, int]) -> Callable[[str], Counter[int]] | None:
    """For scikit-learn's default token pattern: text -> Counter of the vocabulary columns of its word n-grams
    (-1 for unknown ones), without building the n-gram strings. Its tokens never contain a space, so an n-gram
    is in the vocabulary exactly when its tuple of tokens is the split of a term, and tuples from `zip` hash
    without allocating. None for any other analyzer."""
    if config is None or config["analyzer"] != "word" or config["token_pattern"] != _DEFAULT_TOKEN_PATTERN:
        return None
    lo, hi = (int(n) for n in config["ngram_range"])
    lower = bool(config["lowercase"])
    tokenize = re.compile(r"\w{2,}").findall  # the same tokens as the default pattern (see build_analyzer_from)
    by_n: dict[int, dict[tuple[str, ...], int]] = {n: {} for n in range(max(lo, 2), hi + 1)}
    for term, j in vocab.items():
        parts = tuple(term.split(" "))
        if len(parts) in by_n:
            by_n[len(parts)][parts] = j
    unigram = vocab.get if lo == 1 else None
    longer = [(n, by_n[n].get) for n in sorted(by_n)]

    def columns(text: str) -> Counter[int]:
        tokens = tokenize(text.lower() if lower else text)
        counts = Counter(map(unigram, tokens, repeat(-1))) if unigram is not None else Counter()
        for n, get in longer:
            counts.update(map(get, zip(*[tokens[k:] for k in range(n)]), repeat(-1)))
        return counts

    return columns


def tfidf_part_from(config: dict[str, Any], terms: Sequence[str], *, binary: bool, sublinear: bool,
                    idf: np.ndarray | None, norm: str | None) -> _TfidfPart:
    """A TF-IDF part rebuilt from stored values (vocabulary terms in column order) without scikit-learn."""
    vocab = {str(term): j for j, term in enumerate(terms)}
    packed = None
    lo, hi = (int(n) for n in config["ngram_range"])
    if config["analyzer"] == "char" and 1 <= lo <= hi <= 4:
        packed = _PackedCharNgrams(str.lower if config["lowercase"] else str, _WHITE_SPACES, lo, hi, vocab)
    return _TfidfPart(build_analyzer_from(config), vocab, packed, binary=binary, sublinear=sublinear, idf=idf,
                      norm=norm, config=config)


class _GradientBoostedTrees:
    """A fitted HistGradientBoosting model evaluated for one row with numpy, all trees at once.

    scikit-learn's own `predict_proba` calls into Cython once per tree and starts OpenMP threads each time:
    milliseconds for one row. Here every tree's node arrays are concatenated (leaves point to themselves), and
    one vectorised step per tree level walks all trees together."""

    def __init__(self, feature: np.ndarray, threshold: np.ndarray, missing_left: np.ndarray, left: np.ndarray,
                 right: np.ndarray, value: np.ndarray, roots: np.ndarray, depth: int, baseline: float,
                 proba: bool) -> None:
        self.feature, self.threshold, self.missing_left = feature, threshold, missing_left
        self.left, self.right, self.value, self.roots = left, right, value, roots
        self.depth, self.baseline, self.proba = depth, baseline, proba

    @classmethod
    def compile(cls, model: Any) -> "_GradientBoostedTrees | None":
        from sklearn.ensemble import (
            HistGradientBoostingClassifier,
            HistGradientBoostingRegressor,
        )

        if isinstance(model, HistGradientBoostingClassifier):
            proba = True
            if len(model.classes_) != 2 or model.loss not in ("log_loss", "auto"):
                return None
        elif isinstance(model, HistGradientBoostingRegressor):
            proba = False
            if model.loss != "squared_error":
                return None
        else:
            return None
        predictors = getattr(model, "_predictors", None)
        if not predictors or any(len(it) != 1 for it in predictors):
            return None
        nodes = [it[0].nodes for it in predictors]
        if any(n["is_categorical"].any() for n in nodes):
            return None
        offsets = np.cumsum([0] + [len(n) for n in nodes[:-1]])
        feature, threshold, missing_left, left, right, value = [], [], [], [], [], []
        for off, n in zip(offsets, nodes):
            leaf = n["is_leaf"].astype(bool)
            own = np.arange(len(n)) + off
            feature.append(np.where(leaf, 0, n["feature_idx"]).astype(np.intp))
            threshold.append(np.where(leaf, np.inf, n["num_threshold"]).astype(np.float64))
            missing_left.append(n["missing_go_to_left"].astype(bool))
            left.append(np.where(leaf, own, n["left"].astype(np.intp) + off))
            right.append(np.where(leaf, own, n["right"].astype(np.intp) + off))
            value.append(np.where(leaf, n["value"], 0.0).astype(np.float64))
        depth = int(max(n["depth"].max() for n in nodes))
        baseline = float(np.ravel(model._baseline_prediction)[0])
        return cls(np.concatenate(feature), np.concatenate(threshold), np.concatenate(missing_left),
                   np.concatenate(left), np.concatenate(right), np.concatenate(value), offsets.astype(np.intp),
                   depth, baseline, proba)

    def score(self, x: np.ndarray) -> float:
        idx = self.roots
        feature, threshold, left, right = self.feature, self.threshold, self.left, self.right
        has_nan = bool(np.isnan(x).any())
        for _ in range(self.depth):
            xv = x[feature[idx]]
            go_left = xv <= threshold[idx]
            if has_nan:  # a missing value follows the side the tree learned for it
                go_left = np.where(np.isnan(xv), self.missing_left[idx], go_left)
            idx = np.where(go_left, left[idx], right[idx])
        raw = self.baseline + float(self.value[idx].sum())
        if not self.proba:
            return raw
        return 1.0 / (1.0 + math.exp(-raw)) if raw >= 0 else math.exp(raw) / (1.0 + math.exp(raw))
