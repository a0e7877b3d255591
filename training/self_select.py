"""Self-selection offline: the model's own P(YES) per example, and a threshold calibrated on outcomes.

`collect_scores` asks the route's model the self-select question once per example (exactly the decider the
proxy runs, so the offline score is the production score) and appends `{id, score, method, tokens}` records to
a resumable JSONL file. `calibrate_threshold` fits the threshold on the training ids of an outcome table (the
same calibration as the classifier: max accuracy, a target think-rate, or cost) and evaluates it once on the
held-out ids.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from classifiers.calibration import Threshold, calibrate, evaluate
from router.conversation import decision_text
from router.deciders.base import DecisionContext
from router.deciders.self_select import CALIBRATION_FORMAT, SelfSelectDecider

NEVER = 1.5  # a threshold above every possible score (scores are shares in [0, 1])

from .fit import auc
from .jobs import JobSpec, Summary, prepare_table, read_table, run_jobs
from .labels import TrainingSet
from .records import Example


@dataclass(frozen=True)
class SelfSelectScore:
    id: str
    score: float | None
    method: str | None
    tokens: int
    error: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "SelfSelectScore":
        score = data.get("score")
        return cls(id=str(data["id"]), score=None if score is None else float(score), method=data.get("method"),
                   tokens=int(data.get("tokens") or 0), error=data.get("error"))


def read_scores(path: str | Path) -> dict[str, SelfSelectScore]:
    """The latest error-free score per id (a retried failure is superseded by its success)."""
    found: dict[str, SelfSelectScore] = {}
    for record in read_table(path, SelfSelectScore.from_json, "self-select score"):
        if record.error is None or record.id not in found:
            found[record.id] = record
    return found


async def collect_scores(examples: Sequence[Example], decider: SelfSelectDecider, *, out_path: str | Path,
                         concurrency: int = 16, retries: int = 3, progress: bool = True) -> Summary:
    path = prepare_table(out_path)
    done = {i for i, s in read_scores(path).items() if s.error is None} if path.exists() else set()
    todo = [e for e in examples if e.id not in done]

    async def run(example: Example) -> dict[str, Any]:
        start = time.perf_counter()
        text = decision_text(list(example.messages))
        score, method, tokens = await decider.measure(DecisionContext(text=text, route="offline"))
        return {"id": example.id, "score": round(score, 6), "method": method, "tokens": tokens,
                "seconds": round(time.perf_counter() - start, 4)}

    spec: JobSpec[Example] = JobSpec(
        run=run, failed_record=lambda e, error: {"id": e.id, "score": None, "method": None, "error": error},
        describe=lambda e: e.id)
    summary = await run_jobs(todo, spec, out_path=path, concurrency=concurrency, retries=retries,
                             progress=progress, desc="self-select")
    summary.skipped = len(examples) - len(todo)
    return summary


def _arrays(ts: TrainingSet, scores: dict[str, SelfSelectScore]) -> np.ndarray:
    missing = [i for i in ts.ids if i not in scores or scores[i].score is None]
    if missing:
        raise ValueError(f"{len(missing)} example(s) have no self-select score (first: {missing[0]}); "
                         "run `thinkgate self-select score` to finish the scores file")
    return np.array([scores[i].score for i in ts.ids], dtype=float)


def policy_report(threshold: Threshold | float, ts: TrainingSet, scores: np.ndarray) -> dict[str, Any]:
    out = evaluate(threshold, scores, ts.weighted(ts.direct), ts.weighted(ts.think), extra_cost=ts.extra_cost)
    return {"n": len(ts), "policy_accuracy": 100 * out["accuracy"], "never_accuracy": 100 * out["accuracy_never"],
            "always_accuracy": 100 * out["accuracy_always"], "oracle_accuracy": 100 * out["accuracy_oracle"],
            "think_rate": out["think_rate"], "auc_gain_positive": auc(ts.labels, scores),
            "default_threshold_think_rate": float((scores >= 0.5).mean())}


def calibrate_threshold(train: TrainingSet, held_out: TrainingSet, scores: dict[str, SelfSelectScore], *,
                        method: str = "max_accuracy", rate: float | None = None,
                        cost_penalty: float | None = None) -> tuple[Threshold, dict[str, Any]]:
    """Threshold from the training ids only; the held-out ids are evaluated once, for the report."""
    s_train, s_held = _arrays(train, scores), _arrays(held_out, scores)
    threshold = calibrate(s_train, method, direct=train.weighted(train.direct), think=train.weighted(train.think),
                          rate=rate, extra_cost=train.extra_cost, cost_penalty=cost_penalty)
    report = {"train": policy_report(threshold, train, s_train), "held_out": policy_report(threshold, held_out, s_held),
              "default_threshold_held_out": policy_report(0.5, held_out, s_held),
              "methods": _method_counts([scores[i] for i in train.ids + held_out.ids])}
    return threshold, report


def _method_counts(found: Sequence[SelfSelectScore]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for s in found:
        key = s.method or "failed"
        counts[key] = counts.get(key, 0) + 1
    return counts


def calibration_file(threshold: Threshold, *, prompt: str, model: str, command: str,
                     report: dict[str, Any], sources: dict[str, str]) -> dict[str, Any]:
    value = threshold.value if np.isfinite(threshold.value) else NEVER  # "never think" has no finite score
    return {"format": CALIBRATION_FORMAT, "version": 1, "threshold": min(NEVER, value), "prompt": prompt,
            "model": model, "method": threshold.method, "command": command,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "sources": sources, "report": report}
