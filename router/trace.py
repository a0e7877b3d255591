"""What one request did, filled in as it goes; it turns itself into the decision record at the end."""

from __future__ import annotations

import json

import time
from dataclasses import dataclass, field
from typing import Any

from .deciders import Decision
from .decision_log import DecisionRecord
from .http_io import new_request_id
from .guard_run import GuardReport
from .routes import Route


@dataclass
class RequestTrace:
    request_id: str = field(default_factory=new_request_id)
    started: float = field(default_factory=time.time)
    route: Route | None = None
    decision: Decision | None = None
    text: str = ""
    upstream_start: float | None = None
    upstream_ms: float | None = None
    usage: dict[str, Any] | None = None
    status: int = 200
    error: str | None = None
    stream: bool = False
    finished: bool = False  # handed to metrics and the decision log (`Runtime.observe` does it once)
    guard: GuardReport | None = None  # what the guard did (attempts, verdicts, reasons), on guarded routes

    @property
    def route_alias(self) -> str:
        return self.route.alias if self.route else "unknown"

    def upstream_started(self) -> None:
        self.upstream_start = time.perf_counter()

    def upstream_done(self, usage: dict[str, Any] | None) -> None:
        if self.upstream_start is not None:
            self.upstream_ms = (time.perf_counter() - self.upstream_start) * 1000
        self.usage = usage

    def failed(self, status: int, message: str) -> None:
        self.status, self.error = status, message

    def _guard_json(self) -> str | None:
        record = self.guard.record() if self.guard is not None else None
        return None if record is None else json.dumps(record, ensure_ascii=False, separators=(",", ":"))

    def to_record(self, log_prompts: bool) -> DecisionRecord | None:
        """The decision record, or None for a request rejected before any decision was made."""
        route, decision = self.route, self.decision
        if route is None or decision is None:
            return None
        usage = self.usage or {}
        details = usage.get("completion_tokens_details") or {}
        return DecisionRecord(
            time=self.started, request_id=self.request_id, route=route.alias, upstream_model=route.config.model,
            policy=decision.policy, decision=decision.label, decision_ms=decision.ms,
            decision_source=decision.source, status=self.status, stream=self.stream, score=decision.score,
            fallback_reason=decision.fallback_reason, upstream_ms=self.upstream_ms,
            prompt_tokens=usage.get("prompt_tokens"), completion_tokens=usage.get("completion_tokens"),
            reasoning_tokens=details.get("reasoning_tokens"), error=self.error,
            decision_tokens=decision.tokens or None, score_method=decision.method, guard=self._guard_json(),
            prompt=self.text if log_prompts else None,
        )
