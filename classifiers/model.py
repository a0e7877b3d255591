"""`DecisionModel`: a fitted pipeline plus its threshold, the object serving code asks "think or not?".

    model = load_artifact("path/to/artifact")        # or DecisionModel(fitted_pipeline, threshold)
    think, score = model.decide(prompt_text)

`score(text)` goes through the compiled fast path (`fastpath.py`) when the pipeline's shape allows it and
through `pipeline.predict_proba` otherwise; both give the same number. The model is read-only after
construction, so one instance can serve concurrent requests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

import numpy as np

from .calibration import Threshold
from .fastpath import Scorer, compile_scorer

__all__ = ["DecisionModel", "default_threshold"]


def default_threshold(task: str) -> Threshold:
    """Used when no threshold was calibrated: probability 0.5 for a classifier, predicted gain 0 for a regressor."""
    return Threshold(0.5 if task == "classification" else 0.0, "default", {}, float("nan"))


class DecisionModel:
    """Score a prompt (higher = thinking more likely helps) and decide with a calibrated threshold."""

    def __init__(self, pipeline: Any, threshold: Threshold | None = None, metadata: Mapping[str, Any] | None = None,
                 *, fast: bool = True) -> None:
        from sklearn.base import is_classifier
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(pipeline)  # NotFittedError now rather than an AttributeError on the first request
        self._pipeline = pipeline
        self._classifier = bool(is_classifier(pipeline))
        self.task = "classification" if self._classifier else "regression"
        self._threshold = threshold if threshold is not None else default_threshold(self.task)
        self._metadata = MappingProxyType(dict(metadata or {}))
        self._fast: Scorer | None = compile_scorer(pipeline) if fast else None

    @property
    def pipeline(self) -> Any:
        return self._pipeline

    @property
    def threshold(self) -> Threshold:
        return self._threshold

    @property
    def metadata(self) -> Mapping[str, Any]:
        return self._metadata

    @property
    def fast(self) -> bool:
        """Whether `score` uses the compiled fast path."""
        return self._fast is not None

    def score(self, text: str) -> float:
        if not isinstance(text, str):
            raise TypeError(f"expected the prompt text as str, got {type(text).__name__}")
        if self._fast is not None:
            return self._fast(text)
        return float(self.score_many([text])[0])

    def score_many(self, texts: Iterable[str]) -> np.ndarray:
        """Scores for a batch through the pipeline itself (what training and calibration use)."""
        texts = list(texts)
        if self._classifier:
            return np.asarray(self._pipeline.predict_proba(texts)[:, 1], dtype=np.float64)
        return np.asarray(self._pipeline.predict(texts), dtype=np.float64).ravel()

    def decide(self, text: str) -> tuple[bool, float]:
        """(think, score): think when the score reaches the threshold."""
        s = self.score(text)
        return s >= self._threshold.value, s

    def with_threshold(self, threshold: Threshold) -> "DecisionModel":
        """The same fitted pipeline with another threshold (the fast path is shared, not recompiled)."""
        other = object.__new__(DecisionModel)
        other.__dict__.update(self.__dict__)
        other._threshold = threshold
        return other

    def __repr__(self) -> str:
        est = self._metadata.get("estimator", type(self._pipeline).__name__)
        return f"DecisionModel(estimator={est!r}, threshold={self._threshold.value:.4g} ({self._threshold.method}))"
