"""The per-part TF-IDF benchmark runs end to end on a tiny prompt file, with and without the C extension."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.tfidf_parts import main

PROMPTS = ["Write a haiku about snow in all lowercase letters.", "Answer in JSON: what is the tallest mountain?",
           "Décris Paris en moins de 50 mots. 東京 😀", ""]


@pytest.mark.parametrize("pure", ["0", "1"])
def test_runs_on_a_tiny_prompt_file(tmp_path: Path, capsys, monkeypatch, pure: str) -> None:
    monkeypatch.setenv("THINKGATE_PURE_PYTHON", pure)
    data = tmp_path / "p.jsonl"
    data.write_text("".join(json.dumps({"key": i, "prompt": p}) + "\n" for i, p in enumerate(PROMPTS)))
    assert main(["--data", str(data), "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert "timer" in out and "word python" in out and "char python" in out
    if pure == "1":
        assert "native" not in out.split("\n", 1)[1]  # only the status line names it


@pytest.mark.parametrize("pure", ["0", "1"])
def test_the_detector_rows(tmp_path: Path, capsys, monkeypatch, pure: str) -> None:
    from classifiers import compiled, constraints

    monkeypatch.setenv("THINKGATE_PURE_PYTHON", pure)
    chosen = constraints.run_detectors
    data = tmp_path / "p.jsonl"
    data.write_text("".join(json.dumps({"key": i, "prompt": p}) + "\n" for i, p in enumerate(PROMPTS)))
    assert main(["--data", str(data), "--repeat", "1", "--detector"]) == 0
    out = capsys.readouterr().out
    assert "detector python" in out and "decision python" in out
    assert ("detector mypyc" in out) == (compiled.compiled_module() is not None) == (pure == "0" and "0 of 4" in out)
    assert constraints.run_detectors is chosen  # put back


def test_a_missing_prompt_file_is_an_error(tmp_path: Path) -> None:
    assert main(["--data", str(tmp_path / "absent.jsonl")]) == 2


def test_cold_caches_sweep_before_each_timed_call(tmp_path: Path, capsys) -> None:
    from benchmarks.tfidf_parts import best_cpu_us, cache_sweep

    assert cache_sweep(0) is None
    calls: list[str] = []
    sweep = cache_sweep(0.01)
    assert sweep is not None

    def before() -> None:
        sweep()
        calls.append("sweep")

    best = best_cpu_us([lambda t, d: calls.append("call")] * 2, ["a", "b"], 2, before)
    assert best.shape == (2, 2)
    assert calls[:4] == ["call"] * 4  # the warm-up pass is not preceded by sweeps
    assert calls[4:] == ["sweep", "call"] * 8
    data = tmp_path / "p.jsonl"
    data.write_text("".join(json.dumps({"key": i, "prompt": p}) + "\n" for i, p in enumerate(PROMPTS)))
    out = tmp_path / "cold.txt"
    assert main(["--data", str(data), "--repeat", "1", "--cold", "0.5", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "caches swept with 0.5 MB before each call" in printed
    written = out.read_text()
    assert written.startswith("command: python -m benchmarks.tfidf_parts --data ") and "--cold 0.5" in written
    assert written.split("\n\n", 1)[1] == printed  # the printed results, after the command and the date
    assert main(["--data", str(data), "--cold", "-1"]) == 2
