"""Recorded IFEval answers, gold-scored: the material the guard's verifier and its replay are measured on.

An `AnswerSet` is one model (or one mode of one model) answering the 541 IFEval prompts: GPT-4's reference
answers, the four OpenAI models in `ifeval-responses/` (joined to `input_data.jsonl` by prompt text; a null
response is a failed answer), and each mode of an outcome table (SmolLM2-135M's committed table). Every answer is
scored by the gold scorer (`training.scoring.ifeval`, lm-eval's checkers, loose per instruction); outcome
tables carry those scores already. Scoring all of it takes a few minutes, so scores are cached in a JSON file
keyed by a hash of (instructions, answer).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.datasets import load_examples, shared_data_dir
from training.jobs import progress_bar
from training.records import Example

RESPONSES = {
    "gpt-4o-mini": "input_response_data_gpt-4o-mini-2024-07-18.jsonl",
    "o1-mini": "input_response_data_o1-mini-2024-09-12.jsonl",
    "gpt-4o": "input_response_data_gpt-4o-2024-08-06.jsonl",
    "o1-preview": "input_response_data_o1-preview-2024-09-12.jsonl",
}
REFERENCE = "ifeval/reference/input_response_data_gpt4_20231107_145030.jsonl"
PAIRS = (("gpt-4o-mini", "o1-mini"), ("gpt-4o", "o1-preview"))
"""Strong model pairs: (direct model, reasoning model)."""
SMOLLM2_TABLE = Path(__file__).resolve().parents[1] / "training" / "outcome_tables" / "smollm2-135m-ifeval.jsonl"
SMOLLM2_ARTIFACT = Path(__file__).resolve().parents[1] / "classifiers" / "artifacts" / "smollm2-135m-ifeval"
REPORTS = Path(__file__).resolve().parent / "reports"
DEFAULT_KINDS_FILE = Path(__file__).resolve().parents[1] / "classifiers" / "artifacts" / "guard-kinds.json"
"""The acted-on kinds `thinkgate bench verifiers` chooses and the guard loads."""


@dataclass
class AnswerSet:
    """One source of answers: id -> answer (None: no answer) and id -> gold loose verdicts per instruction."""

    name: str
    answers: dict[str, str | None]
    gold: dict[str, list[bool]] = field(default_factory=dict)


def held_out_ids(artifact: Path = SMOLLM2_ARTIFACT) -> set[str]:
    """The decision model's held-out half (its metadata's `extra.held_out_ids`): every table is split the same way."""
    meta = json.loads((artifact / "metadata.json").read_text(encoding="utf-8"))
    return set(meta["extra"]["held_out_ids"])


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _by_prompt(path: Path, examples: dict[str, Example], name: str) -> dict[str, str | None]:
    ids = {ex.prompt: ex.id for ex in examples.values()}
    out: dict[str, str | None] = {}
    for row in _read_jsonl(path):
        eid = ids.get(row.get("prompt"))
        if eid is None:
            continue
        resp = row.get("response")
        out[eid] = resp if isinstance(resp, str) else None
    missing = len(examples) - len(out)
    if missing:
        print(f"{name}: {missing} prompts have no answer row (left out)", file=sys.stderr)
    return out


def load_answer_sets(data_dir: Path | None = None, table: Path = SMOLLM2_TABLE,
                     names: Iterable[str] | None = None) -> tuple[dict[str, Example], list[AnswerSet]]:
    """The IFEval examples and every answer set found (sources whose files are absent are skipped, with a note)."""
    data = Path(data_dir) if data_dir else shared_data_dir()
    examples = {ex.id: ex for ex in load_examples("ifeval", data / "ifeval" / "input_data.jsonl")}
    sets: list[AnswerSet] = []
    ref = data / REFERENCE
    if ref.exists():
        sets.append(AnswerSet("gpt-4", _by_prompt(ref, examples, "gpt-4")))
    for name, fname in RESPONSES.items():
        path = data / "ifeval-responses" / fname
        if path.exists():
            sets.append(AnswerSet(name, _by_prompt(path, examples, name)))
        else:
            print(f"{name}: {path} not found, skipped", file=sys.stderr)
    if table.exists():
        for mode in ("direct", "think"):
            s = AnswerSet(f"smollm2-135m/{mode}", {})
            for row in _read_jsonl(table):
                if row.get("mode") == mode and row["id"] in examples:
                    s.answers[row["id"]] = None if row.get("error") else row.get("answer")
                    per = (row.get("scores") or {}).get("per_instruction")
                    if per is not None and not row.get("error"):
                        s.gold[row["id"]] = [bool(v) for v in per.values()]
            sets.append(s)
    if names is not None:
        wanted = set(names)
        sets = [s for s in sets if s.name in wanted]
    return examples, sets


def _key(example: Example, answer: str) -> str:
    h = hashlib.sha256(json.dumps([example.id, [[c.id, c.kwargs] for c in example.constraints], answer],
                                  sort_keys=True).encode())
    return h.hexdigest()[:24]


def score_gold(examples: dict[str, Example], sets: list[AnswerSet], cache: Path | None, progress: bool = True) -> None:
    """Fill `gold` of every answer set with the gold scorer's loose verdicts (cached in `cache` if given)."""
    from training.scoring.ifeval import score_response

    known: dict[str, list[bool]] = {}
    if cache is not None and cache.exists():
        known = json.loads(cache.read_text(encoding="utf-8"))
    todo = [(s, eid, a) for s in sets for eid, a in s.answers.items() if eid not in s.gold]
    bar = progress_bar(len(todo), progress, "gold scoring")
    for s, eid, answer in todo:
        ex = examples[eid]
        if not answer:
            s.gold[eid] = [False] * len(ex.constraints)
        else:
            k = _key(ex, answer)
            if k not in known:
                known[k] = list(score_response(ex, None, answer).loose)
            s.gold[eid] = known[k]
        bar.update(1)
    bar.close()
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(known), encoding="utf-8")


def add_input_arguments(p: argparse.ArgumentParser) -> None:
    """The options every command over the answer sets shares: where the data, the table and the cache are."""
    p.add_argument("--data", type=Path, default=None, help="shared data folder (default: ../shared/data)")
    p.add_argument("--table", type=Path, default=SMOLLM2_TABLE,
                   help="outcome table with both modes (default: %(default)s)")
    p.add_argument("--cache", type=Path, default=Path(".cache/gold-scores.json"),
                   help="gold score cache (default: %(default)s)")
    p.add_argument("--no-progress", action="store_true")


def load_scored(args: argparse.Namespace, prog: str) -> tuple[dict[str, Example], list[AnswerSet], set[str]] | None:
    """Examples, gold-scored answer sets and the held-out ids, or None after saying on stderr what is missing."""
    try:
        examples, sets = load_answer_sets(args.data, args.table)
        held = held_out_ids()
    except (OSError, ValueError, KeyError) as e:
        print(f"{prog}: cannot load the answers: {e}", file=sys.stderr)
        return None
    score_gold(examples, sets, args.cache, progress=not args.no_progress)
    return examples, sets, held & set(examples)
