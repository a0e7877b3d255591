"""The decision-latency benchmark runs end to end on a tiny prompt file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.decision_latency import load_gains, main

PROMPTS = [
    "Write a haiku about snow in all lowercase letters.",
    "Answer in JSON: what is the tallest mountain?",
    "Describe Paris in fewer than 50 words. Do not use any commas.",
    "List exactly 3 bullet points about tea.",
    "Wrap your entire answer in double quotation marks. Tell me a joke.",
    "Repeat the request word for word, then explain gravity.",
    "Write a story with a title in double angular brackets, like <<title>>.",
    "End your reply with the exact phrase \"Is there anything else?\"",
]


def _write_prompts(path: Path) -> Path:
    path.write_text("".join(json.dumps({"key": 1000 + i, "prompt": p}) + "\n" for i, p in enumerate(PROMPTS)))
    return path


def _write_outcomes(path: Path) -> Path:
    lines = []
    for i in range(len(PROMPTS)):
        for mode, score in (("direct", 0.5), ("think", 1.0 if i % 2 else 0.0)):
            lines.append(json.dumps({"id": f"ifeval:{1000 + i}", "mode": mode,
                                     "scores": {"inst_level_loose": score}, "error": None}))
    lines.append(json.dumps({"id": "ifeval:9999", "mode": "think", "scores": {}, "error": "timeout"}))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_runs_with_random_labels(tmp_path: Path, capsys) -> None:
    report = tmp_path / "latency.md"
    rc = main(["--data", str(_write_prompts(tmp_path / "p.jsonl")), "--estimators", "constraints-linear", "tree",
               "--repeat", "1", "--report", str(report), "--artifact", ""])
    assert rc == 0
    text = report.read_text()
    assert "RANDOM" in text and "| constraints-linear | yes |" in text and "| tree | yes |" in text
    assert "| constraint detector |" in text
    assert "RANDOM" in capsys.readouterr().out


def test_runs_with_outcomes(tmp_path: Path) -> None:
    outcomes = _write_outcomes(tmp_path / "o.jsonl")
    assert load_gains(outcomes, "inst_level_loose")["ifeval:1001"] == 0.5
    report = tmp_path / "latency.md"
    rc = main(["--data", str(_write_prompts(tmp_path / "p.jsonl")), "--outcomes", str(outcomes),
               "--estimators", "constraints-linear", "--repeat", "1", "--report", str(report), "--artifact", ""])
    assert rc == 0 and "4 where thinking helps" in report.read_text()


def test_missing_data_is_an_error(tmp_path: Path, capsys) -> None:
    assert main(["--data", str(tmp_path / "nope.jsonl"), "--report", str(tmp_path / "r.md")]) == 2
    assert "not found" in capsys.readouterr().err


def test_missing_outcomes_is_an_error_not_a_traceback(tmp_path: Path, capsys) -> None:
    prompts = str(_write_prompts(tmp_path / "p.jsonl"))
    assert main(["--data", prompts, "--outcomes", str(tmp_path / "nope.jsonl")]) == 2
    assert "outcome table" in capsys.readouterr().err and not (tmp_path / "r.md").exists()


def test_options_are_not_abbreviated(tmp_path: Path) -> None:
    """`--out report.md` once read as `--outcomes report.md`, then failed on the missing file."""
    with pytest.raises(SystemExit) as exited:
        main(["--data", str(_write_prompts(tmp_path / "p.jsonl")), "--out", str(tmp_path / "r.md")])
    assert exited.value.code == 2


def test_times_the_shipped_artifact_cached_and_uncached_and_its_memory(tmp_path: Path) -> None:
    report = tmp_path / "latency.md"
    rc = main(["--data", str(_write_prompts(tmp_path / "p.jsonl")), "--artifact-only", "--repeat", "1",
               "--report", str(report)])
    assert rc == 0
    text = report.read_text()
    for row in ("serving form, uncached", "serving form, cached", "scikit-learn pipeline fast path"):
        assert f"| {row} |" in text
    # the report says which compiled parts timed the decisions (this process's own status, e.g. "loaded")
    from classifiers.compiled import compiled_status
    from classifiers.native import native_status

    assert (f"Compiled parts of the fast path: native TF-IDF extension {native_status()}; compiled constraint "
            f"detector {compiled_status()}.") in text
    memory = {line.split(" | ")[0].strip("| "): line for line in text.splitlines() if line.startswith("| ")}
    serving = memory["+ the artifact's serving form (what the classifier policy loads)"]
    skops = memory["+ the scikit-learn pipeline from model.skops (before this change)"]
    assert serving.endswith("| - |") and "sklearn" in skops  # the serving form imports no scikit-learn
