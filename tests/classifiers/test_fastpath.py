"""The single-prompt fast path computes the pipeline's own score, for every recipe."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import FunctionTransformer, MaxAbsScaler

from classifiers.calibration import Threshold
from classifiers.estimators import available_estimators, estimator_spec, make_estimator
from classifiers.fastpath import compile_scorer
from classifiers.features import ConstraintFeatures, StructureFeatures
from classifiers.model import DecisionModel

UNSEEN = [
    "Write a limerick about a goat. Wrap the whole reply in double quotes.",
    "Explain photosynthesis in fewer than 30 words, all lowercase.",
    "",
    "ok",
    "Plan a trip to Rome with exactly 5 bullet points and a P.S. at the end. Answer in JSON. " * 5,
]


@pytest.fixture(scope="module")
def fitted(synthetic):
    prompts, labels, gains = synthetic
    out = {}
    for name in available_estimators():
        kw = {"min_df": 1} if name in ("linear", "ridge") else {"max_iter": 30} if name == "tree" else {}
        y = gains if estimator_spec(name).task == "regression" else labels
        out[name] = make_estimator(name, **kw).fit(prompts, y)
    return out


@pytest.mark.parametrize("name", available_estimators())
def test_fast_score_equals_pipeline_score(name: str, fitted, synthetic) -> None:
    model = DecisionModel(fitted[name])
    assert model.fast
    texts = synthetic[0][:20] + UNSEEN
    expected = model.score_many(texts)
    got = np.array([model.score(t) for t in texts])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
    slow = DecisionModel(fitted[name], fast=False)
    assert not slow.fast and slow.score(texts[0]) == pytest.approx(expected[0], abs=1e-12)


def test_decide_uses_the_threshold(fitted) -> None:
    model = DecisionModel(fitted["linear"])
    assert model.threshold.method == "default" and model.threshold.value == 0.5
    text = UNSEEN[0]
    score = model.score(text)
    assert model.decide(text) == (score >= 0.5, score)
    always = model.with_threshold(Threshold(-np.inf, "test"))
    never = model.with_threshold(Threshold(np.inf, "test"))
    assert always.decide(text)[0] is True and never.decide(text)[0] is False
    assert model.threshold.value == 0.5  # unchanged
    with pytest.raises(TypeError):
        model.score(["a list"])  # type: ignore[arg-type]


def test_regressor_default_threshold_is_zero_gain(fitted) -> None:
    model = DecisionModel(fitted["ridge"])
    assert model.task == "regression" and model.threshold.value == 0.0


def test_unknown_parts_fall_back_exactly(synthetic) -> None:
    prompts, labels, _ = synthetic
    pipe = Pipeline([
        ("features", FeatureUnion([
            ("constraints", Pipeline([("c", ConstraintFeatures()), ("s", MaxAbsScaler())])),
            ("length", FunctionTransformer(lambda xs: np.array([[len(x) / 100.0] for x in xs]))),
            ("structure", StructureFeatures()),
        ], transformer_weights={"constraints": 2.0})),
        ("model", LogisticRegression(max_iter=1000)),
    ]).fit(prompts, labels)
    scorer = compile_scorer(pipe)
    assert scorer is not None
    expected = pipe.predict_proba(UNSEEN)[:, 1]
    np.testing.assert_allclose([scorer(t) for t in UNSEEN], expected, atol=1e-9)


def test_unsupported_shapes_are_not_compiled(synthetic) -> None:
    prompts, labels, _ = synthetic
    plain = Pipeline([("c", ConstraintFeatures()), ("model", LogisticRegression())]).fit(prompts, labels)
    assert compile_scorer(plain) is None
    model = DecisionModel(plain)
    assert not model.fast and 0.0 <= model.score("Use JSON.") <= 1.0



def test_unfitted_pipeline_is_refused() -> None:
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        DecisionModel(make_estimator("linear"))


@pytest.mark.parametrize("ngrams", [(1, 1), (1, 3), (2, 4), (3, 4), (4, 4)])
def test_packed_char_ngrams_match_scikit_learn(ngrams) -> None:
    from collections import Counter

    from sklearn.feature_extraction.text import TfidfVectorizer

    from classifiers.fastpath import _TfidfPart

    texts = UNSEEN + ["  Tabs\tand\n\nnew   lines ", "ÉCOLE Ünïcode 東京 café", "a", "ab", "abc", " ",
                      "emoji 😀 outside the BMP", "İstanbul ß ﬁ"]
    vec = TfidfVectorizer(analyzer="char", ngram_range=ngrams, min_df=1).fit(texts + ["😀😀 x"])
    part = _TfidfPart.from_vectorizer(vec)
    rebuilt = _rebuilt(vec)  # the serving form's copy, without scikit-learn
    assert part.packed is not None and rebuilt.packed is not None
    analyze = vec.build_analyzer()
    for t in texts + ["unseen 😀😀 x", ""]:
        expected = Counter(vec.vocabulary_[g] for g in analyze(t) if g in vec.vocabulary_)
        assert Counter(part.known_indices(t).tolist()) == expected, t
        assert Counter(rebuilt.known_indices(t).tolist()) == expected, t
        assert rebuilt.analyze(t) == analyze(t), t


def _rebuilt(vec):
    from classifiers.fastpath import analyzer_config, tfidf_part_from

    config = analyzer_config(vec)
    assert config is not None
    terms = sorted(vec.vocabulary_, key=vec.vocabulary_.get)
    return tfidf_part_from(config, terms, binary=vec.binary, sublinear=vec.sublinear_tf, idf=vec.idf_, norm=vec.norm)


@pytest.mark.parametrize("ngrams,lowercase", [((1, 1), True), ((1, 2), True), ((2, 3), False), ((1, 3), True)])
def test_word_analyzer_rebuilt_without_scikit_learn_matches_it(ngrams, lowercase) -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = UNSEEN + ["  Tabs\tand\n\nnew   lines ", "ÉCOLE Ünïcode 東京 café", "a", "it's a don't-stop x2 y_3",
                      "emoji 😀 outside the BMP", "İstanbul ß ﬁ", ""]
    vec = TfidfVectorizer(analyzer="word", ngram_range=ngrams, lowercase=lowercase, min_df=1).fit(texts)
    rebuilt, analyze = _rebuilt(vec), vec.build_analyzer()
    for t in texts + ["unseen words and a few seen ones: lines café"]:
        assert rebuilt.analyze(t) == analyze(t), t
        assert np.array_equal(rebuilt.sparse(t)[0], _TfidfPart_sparse(vec, t)[0]), t


def _TfidfPart_sparse(vec, text):
    from classifiers.fastpath import _TfidfPart

    return _TfidfPart.from_vectorizer(vec).sparse(text)


BOUND_TEXTS = UNSEEN + ["  Tabs\tand\n\nnew   lines ", "ÉCOLE Ünïcode 東京 café", "a", "ab", " ", "emoji 😀 outside the BMP",
                        "İstanbul ß ﬁ", "lone \ud800 surrogate", "nul \x00 byte", "aaaa aaaa aaaa " * 30,
                        "unseen 😀😀 x", "\u10ffff \U0010ffff"]


@pytest.mark.parametrize("analyzer,ngrams", [("char", (2, 4)), ("char", (1, 3)), ("char", (4, 4)), ("word", (1, 2)),
                                              ("word", (1, 1)), ("word", (2, 3)), ("char_wb", (2, 4))])
@pytest.mark.parametrize("options", [{}, {"sublinear_tf": True}, {"binary": True}, {"norm": "l1"}, {"norm": None},
                                     {"use_idf": False, "sublinear_tf": True}, {"lowercase": False}])
def test_bound_tfidf_dot_equals_the_vectorizer(analyzer, ngrams, options) -> None:
    """`_TfidfPart.bind(coef)` (the C extension's or Python's counts, then plain arithmetic) gives the dot product
    of the vectorizer's own transform with the coefficients, for every analyzer and TF-IDF option the fast path
    handles."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    from classifiers.fastpath import _TfidfPart

    fit_texts = BOUND_TEXTS[:-3] + ["😀😀 x", "a dozen words, repeated: words words words."]
    vec = TfidfVectorizer(analyzer=analyzer, ngram_range=ngrams, min_df=1, **options).fit(fit_texts)
    coef = np.random.default_rng(0).normal(size=len(vec.vocabulary_))
    parts = [_TfidfPart.from_vectorizer(vec)]
    if analyzer != "char_wb":  # the serving form's copy, without scikit-learn
        from classifiers.fastpath import analyzer_config, tfidf_part_from

        config = analyzer_config(vec)
        assert config is not None
        parts.append(tfidf_part_from(config, sorted(vec.vocabulary_, key=vec.vocabulary_.get), binary=vec.binary,
                                     sublinear=vec.sublinear_tf, idf=vec.idf_ if vec.use_idf else None,
                                     norm=vec.norm))
    for part in parts:
        dots = [part.bind(coef), part.bind_python(coef)]  # the first is the C extension's where it applies
        for t in BOUND_TEXTS:
            expected = float(vec.transform([t]).toarray()[0] @ coef)
            for dot in dots:
                assert dot(t, ()) == pytest.approx(expected, rel=1e-12, abs=1e-12), t
            assert part.dot(t, (), coef) == pytest.approx(expected, rel=1e-12, abs=1e-12), t


def test_packed_counts_are_the_counts_of_the_known_ngrams() -> None:
    from collections import Counter

    from sklearn.feature_extraction.text import TfidfVectorizer

    from classifiers.fastpath import _TfidfPart

    vec = TfidfVectorizer(analyzer="char", ngram_range=(2, 4), min_df=1).fit(BOUND_TEXTS[:-3])
    part = _TfidfPart.from_vectorizer(vec)
    packed = part.packed
    assert packed is not None
    analyze = vec.build_analyzer()
    for t in BOUND_TEXTS:
        got = packed.counts(t)
        if got is None:  # text the packed form cannot encode (a lone surrogate) takes the ordinary path
            assert "\ud800" in t
            continue
        cols, cnt = got
        assert cols.tolist() == sorted(set(cols.tolist())), t
        expected = Counter(vec.vocabulary_[g] for g in analyze(t) if g in vec.vocabulary_)
        assert dict(zip(cols.tolist(), cnt.tolist())) == expected, t


def test_bound_dense_parts_equal_their_rows(synthetic) -> None:
    """The constraint-count and scaled structure parts, bound to coefficients, give row . coef."""
    from classifiers.constraints import detect_constraints
    from classifiers.fastpath import _compile_part

    prompts, _, _ = synthetic
    rng = np.random.default_rng(1)
    transformers = [ConstraintFeatures(binary=False), ConstraintFeatures(binary=True),
                    Pipeline([("s", StructureFeatures()), ("m", MaxAbsScaler())])]
    for tr in transformers:
        tr.fit(prompts[:50])
        part = _compile_part(tr)
        assert part is not None
        coef = rng.normal(size=part.dim)
        dot = part.bind(coef)
        for t in UNSEEN + prompts[:30]:
            expected = float(np.asarray(tr.transform([t]), dtype=np.float64).ravel() @ coef)
            assert dot(t, detect_constraints(t)) == pytest.approx(expected, rel=1e-12, abs=1e-12), t


_ODD_TEXT = st.text(alphabet=st.sampled_from(list("ab AB_1-é\t\n\r\x0b\x0c\u00a0\u2003\u3000ǅ²٣東😀'.,\x00")) | st.characters(),
                    max_size=80)


@settings(max_examples=400, deadline=None)
@given(text=_ODD_TEXT)
def test_the_shorter_default_token_pattern_finds_the_same_tokens(text: str) -> None:
    import re

    from classifiers.fastpath import _DEFAULT_TOKEN_PATTERN, build_analyzer_from

    config = {"analyzer": "word", "lowercase": True, "token_pattern": _DEFAULT_TOKEN_PATTERN, "ngram_range": [1, 1]}
    assert build_analyzer_from(config)(text) == re.compile(_DEFAULT_TOKEN_PATTERN).findall(text.lower())


@pytest.fixture(scope="module")
def odd_vectorizers():
    from sklearn.feature_extraction.text import TfidfVectorizer

    fit = BOUND_TEXTS[:-3] + ["ab ab AB_1 é東 ² ٣ ǅ", "a\u00a0b\u2003c\u3000d"]
    return [TfidfVectorizer(analyzer=a, ngram_range=n, min_df=1, sublinear_tf=True).fit(fit)
            for a, n in (("word", (1, 2)), ("char", (2, 4)), ("char", (1, 3)))]


@settings(max_examples=200, deadline=None)
@given(text=_ODD_TEXT)
def test_bound_tfidf_dot_equals_the_vectorizer_on_odd_text(text: str, odd_vectorizers) -> None:
    from classifiers.fastpath import _TfidfPart

    for vec in odd_vectorizers:
        coef = np.linspace(-1.0, 1.0, len(vec.vocabulary_))
        expected = float(vec.transform([text]).toarray()[0] @ coef)
        part = _TfidfPart.from_vectorizer(vec)
        assert part.bind(coef)(text, ()) == pytest.approx(expected, rel=1e-12, abs=1e-12)
        assert part.bind_python(coef)(text, ()) == pytest.approx(expected, rel=1e-12, abs=1e-12)
