"""One A/B record: an example sent through one arm's route, with what the proxy decided and returned."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from training.jobs import read_table


@dataclass(frozen=True)
class ABRecord:
    arm: str
    id: str
    route: str
    decision: str | None  # x-thinkgate-decision: think / direct (None when the request failed)
    score: float | None  # x-thinkgate-score (None for policies without a score)
    decision_source: str | None
    decision_ms: float | None
    answer: str
    reasoning: str | None
    scores: dict[str, Any]
    latency_s: float
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    error: str | None = None
    finish_reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ABRecord":
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


def read_records(path: str | Path) -> list[ABRecord]:
    """Every record of a records file, in order (a torn last line, from an interrupted write, is skipped)."""
    return read_table(path, ABRecord.from_json, "an A/B record")


def latest_ok(records: list[ABRecord]) -> dict[tuple[str, str], ABRecord]:
    """The last error-free record per (arm, example id): what the report uses and resume skips."""
    out: dict[tuple[str, str], ABRecord] = {}
    for r in records:
        if r.error is None:
            out[(r.arm, r.id)] = r
    return out
