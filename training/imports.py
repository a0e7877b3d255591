"""Outcomes produced elsewhere: read answer files, join them to a dataset's examples, build outcome records.

Three source formats, detected per line (`detect_format`):

* `ifeval`: IFEval's response format, `{"prompt": ..., "response": ...}` (no key: joined on the prompt text);
* `lm-eval`: lm-evaluation-harness `--log_samples` output of its `ifeval` task (`samples_ifeval_*.jsonl`:
  `{"doc_id", "doc": {"key", "prompt", ...}, "resps": [[...]], "filtered_resps": [...], ...}`), joined on
  `doc.key`;
* `jsonl`: `{"id" | "key", "response"}` (`id` like `ifeval:1000`, or the bare key), optionally with token
  counts (`prompt_tokens`, `completion_tokens`, `reasoning_tokens`, or an OpenAI `usage` object).

Join rule (`Joiner`): a key joins exactly; a prompt joins when its text equals an example's prompt (after
trimming surrounding whitespace); otherwise it *near-matches* the most similar prompt when the similarity
(difflib's ratio) is at least `near_match` (default 0.9) and the runner-up is at least `NEAR_MARGIN` lower.
Every near match is reported with its similarity; rows that join nothing are reported by line and text.
IFEval's key 2785 (Shinto shrines) has older wording in some response files ("at least one placeholder" vs
"at least 3 placeholders"): similarity 0.99, runner-up 0.41, so it near-matches and is scored against the
dataset's own (current) constraints.

A `null` or empty response is a failed answer: it is kept and scored (every instruction fails), and counted.
Token counts are taken from the source when it has them, else left unknown (`None`), never estimated here.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from .datasets import _read_jsonl
from .records import Example

FORMATS = ("ifeval", "lm-eval", "jsonl")
DEFAULT_NEAR_MATCH = 0.9
NEAR_MARGIN = 0.1


class SourceError(ValueError):
    """A source file that cannot be imported (unreadable, not JSON, unknown shape). Names the file and line."""


@dataclass(frozen=True)
class SourceRow:
    """One answer read from a source file."""

    line: int
    response: str | None
    key: str | None = None  # the example's key (without the dataset prefix)
    prompt: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    reasoning_tokens: int | None = None

    @property
    def failed(self) -> bool:
        return self.response is None or not self.response.strip()


def detect_format(obj: Mapping[str, Any]) -> str:
    if "doc" in obj and ("filtered_resps" in obj or "resps" in obj):
        return "lm-eval"
    if "response" in obj and ("id" in obj or "key" in obj):
        return "jsonl"
    if "response" in obj and "prompt" in obj:
        return "ifeval"
    raise ValueError("not a known answer format (expected {prompt, response}, {id|key, response} "
                     "or an lm-eval --log_samples record)")


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _text_or_none(value: Any, where: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise SourceError(f"{where}: 'response' must be a string or null, got {type(value).__name__}")


def _lm_eval_response(obj: Mapping[str, Any], where: str) -> str | None:
    """The filtered answer (what lm-eval scored); `filtered_resps` is `[answer]`, `resps` is `[[answer]]`."""
    value: Any = obj.get("filtered_resps", obj.get("resps"))
    while isinstance(value, list):
        value = value[0] if value else None
    return _text_or_none(value, where)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _key(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text.split(":", 1)[1] if ":" in text else text


def parse_row(obj: Mapping[str, Any], line: int, fmt: str, where: str) -> SourceRow:
    if fmt == "lm-eval":
        doc = obj.get("doc")
        if not isinstance(doc, Mapping):
            raise SourceError(f"{where}: lm-eval record without a 'doc' object")
        return SourceRow(line, _lm_eval_response(obj, where), key=_key(doc.get("key")), prompt=doc.get("prompt"))
    response = _text_or_none(obj.get("response"), where)
    if fmt == "ifeval":
        prompt = obj.get("prompt")
        if not isinstance(prompt, str):
            raise SourceError(f"{where}: 'prompt' must be a string")
        return SourceRow(line, response, prompt=prompt)
    usage = _mapping(obj.get("usage"))
    details = _mapping(usage.get("completion_tokens_details"))
    return SourceRow(
        line, response, key=_key(obj.get("id", obj.get("key"))), prompt=obj.get("prompt"),
        prompt_tokens=_int_or_none(obj.get("prompt_tokens", usage.get("prompt_tokens"))),
        completion_tokens=_int_or_none(obj.get("completion_tokens", usage.get("completion_tokens"))),
        reasoning_tokens=_int_or_none(obj.get("reasoning_tokens", details.get("reasoning_tokens"))),
    )


def read_source(path: str | Path, fmt: str = "auto") -> tuple[str, list[SourceRow]]:
    """(format, rows) of one answer file; `fmt="auto"` detects the format from the first record."""
    path = Path(path)
    if fmt != "auto" and fmt not in FORMATS:
        raise SourceError(f"unknown format {fmt!r}; choose auto or one of {', '.join(FORMATS)}")
    rows: list[SourceRow] = []
    for lineno, obj in _read_jsonl(path):  # a DatasetError names the file and line of bad JSON
        where = f"{path}:{lineno}"
        if fmt == "auto":
            try:
                fmt = detect_format(obj)
            except ValueError as exc:
                raise SourceError(f"{where}: {exc}") from None
        rows.append(parse_row(obj, lineno, fmt, where))
    if not rows:
        raise SourceError(f"{path}: no records")
    return fmt, rows


@dataclass(frozen=True)
class NearMatch:
    line: int
    id: str
    similarity: float
    runner_up: float
    text: str


@dataclass
class JoinReport:
    """How one source's rows joined: counts per rule, near matches, unmatched and duplicate rows."""

    by_key: int = 0
    by_prompt: int = 0
    near: list[NearMatch] = field(default_factory=list)
    unmatched: list[tuple[int, str]] = field(default_factory=list)  # (line, text)
    duplicates: list[tuple[int, str]] = field(default_factory=list)  # (line, id): later rows for a joined id
    failed: list[str] = field(default_factory=list)  # ids whose answer is null or empty

    def to_json(self) -> dict[str, Any]:
        return {"by_key": self.by_key, "by_prompt": self.by_prompt,
                "near_matches": [n.__dict__ for n in self.near],
                "unmatched": [{"line": ln, "text": t} for ln, t in self.unmatched],
                "duplicates": [{"line": ln, "id": i} for ln, i in self.duplicates],
                "failed_answers": {"count": len(self.failed), "ids": self.failed}}


class Joiner:
    """Joins source rows to a dataset's examples by key, exact prompt, or a reported near match."""

    def __init__(self, examples: Sequence[Example], near_match: float = DEFAULT_NEAR_MATCH) -> None:
        if not 0.0 < near_match <= 1.0:
            raise ValueError(f"near-match threshold must be in (0, 1], got {near_match}")
        self.near_match = near_match
        self.by_key = {e.id.split(":", 1)[1]: e for e in examples}
        self.by_prompt = {e.prompt.strip(): e for e in examples}

    def _nearest(self, text: str) -> tuple[Example | None, float, float]:
        scored = []
        for prompt, example in self.by_prompt.items():
            matcher = difflib.SequenceMatcher(None, text, prompt, autojunk=False)
            floor = self.near_match - NEAR_MARGIN  # cheap upper bounds first: most prompts are far off
            if matcher.real_quick_ratio() >= floor and matcher.quick_ratio() >= floor:
                scored.append((matcher.ratio(), example))
        scored.sort(key=lambda s: -s[0])
        best = scored[0] if scored else (0.0, None)
        runner_up = scored[1][0] if len(scored) > 1 else 0.0
        return best[1], best[0], runner_up

    def join(self, rows: Sequence[SourceRow]) -> tuple[dict[str, SourceRow], JoinReport]:
        joined: dict[str, SourceRow] = {}
        report = JoinReport()
        for row in rows:
            example, rule = self._match(row, report)
            if example is None:
                continue
            if example.id in joined:
                report.duplicates.append((row.line, example.id))
                continue
            if rule == "key":
                report.by_key += 1
            elif rule == "prompt":
                report.by_prompt += 1
            joined[example.id] = row
            if row.failed:
                report.failed.append(example.id)
        return joined, report

    def _match(self, row: SourceRow, report: JoinReport) -> tuple[Example | None, str]:
        if row.key is not None:
            if row.key in self.by_key:
                return self.by_key[row.key], "key"
            report.unmatched.append((row.line, f"key {row.key}"))
            return None, ""
        text = (row.prompt or "").strip()
        if text in self.by_prompt:
            return self.by_prompt[text], "prompt"
        example, similarity, runner_up = self._nearest(text) if text else (None, 0.0, 0.0)
        if example is not None and similarity >= self.near_match and similarity - runner_up >= NEAR_MARGIN:
            report.near.append(NearMatch(row.line, example.id, round(similarity, 4), round(runner_up, 4),
                                         text[:160]))
            return example, "near"
        report.unmatched.append((row.line, text[:160]))
        return None, ""


def iter_pairs(examples: Sequence[Example], direct: Mapping[str, SourceRow],
               think: Mapping[str, SourceRow]) -> Iterator[tuple[Example, SourceRow, SourceRow]]:
    """Examples answered in both sources, in dataset order."""
    for example in examples:
        if example.id in direct and example.id in think:
            yield example, direct[example.id], think[example.id]
