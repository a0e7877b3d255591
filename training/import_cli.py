"""`thinkgate import`: build an outcome table from answers produced elsewhere, without calling any model.

    thinkgate import --data ifeval/input_data.jsonl \
      --direct gpt-4o-mini.jsonl --direct-model gpt-4o-mini \
      --think o1-mini.jsonl --think-model o1-mini --out table.jsonl

The direct and the think answers may come from two models (a model pair) or one model in two modes. Each
answer is re-scored with the project's IFEval scorer. Next to the table, `TABLE.meta.json` records both
model names, the source files' sha256, how every row joined (see `training.imports`), the failed (null or
empty) answers and the command. The join report is printed; rows that join nothing are listed by line.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import shlex
import sys
from pathlib import Path
from typing import Any, Sequence

from .imports import DEFAULT_NEAR_MATCH, FORMATS, JoinReport, SourceError, SourceRow, iter_pairs
from .records import Example, Mode, Outcome


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="thinkgate import", description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="ifeval", help="dataset the answers belong to (supported: ifeval)")
    p.add_argument("--data", required=True, help="dataset file (e.g. ../shared/data/ifeval/input_data.jsonl)")
    p.add_argument("--direct", required=True, help="answers without thinking (file)")
    p.add_argument("--think", required=True, help="answers with thinking / of the reasoning model (file)")
    p.add_argument("--direct-model", required=True, help="name of the model that wrote --direct")
    p.add_argument("--think-model", required=True, help="name of the model that wrote --think")
    p.add_argument("--format", default="auto", choices=["auto", *FORMATS], help="source format (default: detect)")
    p.add_argument("--profile", help="profile recorded in the table (default: model-pair for two models, "
                                     "else imported)")
    p.add_argument("--near-match", type=float, default=DEFAULT_NEAR_MATCH,
                   help="similarity a prompt needs to join an example whose text differs (default 0.9)")
    p.add_argument("--out", required=True, help="outcome table to write (JSONL)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing table")
    return p


def sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def outcome(example: Example, mode: Mode, row: SourceRow, model: str, profile: str, scores: dict[str, Any],
            version: str) -> Outcome:
    return Outcome(id=example.id, mode=mode, model=model, profile=profile, answer=row.response or "",
                   reasoning=None, scores=scores, prompt_tokens=row.prompt_tokens,
                   completion_tokens=row.completion_tokens, reasoning_tokens=row.reasoning_tokens,
                   latency_s=None, dataset_version=version)


def _describe(mode: str, path: str, fmt: str, n_rows: int, report: JoinReport) -> list[str]:
    lines = [f"{mode}: {path} ({fmt}, {n_rows} rows): joined {report.by_key} by key, {report.by_prompt} by "
             f"prompt, {len(report.near)} by near match; {len(report.unmatched)} unmatched, "
             f"{len(report.duplicates)} duplicate; failed answers (null or empty): {len(report.failed)}"]
    lines += [f"  near match: line {n.line} -> {n.id} (similarity {n.similarity:.3f}, runner-up "
              f"{n.runner_up:.3f}): {n.text[:90]!r}" for n in report.near]
    lines += [f"  unmatched: line {ln}: {text[:100]!r}" for ln, text in report.unmatched]
    lines += [f"  duplicate: line {ln} ({i} already joined; kept the first)" for ln, i in report.duplicates]
    return lines


def run(args: argparse.Namespace, command: str | None) -> tuple[dict[str, Any], list[str]]:
    from .datasets import load
    from .imports import Joiner, read_source
    from .scoring.ifeval import ensure_punkt_tab, score_example

    if args.dataset != "ifeval":
        raise ValueError(f"importing is supported for ifeval only (got {args.dataset!r})")
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise ValueError(f"{out} exists; pass --overwrite to replace it")
    loaded = load(args.dataset, args.data)
    joiner = Joiner(loaded.examples, args.near_match)
    sources: dict[str, dict[str, Any]] = {}
    joined: dict[str, dict[str, SourceRow]] = {}
    lines: list[str] = []
    for mode, path, model in (("direct", args.direct, args.direct_model), ("think", args.think, args.think_model)):
        fmt, rows = read_source(path, args.format)
        joined[mode], report = joiner.join(rows)
        lines += _describe(mode, path, fmt, len(rows), report)
        tokens = "from source" if any(r.completion_tokens is not None for r in rows) else "unknown"
        sources[mode] = {"model": model, "file": str(path), "sha256": sha256(path), "format": fmt, "rows": len(rows),
                         "tokens": tokens, "join": report.to_json()}
    ensure_punkt_tab()
    profile = args.profile or ("model-pair" if args.direct_model != args.think_model else "imported")
    records = []
    for example, direct, think in iter_pairs(loaded.examples, joined["direct"], joined["think"]):
        for mode, row, model in (("direct", direct, args.direct_model), ("think", think, args.think_model)):
            records.append(outcome(example, mode, row, model, profile, score_example(example, row.response or ""),
                                   loaded.version))
    missing = {mode: [e.id for e in loaded.examples if e.id not in joined[mode]] for mode in joined}
    for mode, ids in missing.items():
        if ids:
            lines.append(f"examples without a {mode} answer (left out of the table): {len(ids)} "
                         f"({', '.join(ids[:10])}{', ...' if len(ids) > 10 else ''})")
    if not records:
        raise ValueError("no example has an answer in both sources; nothing to write")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(r.to_json(), ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    meta = {"dataset": {"name": args.dataset, "file": str(args.data), "version": loaded.version,
                        "examples": len(loaded.examples)},
            "examples_in_table": len(records) // 2, "profile": profile, "near_match_threshold": args.near_match,
            "sources": sources, "missing": missing, "command": command,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    meta_path(out).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    lines.append(f"wrote {len(records)} outcomes ({len(records) // 2} examples, both modes) to {out} "
                 f"and {meta_path(out)}")
    return meta, lines


def meta_path(table: str | Path) -> Path:
    table = Path(table)
    return table.with_name(table.name.removesuffix(".jsonl") + ".meta.json")


def main(argv: Sequence[str] | None = None) -> int:
    from .datasets import DatasetError
    from .scoring.ifeval import MissingNLTKDataError

    raw = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(raw)
    command = shlex.join(["thinkgate", "import", *raw])
    try:
        _, lines = run(args, command)
    except (SourceError, DatasetError, ValueError, OSError, MissingNLTKDataError) as exc:
        print(f"thinkgate import: {exc}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0
