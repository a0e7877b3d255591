"""`thinkgate bench verifiers`: the guard's checks against the gold scorer, per kind, on every recorded answer.

For every answer of every answer set (`benchmarks.answer_sets`), the constraints detected in its prompt are
checked by `classifiers.verify`; each verdict is compared with the gold scorer's loose verdict on the IFEval
instruction of the same kind (the first unused one), or, for a detection IFEval has no instruction of that kind
for, with the gold verdict on the whole prompt (all instructions followed). A "fail" that the gold scorer calls a
pass is a false alarm (it would cost a needless second call); a "pass" on a gold failure is a miss.

The kinds the guard acts on are chosen on the TRAINING half only (the decision model's non-held-out ids, pooled
over all answer sets): kinds whose "fail" verdicts had precision >= a floor with at least --min-alarms alarms. The
floor is --min-precision if given, else the one whose kinds take the most oracle headroom in a guard replay of
the strong pairs' training half with at most 25% escalation (`choose_precision`). The report shows the held-out
half, and the chosen set is written to a JSON file the guard loads.
"""

from __future__ import annotations

import argparse
import json
import shlex
from collections import defaultdict
from collections.abc import Sequence
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
from benchmarks.guard_replay import replay
from classifiers.constraints import DetectedConstraint, detect_constraints
from classifiers.verify import CANNOT_TELL, FAIL, verify
from training.records import Example

PRECISIONS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
MAX_ESCALATION = 0.25


@dataclass
class Confusion:
    """Verdicts of one kind against the gold scorer."""

    true_alarms: int = 0  # fail, gold fail
    false_alarms: int = 0  # fail, gold pass
    passes: int = 0  # pass, gold pass
    misses: int = 0  # pass, gold fail
    cannot_tell: int = 0

    def add(self, status: str, gold_ok: bool) -> None:
        if status == CANNOT_TELL:
            self.cannot_tell += 1
        elif status == FAIL:
            if gold_ok:
                self.false_alarms += 1
            else:
                self.true_alarms += 1
        elif gold_ok:
            self.passes += 1
        else:
            self.misses += 1

    @property
    def alarms(self) -> int:
        return self.true_alarms + self.false_alarms

    @property
    def precision(self) -> float | None:
        return self.true_alarms / self.alarms if self.alarms else None

    @property
    def n(self) -> int:
        return self.alarms + self.passes + self.misses + self.cannot_tell


def gold_for_detections(example: Example, found: list[DetectedConstraint], gold: list[bool]) -> list[bool]:
    """The gold verdict each detection is compared with: the same-kind IFEval instruction's (the one sharing most
    parameter values), else the whole prompt's."""
    unused = list(range(len(example.constraints)))
    prompt_ok = all(gold)
    out = []
    for d in found:
        same = [i for i in unused if example.constraints[i].id == d.kind]
        j = max(same, key=lambda i: sum(1 for k, v in example.constraints[i].kwargs.items() if d.params.get(k) == v),
                default=None)
        if j is None:
            out.append(prompt_ok)
        else:
            unused.remove(j)
            out.append(gold[j])
    return out


def confusions(examples: dict[str, Example], sets: list[AnswerSet], ids: set[str]) -> dict[str, Confusion]:
    """Per-kind confusion over the given ids of every answer set (answers that are absent or null are skipped)."""
    table: dict[str, Confusion] = defaultdict(Confusion)
    detected = {eid: detect_constraints(examples[eid].prompt) for eid in ids}
    for s in sets:
        for eid in ids:
            answer = s.answers.get(eid)
            if not answer or eid not in s.gold:
                continue
            found = detected[eid]
            verdicts = verify(answer, found, budget_s=1.0).verdicts
            golds = gold_for_detections(examples[eid], found, s.gold[eid])
            for v, ok in zip(verdicts, golds):
                table[v.kind].add(v.status, ok)
    return dict(table)


def choose_kinds(train: dict[str, Confusion], min_precision: float, min_alarms: int) -> list[str]:
    return sorted(k for k, c in train.items()
                  if c.alarms >= min_alarms and c.precision is not None and c.precision >= min_precision)


def choose_precision(examples: dict[str, Example], sets: list[AnswerSet], train_ids: set[str],
                     train: dict[str, Confusion], min_alarms: int) -> tuple[float, list[str]]:
    """The precision floor (of PRECISIONS) whose kind set takes the most oracle headroom over direct on the
    TRAINING half of the strong pairs while escalating on at most MAX_ESCALATION of their requests; ties go to
    the higher floor (fewer kinds, fewer false alarms on phrasings not seen here)."""
    by_name = {s.name: s for s in sets}
    pairs = [(a, b) for a, b in PAIRS if a in by_name and b in by_name]
    best: tuple[float, float, list[str]] | None = None
    for floor in PRECISIONS:
        kinds = choose_kinds(train, floor, min_alarms)
        results = [replay(examples, by_name[a], by_name[b], train_ids, kinds) for a, b in pairs]
        if not results or any(r.escalation_rate > MAX_ESCALATION for r in results):
            continue
        gain = sum(r.headroom or 0.0 for r in results) / len(results)
        if best is None or gain >= best[0] - 1e-9:
            best = (gain, floor, kinds)
    if best is None:
        floor = PRECISIONS[-1]
        return floor, choose_kinds(train, floor, min_alarms)
    return best[1], best[2]


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def confusion_table(table: dict[str, Confusion], acted: set[str]) -> list[str]:
    lines = ["| kind | checked | alarms | false alarms | misses | cannot tell | precision | acted on |",
             "|---|---|---|---|---|---|---|---|"]
    total = Confusion()
    for kind in sorted(table):
        c = table[kind]
        for f in ("true_alarms", "false_alarms", "passes", "misses", "cannot_tell"):
            setattr(total, f, getattr(total, f) + getattr(c, f))
        lines.append(f"| {kind} | {c.n} | {c.alarms} | {c.false_alarms} | {c.misses} | {c.cannot_tell} | "
                     f"{_pct(c.precision)} | {'yes' if kind in acted else ''} |")
    lines.append(f"| **all** | {total.n} | {total.alarms} | {total.false_alarms} | {total.misses} | "
                 f"{total.cannot_tell} | {_pct(total.precision)} | |")
    return lines


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="thinkgate bench verifiers", description=__doc__.split("\n\n")[0])
    add_input_arguments(p)
    p.add_argument("--min-precision", type=float, default=None,
                   help="act on kinds at least this precise on the training half (default: chosen there, see above)")
    p.add_argument("--min-alarms", type=int, default=5, help="and with at least this many alarms (train)")
    p.add_argument("--out", type=Path, default=REPORTS / "verifiers.md", help="report path (default: %(default)s)")
    p.add_argument("--kinds-out", type=Path, default=DEFAULT_KINDS_FILE,
                   help="where to write the chosen kinds (default: %(default)s)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    loaded = load_scored(args, "thinkgate bench verifiers")
    if loaded is None:
        return 2
    examples, sets, held = loaded
    train_ids = set(examples) - held
    test_ids = held
    train = confusions(examples, sets, train_ids)
    test = confusions(examples, sets, test_ids)
    if args.min_precision is None:
        args.min_precision, kinds = choose_precision(examples, sets, train_ids, train, args.min_alarms)
    else:
        kinds = choose_kinds(train, args.min_precision, args.min_alarms)
    command = "thinkgate bench verifiers " + shlex.join(argv or [])
    chosen = {"command": command.strip(), "min_precision": args.min_precision, "min_alarms": args.min_alarms,
              "chosen_on": f"{len(train_ids)} training-half IFEval prompts x {len(sets)} answer sets",
              "kinds": kinds,
              "train_precision": {k: round(train[k].precision, 4) for k in kinds}}
    args.kinds_out.parent.mkdir(parents=True, exist_ok=True)
    args.kinds_out.write_text(json.dumps(chosen, indent=2) + "\n", encoding="utf-8")
    lines = [
        "# Guard verifiers vs the gold scorer", "",
        f"Command: `{command.strip()}`", "",
        "Each detected constraint's verdict (`classifiers.verify`) against the gold scorer's loose verdict "
        "(`training.scoring.ifeval`, lm-eval's checkers) on the IFEval instruction of the same kind, or on the "
        "whole prompt when IFEval has no instruction of that kind there. Answer sets: "
        + ", ".join(f"{s.name} ({sum(1 for a in s.answers.values() if a)})" for s in sets) + ".", "",
        f"Acted-on kinds chosen on the training half ({len(train_ids)} prompts): precision >= "
        f"{args.min_precision:.0%} with >= {args.min_alarms} alarms -> {len(kinds)} kinds, written to "
        f"`{_rel(args.kinds_out)}`.", "",
        f"## Held-out half ({len(test_ids)} prompts, every answer set)", "",
        *confusion_table(test, set(kinds)), "",
        f"## Training half ({len(train_ids)} prompts; where the acted-on set was chosen)", "",
        *confusion_table(train, set(kinds)), "",
    ]
    per_set = []
    for s in sets:
        c = confusions(examples, [s], test_ids)
        acted = [c[k] for k in kinds if k in c]
        alarms = sum(x.alarms for x in acted)
        fa = sum(x.false_alarms for x in acted)
        per_set.append(f"| {s.name} | {alarms} | {fa} | {_pct(None if not alarms else (alarms - fa) / alarms)} |")
    lines += ["## Held-out half per answer set, acted-on kinds only", "",
              "| answer set | alarms | false alarms | precision |", "|---|---|---|---|", *per_set, ""]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    return 0


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    raise SystemExit(main())
