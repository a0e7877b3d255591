"""The guard's rules, without any upstream call: what to check, when to act, which answer wins, what to report.

The guard strategy (`router.strategies.guard`) answers, then asks this module: are there constraints in the
prompt (`classifiers.constraints`), does the answer pass the acted-on checks (`classifiers.verify`), and if not,
which answer is best after escalating or repairing. Keeping the rules here makes them testable without a
server, and keeps the router's use of `classifiers` to pure checks (DESIGN.md's dependency rules).

Outcomes, as the `x-thinkgate-guard` header reports them:

* `unverified`: no detected constraint, or none of the acted-on checks could be judged; answered as without
  the guard (no extra call);
* `pass`: the first answer passed every acted-on check;
* `escalated` / `repaired`: a check failed, and the kept answer (from escalation / the repair call) passes them all;
* `failed`: a check failed and no attempt within the bounds passed them all (the best answer is kept).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from classifiers.constraints import DetectedConstraint, detect_constraints
from classifiers.verify import DEFAULT_BUDGET_S, Verdict, Verification, measured_kinds, verify

Outcome = Literal["pass", "escalated", "repaired", "failed", "unverified"]
Step = Literal["first", "escalate", "repair"]

HEADER_GUARD = "x-thinkgate-guard"
HEADER_CHECKS = "x-thinkgate-guard-checks"
HEADER_ATTEMPTS = "x-thinkgate-guard-attempts"
HEADER_GUARD_SWITCH = "x-thinkgate-guard-enable"
"""Request header: `off` skips the guard for this request, `on`/`auto` (or absent) leave it to the route."""

REPAIR_INSTRUCTION = (
    "Your answer above does not follow some instructions of my request:\n{failures}\n"
    "Write the answer again so that it follows every instruction of my request. Output only the corrected answer."
)


class GuardOptions(BaseModel):
    """The guard strategy's options (a route's `strategy_options` with `strategy = "guard"`)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    act_on: Literal["measured", "all"] | list[str] = "measured"
    """Kinds whose failed checks trigger work: `measured` (precise on recorded answers), `all`, or a list."""
    repair: bool = False
    """After escalation (or when there is no higher rung), one call that lists the failed checks."""
    max_attempts: int = Field(default=3, ge=1, le=5)
    """Upstream calls per request at most, the first answer included."""
    max_total_s: float = Field(default=120.0, gt=0)
    """No new attempt starts after this many seconds; a running one is cut off at it."""
    verify_budget_s: float = Field(default=DEFAULT_BUDGET_S, gt=0, le=1)
    repair_instruction: str = Field(default=REPAIR_INSTRUCTION, min_length=1)


@dataclass(frozen=True)
class Checked:
    """One attempt's answer judged against the acted-on checks."""

    step: Step
    verification: Verification
    failures: tuple[Verdict, ...]
    passed: int
    judged: int

    @property
    def ok(self) -> bool:
        return not self.failures


class GuardRules:
    """The guard's decisions for one route (options validated once, acted-on kinds resolved once)."""

    def __init__(self, options: GuardOptions) -> None:
        self.options = options
        act_on = options.act_on
        if act_on == "all":
            self.kinds: frozenset[str] | None = None
        elif act_on == "measured":
            self.kinds = measured_kinds()
        else:
            from classifiers.verify import CHECKS

            unknown = sorted(set(act_on) - set(CHECKS))
            if unknown:
                raise ValueError(f"guard: act_on: no check for {', '.join(unknown)}; known: {', '.join(sorted(CHECKS))}")
            self.kinds = frozenset(act_on)

    def constraints(self, text: str) -> list[DetectedConstraint]:
        """The constraints the acted-on checks can judge, as detected in the decision text."""
        found = detect_constraints(text)
        return found if self.kinds is None else [c for c in found if c.kind in self.kinds]

    def check(self, step: Step, answer: str, constraints: Sequence[DetectedConstraint]) -> Checked:
        v = verify(answer, constraints, budget_s=self.options.verify_budget_s)
        return Checked(step, v, tuple(v.failures()), v.passed(), v.judged())

    @staticmethod
    def unverifiable(first: Checked) -> bool:
        """Nothing to act on: no acted-on constraint, or none of its checks could be judged."""
        return first.judged == 0

    @staticmethod
    def best(attempts: Sequence[Checked]) -> int:
        """Index of the answer passing the most checks; ties go to the earlier (cheaper) attempt."""
        return max(range(len(attempts)), key=lambda i: (attempts[i].passed, -i))

    @staticmethod
    def outcome(attempts: Sequence[Checked], kept: int) -> Outcome:
        if GuardRules.unverifiable(attempts[0]):
            return "unverified"
        chosen = attempts[kept]
        if not chosen.ok:
            return "failed"
        return {"first": "pass", "escalate": "escalated", "repair": "repaired"}[chosen.step]  # type: ignore[return-value]

    def repair_message(self, answer: str, failures: Sequence[Verdict]) -> list[dict[str, Any]]:
        """Messages to append to the conversation for the repair call: the answer, then what it broke."""
        listed = "\n".join(f"- {f.kind.split(':', 1)[-1].replace('_', ' ')}: {f.reason}" for f in failures)
        return [{"role": "assistant", "content": answer},
                {"role": "user", "content": self.options.repair_instruction.format(failures=listed)}]


def guard_headers(outcome: Outcome, attempts: Sequence[Checked], kept: int) -> dict[str, str]:
    chosen = attempts[kept] if attempts else None
    return {
        HEADER_GUARD: outcome,
        HEADER_CHECKS: f"{chosen.passed}/{chosen.judged}" if chosen else "0/0",
        HEADER_ATTEMPTS: str(len(attempts)),
    }


def guard_switch(value: str | None) -> bool | None:
    """The per-request header: False for `off`, None otherwise (the route decides); ValueError if unreadable."""
    if value is None:
        return None
    v = value.strip().lower()
    if v == "off":
        return False
    if v in ("on", "auto", ""):
        return None
    raise ValueError(f"header {HEADER_GUARD_SWITCH} must be off, on or auto (got {value!r})")


def attempts_record(attempts: Sequence[Checked], kept: int, outcome: Outcome) -> dict[str, Any]:
    """What the decision log keeps of the guard: every attempt's verdicts and reasons, and which answer won."""
    return {
        "outcome": outcome,
        "kept": kept,
        "attempts": [{"step": a.step, "passed": a.passed, "judged": a.judged,
                      "verdicts": [v.to_json() for v in a.verification.verdicts]} for a in attempts],
    }
