"""Classifier-selective reasoning: a trained decision model scores the request text.

The artifact is loaded once at start-up, in its numpy serving form when it has one (no scikit-learn in the
serving process; see classifiers/serving.py). Scoring is sub-millisecond CPU work, so it runs inline on the
event loop (a thread hop would cost more than the work itself); repeated texts are answered from a bounded
LRU cache of scores (`cache_size` entries; 0 turns it off).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from ..errors import ConfigError
from .base import Decider, DecisionContext, DeciderOptions
from .score_cache import ScoreCache


class ClassifierOptions(DeciderOptions):
    artifact: str | None = None
    threshold: float | None = None  # type: ignore[assignment]  # None: use the artifact's calibrated one
    cache_size: int = Field(default=4096, ge=0)  # scores of recent decision texts kept; 0 = no cache


class ClassifierDecider(Decider[ClassifierOptions]):
    name = "classifier"
    Options = ClassifierOptions

    def __init__(self, options: dict[str, Any] | None = None, **deps: Any) -> None:
        super().__init__(options)
        path = self.options.artifact
        if not path:
            raise ConfigError(
                "policy 'classifier' needs a trained decision model: set policy_options.artifact to an "
                "artifact directory (train one with `thinkgate train`)")
        from classifiers.artifact import ArtifactError, load_serving_model
        from classifiers.bundled import bundled_artifact

        bundled = None if Path(path).exists() else bundled_artifact(path)
        if bundled is not None:
            path = str(bundled)  # a bare name: one of the artifacts shipped with thinkgate
        try:
            self._model = load_serving_model(path)
        except (ArtifactError, OSError) as exc:
            raise ConfigError(f"policy 'classifier': cannot load artifact '{path}': {exc}") from None
        meta = self._model.metadata
        model_id = str(meta.get("serving_sha256") or meta.get("model_sha256") or Path(path).resolve())
        self.cache = ScoreCache(self.options.cache_size, model_id)

    @property
    def threshold(self) -> float:
        override = self.options.threshold
        return float(self._model.threshold if override is None else override)

    async def score(self, ctx: DecisionContext) -> float:
        return float(self.cache.score(ctx.text, self._model.score))
