"""`thinkgate analyze attention`: constraint attention with and without thinking, from an outcome table.

    thinkgate analyze attention --outcomes TABLE --data ifeval/input_data.jsonl --out DIR [--artifact DIR]

Teacher-forces each prompt's recorded answers through the local model (base: prompt -> answer; CoT: prompt ->
reasoning -> answer, as the `forced-cot` profile fed them), one forward pass per run with eager attention,
and measures how much the answer attends to the prompt's constraint tokens (spans from the constraint
detector). Resumable: DIR/per_prompt.jsonl gets one line per prompt; re-running finishes what is missing and
rewrites the report (DIR/README.md with figures).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path
from typing import Sequence

from .outcomes import HEADLINE


def _attention_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="thinkgate analyze attention", description=__doc__.split("\n\n")[0])
    p.add_argument("--outcomes", required=True, help="outcome table with both modes (from `thinkgate collect`)")
    p.add_argument("--dataset", default="ifeval")
    p.add_argument("--data", help="dataset file the table was collected on")
    p.add_argument("--out", required=True, help="directory for per_prompt.jsonl, the report and its figures")
    p.add_argument("--model", help="local model: GGUF file or Hugging Face directory (default: the embedded "
                   "SmolLM2-135M-Instruct)")
    p.add_argument("--dtype", default="float32", help="float32 (default) or bfloat16")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1: kinder to a shared machine)")
    p.add_argument("--cache-dir", help="converted-model cache (default ~/.cache/thinkgate/models)")
    p.add_argument("--max-answer-tokens", type=int, default=64,
                   help="measure the first N answer tokens of each run (0: all; default 64)")
    p.add_argument("--artifact", help="decision-model directory to compare AUCs with, on its held-out ids")
    p.add_argument("--limit", type=int, help="only the first N prompts (WIN, then LOSE, then TIE)")
    p.add_argument("--metric", default=HEADLINE, help=f"score behind WIN/LOSE/TIE (default {HEADLINE})")
    p.add_argument("--shard", help="K/N: measure only every N-th prompt starting at K (0-based), into its own file, "
                   "so N workers can share a run; the report reads every shard")
    p.add_argument("--no-progress", action="store_true")
    return p


def attention(argv: Sequence[str]) -> int:
    args = _attention_parser().parse_args(list(argv))
    from .attention import run as runner
    from .datasets import DatasetError, UnknownDatasetError, load_examples
    from .jobs import TableError
    from .labels import build_training_set
    from .outcomes import pair_outcomes, read_outcomes

    if args.max_answer_tokens < 0 or (args.limit is not None and args.limit < 1):
        print("thinkgate analyze: --max-answer-tokens must be >= 0 and --limit >= 1", file=sys.stderr)
        return 2
    try:
        pairs = pair_outcomes(read_outcomes(args.outcomes))
        if not pairs:
            raise ValueError(f"{args.outcomes}: no example has error-free outcomes in both modes")
        examples = {e.id: e for e in load_examples(args.dataset, args.data)}
        ts = build_training_set(pairs, examples, args.metric)
    except (OSError, ValueError, KeyError, TableError, DatasetError, UnknownDatasetError) as exc:
        print(f"thinkgate analyze: {exc}", file=sys.stderr)
        return 2
    jobs = runner.make_jobs(ts, pairs, examples)[: args.limit]
    try:
        shard = _shard(args.shard)
    except ValueError as exc:
        print(f"thinkgate analyze: {exc}", file=sys.stderr)
        return 2
    out_dir = Path(args.out)
    table = runner.results_file(out_dir, shard)
    try:
        done = {r["id"] for r in runner.read_all_results(out_dir)}
    except TableError as exc:
        print(f"thinkgate analyze: {exc}", file=sys.stderr)
        return 2
    todo = jobs if shard is None else jobs[shard[0]::shard[1]]
    if any(j.id not in done for j in todo):
        from .attention.forward import default_cache_dir, load, run_alpha
        from router.local_model.loader import ModelLoadError

        try:
            started = time.perf_counter()
            model, tokenizer = load(args.model, dtype=args.dtype, num_threads=args.threads,
                                    cache_dir=args.cache_dir or default_cache_dir())
        except ModelLoadError as exc:
            print(f"thinkgate analyze: {exc}", file=sys.stderr)
            return 2
        print(f"model loaded in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        try:
            runner.run(todo, table, tokenizer, lambda seq: run_alpha(model, seq),
                       max_answer_tokens=args.max_answer_tokens or None, progress=not args.no_progress)
        except KeyboardInterrupt:
            print("\ninterrupted; re-run the same command to finish the remaining prompts", file=sys.stderr)
            return 130
    from .attention.report import write_report

    wanted = {j.id for j in jobs}
    records = [r for r in runner.read_all_results(out_dir) if r["id"] in wanted]
    command = "thinkgate analyze attention " + " ".join(shlex.quote(a) for a in argv)
    table_rows = [{"reasoning_tokens": j.reasoning_tokens, "think_score": j.think_score, "gain": j.gain} for j in jobs]
    headline = write_report(records, out_dir, command=command, artifact=args.artifact, examples=examples,
                            max_answer_tokens=args.max_answer_tokens or None, table=table_rows)
    print(headline)
    return 0


def _shard(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    k, sep, n = text.partition("/")
    if not (sep and k.isdigit() and n.isdigit() and 0 <= int(k) < int(n)):
        raise ValueError(f"--shard {text!r}: expected K/N with 0 <= K < N, e.g. 0/2")
    return int(k), int(n)


SUBCOMMANDS = {"attention": attention}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in SUBCOMMANDS:
        print("usage: thinkgate analyze attention --outcomes TABLE --data FILE --out DIR  (see --help)",
              file=sys.stderr if argv and argv[0] not in ("-h", "--help") else sys.stdout)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    return SUBCOMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
