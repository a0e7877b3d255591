"""Per-app state the endpoints share: settings, routes, metrics, the decision log, client keys (no globals)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from .decision_log import DecisionLog
from .metrics import Metrics
from .routes import Route
from .settings import Config
from .trace import RequestTrace


@dataclass
class Runtime:
    config: Config
    routes: dict[str, Route]
    metrics: Metrics
    decision_log: DecisionLog | None
    api_keys: frozenset[str]

    @classmethod
    def build(cls, config: Config, routes: dict[str, Route], *, metrics: Metrics,
              decision_log: DecisionLog | None, environ: Mapping[str, str]) -> "Runtime":
        return cls(config, routes, metrics, decision_log, config.client_api_keys(environ))

    @property
    def log_prompts(self) -> bool:
        return self.config.decision_log.log_prompts

    def observe(self, trace: RequestTrace) -> None:
        """Hand a finished request to metrics and the decision log: both are non-blocking."""
        record = trace.to_record(self.log_prompts)
        if record is None:  # rejected before any decision was made: counted, not logged
            self.metrics.observe_request(trace.route_alias, trace.status)
            return
        self.metrics.observe_record(record)
        if self.decision_log is not None:
            self.decision_log.record(record)
