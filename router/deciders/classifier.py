"""Classifier-selective reasoning: a trained decision model scores the request text.

The artifact is loaded once at start-up, in its numpy serving form when it has one (no scikit-learn in the
serving process; see classifiers/serving.py). Scoring is linear in the text and sub-millisecond on a prompt of
IFEval's size, so texts up to `inline_max_chars` are scored inline on the event loop (a thread hop would cost
more than the work); longer ones in the decider's thread, under the decider deadline. Repeated texts are
answered from a bounded LRU cache of scores (`cache_size` entries; 0 turns it off). Texts scored on the event
loop that reach their decision in the same loop iteration are scored back to back (`batch`, on by default; see
`batching.py`: under load it keeps the model's working set in the CPU caches).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from ..errors import ConfigError
from .base import Decider, DecisionContext, DeciderOptions
from .batching import DecisionBatcher
from .score_cache import ScoreCache


class ClassifierOptions(DeciderOptions):
    artifact: str | None = None
    threshold: float | None = None  # type: ignore[assignment]  # None: use the artifact's calibrated one
    cache_size: int = Field(default=4096, ge=0)  # scores of recent decision texts kept; 0 = no cache
    batch: bool = True  # score the texts that reach their decision in one loop iteration back to back (batching.py)


class ClassifierDecider(Decider[ClassifierOptions]):
    name = "classifier"
    Options = ClassifierOptions
    inline_max_chars = 2048  # about a millisecond of scoring; the longest IFEval prompt has 1,858 characters

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
        self.batcher = DecisionBatcher(self._score_text) if self.options.batch else None

    @property
    def threshold(self) -> float:
        override = self.options.threshold
        return float(self._model.threshold if override is None else override)

    def _score_text(self, text: str) -> float:
        return float(self.cache.score(text, self._model.score))

    async def score(self, ctx: DecisionContext) -> float:
        if self.batcher is None:
            return self._score_text(ctx.text)
        cached = self.cache.get(ctx.text)  # a hit does not wait for the batch
        return cached if cached is not None else await self.batcher.score(ctx.text)
