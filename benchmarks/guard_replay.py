"""`thinkgate bench guard-replay`: verify-and-escalate replayed on recorded answers of both modes.

Per prompt: take the direct answer; check it against the constraints detected in the prompt (`classifiers.verify`,
acting only on the chosen kinds); if an acted-on check fails, "call" the escalation (the think mode of the same
model, or the reasoning model of a pair) and keep the answer that passes more acted-on checks, ties to the
direct (cheaper) one. Accuracy is IFEval instruction-level loose by the gold scorer, on the decision model's
held-out half (the acted-on kinds were chosen on the other half by `thinkgate bench verifiers`).

`guard_pick` is the per-request rule and `replay` the aggregate, so the guard can be one arm of a replay
benchmark: give it a direct and an escalation answer per id.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.answer_sets import (
    DEFAULT_KINDS_FILE,
    PAIRS,
    REPORTS,
    AnswerSet,
    add_input_arguments,
    load_scored,
)
from classifiers.constraints import DetectedConstraint, detect_constraints
from classifiers.verify import verify
from training.records import Example


@dataclass(frozen=True)
class GuardPick:
    """What the guard did for one request: which answer it kept and whether it paid for a second call."""

    escalated: bool
    kept: str  # "direct" | "escalated"


def guard_pick(constraints: Sequence[DetectedConstraint], direct: str | None, escalated: str | None,
               kinds: Collection[str] | None) -> GuardPick:
    """The guard's rule on one request, given both answers (the escalated one is only looked at if needed)."""
    first = verify(direct or "", constraints, budget_s=1.0)
    if not first.failures(kinds):
        return GuardPick(False, "direct")
    second = verify(escalated or "", constraints, budget_s=1.0)
    better = second.passed(kinds) > first.passed(kinds)
    return GuardPick(True, "escalated" if better else "direct")


@dataclass(frozen=True)
class ReplayResult:
    """Instruction-level loose accuracies (percent) of the fixed arms and the guard on one pair of answer sets."""

    name: str
    n: int
    never: float
    always: float
    oracle: float
    guard: float
    escalation_rate: float  # share of requests with a second call
    calls_per_request: float

    @property
    def headroom(self) -> float | None:
        """Share of the oracle's gain over direct that the guard takes."""
        gap = self.oracle - self.never
        return (self.guard - self.never) / gap if gap > 0 else None


def replay(examples: dict[str, Example], direct: AnswerSet, escalation: AnswerSet, ids: Collection[str],
           kinds: Collection[str] | None, name: str | None = None) -> ReplayResult:
    """Replay the guard over `ids` present in both answer sets (absent rows are left out; null answers count)."""
    use = sorted(i for i in ids if i in direct.answers and i in escalation.answers)
    total = never = always = oracle = guard = escalated = 0
    for eid in use:
        d, t = direct.gold[eid], escalation.gold[eid]
        total += len(d)
        never += sum(d)
        always += sum(t)
        oracle += max(sum(d), sum(t))
        pick = guard_pick(detect_constraints(examples[eid].prompt), direct.answers[eid], escalation.answers[eid], kinds)
        escalated += pick.escalated
        guard += sum(t) if pick.kept == "escalated" else sum(d)
    if not use:
        raise ValueError(f"no prompt has answers in both {direct.name} and {escalation.name}")

    def pct(x: int) -> float:
        return 100 * x / total

    return ReplayResult(name or f"{direct.name} -> {escalation.name}", len(use), pct(never), pct(always),
                        pct(oracle), pct(guard), escalated / len(use), 1 + escalated / len(use))


def replay_pairs(sets: Sequence[AnswerSet]) -> list[tuple[str, str]]:
    """(direct, escalation) answer-set names available: SmolLM2's two modes and the strong pairs."""
    names = {s.name for s in sets}
    pairs = [("smollm2-135m/direct", "smollm2-135m/think"), *PAIRS]
    return [(a, b) for a, b in pairs if a in names and b in names]


def load_kinds(path: Path) -> list[str]:
    return list(json.loads(path.read_text(encoding="utf-8"))["kinds"])


def _row(r: ReplayResult, label: str) -> str:
    head = "-" if r.headroom is None else f"{100 * r.headroom:.0f}%"
    return (f"| {r.name} | {label} | {r.n} | {r.never:.1f} | {r.always:.1f} | {r.oracle:.1f} | {r.guard:.1f} | "
            f"{head} | {100 * r.escalation_rate:.0f}% | {r.calls_per_request:.2f} |")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="thinkgate bench guard-replay", description=__doc__.split("\n\n")[0])
    add_input_arguments(p)
    p.add_argument("--kinds", type=Path, default=DEFAULT_KINDS_FILE,
                   help="acted-on kinds written by `thinkgate bench verifiers` (default: %(default)s)")
    p.add_argument("--out", type=Path, default=REPORTS / "guard-replay.md", help="report path (default: %(default)s)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        kinds = load_kinds(args.kinds)
    except (OSError, ValueError, KeyError) as e:
        print(f"thinkgate bench guard-replay: cannot load the kinds: {e}", file=sys.stderr)
        return 2
    loaded = load_scored(args, "thinkgate bench guard-replay")
    if loaded is None:
        return 2
    examples, sets, held = loaded
    by_name = {s.name: s for s in sets}
    pairs = replay_pairs(sets)
    rows = []
    for halfname, ids in (("held-out", held), ("all", set(examples))):
        for a, b in pairs:
            for label, ks in (("acted-on kinds", kinds), ("every kind", None)):
                r = replay(examples, by_name[a], by_name[b], ids, ks, f"{a} -> {b}")
                rows.append((halfname, _row(r, label)))
    command = ("thinkgate bench guard-replay " + shlex.join(argv or [])).strip()
    head = ["| pair | guard acts on | prompts | never | always | oracle | guard | headroom taken | escalated | "
            "calls/request |", "|---|---|---|---|---|---|---|---|---|---|"]
    lines = ["# Guard replay on recorded answers", "", f"Command: `{command}`", "",
             "Direct first; escalate when an acted-on check of the direct answer fails; keep the answer that passes "
             "more acted-on checks (ties: direct). Instruction-level loose accuracy (%) by the gold scorer. "
             f"Acted-on kinds ({len(kinds)}) from `{args.kinds.name}`, chosen on the training half; 'every kind' "
             "acts on any failed check. Prompts missing from an answer file are left out; null answers count as "
             "failed.", "", "## Held-out half (the decision model's held-out ids)", "", *head,
             *[r for h, r in rows if h == "held-out"], "",
             "## All 541 prompts (includes the half the kinds were chosen on; for comparison with the issue)", "",
             *head, *[r for h, r in rows if h == "all"], ""]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
