"""Registry of decision-model recipes: name -> a fresh, unfitted scikit-learn Pipeline that starts from raw text.

Classifiers predict the binary target "thinking helps" (1 when the think-mode score beats the direct-mode
score, i.e. gain > 0); their score is `predict_proba(X)[:, 1]`. The `ridge` recipe is the regression view: it
predicts the gain itself and its score is `predict(X)`. Either way the decision is `score >= threshold`, with
the threshold calibrated separately (`calibration.py`).

    >>> pipe = make_estimator("linear")            # doctest: +SKIP
    >>> pipe.fit(prompts, labels).predict_proba(["Write a haiku in all lowercase."])[:, 1]   # doctest: +SKIP

Every pipeline has the same two steps, `features` (a FeatureUnion over raw text) and `model`, which is what
the serving fast path (`fastpath.py`) knows how to compile.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "EstimatorSpec",
    "UnknownEstimatorError",
    "DEFAULT_ESTIMATOR",
    "available_estimators",
    "estimator_spec",
    "make_estimator",
    "register_estimator",
]

Task = Literal["classification", "regression"]
DEFAULT_ESTIMATOR = "linear"


class UnknownEstimatorError(KeyError):
    """Raised for a name that is not in the registry; the message lists close matches and all names."""

    def __str__(self) -> str:  # KeyError would print the message with quotes around it
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class EstimatorSpec:
    """A registry entry: how to build the pipeline, what it predicts, and a one-line description."""

    name: str
    factory: Callable[..., Any]
    task: Task
    description: str


_REGISTRY: dict[str, EstimatorSpec] = {}


def register_estimator(name: str, factory: Callable[..., Any], *, task: Task = "classification",
                       description: str = "", replace: bool = False) -> None:
    """Add a recipe. `factory(**overrides)` must return an unfitted Pipeline(features=FeatureUnion, model=...)."""
    if name in _REGISTRY and not replace:
        raise ValueError(f"estimator {name!r} is already registered (pass replace=True to override it)")
    _REGISTRY[name] = EstimatorSpec(name, factory, task, description)


def available_estimators() -> list[str]:
    return sorted(_REGISTRY)


def estimator_spec(name: str) -> EstimatorSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.4)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownEstimatorError(
            f"unknown estimator {name!r}.{hint} Available: {', '.join(available_estimators())}."
        ) from None


def make_estimator(name: str = DEFAULT_ESTIMATOR, **overrides: Any) -> Any:
    """A fresh unfitted pipeline for `name`; `overrides` are passed to the recipe (e.g. `C=0.5`)."""
    return estimator_spec(name).factory(**overrides)


# ------------------------------------------------------------------------------------------------- recipes
# Imports stay inside the factories: importing this module must not pull in scikit-learn.


def _structure_scaled() -> Any:
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from .features import StructureFeatures

    return Pipeline([("extract", StructureFeatures()), ("scale", StandardScaler())])


def _linear(C: float = 1.0, class_weight: str | None = "balanced", max_word_features: int = 20000,
            max_char_features: int = 30000, min_df: int | float = 2, word_ngrams: tuple[int, int] = (1, 2),
            char_ngrams: tuple[int, int] = (2, 4), random_state: int = 0) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion, Pipeline

    from .features import ConstraintFeatures, text_vectorizers

    parts = text_vectorizers(max_word_features=max_word_features, max_char_features=max_char_features, min_df=min_df,
                             word_ngrams=word_ngrams, char_ngrams=char_ngrams)
    features = FeatureUnion(parts + [("constraints", ConstraintFeatures()), ("structure", _structure_scaled())])
    model = LogisticRegression(C=C, class_weight=class_weight, max_iter=5000, random_state=random_state)
    return Pipeline([("features", features), ("model", model)])


def _constraints_linear(C: float = 1.0, class_weight: str | None = "balanced", random_state: int = 0) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion, Pipeline

    from .features import ConstraintFeatures

    features = FeatureUnion([("constraints", ConstraintFeatures()), ("structure", _structure_scaled())])
    model = LogisticRegression(C=C, class_weight=class_weight, max_iter=5000, random_state=random_state)
    return Pipeline([("features", features), ("model", model)])


def _tree(max_iter: int = 200, learning_rate: float = 0.05, max_leaf_nodes: int = 15, min_samples_leaf: int = 10,
          l2_regularization: float = 1.0, class_weight: str | None = "balanced", random_state: int = 0) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import FeatureUnion, Pipeline

    from .features import ConstraintFeatures, StructureFeatures

    features = FeatureUnion([("constraints", ConstraintFeatures()), ("structure", StructureFeatures())])
    model = HistGradientBoostingClassifier(
        max_iter=max_iter, learning_rate=learning_rate, max_leaf_nodes=max_leaf_nodes,
        min_samples_leaf=min_samples_leaf, l2_regularization=l2_regularization, class_weight=class_weight,
        early_stopping=False, random_state=random_state,
    )
    return Pipeline([("features", features), ("model", model)])


def _ridge(alpha: float = 1.0, max_word_features: int = 20000, max_char_features: int = 30000,
           min_df: int | float = 2, word_ngrams: tuple[int, int] = (1, 2),
           char_ngrams: tuple[int, int] = (2, 4)) -> Any:
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import FeatureUnion, Pipeline

    from .features import ConstraintFeatures, text_vectorizers

    parts = text_vectorizers(max_word_features=max_word_features, max_char_features=max_char_features, min_df=min_df,
                             word_ngrams=word_ngrams, char_ngrams=char_ngrams)
    features = FeatureUnion(parts + [("constraints", ConstraintFeatures()), ("structure", _structure_scaled())])
    return Pipeline([("features", features), ("model", Ridge(alpha=alpha))])


def _taxonomy_features() -> Any:
    from sklearn.pipeline import FeatureUnion

    from .features import ConstraintFeatures, TaxonomyFeatures

    return FeatureUnion([("constraints", ConstraintFeatures()), ("taxonomy", TaxonomyFeatures())])


def _taxonomy_ridge(alpha: float = 10.0) -> Any:
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline

    return Pipeline([("features", _taxonomy_features()), ("model", Ridge(alpha=alpha))])


def _taxonomy_sparse(C: float = 0.1, class_weight: str | None = "balanced", random_state: int = 0) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    model = LogisticRegression(l1_ratio=1.0, solver="liblinear", C=C, class_weight=class_weight,
                               random_state=random_state)
    return Pipeline([("features", _taxonomy_features()), ("model", model)])


register_estimator(
    "linear", _linear,
    description="logistic regression on word+char TF-IDF, constraint counts and scaled structure features (default)",
)
register_estimator(
    "constraints-linear", _constraints_linear,
    description="logistic regression on constraint counts and scaled structure features only (no lexical features)",
)
register_estimator(
    "tree", _tree,
    description="histogram gradient boosting on constraint counts and structure features",
)
register_estimator(
    "ridge", _ridge, task="regression",
    description="regression view: ridge on the same features as 'linear', predicting the gain (think - direct)",
)
register_estimator(
    "taxonomy-ridge", _taxonomy_ridge, task="regression",
    description="ridge on constraint counts and the paper's taxonomy (mechanical/format/lexical), predicting the gain",
)
register_estimator(
    "taxonomy-sparse", _taxonomy_sparse,
    description="L1 logistic regression on constraint counts and taxonomy groups (few non-zero weights)",
)
