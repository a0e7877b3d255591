"""benchmarks.overhead.pairs: the alternating order, the summary (medians, B / A, wins), the report, clear errors,
and (when wrk is installed) a tiny end-to-end run against real servers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.overhead import pairs
from benchmarks.overhead.pairs import Measurement, PairsRun

REPO = Path(__file__).resolve().parents[2]


def _run(measurements: list[Measurement]) -> PairsRun:
    run = PairsRun(command="python -m benchmarks.overhead.pairs a b", started="now", finished="later")
    run.settings = {"pairs": 3, "warmup": 2.0, "duration": 10.0, "connections": 32, "threads": 2}
    run.labels = {"A": "thinkgate classifier [before]", "B": "thinkgate classifier [after]"}
    run.measurements = measurements
    return run


def test_order_alternates() -> None:
    assert [pairs.order(i) for i in range(4)] == [("A", "B"), ("B", "A"), ("A", "B"), ("B", "A")]


def test_summary_medians_ratio_and_wins_skip_failed_measurements() -> None:
    run = _run([
        Measurement("A", 0, rps=1000, p50_ms=10, p99_ms=20, cpu_ms_per_request=0.50),
        Measurement("B", 0, rps=1200, p50_ms=9, p99_ms=25, cpu_ms_per_request=0.40),
        Measurement("B", 1, rps=1100, p50_ms=9, p99_ms=18, cpu_ms_per_request=0.45),
        Measurement("A", 1, rps=1150, p50_ms=11, p99_ms=19, cpu_ms_per_request=0.44),
        Measurement("A", 2, error="thinkgate exited"),
        Measurement("B", 2, rps=5000, p50_ms=1, p99_ms=2, cpu_ms_per_request=0.01),
    ])
    rows = {r["metric"]: r for r in pairs.summary_rows(run)}
    # only pairs where both sides measured count, in the medians too: pair 3 failed on A, so B's 5,000 is left out
    assert rows["rps"]["A"] == 1075 and rows["rps"]["B"] == 1150
    assert rows["rps"]["ratio"] == pytest.approx(1150 / 1075)
    assert (rows["rps"]["b_better"], rows["rps"]["pairs"]) == (1, 2)
    assert (rows["cpu_ms_per_request"]["b_better"], rows["cpu_ms_per_request"]["pairs"]) == (1, 2)  # lower wins
    assert (rows["p50_ms"]["b_better"], rows["p50_ms"]["pairs"]) == (2, 2)
    assert (rows["p99_ms"]["b_better"], rows["p99_ms"]["pairs"]) == (1, 2)
    assert pairs.summary_rows(_run([]))[0]["A"] is None


def test_report_lists_every_measurement_and_the_failure() -> None:
    run = _run([Measurement("A", 0, rps=1000, p50_ms=10, p99_ms=20, cpu_ms_per_request=0.5, requests=10000),
                Measurement("B", 0, error="thinkgate exited with code 1\n\nlast log line")])
    md = pairs.render_markdown(run)
    assert "| c=32 req/s | – | – | – | 0 of 0 pairs |" in md  # no complete pair: no medians
    assert "| 1 | A | 1,000 |" in md and "| 1 | B | failed: thinkgate exited with code 1 … last log line |" in md
    json.dumps(pairs.jsonable(run))
    assert "c=32 req/s" in pairs.text_table(run)


def test_missing_wrk_and_bad_specs_are_clear_errors(monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    monkeypatch.setattr(pairs, "wrk_path", lambda: None)
    assert pairs.main([f"a={REPO}", f"b={REPO}", "--no-report"]) == 2
    assert "wrk not found" in capsys.readouterr().err
    monkeypatch.setattr(pairs, "wrk_path", lambda: "/usr/bin/wrk")
    assert pairs.main([f"a={tmp_path}", f"b={REPO}", "--no-report"]) == 2
    err = capsys.readouterr().err
    assert "A: " in err and "DIR/router" in err and "Traceback" not in err
    assert pairs.main([f"a={REPO}", f"b={REPO}", "--pairs", "0", "--no-report"]) == 2
    assert "must be positive" in capsys.readouterr().err
    assert pairs.main([f"a={REPO},policy=classifier", f"b={REPO}", "--artifact", str(tmp_path / "none"),
                       "--no-report"]) == 2
    assert "no such directory" in capsys.readouterr().err


def test_a_failed_or_erroring_measurement_is_reported_and_fails_the_run(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The real mock upstream starts; each measurement is faked: B's second one dies, A's second one answers
    errors. Neither counts, the report says why, and the exit code is 1."""
    if pairs.wrk_path() is None:
        monkeypatch.setattr(pairs, "wrk_path", lambda: "/usr/bin/wrk")

    def fake_measure(variant, side, pair, args, mock_url, workdir, bodies, services):  # type: ignore[no-untyped-def]
        assert mock_url.startswith("http://127.0.0.1:")
        if pair == 1 and side == "B":
            return Measurement(side, pair, error="thinkgate (x) exited with code 2 during start-up:\nsome line\n"
                               "thinkgate: bad | config")
        m = Measurement(side, pair, rps=1000.0 + pair, p50_ms=1.0, p99_ms=2.0, cpu_ms_per_request=0.5,
                        requests=100)
        if pair == 1 and side == "A":
            m.error = "3 of 100 requests failed (wrk errors or non-2xx answers)"
        return m

    monkeypatch.setattr(pairs, "measure", fake_measure)
    data = tmp_path / "ifeval.jsonl"
    data.write_text(json.dumps({"key": 1, "prompt": "Say hi."}) + "\n")
    out = tmp_path / "pairs.md"
    assert pairs.main([f"a={REPO}", f"b={REPO}", "--pairs", "2", "--data", str(data), "--out", str(out),
                       "--quiet"]) == 1
    report = out.read_text()
    assert "| 2 | B | failed: thinkgate (x) exited with code 2 during start-up: … thinkgate: bad \\| config |" in report
    assert "| 2 | A | failed: 3 of 100 requests failed" in report
    assert "| c=32 req/s | 1,000 | 1,000 | 1.000 | 0 of 1 pairs |" in report
    assert "commit " in report and "compiled constraint detector" in report


@pytest.mark.skipif(pairs.wrk_path() is None, reason="needs wrk on PATH (apt-get install -y wrk)")
def test_tiny_end_to_end(tmp_path: Path) -> None:
    data = tmp_path / "ifeval.jsonl"
    data.write_text("\n".join(json.dumps({"key": i, "prompt": f"Write {i} words without commas."})
                              for i in range(3)) + "\n")
    out = tmp_path / "pairs.md"
    argv = [f"before={REPO},policy=never", f"after={REPO},policy=classifier", "--pairs", "1", "--duration", "1",
            "--warmup", "0", "--connections", "4", "--threads", "1", "--data", str(data), "--out", str(out),
            "--quiet"]
    assert pairs.main(argv) == 0
    report = out.read_text()
    assert "| 1 | A |" in report and "| 1 | B |" in report and "failed" not in report
    summary = {r["metric"]: r for r in json.loads(out.with_suffix(".json").read_text())["summary"]}
    assert summary["rps"]["A"] > 0 and summary["cpu_ms_per_request"]["B"] > 0
    assert summary["rps"]["pairs"] == 1
