"""What a ComplexBench scoring pass will cost before paying for it: judge calls and prompt tokens.

Builds every judge prompt the scorer would send (the same templates and truncation) and counts tokens
with tiktoken's `cl100k_base` (GPT-4's encoding; litellm ships the file, so no download), or characters
when tiktoken is missing. The call count is an upper bound: questions whose dependency fails are never
asked. Replies already in the cache cost nothing. With the instructions-only file (no scoring questions),
each instruction counts as the paper's average of 5,306 / 1,150 questions, asked with the yes/no template
and an empty question (the question texts are missing from that count).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any, Callable, Sequence

from .judge_cache import JudgeCache
from .records import Example
from .scoring.complexbench import extraction_messages, fixed_verdict, judge_messages

PAPER_QUESTIONS_PER_INSTRUCTION = 5306 / 1150


def token_counter() -> tuple[Callable[[str], int], str]:
    """(count, unit): cl100k_base tokens when tiktoken and its bundled file are there, else characters."""
    spec = importlib.util.find_spec("litellm")
    if spec and spec.submodule_search_locations and "TIKTOKEN_CACHE_DIR" not in os.environ:
        bundled = Path(list(spec.submodule_search_locations)[0]) / "litellm_core_utils" / "tokenizers"
        if bundled.is_dir():
            os.environ["TIKTOKEN_CACHE_DIR"] = str(bundled)
    try:
        import tiktoken

        enc = tiktoken.get_encoding("cl100k_base")
    except Exception:  # not installed, or the encoding file is not available offline
        return len, "characters"
    return (lambda text: len(enc.encode(text, disallowed_special=()))), "tokens"


def estimate(pairs: Sequence[tuple[Example, str]], *, extraction: str = "judge",
             cache: JudgeCache | None = None) -> dict[str, Any]:
    count, unit = token_counter()
    calls = cached = program = 0
    prompt = 0.0
    averaged = 0
    for example, response in pairs:
        questions = example.meta.get("scoring_questions") or []
        if not questions:  # instructions only: the paper's average number of questions
            averaged += 1
            text = judge_messages(example.prompt, response, "")[0]["content"]
            calls_here = PAPER_QUESTIONS_PER_INSTRUCTION
            calls += calls_here
            prompt += calls_here * count(text)
            continue
        for q in questions:
            if q.get("rule") and (extraction == "whole" or extraction == "judge"
                                  and fixed_verdict(q["rule"], response) is not None):
                program += 1
                continue
            messages = (extraction_messages(example.prompt, response, q["question"], q["rule"]) if q.get("rule")
                        else judge_messages(example.prompt, response, q["question"]))
            if cache is not None and cache.get(messages) is not None:
                cached += 1
                continue
            calls += 1
            prompt += count(messages[0]["content"])
    return {"instructions": len(pairs), "judge_calls_at_most": round(calls), "cached": cached,
            "program_only": program, "prompt_units": round(prompt), "unit": unit,
            "questions_averaged_for": averaged}
