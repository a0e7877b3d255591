"""`benchmarks/overhead/instructions.py`: callgrind's files parsed, the per-request arithmetic, the report; one
end-to-end run of the floor under callgrind when valgrind and wrk are installed (~30-40 s)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.overhead import instructions as ins

DUMP = """\
# callgrind format
version: 1
creator: callgrind-3.19.0
pid: 9583
part: 1
thread: 1
desc: Trigger: dump

positions: line
events: Ir
summary: 0


ob=(60) /usr/lib/python3.11/lib-dynload/_random.so
fn=(3320) _random_Random_getrandbits
99 10827
totals: 1676305126
"""

END_OF_RUN = "# callgrind format\nversion: 1\npart: 2\nthread: 1\nevents: Ir\nsummary: 0\n\n\ntotals: 0\n"


def test_parse_takes_totals_not_summary_plus_totals() -> None:
    assert ins.parse_callgrind(DUMP) == (1, 1676305126)
    # an end-of-run file where the summary repeats the totals: counted once
    assert ins.parse_callgrind("thread: 2\nevents: Ir\nsummary: 45708071\ntotals: 45708071\n") == (2, 45708071)
    assert ins.parse_callgrind(END_OF_RUN) == (1, 0)


def test_parse_without_totals_threads_or_with_several_events() -> None:
    assert ins.parse_callgrind("events: Ir\nsummary: 123\n") == (None, 123)
    assert ins.parse_callgrind("events: Dr Ir Dw\ntotals: 5 70 9\n") == (None, 70)
    # appended dumps: one count per part
    assert ins.parse_callgrind("part: 1\nsummary: 10\ntotals: 10\npart: 2\ntotals: 32\n") == (None, 42)
    assert ins.parse_callgrind("") == (None, 0)


def test_read_counts_sums_files_per_thread(tmp_path: Path) -> None:
    (tmp_path / "cg.out.1-01").write_text(DUMP)
    (tmp_path / "cg.out.1-02").write_text(DUMP.replace("thread: 1", "thread: 2").replace("1676305126", "323694874"))
    (tmp_path / "cg.out-01").write_text(END_OF_RUN)
    (tmp_path / "cg.out").write_text("")  # --separate-threads=yes leaves the plain name empty
    counts = ins.read_counts(sorted(tmp_path.glob("cg.out*")))
    assert counts.files == 4
    assert counts.per_thread == {1: 1676305126, 2: 323694874}
    assert counts.total == 2_000_000_000
    assert counts.main_share == pytest.approx(0.838152563)

    (tmp_path / "one").write_text("totals: 7\n")
    assert ins.read_counts([tmp_path / "one"]).main_share is None  # not per thread: no share


def test_per_request_and_ratio() -> None:
    assert ins.per_request(1_397_000_000, 1000) == pytest.approx(1.397)
    assert ins.per_request(5, 0) is None
    assert ins.ratio(1.397, 0.568) == pytest.approx(2.4595, abs=1e-4)
    assert ins.ratio(None, 0.5) is None and ins.ratio(1.0, None) is None
    assert ins.at_rest_share(2.0, 30.0, 600_000_000) == pytest.approx(0.1)  # 2 M/s over 30 s of 600 M
    assert ins.at_rest_share(None, 30.0, 600) is None and ins.at_rest_share(2.0, 30.0, 0) is None


def _run() -> ins.InstructionsRun:
    run = ins.InstructionsRun(command="python -m benchmarks.overhead.instructions --duration 30", started="t0",
                              finished="t1", settings={"duration": 30, "warmup": 10, "connections": 4,
                                                       "threads": 1}, bodies="fixed", machine={"cores": "2"})
    run.targets = [
        ins.TargetResult("floor", "floor (bare aiohttp forwarder)", "bare", requests=1000,
                         counts=ins.Counts({1: 568_000_000}, 2)),
        ins.TargetResult("never", "thinkgate never", "policy never", requests=2000, duration_s=30.0,
                         counts=ins.Counts({1: 2_500_000_000, 2: 294_000_000, 3: 0}, 4),
                         idle_s=5.0, idle_counts=ins.Counts({1: 40_000_000, 2: 5_000_000}, 2)),
        ins.TargetResult("classifier", "thinkgate classifier", "policy classifier", error="not ready after 300 s"),
    ]
    return run


def test_report_rows_markdown_and_json() -> None:
    run = _run()
    rows = {r["key"]: r for r in ins.summary_rows(run)}
    assert rows["floor"]["m_instructions_per_request"] == pytest.approx(0.568)
    assert rows["floor"]["vs_floor"] == pytest.approx(1.0)
    assert rows["floor"]["main_thread_share"] == pytest.approx(1.0)
    assert rows["never"]["m_instructions_per_request"] == pytest.approx(1.397)
    assert rows["never"]["vs_floor"] == pytest.approx(1.397 / 0.568)
    assert rows["never"]["main_thread_share"] == pytest.approx(2500 / 2794)
    assert rows["classifier"]["m_instructions_per_request"] is None
    assert rows["never"]["idle_m_per_s"] == pytest.approx(9.0)
    assert rows["never"]["idle_share"] == pytest.approx(270 / 2794)
    assert rows["floor"]["idle_m_per_s"] is None  # no at-rest window

    md = ins.render_markdown(run)
    assert md.splitlines()[2] == "- command: `python -m benchmarks.overhead.instructions --duration 30`"
    assert "| thinkgate never | 2,000 | 0 | 2,794 | 1.397 | 2.46× | 89.5 % | 9.00 | 9.7 % |" in md
    assert "| floor (bare aiohttp forwarder) | 1,000 | 0 | 568 | 0.568 | 1.00× | 100.0 % | – | – |" in md
    assert "failed: not ready after 300 s" in md
    assert "thread 1 (main) 2,500.0 M, thread 2 294.0 M" in md
    assert "user-space instructions only" in md

    text = ins.text_table(run)
    assert "1.397" in text and "2.46×" in text and "failed: not ready" in text
    data = json.loads(json.dumps(ins.jsonable(run)))
    assert data["summary"][1]["vs_floor"] == pytest.approx(1.397 / 0.568)


def test_missing_tools_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(ins.shutil, "which", lambda name: None)
    monkeypatch.setattr(ins, "wrk_path", lambda: None)
    assert ins.main(["--no-report"]) == 2
    err = capsys.readouterr().err
    assert "valgrind, callgrind_control, wrk not found" in err and "Traceback" not in err


def test_unknown_target_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    if ins.missing_tools():
        pytest.skip(f"{', '.join(ins.missing_tools())} not installed")
    assert ins.main(["--targets", "floor,bogus", "--no-report"]) == 2
    assert "expected some of" in capsys.readouterr().err


@pytest.mark.skipif(bool(ins.missing_tools()), reason="needs valgrind, callgrind_control and wrk on PATH "
                    "(apt-get install -y valgrind wrk)")
def test_floor_under_callgrind_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "instructions.md"
    code = ins.main(["--targets", "floor", "--bodies", "fixed", "--warmup", "1", "--idle", "1", "--duration", "3",
                     "--connections", "2", "--out", str(out), "--quiet"])
    assert code == 0
    data = json.loads(out.with_suffix(".json").read_text())
    row = data["summary"][0]
    assert row["key"] == "floor" and not row["error"]
    assert row["requests"] > 10 and row["errors"] == 0
    # the floor measured ~0.57 M instructions a request by hand; anything far off means a broken count
    assert 0.05 < row["m_instructions_per_request"] < 20
    assert 0.5 < row["main_thread_share"] <= 1.0
    assert row["idle_m_per_s"] is not None and 0 <= row["idle_share"] < 0.5  # counted apart, not in the run
    assert "| floor (bare aiohttp forwarder) |" in out.read_text()
