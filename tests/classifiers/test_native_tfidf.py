"""The C extension's TF-IDF dot products (`classifiers/_native_tfidf.c`) equal the Python path's: the same
n-grams with the same counts (checked exactly through `TfidfDot.counts`), the same numbers up to summation order.

Set THINKGATE_PURE_PYTHON=1 to run the whole suite on the Python path (these tests then skip), and
THINKGATE_NATIVE_OPTIONAL=1 where the extension is expected to be absent (no C compiler): otherwise
`test_the_extension_is_built_and_used` fails, so that CI never tests only the fallback without saying so.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.builds import assert_built_and_used
from support.threads import run_interleaved

from classifiers import native
from classifiers.artifact import load_serving_model
from classifiers.bundled import bundled_artifact
from classifiers.fastpath import _TfidfPart, analyzer_config, tfidf_part_from

ROOT = Path(__file__).resolve().parents[2]
IFEVAL = Path(os.environ.get("THINKGATE_DATA_DIR", ROOT.parent / "shared" / "data")) / "ifeval" / "input_data.jsonl"

needs_native = pytest.mark.skipif(native.native_module() is None,
                                  reason=f"native extension not used: {native.native_status()}")

# characters chosen for the analyzers' edge cases: whitespace \s folds (ASCII and not), word characters \w
# keeps (letters, digits of other scripts, "_", titlecase, superscripts), case mappings that change length
# ("İ") or depend on context ("Σ"), non-BMP characters, NUL, lone surrogates
ALPHABET = list("ab AB_1-é\t\n\r\x0b\x0c\x1c\x1f\x85\u00a0\u2003\u2028\u3000ǅ²٣東😀'.,\x00İΣςßﬁ") + \
    ["\ud800", "\udfff", "\U0010ffff", "\U0001d7d8"]
ODD_TEXT = st.text(alphabet=st.sampled_from(ALPHABET) | st.characters(), max_size=120)

EDGE_TEXTS = [
    "", " ", "  ", "\t\n \u3000", "a", "ab", "abc", "A", "AB", "_", "__", "a b", "a  b",
    "Write a limerick about a goat. Wrap the whole reply in double quotes.",
    "  Tabs\tand\n\nnew   lines ", "ÉCOLE Ünïcode 東京 café", "İstanbul ß ﬁ ΣΑΣ ς", "emoji 😀 outside the BMP 😀😀",
    "lone \ud800 surrogate \udfff", "nul \x00 byte", "\U0010ffff \U0010ffff", "x" * 5000,
    "words words WORDS, words_and_more 123 ٣٣ ²²",
    "Plan a trip with exactly 5 bullet points. Answer in JSON. " * 200,  # past the C side's stack buffer
    "outside the alphabet: ∮ ∯ ∰ ⨌ ⨍ ☃ ☄",
]


def _fit_texts(seed: int = 0, n: int = 60) -> list[str]:
    """Texts over ALPHABET plus plain words, so that short random texts hit the vocabulary often."""
    rng = random.Random(seed)
    words = ["ab", "AB", "ab_1", "café", "東京", "the", "goat", "words", "İs", "ΣΑΣ", "ßa", "٣٣"]
    out = []
    for _ in range(n):
        out.append(" ".join(rng.choice(words) for _ in range(rng.randint(1, 8))))
        out.append("".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 30))))
    return out + EDGE_TEXTS[:-4]


def _parts(vec: Any) -> list[_TfidfPart]:
    """The vectorizer's part as training compiles it, and as serving rebuilds it without scikit-learn."""
    parts = [_TfidfPart.from_vectorizer(vec)]
    config = analyzer_config(vec)
    if config is not None:
        parts.append(tfidf_part_from(config, sorted(vec.vocabulary_, key=vec.vocabulary_.get), binary=vec.binary,
                                     sublinear=vec.sublinear_tf, idf=vec.idf_ if vec.use_idf else None, norm=vec.norm))
    return parts


def _expected_counts(vec: Any, text: str) -> dict[int, int]:
    vocab = vec.vocabulary_
    return dict(Counter(int(vocab[g]) for g in vec.build_analyzer()(text) if g in vocab))


def test_the_extension_is_built_and_used() -> None:
    assert_built_and_used("native TF-IDF extension", native.native_status())
    served = load_serving_model(bundled_artifact("smollm2-135m-ifeval"))
    assert [type(dot).__name__ for dot in served._score._dots[:2]] == ["TfidfDot", "TfidfDot"]


@needs_native
def test_word_and_space_classes_are_re_s_for_every_code_point() -> None:
    module = native.native_module()
    assert module is not None
    flags = np.frombuffer(module.classify(0, 0x110000), dtype=np.uint8)
    everything = "".join(map(chr, range(0x110000)))
    for bit, pattern in ((1, r"\w"), (2, r"\s")):
        expected = np.array([m.start() for m in re.finditer(pattern, everything)])
        np.testing.assert_array_equal(np.flatnonzero(flags & bit), expected, err_msg=pattern)


OPTIONS = [{}, {"sublinear_tf": True}, {"binary": True}, {"norm": "l1"}, {"norm": None},
           {"use_idf": False, "sublinear_tf": True}, {"lowercase": False, "sublinear_tf": True}]
ANALYZERS = [("char", (2, 4)), ("char", (1, 3)), ("char", (1, 1)), ("char", (4, 4)), ("char", (3, 6)),
             ("word", (1, 2)), ("word", (1, 1)), ("word", (2, 3)), ("word", (1, 4))]


@needs_native
@pytest.mark.parametrize("analyzer,ngrams", ANALYZERS)
@pytest.mark.parametrize("options", OPTIONS)
def test_native_counts_and_dot_equal_python_and_scikit_learn(analyzer, ngrams, options) -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(analyzer=analyzer, ngram_range=ngrams, min_df=1, **options).fit(_fit_texts())
    coef = np.random.default_rng(0).normal(size=len(vec.vocabulary_))
    texts = EDGE_TEXTS + _fit_texts(seed=1, n=15)
    expected = vec.transform(texts).toarray() @ coef
    for part in _parts(vec):
        dot, python = part.bind_native(coef), part.bind_python(coef)
        assert dot is not None and type(dot).__name__ == "TfidfDot"
        assert type(part.bind(coef)).__name__ == "TfidfDot"
        for t, e in zip(texts, expected):
            assert dot.counts(t) == _expected_counts(vec, t), t
            got = dot(t, ())
            assert got == pytest.approx(python(t, ()), rel=1e-12, abs=1e-15), t
            assert got == pytest.approx(e, rel=1e-12, abs=1e-12), t


@pytest.fixture(scope="module")
def odd_parts() -> list[tuple[Any, _TfidfPart, np.ndarray]]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    out = []
    for analyzer, ngrams in (("word", (1, 2)), ("char", (2, 4)), ("char", (1, 3)), ("word", (1, 3))):
        vec = TfidfVectorizer(analyzer=analyzer, ngram_range=ngrams, min_df=1, sublinear_tf=True).fit(_fit_texts())
        coef = np.linspace(-1.0, 1.0, len(vec.vocabulary_))
        out += [(vec, part, coef) for part in _parts(vec)]
    return out


@needs_native
@settings(max_examples=300, deadline=None)
@given(text=ODD_TEXT)
def test_native_equals_python_on_arbitrary_text(text: str, odd_parts) -> None:
    for vec, part, coef in odd_parts:
        dot = part.bind_native(coef)
        assert dot is not None
        assert dot.counts(text) == _expected_counts(vec, text)
        assert dot(text, ()) == pytest.approx(part.bind_python(coef)(text, ()), rel=1e-12, abs=1e-15)


@pytest.fixture(scope="module")
def served_parts() -> list[tuple[_TfidfPart, Any, Any]]:
    """The shipped artifact's two TF-IDF parts: (part, native dot, Python dot)."""
    served = load_serving_model(bundled_artifact("smollm2-135m-ifeval"))
    out = []
    for part, coef in served._score.slices:
        if isinstance(part, _TfidfPart):
            out.append((part, part.bind_native(coef), part.bind_python(coef)))
    assert len(out) == 2
    return out


def _analyzer_counts(part: _TfidfPart, text: str) -> dict[int, int]:
    return dict(Counter(part.vocab[g] for g in part.analyze(text) if g in part.vocab))


@needs_native
@settings(max_examples=300, deadline=None)
@given(text=ODD_TEXT)
def test_the_shipped_artifact_native_equals_python_on_arbitrary_text(text: str, served_parts) -> None:
    for part, dot, python in served_parts:
        assert dot.counts(text) == _analyzer_counts(part, text)
        assert dot(text, ()) == pytest.approx(python(text, ()), rel=1e-12, abs=1e-15)


@needs_native
def test_the_shipped_artifact_scores_every_ifeval_prompt_identically(served_parts, monkeypatch) -> None:
    if not IFEVAL.is_file():
        pytest.skip(f"IFEval prompts not found at {IFEVAL} (set THINKGATE_DATA_DIR)")
    texts = [json.loads(line)["prompt"] for line in IFEVAL.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(texts) == 541
    texts += EDGE_TEXTS
    for part, dot, python in served_parts:
        for t in texts:
            assert dot.counts(t) == _analyzer_counts(part, t), t[:80]
            assert dot(t, ()) == pytest.approx(python(t, ()), rel=1e-12, abs=1e-15), t[:80]
    served = load_serving_model(bundled_artifact("smollm2-135m-ifeval"))
    monkeypatch.setenv(native.PURE_PYTHON_ENV, "1")
    pure = load_serving_model(bundled_artifact("smollm2-135m-ifeval"))
    assert all(type(d).__name__ != "TfidfDot" for d in pure._score._dots)
    got, expected = np.array([served.score(t) for t in texts]), np.array([pure.score(t) for t in texts])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-14)
    assert [served.decide(t)[0] for t in texts] == [pure.decide(t)[0] for t in texts]


@needs_native
def test_concurrent_calls_equal_single_threaded_ones(served_parts) -> None:
    """The bound dots keep per-object scratch counts: calls from several threads (the proxy decides long prompts
    in executor threads) must not see each other's counts. Results must be bit-identical to sequential ones."""
    rng = random.Random(7)
    texts = EDGE_TEXTS + ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 3000))) for _ in range(40)]
    texts += ["the goat words " * 2000, "İ" * 1500]
    dots = [dot for _, dot, _ in served_parts]
    expected = [[dot(t, ()) for t in texts] for dot in dots]
    expected_counts = [[dot.counts(t) for t in texts] for dot in dots]
    errors: list[tuple[int, int, int]] = []

    def work(seed: int) -> None:
        order = list(range(len(texts)))
        random.Random(seed).shuffle(order)
        for i in order:
            for j, dot in enumerate(dots):
                if dot(texts[i], ()) != expected[j][i] or dot.counts(texts[i]) != expected_counts[j][i]:
                    errors.append((seed, j, i))

    run_interleaved(work, threads=4)
    assert errors == []


@needs_native
def test_an_allocation_failure_raises_memory_error_and_leaves_no_counts_behind(served_parts) -> None:
    """Any allocation in a call may fail (a prompt of several MB): the call raises MemoryError (or succeeds),
    and the next call's counts and score are the same as if the failed one never happened."""
    _testcapi = pytest.importorskip("_testcapi")
    if not hasattr(_testcapi, "set_nomemory"):
        pytest.skip("this Python's _testcapi cannot inject allocation failures")
    texts = ["Write a limerick about a goat. İstanbul ΣΑΣ words", "x" * 5000 + " the goat " * 300, "ÉCOLE 東京 " * 400]
    failed = 0
    for _, dot, _ in served_parts:
        for text in texts:
            expected, expected_counts = dot(text, ()), dot.counts(text)
            for nth in range(12):
                for call in (lambda: dot(text, ()), lambda: dot.counts(text)):
                    _testcapi.set_nomemory(nth, nth + 1)  # only the nth allocation from here on fails
                    try:
                        call()
                    except MemoryError:
                        failed += 1
                    finally:
                        _testcapi.remove_mem_hooks()
                    assert dot(text, ()) == expected and dot.counts(text) == expected_counts, (text[:40], nth)
    assert failed > 0


class _OwnLower(str):
    """A str subclass whose lower() differs from str.lower(): only the Python path calls it as Python does."""

    def lower(self) -> str:
        return "goat words"


@needs_native
def test_what_the_extension_declines_goes_to_the_fallback(served_parts) -> None:
    text = _OwnLower("Write a limerick")
    for part, dot, python in served_parts:
        assert dot.counts(text) is None
        assert dot(text, ()) == python(text, ())
        assert dot(text) == python(text, ())  # dets is optional
    calls = []
    part, _, python = served_parts[0]
    coef = np.ones(part.dim)

    def spy(text: str, dets: Any) -> float:
        calls.append((text, dets))
        return 42.0

    dot = part.bind_native(coef, spy)
    assert dot is not None
    assert dot(text, ("dets",)) == 42.0 and calls == [(text, ("dets",))]
    assert dot("plain str", ()) != 42.0 and len(calls) == 1


@needs_native
def test_bad_tables_are_refused_not_read_out_of_bounds() -> None:
    module = native.native_module()
    assert module is not None
    w, cols = np.ones(2).tobytes(), np.array([0, 1], dtype=np.int32).tobytes()

    def fallback(text: str, dets: Any) -> float:
        return 0.0

    for make in (module.char_dot, module.word_dot):
        assert make(["ab", "cd"], cols, 1, 2, w, w, True, False, True, 2, fallback)("ab cd") > 0
        bad = [
            (["ab", "cd"], np.array([0, 2], dtype=np.int32).tobytes(), 1, 2, w, w),  # column past the weights
            (["ab", "cd"], np.array([0, -2], dtype=np.int32).tobytes(), 1, 2, w, w),
            (["ab"], cols, 1, 2, w, w),  # one column per term
            (["ab", "cd"], cols, 1, 2, w, np.ones(3).tobytes()),  # weights of different lengths
            (["ab", "cd"], cols, 2, 1, w, w),  # lo > hi
            (["ab", "ab"], cols, 1, 2, w, w),  # a duplicate term
        ]
        for terms, columns, lo, hi, num_w, weight in bad:
            with pytest.raises(ValueError):
                make(terms, columns, lo, hi, num_w, weight, True, False, True, 2, fallback)
        with pytest.raises(TypeError):
            make([b"ab", "cd"], cols, 1, 2, w, w, True, False, True, 2, fallback)
    with pytest.raises(ValueError, match="share a column"):
        module.char_dot(["ab", "cd"], np.array([1, 1], dtype=np.int32).tobytes(), 1, 2, w, w, True, False, True, 2,
                        fallback)
    with pytest.raises(TypeError):
        module.TfidfDot()


@needs_native
def test_a_vocabulary_the_tables_cannot_hold_takes_the_python_path(caplog) -> None:
    """8-grams over an alphabet of 300 characters do not fit 64-bit n-gram numbers: the Python path is used."""
    terms = ["".join(chr(0x4E00 + (7 * k + j) % 300) for j in range(8)) for k in range(300)]
    vocab = {t: j for j, t in enumerate(terms)}
    part = tfidf_part_from({"analyzer": "char", "lowercase": True, "token_pattern": "", "ngram_range": [8, 8]},
                           terms, binary=False, sublinear=True, idf=np.ones(len(vocab)), norm="l2")
    coef = np.linspace(-1, 1, len(vocab))
    with caplog.at_level(logging.WARNING, logger="classifiers.native"):
        assert part.bind_native(coef) is None
    assert "alphabet too large" in caplog.text
    text = "".join(terms[:5])
    assert part.bind(coef)(text, ()) == pytest.approx(part.dot(text, (), coef), rel=1e-12)


@needs_native
def test_a_stale_build_is_not_used_and_says_so_once(monkeypatch, tmp_path, caplog) -> None:
    version = native.NATIVE_VERSION
    monkeypatch.setattr(native._build, "loaded", None)
    monkeypatch.setattr(native, "NATIVE_VERSION", version + 1)
    with caplog.at_level(logging.INFO, logger="classifiers.native"):
        assert native.native_module() is None and native.native_module() is None
        assert native.native_status().startswith("stale build: NATIVE_VERSION")
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    part = _parts_of_small_vectorizer()[0]
    assert part.bind_native(np.ones(part.dim)) is None
    assert type(part.bind(np.ones(part.dim))).__name__ == "function"

    edited = tmp_path / "_native_tfidf.c"
    edited.write_text("/* an edit after the build */\n")
    monkeypatch.setattr(native._build, "loaded", None)
    monkeypatch.setattr(native, "NATIVE_VERSION", version)
    monkeypatch.setattr(native, "_SOURCE", edited)
    assert native.native_module() is None
    assert "changed since it was compiled" in native.native_status()
    monkeypatch.setattr(native._build, "loaded", None)
    monkeypatch.setattr(native, "_SOURCE", tmp_path / "absent.c")  # an installed wheel has no C source
    assert native.native_module() is not None


def test_the_pure_python_switch(monkeypatch) -> None:
    monkeypatch.setenv(native.PURE_PYTHON_ENV, "1")
    assert native.native_module() is None
    assert native.native_status() == f"disabled by {native.PURE_PYTHON_ENV}"
    part = _parts_of_small_vectorizer()[0]
    assert part.bind_native(np.ones(part.dim)) is None
    monkeypatch.setenv(native.PURE_PYTHON_ENV, "0")
    assert native.native_status() != f"disabled by {native.PURE_PYTHON_ENV}"


def _parts_of_small_vectorizer() -> list[_TfidfPart]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    return _parts(TfidfVectorizer(analyzer="char", ngram_range=(2, 4), min_df=1).fit(EDGE_TEXTS))
