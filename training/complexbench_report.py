"""What thinking did to a model on ComplexBench: DRFR per mode, thinking's win/lose/tie, the judge used.

DRFR is micro-averaged over scoring questions (the official `overall_drfr`); the oracle takes, per
instruction, the mode that passed more questions. Reads `complexbench_*` scores from an outcome table.
"""

from __future__ import annotations

from typing import Any, Sequence

from .outcomes import Pair
from .records import MODES
from .scoring.complexbench import METRIC_ALL_PASSED, METRIC_DRFR, aggregate


def is_complexbench(pairs: Sequence[Pair]) -> bool:
    return bool(pairs) and METRIC_DRFR in pairs[0].direct.scores


def _passed(scores: dict[str, Any]) -> int:
    return sum(scores["per_question"].values())


def build_report(pairs: Sequence[Pair]) -> dict[str, Any]:
    if not pairs:
        raise ValueError("no example has outcomes in both modes yet")
    n_questions = sum(len(p.direct.scores["per_question"]) for p in pairs)
    by_mode = {}
    for mode in MODES:
        scores = [p.of(mode).scores for p in pairs]
        by_mode[mode] = {
            "drfr": round(100 * aggregate(scores)["overall_drfr"], 2),
            "all_passed": round(100 * sum(s[METRIC_ALL_PASSED] for s in scores) / len(pairs), 2),
        }
    gains = [p.gain(METRIC_DRFR) for p in pairs]
    oracle = sum(max(_passed(p.direct.scores), _passed(p.think.scores)) for p in pairs) / n_questions
    sources: dict[str, int] = {}
    for p in pairs:
        for mode in MODES:
            for source, count in (p.of(mode).scores.get("sources") or {}).items():
                sources[source] = sources.get(source, 0) + count
    judges = sorted({str(p.of(m).scores.get("judge")) for p in pairs for m in MODES})
    return {
        "n": len(pairs), "n_questions": n_questions, "judge": judges, "by_mode": by_mode,
        "win": sum(g > 0 for g in gains), "lose": sum(g < 0 for g in gains), "tie": sum(g == 0 for g in gains),
        "oracle_drfr": round(100 * oracle, 2), "question_sources": dict(sorted(sources.items())),
        "mean_tokens": {m: round(sum(p.of(m).completion_tokens for p in pairs) / len(pairs), 1) for m in MODES},
        "mean_latency_s": {m: round(sum(p.of(m).latency_s for p in pairs) / len(pairs), 2) for m in MODES},
    }


def format_report(report: dict[str, Any]) -> str:
    d, t = report["by_mode"]["direct"], report["by_mode"]["think"]
    failed = report["question_sources"].get("error", 0)
    lines = [
        f"ComplexBench: instructions with both modes: {report['n']} ({report['n_questions']} scoring questions "
        f"each mode); judge: {', '.join(report['judge'])}", "",
        f"{'metric':<28}{'direct':>9}{'think':>9}{'delta':>9}",
        f"{'complexbench_drfr':<28}{d['drfr']:>9.2f}{t['drfr']:>9.2f}{t['drfr'] - d['drfr']:>+9.2f}",
        f"{'complexbench_all_passed':<28}{d['all_passed']:>9.2f}{t['all_passed']:>9.2f}"
        f"{t['all_passed'] - d['all_passed']:>+9.2f}",
        f"{'oracle (drfr)':<28}{report['oracle_drfr']:>9.2f}", "",
        f"thinking vs not (DRFR, per instruction): wins {report['win']}, loses {report['lose']}, ties {report['tie']}",
        f"mean completion tokens: direct {report['mean_tokens']['direct']}, think {report['mean_tokens']['think']}",
        f"mean latency (s): direct {report['mean_latency_s']['direct']}, think {report['mean_latency_s']['think']}",
        "verdicts by source (both modes): " + ", ".join(f"{k} {v}" for k, v in report["question_sources"].items()),
    ]
    if failed:
        lines.append(f"warning: {failed} question(s) failed at the judge and count as not satisfied")
    return "\n".join(lines)
