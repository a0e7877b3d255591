"""`thinkgate score`: score a file of responses against a dataset.

    thinkgate score --dataset ifeval --data input_data.jsonl --responses responses.jsonl [--json]

The responses file uses IFEval's format, one `{"prompt": ..., "response": ...}` per line, joined to the
dataset's examples by prompt text. Lines whose prompt is not in the dataset are reported on stderr and
ignored. Errors print a one-line message on stderr and return exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TextIO

SUPPORTED = ("ifeval",)


class CliError(Exception):
    """A user-facing error: printed without a traceback, exit code 2."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="thinkgate score", description="Score model responses against a dataset.")
    p.add_argument("--dataset", default="ifeval", help="dataset name (supported: %(default)s)")
    p.add_argument("--data", help="local dataset file (default: the public copy, needs internet)")
    p.add_argument("--responses", required=True, help="JSONL of {prompt, response} lines")
    p.add_argument("--json", action="store_true", help="print the scores as one JSON object")
    return p


def read_responses(path: str | Path) -> list[tuple[int, str, str]]:
    """(line number, prompt, response) for each non-blank line; malformed lines raise `CliError`."""
    out = []
    try:
        f = open(path, encoding="utf-8")
    except OSError as e:
        raise CliError(f"cannot read responses file {path}: {e.strerror or e}") from None
    with f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise CliError(f"{path}:{lineno}: invalid JSON ({e.msg})") from None
            if not isinstance(row, dict) or not isinstance(row.get("prompt"), str):
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
    if unmatched:
        print(f"warning: {len(unmatched)} response line(s) match no prompt in the dataset and were skipped "
              f"(lines {_lines(unmatched)})", file=err)
    if len(seen) < len(by_prompt):
        print(f"warning: {len(by_prompt) - len(seen)} of {len(by_prompt)} dataset prompt(s) have no response "
              "and were not scored", file=err)
    if not scored:
        raise CliError(f"no response in {responses} matches a prompt of the dataset")
    return aggregate(scored)


def _table(res: dict[str, float]) -> str:
    return "\n".join([
        f"IFEval, {res['n']} prompts",
        f"{'':<18}{'strict':>8}{'loose':>8}",
        f"{'prompt-level':<18}{res['prompt_level_strict']:>8.2f}{res['prompt_level_loose']:>8.2f}",
        f"{'instruction-level':<18}{res['inst_level_strict']:>8.2f}{res['inst_level_loose']:>8.2f}",
    ])


def main(argv: list[str] | None = None) -> int:
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
        res = score_ifeval(args.data, args.responses, err)
    except (CliError, KeyError, ValueError, OSError, ImportError, RuntimeError) as e:
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
