"""Feature transformers: fixed columns, scikit-learn conventions, row() == transform()."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from classifiers.constraints import KINDS, detect_constraints
from classifiers.features import (
    FEATURE_VERSION,
    STRUCTURE_COLUMNS,
    ConstraintFeatures,
    StructureFeatures,
    text_vectorizers,
)

TEXTS = [
    "Write a poem about rain. Use all lowercase letters and no commas.",
    "Answer in JSON. Mention 'tea' at least twice. Mention 'cake' at least once.",
    "",
    "Résumé: 東京 trip?\nTwo lines. 42 digits 7.",
]


def test_constraint_columns_follow_kinds() -> None:
    tr = ConstraintFeatures()
    assert tr.fit(TEXTS) is tr
    X = tr.transform(TEXTS)
    assert X.shape == (len(TEXTS), len(KINDS))
    names = list(tr.get_feature_names_out())
    assert names == [f"constraint={k}" for k in KINDS]
    row0 = dict(zip(KINDS, X[0]))
    assert row0["change_case:english_lowercase"] == 1 and row0["punctuation:no_comma"] == 1
    assert dict(zip(KINDS, X[1]))["keywords:frequency"] == 2
    assert not X[2].any()
    assert tr.feature_version_ == FEATURE_VERSION


def test_binary_presence() -> None:
    X = ConstraintFeatures(binary=True).fit(TEXTS).transform(TEXTS)
    assert set(np.unique(X)) <= {0.0, 1.0}
    assert dict(zip(KINDS, X[1]))["keywords:frequency"] == 1


def test_structure_features() -> None:
    tr = StructureFeatures().fit(TEXTS)
    X = tr.transform(TEXTS)
    assert X.shape == (len(TEXTS), len(STRUCTURE_COLUMNS))
    assert np.isfinite(X).all()
    col = dict(zip(STRUCTURE_COLUMNS, X[3]))
    assert col["frac_non_ascii"] > 0 and col["question_marks"] == 1 and col["log_lines"] == pytest.approx(np.log1p(2))
    assert dict(zip(STRUCTURE_COLUMNS, X[1]))["n_constraints"] == 3
    assert list(tr.get_feature_names_out())[0] == "structure=log_chars"


@pytest.mark.parametrize("tr", [ConstraintFeatures(), StructureFeatures()])
def test_row_equals_transform(tr) -> None:
    tr.fit(TEXTS)
    X = tr.transform(TEXTS)
    for text, expected in zip(TEXTS, X):
        dets = detect_constraints(text)
        row = tr.row(dets) if isinstance(tr, ConstraintFeatures) else tr.row(text, dets)
        np.testing.assert_array_equal(row, expected)


@pytest.mark.parametrize("tr", [ConstraintFeatures(binary=True), StructureFeatures()])
def test_sklearn_conventions(tr) -> None:
    params = tr.get_params()
    cloned = clone(tr)
    assert cloned.get_params() == params and cloned is not tr
    with pytest.raises(NotFittedError):
        cloned.transform(TEXTS)
    assert not [k for k in vars(cloned) if k.endswith("_")]  # constructor stores params only
    fitted = cloned.fit(TEXTS)
    assert fitted is cloned and [k for k in vars(cloned) if k.endswith("_") and not k.startswith("_")]
    if params:
        assert cloned.set_params(binary=False) is cloned and cloned.binary is False


def test_rejects_a_bare_string() -> None:
    with pytest.raises(TypeError, match="single string"):
        ConstraintFeatures().fit("not a list")
    with pytest.raises(TypeError, match="expected strings"):
        StructureFeatures().fit([1, 2])


def test_text_vectorizers_are_bounded() -> None:
    parts = dict(text_vectorizers(max_word_features=50, max_char_features=60, min_df=1))
    assert set(parts) == {"word", "char"}
    parts["char"].fit(TEXTS * 3)
    assert len(parts["char"].vocabulary_) <= 60


def test_taxonomy_groups_the_detected_constraints():
    from classifiers.features import TAXONOMY, TaxonomyFeatures
    from classifiers.constraints import KINDS

    assert set().union(*TAXONOMY.values()) == set(KINDS)  # every kind the detector emits has a group
    assert not (TAXONOMY["mechanical"] & TAXONOMY["format"]) and not (TAXONOMY["format"] & TAXONOMY["lexical"])
    texts = ["Answer in all lowercase letters and in fewer than 50 words. Wrap the answer in JSON.",
             "Write a poem."]
    rows = TaxonomyFeatures().fit(texts).transform(texts)
    assert rows.tolist() == [[2, 1, 0, 3, 1], [0, 0, 0, 0, 0]]
