"""IFEval scoring with lm-eval's checkers (`lm_eval.tasks.ifeval`), strict and loose, made deterministic.

The checkers and the strict/loose protocol are lm-eval's (which reproduce Google's reference code); this
module only drives them. lm-eval and NLTK are imported on the first scoring call, not at import time.

Determinism. Two sources of randomness in the reference code are pinned:

* A checker's `build_description` draws values at random for any argument it is not given. In IFEval's
  data this happens for exactly two instructions, `keywords:letter_frequency` of keys 1122 (letter "#")
  and 1129 (letter "!"): the letter is not in a-z, so the checker draws a random ASCII letter. We seed
  Python's global `random` module with the prompt text (`random.seed(prompt)`, a str seed, hashed with
  SHA-512 by CPython, so independent of PYTHONHASHSEED) just before each `build_description` call and
  restore the previous global state right after. Each prompt therefore always gets the same letter
  (key 1122 -> "j", key 1129 -> "t"), the same one in the strict and in the loose pass.
  The published GPT-4 numbers came from one unseeded run in which strict and loose drew separately; with
  this pin the strict numbers match them exactly and the loose ones are one instruction / one prompt higher.
* `langdetect` (used by the language and all-caps/lowercase checks) is randomised unless
  `langdetect.DetectorFactory.seed` is set; we set it to 0 if nobody has set it.

kwargs that are None are dropped before `build_description` (the HF copy of IFEval pads kwargs with nulls).
"""

from __future__ import annotations

import difflib
import os
import random
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from training.records import Constraint, Example

METRICS = ("prompt_level_strict", "inst_level_strict", "prompt_level_loose", "inst_level_loose")
PUNKT_HINT = (
    "With internet: python -c \"import nltk; nltk.download('punkt_tab')\". "
    "Offline: set NLTK_DATA to a folder that contains tokenizers/punkt_tab/english."
)

_registry: ModuleType | None = None
_import_lock = threading.Lock()
_random_lock = threading.Lock()


class MissingNLTKDataError(RuntimeError):
    """NLTK's `punkt_tab` sentence-tokenizer data (needed by several IFEval checkers) is not installed."""


class UnknownInstructionError(KeyError):
    """An instruction id that lm-eval's IFEval registry does not know. The message lists close matches."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


# -------------------------------------------------------------------------------------------- NLTK data


def find_nltk_data(candidates: Iterable[str | os.PathLike[str]]) -> Path | None:
    """The first candidate directory that holds `tokenizers/punkt_tab/english`, else None."""
    for c in candidates:
        if c and (Path(c) / "tokenizers" / "punkt_tab" / "english").is_dir():
            return Path(c)
    return None


def default_nltk_candidates() -> list[Path]:
    """`$NLTK_DATA` entries if set; otherwise the project's shared `nltk_data` copy, if it exists."""
    env = os.environ.get("NLTK_DATA")
    if env:
        return [Path(p) for p in env.split(os.pathsep) if p]
    from training.datasets import shared_data_dir

    shared = shared_data_dir() / "nltk_data"
    return [shared] if shared.is_dir() else []


def ensure_punkt_tab(candidates: Iterable[str | os.PathLike[str]] | None = None) -> Path | None:
    """Make NLTK able to load `punkt_tab` without network; return the directory used (None: NLTK's own).

    Looks in `candidates` (default: `default_nltk_candidates()`), then in NLTK's default locations (where
    `nltk.download` puts it). Raises `MissingNLTKDataError` with instructions when it is nowhere.
    This must run before lm-eval's ifeval module is imported: that import calls `nltk.download` otherwise.
    """
    cands = list(default_nltk_candidates() if candidates is None else candidates)
    found = find_nltk_data(cands)
    import nltk

    if found is not None:
        if str(found) not in nltk.data.path:
            nltk.data.path.insert(0, str(found))
        return found
    try:
        nltk.data.find("tokenizers/punkt_tab/english/")
    except LookupError:
        searched = ", ".join(str(c) for c in cands) or "(no extra directories)"
        raise MissingNLTKDataError(
            f"NLTK's 'punkt_tab' data was not found (searched {searched} and NLTK's default paths). {PUNKT_HINT}"
        ) from None
    return None


# ----------------------------------------------------------------------------------------- lm-eval glue


def _lm_eval_registry() -> ModuleType:
    """Import lm-eval's IFEval instruction registry once (heavy: a few seconds)."""
    global _registry
    if _registry is None:
        with _import_lock:
            if _registry is None:
                ensure_punkt_tab()
                try:
                    import langdetect
                    from lm_eval.tasks.ifeval import instructions_registry
                except ImportError as e:
                    raise ImportError(
                        f"IFEval scoring needs the 'eval' extra (lm-eval, nltk, langdetect, immutabledict): {e}"
                    ) from e
                if langdetect.DetectorFactory.seed is None:
                    langdetect.DetectorFactory.seed = 0
                _registry = instructions_registry
    return _registry


def _checker(instruction_id: str, kwargs: Mapping[str, Any], prompt: str) -> Any:
    """Build one lm-eval checker the way lm-eval does, with its random draws pinned to the prompt."""
    registry = _lm_eval_registry()
    try:
        cls = registry.INSTRUCTION_DICT[instruction_id]
    except KeyError:
        close = difflib.get_close_matches(instruction_id, registry.INSTRUCTION_DICT, n=3)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise UnknownInstructionError(f"unknown IFEval instruction {instruction_id!r}{hint}") from None
    checker = cls(instruction_id)
    clean = {k: v for k, v in kwargs.items() if v is not None}
    with _random_lock:
        state = random.getstate()
        try:
            random.seed(prompt)
            checker.build_description(**clean)
            args = checker.get_instruction_args()
            if args and "prompt" in args:
                checker.build_description(prompt=prompt)
        finally:
            random.setstate(state)
    return checker


def loose_variants(response: str) -> list[str]:
    """IFEval's loose protocol: the response, minus its first and/or last line, with and without '*'."""
    lines = response.split("\n")
    cut = [response, "\n".join(lines[1:]).strip(), "\n".join(lines[:-1]).strip(), "\n".join(lines[1:-1]).strip()]
    return [cut[0], cut[0].replace("*", ""), cut[1], cut[2], cut[3]] + [c.replace("*", "") for c in cut[1:]]


# ------------------------------------------------------------------------------------------------ scores


@dataclass(frozen=True)
class InstructionScores:
    """Per-instruction verdicts for one response, strict and loose, in constraint order."""

    instruction_ids: tuple[str, ...]
    strict: tuple[bool, ...]
    loose: tuple[bool, ...]

    @property
    def prompt_strict(self) -> bool:
        return all(self.strict)

    @property
    def prompt_loose(self) -> bool:
        return all(self.loose)

    def to_scores(self) -> dict[str, Any]:
        """The `Outcome.scores` dict: the four metrics for this one example, plus loose `per_instruction`."""
        n = len(self.instruction_ids)
        per: dict[str, int] = {}
        for iid, ok in zip(self.instruction_ids, self.loose):
            key, k = iid, 1
            while key in per:
                k += 1
                key = f"{iid}#{k}"
            per[key] = int(ok)
        return {
            "prompt_level_strict": float(self.prompt_strict),
            "inst_level_strict": sum(self.strict) / n,
            "prompt_level_loose": float(self.prompt_loose),
            "inst_level_loose": sum(self.loose) / n,
            "per_instruction": per,
        }


ConstraintLike = Constraint | Mapping[str, Any] | tuple[str, Mapping[str, Any]]


def _as_constraints(items: Example | Sequence[ConstraintLike]) -> list[Constraint]:
    if isinstance(items, Example):
        return list(items.constraints)
    out = []
    for c in items:
        if isinstance(c, Constraint):
            out.append(c)
        elif isinstance(c, Mapping):
            out.append(Constraint(c["id"], dict(c.get("kwargs") or {})))
        else:
            iid, kw = c
            out.append(Constraint(iid, dict(kw or {})))
    return out


def score_response(example_or_constraints: Example | Sequence[ConstraintLike], prompt: str | None,
                   response: str) -> InstructionScores:
    """Check `response` against IFEval constraints, strict and loose.

    `example_or_constraints` is an `Example` (its constraints are used, and its prompt when `prompt` is
    None) or a sequence of `Constraint`s / `{"id", "kwargs"}` dicts / `(id, kwargs)` pairs. `prompt` is
    the original prompt text (needed by `combination:repeat_prompt`-style checks and for the pinned draws).
    An empty or whitespace-only response fails everything, as in the reference code.
    """
    constraints = _as_constraints(example_or_constraints)
    if not constraints:
        raise ValueError("nothing to score: the example has no IFEval constraints")
    if prompt is None:
        if not isinstance(example_or_constraints, Example):
            raise ValueError("prompt is required when scoring bare constraints")
        prompt = example_or_constraints.prompt
    response = response or ""
    variants = [r for r in loose_variants(response) if r.strip()]
    strict, loose = [], []
    for c in constraints:
        checker = _checker(c.id, c.kwargs, prompt)
        strict.append(bool(response.strip()) and bool(checker.check_following(response)))
        loose.append(any(checker.check_following(r) for r in variants))
    return InstructionScores(tuple(c.id for c in constraints), tuple(strict), tuple(loose))


def score_example(example: Example, response: str) -> dict[str, Any]:
    """`Outcome.scores` for one IFEval example and its answer."""
    return score_response(example, None, response).to_scores()


def aggregate(items: Iterable[InstructionScores | Mapping[str, Any]]) -> dict[str, float]:
    """The four IFEval percentages (0-100, unrounded) and `n` (prompts), micro-averaged like the paper.

    Accepts `InstructionScores` or per-example `Outcome.scores` dicts (as made by `to_scores`).
    """
    n = n_inst = ps = pl = is_ = il = 0
    for it in items:
        if isinstance(it, InstructionScores):
            k = len(it.instruction_ids)
            s, l_ = sum(it.strict), sum(it.loose)
            p_s, p_l = it.prompt_strict, it.prompt_loose
        else:
            k = len(it["per_instruction"])
            s, l_ = round(it["inst_level_strict"] * k), round(it["inst_level_loose"] * k)
            p_s, p_l = bool(it["prompt_level_strict"]), bool(it["prompt_level_loose"])
        n += 1
        n_inst += k
        ps += p_s
        pl += p_l
        is_ += s
        il += l_
    if n == 0 or n_inst == 0:
        raise ValueError("nothing to aggregate: no scored examples")
    return {
        "n": n,
        "prompt_level_strict": 100 * ps / n,
        "inst_level_strict": 100 * is_ / n_inst,
        "prompt_level_loose": 100 * pl / n,
        "inst_level_loose": 100 * il / n_inst,
    }
