"""`thinkgate score`: score a file of responses against a dataset.

    thinkgate score --dataset ifeval --data input_data.jsonl --responses responses.jsonl [--json]
    thinkgate score --dataset complexbench --data data_final.json --responses generations.jsonl \
        [--judge openai/gpt-4-1106-preview | --judge MODEL --judge-base-url URL | --judge-config FILE] [--json]

IFEval responses use IFEval's format, one `{"prompt": ..., "response": ...}` per line, joined to the
dataset's examples by prompt text. ComplexBench responses use the official generation format,
`{"main_id", "model", "instruction", "generated"}`, joined by `main_id` (or `{prompt, response}` lines,
joined by prompt text); scoring them calls the judge route (see `training.judge`). Lines that match no
example are reported on stderr and ignored. Errors print a one-line message on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from .judge import add_judge_arguments

SUPPORTED = ("ifeval", "complexbench")


class CliError(Exception):
    """A user-facing error: printed without a traceback, exit code 2."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="thinkgate score", description="Score model responses against a dataset.")
    p.add_argument("--dataset", default="ifeval", help=f"dataset name ({', '.join(SUPPORTED)}; default %(default)s)")
    p.add_argument("--data", help="local dataset file (default: the public copy, needs internet)")
    p.add_argument("--responses", required=True,
                   help="JSONL of {prompt, response} lines (ComplexBench: also {main_id, generated})")
    p.add_argument("--lang", choices=["zh", "en"], default="zh",
                   help="ComplexBench: instruction and question language (default zh, the paper's)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--dry-run", action="store_true",
                   help="ComplexBench: count the judge calls and prompt tokens a run needs; call nothing")
    p.add_argument("--details", metavar="FILE",
                   help="ComplexBench: write every question's verdict, source and judge reply (JSONL)")
    p.add_argument("--json", action="store_true", help="print the scores as one JSON object")
    add_judge_arguments(p)
    return p


def read_responses(path: str | Path) -> list[tuple[int, str, str]]:
    """(line number, prompt, response) for each non-blank line; malformed lines raise `CliError`."""
    out = []
    for lineno, row in _read_jsonl_objects(path):
        if not isinstance(row.get("prompt"), str):
            raise CliError(f"{path}:{lineno}: expected an object with a string 'prompt'")
        response = row.get("response")
        if response is None:
            response = ""
        if not isinstance(response, str):
            raise CliError(f"{path}:{lineno}: 'response' must be a string")
        out.append((lineno, row["prompt"], response))
    return out


def _lines(numbers: list[int], limit: int = 10) -> str:
    shown = ", ".join(map(str, numbers[:limit]))
    return shown + (", ..." if len(numbers) > limit else "")


def _coverage(responses: str, unmatched: list[int], scored: int, total: int, unit: str, err: TextIO) -> None:
    """Warn about response lines that match nothing and dataset items left unscored; fail if nothing matched."""
    if unmatched:
        print(f"warning: {len(unmatched)} response line(s) match no {unit} in the dataset and were skipped "
              f"(lines {_lines(unmatched)})", file=err)
    if scored < total:
        print(f"warning: {total - scored} of {total} dataset {unit}(s) have no response and were not scored",
              file=err)
    if not scored:
        raise CliError(f"no response in {responses} matches a {unit} of the dataset")


def score_ifeval(data: str | None, responses: str, err: TextIO) -> dict[str, float]:
    from training.datasets import load_examples
    from training.scoring.ifeval import aggregate, score_response

    by_prompt = {ex.prompt: ex for ex in load_examples("ifeval", data)}
    scored, unmatched, seen = [], [], set()
    for lineno, prompt, response in read_responses(responses):
        ex = by_prompt.get(prompt)
        if ex is None:
            unmatched.append(lineno)
            continue
        if ex.id in seen:
            print(f"warning: {responses}:{lineno}: second response for {ex.id}; scoring it too", file=err)
        seen.add(ex.id)
        scored.append(score_response(ex, prompt, response))
    _coverage(responses, unmatched, len(seen), len(by_prompt), "prompt", err)
    return aggregate(scored)


def _read_jsonl_objects(path: str | Path) -> list[tuple[int, dict[str, Any]]]:
    from training.datasets import DatasetError, read_jsonl_objects

    if not Path(path).is_file():
        raise CliError(f"cannot read responses file {path}: not a file")
    try:
        return list(read_jsonl_objects(Path(path)))
    except DatasetError as e:
        raise CliError(str(e)) from None


def match_complexbench(examples: list[Any], responses: str, err: TextIO) -> list[tuple[Any, str]]:
    """(example, response) pairs: by `main_id` (official `generated` lines) or by prompt text."""
    by_id = {str(ex.meta["main_id"]): ex for ex in examples}
    by_prompt = {ex.prompt: ex for ex in examples}
    pairs, unmatched, changed, seen = [], [], [], set()
    for lineno, row in _read_jsonl_objects(responses):
        if "main_id" in row:
            ex = by_id.get(str(row["main_id"]))
            text = row.get("generated", row.get("response"))
            if ex is not None and isinstance(row.get("instruction"), str) and ex.meta.get("lang") == "zh" \
                    and row["instruction"].strip() != ex.prompt.strip():
                changed.append(lineno)
        elif isinstance(row.get("prompt"), str):
            ex, text = by_prompt.get(row["prompt"]), row.get("response")
        else:
            raise CliError(f"{responses}:{lineno}: expected 'main_id' and 'generated', or 'prompt' and 'response'")
        if text is not None and not isinstance(text, str):
            raise CliError(f"{responses}:{lineno}: the response must be a string")
        if ex is None:
            unmatched.append(lineno)
            continue
        if ex.id in seen:
            raise CliError(f"{responses}:{lineno}: a second response for {ex.id}")
        seen.add(ex.id)
        pairs.append((ex, text or ""))
    if changed:
        print(f"warning: {len(changed)} response line(s) carry an instruction text that differs from the dataset's "
              f"(lines {_lines(changed)}); were they generated from another version?", file=err)
    _coverage(responses, unmatched, len(seen), len(examples), "instruction", err)
    return pairs


def score_complexbench(args: argparse.Namespace, err: TextIO) -> dict[str, Any]:
    import asyncio

    from training.datasets import load_examples

    from .judge import Judging, judge_config
    from .scoring.complexbench import aggregate, score_all

    examples = load_examples("complexbench", args.data, lang=args.lang)
    if not args.dry_run and not any(ex.meta.get("scoring_questions") for ex in examples):
        raise CliError(f"{args.data or 'the dataset'} has no scoring questions: ComplexBench is scored with "
                       "data_final.json (see README, ComplexBench)")
    pairs = match_complexbench(examples, args.responses, err)
    cfg = judge_config(args)
    if args.dry_run:
        return _dry_run(cfg, pairs)

    async def run() -> dict[str, Any]:
        judging = Judging(cfg, progress=not args.no_progress)
        judging.start_progress(sum(len(ex.meta["scoring_questions"]) for ex, _ in pairs))
        try:
            results = await score_all(pairs, judging.client, concurrency=cfg.concurrency, options=judging.options,
                                      on_question=judging.meter.question)
        finally:
            await judging.aclose()
        if args.details:
            _write_details(args.details, results, judging.meter.model)
        out = aggregate(results)
        out["judge"] = judging.meter.summary()
        out["judge"]["extraction"] = cfg.extraction
        print(judging.meter.describe(), file=err)
        return out

    return asyncio.run(run())


def _write_details(path: str, results: list[Any], judge: str) -> None:
    """One JSON line per instruction: its DRFR and every question's route, source, verdicts and judge reply."""
    from dataclasses import asdict

    with open(path, "w", encoding="utf-8") as f:
        for r in results:
            row = {"id": r.id, "judge": judge, "drfr": r.drfr, **r.meta, "questions": [asdict(q) for q in r.questions]}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


COMPLETION_TOKENS_PER_CALL = 100  # an assumption for the estimate: a short analysis and the answer


def _dry_run(cfg: Any, pairs: list[tuple[Any, str]]) -> dict[str, Any]:
    from .judge import known_price
    from .judge_cache import JudgeCache
    from .judge_estimate import estimate

    route = cfg.route()
    cache = JudgeCache(cfg.cache, route.model) if Path(cfg.cache).is_file() else None
    try:
        out = estimate(pairs, extraction=cfg.extraction, cache=cache)
    finally:
        if cache is not None:
            cache.close()
    price = ((cfg.input_price_per_mtok / 1e6, cfg.output_price_per_mtok / 1e6)
             if cfg.input_price_per_mtok is not None and cfg.output_price_per_mtok is not None
             else known_price(route.model))
    out.update(dry_run=True, judge=route.model, assumed_completion_tokens_per_call=COMPLETION_TOKENS_PER_CALL)
    if price is not None and out["unit"] == "tokens":
        out["prompt_cost_usd"] = round(out["prompt_units"] * price[0], 2)
        out["completion_cost_usd"] = round(out["judge_calls_at_most"] * COMPLETION_TOKENS_PER_CALL * price[1], 2)
    return out


def _dry_run_table(res: dict[str, Any]) -> str:
    lines = [f"ComplexBench dry run, judge {res['judge']}: {res['instructions']} instructions, at most "
             f"{res['judge_calls_at_most']} judge calls ({res['cached']} already cached, {res['program_only']} "
             f"checked by program alone), {res['prompt_units']} prompt {res['unit']}"
             + (" (cl100k_base)" if res["unit"] == "tokens" else "")]
    if res["questions_averaged_for"]:
        lines.append(f"  no scoring questions for {res['questions_averaged_for']} instruction(s): counted at the "
                     "paper's 5,306 questions / 1,150 instructions, with the yes/no template")
    if "prompt_cost_usd" in res:
        lines.append(f"  prompt tokens cost ${res['prompt_cost_usd']:.2f}; completion tokens are known only after "
                     f"the run: at {res['assumed_completion_tokens_per_call']} a call they add "
                     f"${res['completion_cost_usd']:.2f}")
    else:
        lines.append("  price unknown for this judge: tokens only")
    return "\n".join(lines)


def _complexbench_table(res: dict[str, Any]) -> str:
    judge = res["judge"]
    lines = [f"ComplexBench, {res['n']} instructions, {res['n_questions']} scoring questions; judge {judge['model']}"
             + (" (rules checked on the whole response, not the official protocol)"
                if judge["extraction"] == "whole" else ""),
             f"{'overall DRFR':<34}{100 * res['overall_drfr']:>8.2f}"]
    for name, value in res["by_category_avg"].items():
        lines.append(f"{'  ' + name:<34}{100 * value:>8.2f}")
    if "coherent" in res:
        c = res["coherent"]
        lines.append(f"Selection groups ({c['groups']}): every instruction passes {100 * c['origin']:.2f}, "
                     f"every group passes {100 * c['coherent']:.2f}")
    return "\n".join(lines)


def _table(res: dict[str, float]) -> str:
    return "\n".join([
        f"IFEval, {res['n']} prompts",
        f"{'':<18}{'strict':>8}{'loose':>8}",
        f"{'prompt-level':<18}{res['prompt_level_strict']:>8.2f}{res['prompt_level_loose']:>8.2f}",
        f"{'instruction-level':<18}{res['inst_level_strict']:>8.2f}{res['inst_level_loose']:>8.2f}",
    ])


def main(argv: list[str] | None = None) -> int:
    from router.errors import ThinkgateError

    from .scoring.complexbench import JudgeAbort

    out, err = sys.stdout, sys.stderr
    try:
        args = _parser().parse_args(argv)
    except SystemExit as e:  # argparse already printed usage / help
        return int(e.code or 0)
    try:
        if args.dataset not in SUPPORTED:
            from training.datasets import get_loader

            get_loader(args.dataset)  # an unknown name gets the "did you mean" error
            raise CliError(f"scoring {args.dataset!r} from the command line is not supported "
                           f"(supported: {', '.join(SUPPORTED)})")
        if args.dataset == "complexbench":
            cb = score_complexbench(args, err)
            table = _dry_run_table if cb.get("dry_run") else _complexbench_table
            print(json.dumps(cb, ensure_ascii=False) if args.json else table(cb), file=out)
            return 0
        res = score_ifeval(args.data, args.responses, err)
    except KeyboardInterrupt:
        print("interrupted; judge verdicts so far are in the cache, so rerunning the command pays only for the "
              "rest", file=err)
        return 130
    except ThinkgateError as e:
        print(f"error: {e.message}", file=err)
        return 2
    except (CliError, KeyError, ValueError, OSError, ImportError, RuntimeError, JudgeAbort) as e:
        print(f"error: {e}", file=err)
        return 2
    except Exception as e:  # never a traceback for the user
        print(f"error: unexpected {type(e).__name__}: {e}", file=err)
        return 2
    if args.json:
        keys = ("n", "prompt_level_strict", "inst_level_strict", "prompt_level_loose", "inst_level_loose")
        print(json.dumps({k: res[k] if k == "n" else round(res[k], 2) for k in keys}), file=out)
    else:
        print(_table(res), file=out)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
