"""Keeps `benchmarks/overhead/` and `benchmarks/mock_upstream_server.py` working: everything run tiny.

Real subprocesses on 127.0.0.1 (the mock upstream and one `thinkgate serve`), a handful of requests, wrk for
one second only if it is installed. Budget: well under 20 s on the 2-core machine.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx
import pytest

from benchmarks import overhead
from benchmarks.mock_upstream_server import MockConfig, _parse_chunked


def test_percentile_and_median() -> None:
    assert overhead.percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert overhead.percentile([1.0, 2.0], 99) == pytest.approx(1.99)
    assert overhead.median_of([None, 1.0, 3.0]) == 2.0
    assert overhead.median_of([None]) is None


def test_mock_stream_events_and_chunked_bodies() -> None:
    events = MockConfig(reply="one two three").stream_events("m", include_usage=True)
    text = b"".join(e.split(b"\r\n", 1)[1][:-2] for e in events).decode()
    datas = [line[6:] for line in text.split("\n\n") if line.startswith("data: ")]
    assert datas[-1] == "[DONE]"
    chunks = [json.loads(d) for d in datas[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]) == "one two three"
    assert chunks[-1]["usage"]["total_tokens"] > 0
    buf = bytearray(b"HEAD\r\n\r\n4\r\nabcd\r\n2\r\nef\r\n0\r\n\r\nNEXT")
    assert _parse_chunked(buf, 8) == (b"abcdef", len(buf) - 4)
    assert _parse_chunked(bytearray(b"4\r\nab"), 0) is None


def test_overhead_end_to_end_tiny(tmp_path: Path) -> None:
    data = tmp_path / "ifeval.jsonl"
    # awkward prompts too: wrk's Lua script must carry them intact (the mock answers 400 to invalid JSON)
    prompts = [f"Write {i} words without commas." for i in range(3)] + [
        'Quote "this" and a back\\slash, then ]] and ]=] and ]==] in brackets.\nNew line, tab\t, é ü 日本 🙂',
        "end ]="]
    data.write_text("\n".join(json.dumps({"key": i, "prompt": p}) for i, p in enumerate(prompts)) + "\n")
    out = tmp_path / "overhead.md"
    argv = ["--requests", "20", "--warmup", "2", "--stream-requests", "5", "--duration", "1",
            "--connections", "4", "--threads", "1", "--policies", "never", "--no-log-variant", "--no-litellm",
            "--workers", "1,2", "--stack-floor",
            "--data", str(data), "--decision-samples", "20", "--out", str(out), "--quiet"]
    if overhead.wrk_path() is None:
        argv.append("--no-wrk")
    assert overhead.main(argv) == 0

    report = out.read_text()
    for expected in ("direct to mock", "thinkgate never", "shared and noisy", "uvicorn", "Decision latency",
                     "| never |", "| random |", "LiteLLM proxy: skipped"):
        assert expected in report
    assert "lacked content" not in report and "could not start" not in report
    summary = {row["key"]: row for row in json.loads(out.with_suffix(".json").read_text())["summary"]}
    assert set(summary) == {"direct", "floor", "floor-w2", "stack-floor", "never-log", "never-log-w2"}
    assert summary["stack-floor"]["errors"] == 0 and summary["stack-floor"]["seq_p50"] > 0
    assert "bodies (`--bodies`): ifeval: the 5 IFEval prompts" in report
    assert "floor (bare forwarder), 2 workers" in report and "One worker, against the floor" in report
    assert summary["direct"]["seq_p50"] > 0 and summary["never-log"]["added_p50"] is not None
    assert all(summary[key]["errors"] == 0 for key in summary)
    assert "thinkgate never, 2 workers" in report
    # every server's decision log read back after it stopped: sequential (20 + 2 warm-up) and streamed (5) at least
    served = {d["label"]: d for d in json.loads(out.with_suffix(".json").read_text())["served"]}
    assert set(served) == {"thinkgate never", "thinkgate never, 2 workers"}
    assert all(d["n"] >= 27 and d["error"] is None and d["p50_ms"] > 0 for d in served.values())
    assert "Decision time inside the servers" in report
    if overhead.wrk_path() is not None:
        assert summary["never-log"]["rps"] > 0
        for key in ("floor", "stack-floor", "never-log", "never-log-w2"):
            assert summary[key]["cpu_ms"] > 0 and summary[key]["cpu_x_floor" if key != "floor" else "cpu_ms"] > 0
            assert summary[key]["mock_cpu_ms"] > 0 and summary[key]["machine_cores"] > 0
        assert "PASS" in report or "MISS" in report


def test_services_are_stopped_even_on_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        with overhead.Services() as services:
            mock = services.start(overhead.mock_service(tmp_path, sys.executable))
            assert httpx.get(mock.url + "/readyz").status_code == 200
            raise RuntimeError("boom")
    assert mock.proc is None  # stopped and forgotten
    with pytest.raises(httpx.ConnectError):
        httpx.get(mock.url + "/readyz", timeout=2)


def test_compare_with_the_classifier_policy_needs_an_artifact(tmp_path: Path, capsys) -> None:
    argv = ["--policies", "never", "--compare", f"old={Path(__file__).resolve().parents[2]},policy=classifier", "--no-report", "--quiet"]
    assert overhead.main(argv) == 2
    assert "policy=classifier needs --artifact" in capsys.readouterr().err
