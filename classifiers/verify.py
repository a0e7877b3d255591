"""Check an answer against the constraints detected in its own prompt: the guard's verifier.

`verify(answer, detect_constraints(prompt))` returns a `Verification`: one `Verdict(kind, status, reason)` per
detected constraint, status "pass", "fail" or "cannot_tell", reason a short sentence ("312 words; the limit is
at most 300"). The checks themselves live in `_checks.py`, one per kind (`CHECKS`).

Why it looks like this:

* It runs on the request path after every answer, so it is cheap and bounded: pure Python, no heavy imports, an
  answer longer than `max_chars` is not read at all, and a time budget per answer turns the checks still to run
  into "cannot_tell" once it is spent. Every check is linear in the answer.
* "cannot_tell" never triggers work: unreadable parameters, kinds without a check, a check that raised, an
  exhausted budget all give it.
* Checks are loose in IFEval's sense: an answer passes if it, or it minus its first and/or last line, or any of
  those without '*', passes. A model's "Sure, here it is:" line then is not a failure, as it is not for the
  instruction-level loose accuracy the guard is judged by.
* This is not the evaluation scorer (IFEval's checkers, in `training.scoring`), which stays the judge: the
  guard's precision is measured against it (`benchmarks.verifiers`), never by itself.
"""

from __future__ import annotations

import difflib
import json
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

from ._checks import CANNOT_TELL, CHECKS, FAIL, PASS, Check
from .constraints import KINDS, DetectedConstraint

__all__ = ["CHECKS", "DEFAULT_BUDGET_S", "MAX_CHARS", "MEASURED_KINDS_FILE", "Verdict", "Verification", "check_for",
           "loose_variants", "measured_kinds", "verify", "PASS", "FAIL", "CANNOT_TELL"]

DEFAULT_BUDGET_S = 0.05
"""Seconds of CPU-bound checking allowed per answer; checks not started by then are "cannot_tell"."""
MAX_CHARS = 200_000
"""Answers longer than this are not checked (every verdict "cannot_tell")."""
MEASURED_KINDS_FILE = Path(__file__).resolve().parent / "artifacts" / "guard-kinds.json"
"""The kinds whose "fail" verdicts were precise on recorded answers (written by `thinkgate bench verifiers`)."""


@dataclass(frozen=True)
class Verdict:
    """The outcome of checking one detected constraint."""

    kind: str
    status: str  # "pass" | "fail" | "cannot_tell"
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "status": self.status, "reason": self.reason}


@dataclass(frozen=True)
class Verification:
    """All verdicts for one answer, with the counts the guard acts on (optionally restricted to some kinds)."""

    verdicts: tuple[Verdict, ...] = ()

    def _of(self, kinds: Collection[str] | None) -> list[Verdict]:
        return [v for v in self.verdicts if kinds is None or v.kind in kinds]

    def failures(self, kinds: Collection[str] | None = None) -> list[Verdict]:
        return [v for v in self._of(kinds) if v.status == FAIL]

    def passed(self, kinds: Collection[str] | None = None) -> int:
        return sum(1 for v in self._of(kinds) if v.status == PASS)

    def judged(self, kinds: Collection[str] | None = None) -> int:
        """How many checks gave a pass or a fail (not "cannot_tell")."""
        return sum(1 for v in self._of(kinds) if v.status != CANNOT_TELL)


def measured_kinds(path: str | Path | None = None) -> frozenset[str]:
    """The acted-on kinds of a kinds file (default: the shipped one); a ValueError says what is wrong with it."""
    path = Path(path) if path is not None else MEASURED_KINDS_FILE
    try:
        kinds = json.loads(path.read_text(encoding="utf-8"))["kinds"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"cannot read the guard's kinds from {path}: {e}") from None
    if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
        raise ValueError(f"{path}: 'kinds' must be a list of constraint kinds")
    unknown = sorted(set(kinds) - set(CHECKS))
    if unknown:
        raise ValueError(f"{path}: no check for {', '.join(unknown)}")
    return frozenset(kinds)


def check_for(kind: str) -> Check:
    """The check of one kind; a KeyError naming close matches for an unknown kind."""
    try:
        return CHECKS[kind]
    except KeyError:
        if kind in KINDS:
            raise KeyError(f"no check for {kind!r}: its verdict is always cannot_tell") from None
        close = difflib.get_close_matches(kind, CHECKS, n=3)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise KeyError(f"unknown constraint kind {kind!r}{hint}") from None


def loose_variants(answer: str) -> list[str]:
    """The answer, minus its first and/or last line, each also without '*' (IFEval's loose protocol)."""
    lines = answer.split("\n")
    cut = [answer, "\n".join(lines[1:]).strip(), "\n".join(lines[:-1]).strip(), "\n".join(lines[1:-1]).strip()]
    out = []
    for c in cut + [c.replace("*", "") for c in cut]:
        if c.strip() and c not in out:
            out.append(c)
    return out


def _check_one(check: Check, constraint: DetectedConstraint, variants: list[str], over: Callable[[], bool]) -> Verdict:
    first: tuple[str, str] | None = None
    for text in variants:
        if over():
            break
        try:
            status, reason = check(constraint.params, text)
        except Exception as e:  # a check must never fail the request; a bug reads as "cannot tell"
            return Verdict(constraint.kind, CANNOT_TELL, f"check error: {type(e).__name__}")
        if status == PASS:
            return Verdict(constraint.kind, PASS, reason)
        if first is None:
            first = (status, reason)
    if first is None:
        return Verdict(constraint.kind, CANNOT_TELL, "verification budget exhausted")
    return Verdict(constraint.kind, *first)


def verify(answer: str, constraints: Iterable[DetectedConstraint], *, budget_s: float = DEFAULT_BUDGET_S,
           max_chars: int = MAX_CHARS, clock: Callable[[], float] = time.perf_counter) -> Verification:
    """Check `answer` against each detected constraint (see the module docstring)."""
    constraints = list(constraints)
    if not isinstance(answer, str) or not answer.strip():
        return Verification(tuple(Verdict(c.kind, FAIL if c.kind in CHECKS else CANNOT_TELL, "empty answer")
                                  for c in constraints))
    if len(answer) > max_chars:
        return Verification(tuple(Verdict(c.kind, CANNOT_TELL, f"answer longer than {max_chars} characters")
                                  for c in constraints))
    deadline = clock() + budget_s
    variants = loose_variants(answer)
    out = []
    for c in constraints:
        check = CHECKS.get(c.kind)
        if check is None:
            out.append(Verdict(c.kind, CANNOT_TELL, "no check for this kind"))
        elif clock() > deadline:
            out.append(Verdict(c.kind, CANNOT_TELL, "verification budget exhausted"))
        else:
            out.append(_check_one(check, c, variants, lambda: clock() > deadline))
    return Verification(tuple(out))
