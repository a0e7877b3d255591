"""The single-prompt fast path computes the pipeline's own score, for every recipe."""

from __future__ import annotations

import numpy as np
import pytest
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
