"""The resumable per-prompt loop: one JSON line per prompt, appended as soon as the prompt is done."""

from __future__ import annotations

import json
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from router.local_model.text import message_text
from training.jobs import prepare_table, progress_bar, read_table
from training.labels import TrainingSet
from training.records import Example

from .measure import beta, trace
from .sequences import TeacherForced, build_sequence, last_user_index
from .spans import TemplateError, constraint_spans

GROUPS = {2: "WIN", 0: "LOSE", 1: "TIE"}  # TrainingSet.strata: sign(think - direct) + 1
ORDER = ("WIN", "LOSE", "TIE")  # the groups the comparison needs first, so an interrupted run is still useful
DIGITS = 6


@dataclass(frozen=True)
class Job:
    id: str
    group: str
    gain: float
    direct_score: float
    think_score: float
    answer_direct: str
    answer_think: str
    reasoning: str
    reasoning_tokens: int
    example: Example


def group_of(stratum: int) -> str:
    return GROUPS[int(stratum)]


def make_jobs(ts: TrainingSet, pairs: Sequence[Any], examples: dict[str, Example]) -> list[Job]:
    """One job per paired example, WIN first, then LOSE, then TIE (table order inside a group)."""
    by_id = {p.id: p for p in pairs}
    jobs = []
    for i, ex_id in enumerate(ts.ids):
        pair = by_id[ex_id]
        jobs.append(Job(ex_id, group_of(ts.strata[i]), float(ts.gain[i]), float(ts.direct[i]), float(ts.think[i]),
                        pair.direct.answer, pair.think.answer, pair.think.reasoning or "",
                        int(pair.think.reasoning_tokens), examples[ex_id]))
    return sorted(jobs, key=lambda j: ORDER.index(j.group))


def _parse(d: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(d, dict) or not isinstance(d.get("id"), str):
        raise ValueError("not an object with an id")
    return d


def read_results(path: str | Path) -> list[dict[str, Any]]:
    """Per-prompt records of one file; for a repeated id the last line wins."""
    return list({r["id"]: r for r in read_table(path, _parse, "a per-prompt attention record")}.values())


def results_file(out_dir: str | Path, shard: tuple[int, int] | None = None) -> Path:
    """`per_prompt.jsonl`, or one file per shard so that parallel workers never write to the same file."""
    name = "per_prompt.jsonl" if shard is None else f"per_prompt.shard-{shard[0]}-of-{shard[1]}.jsonl"
    return Path(out_dir) / name


def read_all_results(out_dir: str | Path) -> list[dict[str, Any]]:
    """The records of every `per_prompt*.jsonl` in `out_dir` (shards included), one per id."""
    merged: dict[str, dict[str, Any]] = {}
    for path in sorted(Path(out_dir).glob("per_prompt*.jsonl")):
        merged.update((r["id"], r) for r in read_results(path))
    return list(merged.values())


def _round(values: Iterable[float]) -> list[float]:
    return [round(float(v), DIGITS) for v in values]


def peak_rss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(rss / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


AlphaOf = Callable[[TeacherForced], dict[str, np.ndarray]]


def measure_job(job: Job, tokenizer: Any, alpha_of: AlphaOf,
                max_answer_tokens: int | None) -> dict[str, Any]:
    """The record for one prompt: both runs' beta per layer and trace, or why the prompt is left out."""
    base = {"id": job.id, "group": job.group, "gain": job.gain, "direct_score": job.direct_score,
            "think_score": job.think_score, "reasoning_tokens": job.reasoning_tokens}
    messages = list(job.example.messages)
    spans = constraint_spans(message_text(messages[last_user_index(messages)].get("content")))
    if not spans:
        return {**base, "skipped": "no constraint span"}
    try:
        runs = {"base": build_sequence(tokenizer, messages, spans, job.answer_direct,
                                       max_answer_tokens=max_answer_tokens),
                "cot": build_sequence(tokenizer, messages, spans, job.answer_think, job.reasoning,
                                      max_answer_tokens=max_answer_tokens)}
    except TemplateError as exc:
        return {**base, "skipped": str(exc)}
    if any(seq.answer_len == 0 for seq in runs.values()):
        return {**base, "skipped": "empty answer"}
    started = time.perf_counter()
    record: dict[str, Any] = {**base, "constraint_tokens": len(runs["base"].constraint_idx),
                              "control_tokens": len(runs["base"].control_idx)}
    for name, seq in runs.items():
        alphas = alpha_of(seq)
        a = alphas["constraint"]
        record[name] = {"beta": _round(beta(a, seq.think_len)), "trace": _round(trace(a)),
                        "answer_start": seq.think_len, "answer_tokens": seq.answer_len, "tokens": len(seq.ids)}
        if "control" in alphas:
            record[name]["beta_control"] = _round(beta(alphas["control"], seq.think_len))
    record["seconds"] = round(time.perf_counter() - started, 3)
    record["peak_rss_mb"] = peak_rss_mb()
    return record


def run(jobs: Sequence[Job], out_path: str | Path, tokenizer: Any, alpha_of: AlphaOf,
        *, max_answer_tokens: int | None, progress: bool = True) -> int:
    """Measure every job without an error-free record in `out_path`'s folder, appending to `out_path`; return
    how many were attempted. A prompt that fails is recorded with its error and retried by the next run."""
    out_path = prepare_table(out_path)
    done = {r["id"] for r in read_all_results(out_path.parent) if "error" not in r}
    todo = [j for j in jobs if j.id not in done]
    bar = progress_bar(len(todo), progress, "attention")
    try:
        with out_path.open("a", encoding="utf-8") as out:
            for job in todo:
                try:
                    record = measure_job(job, tokenizer, alpha_of, max_answer_tokens)
                except Exception as exc:  # noqa: BLE001 - recorded (and retried by the next run), never lost
                    record = {"id": job.id, "group": job.group, "error": f"{type(exc).__name__}: {exc}"}
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
                out.flush()
                bar.update(1)
    finally:
        bar.close()
    return len(todo)
