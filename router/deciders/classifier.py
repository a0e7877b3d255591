"""Classifier-selective reasoning: a trained decision model scores the request text.

The artifact is loaded once at start-up; scoring is sub-millisecond CPU work, so it runs inline on the
event loop (a thread hop would cost more than the work itself).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .base import Decider, DecisionContext, DeciderOptions


class ClassifierOptions(DeciderOptions):
    artifact: str | None = None
    threshold: float | None = None  # type: ignore[assignment]  # None: use the artifact's calibrated one


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
        from classifiers.artifact import ArtifactError, load_artifact
        from classifiers.bundled import bundled_artifact

        bundled = None if Path(path).exists() else bundled_artifact(path)
        if bundled is not None:
            path = str(bundled)  # a bare name: one of the artifacts shipped with thinkgate
        try:
            self._model = load_artifact(path)
        except (ArtifactError, OSError) as exc:
            raise ConfigError(f"policy 'classifier': cannot load artifact '{path}': {exc}") from None

    @property
    def threshold(self) -> float:
        override = self.options.threshold
        return float(self._model.threshold if override is None else override)

    async def score(self, ctx: DecisionContext) -> float:
        return float(self._model.score(ctx.text))
