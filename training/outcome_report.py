"""What thinking did to a model: accuracy per mode, per instruction type, and thinking's win/lose/tie."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Sequence

from .outcomes import HEADLINE, Pair
from .records import MODES

METRICS = ("inst_level_loose", "inst_level_strict", "prompt_level_loose", "prompt_level_strict")


@dataclass(frozen=True)
class Report:
    n: int
    by_mode: dict[str, dict[str, float]]
    by_type: dict[str, dict[str, Any]]
    win: int
    lose: int
    tie: int
    oracle: float
    empty: dict[str, int]  # answers that are empty (failed, e.g. an API that returned nothing) per mode
    lose_empty: int  # of thinking's losses, those whose think answer is empty
    mean_tokens: dict[str, float | None]  # None: unknown
    mean_latency_s: dict[str, float | None]

    def to_json(self) -> dict[str, Any]:
        return self.__dict__.copy()


def instruction_type(key: str) -> str:
    """`detectable_format:title#2` -> `detectable_format:title`."""
    return key.split("#", 1)[0]


def build_report(pairs: Sequence[Pair]) -> Report:
    if not pairs:
        raise ValueError("no example has outcomes in both modes yet")
    from .scoring.ifeval import aggregate

    by_mode = {mode: {k: round(v, 2) for k, v in aggregate(
        p.of(mode).scores for p in pairs).items() if k != "n"}
        for mode in MODES}
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"n": 0, "direct": 0, "think": 0})
    for p in pairs:
        for key, ok in p.direct.scores["per_instruction"].items():
            c = counts[instruction_type(key)]
            c["n"] += 1
            c["direct"] += ok
            c["think"] += p.think.scores["per_instruction"].get(key, 0)
    by_type = {t: {"n": c["n"], "direct": round(100 * c["direct"] / c["n"], 1),
                   "think": round(100 * c["think"] / c["n"], 1),
                   "delta": round(100 * (c["think"] - c["direct"]) / c["n"], 1)}
               for t, c in sorted(counts.items(), key=lambda kv: (kv[1]["think"] - kv[1]["direct"]) / kv[1]["n"])}
    gains = [p.gain(HEADLINE) for p in pairs]
    n_inst = sum(len(p.direct.scores["per_instruction"]) for p in pairs)
    oracle = sum(max(p.score("direct"), p.score("think")) * len(p.direct.scores["per_instruction"])
                 for p in pairs) / n_inst
    return Report(
        n=len(pairs), by_mode=by_mode, by_type=by_type,
        win=sum(g > 0 for g in gains), lose=sum(g < 0 for g in gains), tie=sum(g == 0 for g in gains),
        oracle=round(100 * oracle, 2),
        empty={m: sum(not p.of(m).answer.strip() for p in pairs) for m in MODES},
        lose_empty=sum(g < 0 and not p.think.answer.strip() for g, p in zip(gains, pairs)),
        mean_tokens={m: _mean([p.of(m).completion_tokens for p in pairs], 1) for m in MODES},
        mean_latency_s={m: _mean([p.of(m).latency_s for p in pairs], 2) for m in MODES},
    )


def _mean(values: Sequence[float | None], digits: int) -> float | None:
    """The mean, or None when any value is unknown (imported answers without token counts or timings)."""
    if any(v is None for v in values):
        return None
    return round(sum(values) / len(values), digits)  # type: ignore[arg-type]


def _known(value: float | None) -> str:
    return "unknown" if value is None else str(value)


def format_report(report: Report) -> str:
    lines = [f"examples with both modes: {report.n}", "",
             f"{'metric':<22}{'direct':>9}{'think':>9}{'delta':>9}"]
    for metric in METRICS:
        d, t = report.by_mode["direct"][metric], report.by_mode["think"][metric]
        lines.append(f"{metric:<22}{d:>9.2f}{t:>9.2f}{t - d:>+9.2f}")
    lines.append(f"{'oracle (inst loose)':<22}{report.oracle:>9.2f}")
    lines += ["", f"thinking vs not (instruction-level loose, per prompt): "
                  f"wins {report.win}, loses {report.lose}, ties {report.tie}",
              f"empty (failed) answers: direct {report.empty['direct']}, think {report.empty['think']}; "
              f"of thinking's losses, {report.lose_empty} are an empty think answer",
              f"mean completion tokens: direct {_known(report.mean_tokens['direct'])}, "
              f"think {_known(report.mean_tokens['think'])}",
              f"mean latency (s): direct {_known(report.mean_latency_s['direct'])}, "
              f"think {_known(report.mean_latency_s['think'])}",
              "", f"{'instruction type (loose)':<48}{'n':>5}{'direct':>8}{'think':>8}{'delta':>8}"]
    for t, row in report.by_type.items():
        lines.append(f"{t:<48}{row['n']:>5}{row['direct']:>8.1f}{row['think']:>8.1f}{row['delta']:>+8.1f}")
    return "\n".join(lines)
