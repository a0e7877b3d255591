"""The overhead benchmark's pure pieces: bodies and wrk's Lua, CPU accounting, verdicts; and the floor server.

Fast: no wrk; the floor test starts two small processes on 127.0.0.1 (the mock and the floor).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from benchmarks.overhead.bodies import (Bodies, body_dict, load_bodies, long_bracket_level, lua_long_string,
                                        split_body, suffix, wrk_lua)
from benchmarks.overhead.cpu import CpuMeter, CpuSample, machine_busy_seconds, tree_cpu_seconds
from benchmarks.overhead.probes import Latency, StreamResult
from benchmarks.overhead.report import RunResult, criteria, render_markdown, scaling, summary_rows, verdicts
from benchmarks.overhead.servers import floor_service, litellm_proxy_available, litellm_service, mock_service
from benchmarks.overhead.targets import Target, TargetRound
from benchmarks.overhead.wrk import WrkResult
from benchmarks.services import Services

AWKWARD = [
    "plain prompt",
    'quotes "x" and \\ backslash \\n not a newline',
    "real\nnewline\tand tab, é ü 日本 🙂 \u2028",
    "brackets ]] ]=] ]==] [[ [=[ and the end ]=",
    "ends with ]",
    "",
]


# -- bodies and wrk's Lua ------------------------------------------------------------------------------

@pytest.mark.parametrize("stream", [False, True])
def test_split_body_round_trips_every_prompt(stream: bool) -> None:
    for prompt in AWKWARD:
        head, tail = split_body("mock-model", prompt, stream=stream)
        extra = suffix("tag.t1", 7)
        assert json.loads(head + extra + tail) == body_dict("mock-model", prompt + extra, stream=stream)
        assert (head + tail).isascii()


def test_ifeval_bodies_are_valid_json_and_unique() -> None:
    bodies = Bodies.ifeval(AWKWARD)
    sent = [json.loads(b) for b in itertools.islice(bodies.iter_bytes("m", "s.x.r1"), 3 * len(AWKWARD))]
    texts = [b["messages"][0]["content"] for b in sent]
    assert len(set(texts)) == len(texts)  # every decision text is new: no score-cache hit
    assert [t.rsplit(" (request ", 1)[0] for t in texts[:len(AWKWARD)]] == AWKWARD  # the rotation, in order
    assert all(b["max_tokens"] == 64 and "stream" not in b for b in sent)
    streamed = json.loads(next(bodies.iter_bytes("m", "st", stream=True)))
    assert streamed["stream"] is True
    fixed = list(itertools.islice(Bodies.fixed().iter_bytes("m", "s"), 3))
    assert fixed[0] == fixed[1] == fixed[2] and json.loads(fixed[0])["messages"][0]["content"]


def test_long_bracket_level_is_safe() -> None:
    assert long_bracket_level(["abc"]) == 1
    assert long_bracket_level(["x ]=] y"]) == 2
    assert long_bracket_level(["x ]=] y ]==]"]) == 3
    assert long_bracket_level(["ends with ]="]) == 2  # "]=" + "]=]" would close early
    for strings in (AWKWARD, ["]=]", "]==]", "]===]", "a]==", "]"]):
        level = long_bracket_level(strings)
        for s in strings:
            literal = lua_long_string(s, level)
            close = "]" + "=" * level + "]"
            assert literal.startswith("[" + "=" * level + "[") and literal.endswith(close)
            # the first closing bracket is the last one: nothing inside ends the string early
            assert literal.find(close, level + 2) == len(literal) - len(close)


def _lua_strings(script: str) -> list[str]:
    """The long-bracket literals of a generated script, read back as Lua would."""
    out, pos = [], 0
    opener = re.compile(r"\[(=+)\[")
    while (m := opener.search(script, pos)) is not None:
        close = "]" + m.group(1) + "]"
        end = script.index(close, m.end())
        out.append(script[m.end():end])
        pos = end + len(close)  # scan on after the literal, as Lua's lexer does
    return out


def test_wrk_lua_carries_every_prompt_intact() -> None:
    prompts = [p for p in AWKWARD if p] + ["x ]=] y ]==] z"]
    script = wrk_lua(Bodies.ifeval(prompts), "mock-model", "w.classifier-log.r1")
    strings = _lua_strings(script)
    heads, tail = strings[:-1], strings[-1]
    assert len(heads) == len(prompts)
    for prompt, head in zip(prompts, heads):
        extra = suffix("w.classifier-log.r1.t1", 3)
        assert json.loads(head + extra + tail)["messages"][0]["content"] == prompt + extra
    assert "function request()" in script and "THINKGATE_WRK" in script and script.isascii()
    fixed = wrk_lua(Bodies.fixed(), "mock-model", "w")
    assert "function request()" not in fixed  # a static body: wrk builds the request once
    assert json.loads(_lua_strings(fixed)[0])["model"] == "mock-model"


def test_load_bodies_defaults_and_notes(tmp_path: Path) -> None:
    missing = tmp_path / "none.jsonl"
    fixed = load_bodies(None, missing)
    assert fixed.kind == "fixed" and "not found" in fixed.note
    with pytest.raises(FileNotFoundError):
        load_bodies("ifeval", missing)
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"key": 1, "prompt": "a"}) + "\n" + json.dumps({"key": 2, "prompt": "b"}) + "\n")
    bodies = load_bodies(None, data)
    assert bodies.kind == "ifeval" and bodies.prompts == ["a", "b"] and "2 IFEval prompts" in bodies.describe()
    assert load_bodies("fixed", data).kind == "fixed"


# -- CPU accounting ------------------------------------------------------------------------------------

_BURN = ("import time\nt = time.process_time()\nwhile time.process_time() - t < {s}:\n    pass\n"
         "open({flag!r}, 'w').close()\ntime.sleep(60)\n")


def test_tree_cpu_counts_children_and_grandchildren(tmp_path: Path) -> None:
    child_flag, parent_flag = tmp_path / "child", tmp_path / "parent"
    child_code = _BURN.format(s=0.3, flag=str(child_flag))
    parent_code = (f"import subprocess, sys\nsubprocess.Popen([sys.executable, '-c', {child_code!r}])\n"
                   + _BURN.format(s=0.2, flag=str(parent_flag)))
    root = subprocess.Popen([sys.executable, "-c", parent_code])
    try:
        deadline = time.monotonic() + 30
        while not (child_flag.exists() and parent_flag.exists()):
            assert time.monotonic() < deadline, "the burners did not finish"
            time.sleep(0.05)
        total = tree_cpu_seconds(root.pid)
        import psutil

        own = sum(psutil.Process(root.pid).cpu_times()[:2])
        assert own >= 0.18 and total >= own + 0.27  # the grandchild's CPU is in the tree's (10 ms ticks)
    finally:
        import psutil

        for proc in psutil.Process(root.pid).children(recursive=True):
            proc.kill()
        root.kill()
        root.wait(5)
    assert math.isnan(tree_cpu_seconds(root.pid))  # gone: no number rather than a wrong one


def test_cpu_meter_and_sample_arithmetic() -> None:
    meter = CpuMeter({"self": os.getpid(), "absent": None}, machine=True)
    meter.start()
    t = time.process_time()
    while time.process_time() - t < 0.1:
        pass
    used = meter.stop()
    assert set(used) == {"self", "machine"}
    # psutil counts in clock ticks (10 ms): 0.1 s of burning reads as 0.09 now and then
    assert used["self"] >= 0.08 and used["machine"] >= 0.08 and machine_busy_seconds() > 0
    sample = CpuSample(seconds=0.5, requests=1000, wall_s=2.0)
    assert sample.ms_per_request == pytest.approx(0.5) and sample.cores == pytest.approx(0.25)
    assert CpuSample(0.5, 0, 2.0).ms_per_request is None and CpuSample(float("nan"), 10, 1.0).cores is None


# -- verdicts ------------------------------------------------------------------------------------------

def _round(p50: float, rps: float, cpu_ms: float, wrk_p50: float = 10.0, wrk_p99: float = 20.0) -> TargetRound:
    lat = Latency(100, p50, p50 * 1.5, p50)
    requests = int(rps * 10)
    cpu = {"server": CpuSample(cpu_ms * requests / 1000, requests, 10.0),
           "mock": CpuSample(0.05 * requests / 1000, requests, 10.0),
           "wrk": CpuSample(0.03 * requests / 1000, requests, 10.0), "machine": CpuSample(19.0, requests, 10.0)}
    wrk = WrkResult(rps, wrk_p50, wrk_p50, wrk_p99, wrk_p50, requests, 0, 10.0, cpu)
    return TargetRound(seq=lat, stream=StreamResult(lat, lat, True), wrk=wrk)


def _target(key: str, kind: str, workers: int, policy: str | None, rnd: TargetRound) -> Target:
    label = key + (f", {workers} workers" if workers > 1 else "")
    return Target(key, label, "", "http://x", kind=kind, workers=workers, policy=policy, rounds=[rnd])


def _run() -> RunResult:
    run = RunResult(command="test", started="now", settings={"rounds": 1, "threads": 2})
    run.targets = [
        _target("direct", "direct", 1, None, _round(0.5, 10000, 0.04)),
        _target("floor", "floor", 1, None, _round(1.0, 2000, 0.30)),
        _target("floor-w2", "floor", 2, None, _round(0.9, 3000, 0.32)),
        _target("never-log", "thinkgate", 1, "never", _round(1.08, 1500, 0.55)),  # passes all
        _target("never-log-w2", "thinkgate", 2, "never", _round(1.2, 2400, 0.70)),  # misses p50, cpu
        _target("classifier-log", "thinkgate", 1, "classifier", _round(1.6, 1000, 0.90, 10.0, 50.0)),
        _target("always-log", "thinkgate", 1, "always", _round(1.3, 1400, 0.6)),  # no criteria
    ]
    return run


def test_criteria_against_the_floor() -> None:
    run = _run()
    rows = {r["key"]: r for r in summary_rows(run)}
    assert rows["never-log"]["vs_floor_p50"] == pytest.approx(0.08)
    assert rows["never-log"]["cpu_x_floor"] == pytest.approx(0.55 / 0.30, rel=1e-3)
    assert rows["never-log-w2"]["cpu_x_floor"] == pytest.approx(0.70 / 0.32, rel=1e-3)
    assert rows["classifier-log"]["rps_x_floor"] == pytest.approx(0.5)

    one = {(c.target, c.check): c.ok for c in criteria(run, 1)}
    assert one == {
        ("never-log", "p50"): True, ("never-log", "cpu"): True, ("never-log", "tail"): True,
        ("classifier-log", "p50"): False,  # +0.6 ms over the floor
        ("classifier-log", "cpu"): False,  # 3.0x > 2.5x
        ("classifier-log", "rps"): False,  # 50% < 60%
        ("classifier-log", "tail"): False,  # 5x > 4x
    }
    two = {c.check: c.ok for c in criteria(run, 2)}
    assert two == {"p50": False, "cpu": False, "tail": True}

    scale = {(s["target"], s["workers"]): s["ratio"] for s in scaling(run)}
    assert scale == {("floor", 2): pytest.approx(1.5), ("never-log", 2): pytest.approx(1.6)}

    lines = "\n".join(verdicts(run))
    assert "PASS **never-log**: added p50 − floor's added p50 +0.080 ms (criterion ≤ 0.1 ms)" in lines
    assert "MISS **classifier-log**: c=32 req/s ÷ floor's 50% (1,000 req/s) (criterion ≥ 60%)" in lines
    assert "always-log" not in lines.split("More workers")[0]
    assert "Machine limit: " in lines and "everything else" in lines
    report = render_markdown(run)
    assert "### CPU during the c=32 runs" in report and "| floor | 0.300 |" in report


def test_verdicts_without_a_floor_say_so() -> None:
    run = _run()
    run.targets = [t for t in run.targets if t.kind != "floor"]
    assert "no floor measured" in verdicts(run)[0]
    assert all(r["vs_floor_p50"] is None and r["cpu_x_floor"] is None for r in summary_rows(run))


# -- the floor server ----------------------------------------------------------------------------------

@pytest.mark.parametrize("workers", [1, 2])
def test_floor_passes_requests_through_byte_for_byte(tmp_path: Path, workers: int) -> None:
    body = json.dumps(body_dict("mock-model", 'a "quoted" prompt é')).encode()
    streamed = json.dumps(body_dict("mock-model", "stream me", stream=True)).encode()
    headers = {"content-type": "application/json"}
    with Services() as services:
        mock = services.start(mock_service(tmp_path, sys.executable))
        floor = services.start(floor_service(mock.url, tmp_path, sys.executable, workers))
        assert floor.proc is not None
        with httpx.Client(timeout=10) as client:
            assert client.get(floor.url + "/healthz").status_code == 200
            for payload in (body, streamed, b"not json"):
                direct = client.post(mock.url + "/v1/chat/completions", content=payload, headers=headers)
                via = client.post(floor.url + "/v1/chat/completions", content=payload, headers=headers)
                assert via.status_code == direct.status_code
                assert via.headers["content-type"] == direct.headers["content-type"]
                assert via.content == direct.content  # byte for byte (the mock's answers are fixed)
            assert direct.status_code == 400  # the upstream's error passes through too
            with client.stream("POST", floor.url + "/v1/chat/completions", content=streamed,
                               headers=headers) as response:
                assert response.headers["content-type"] == "text/event-stream"
                raw = b"".join(response.iter_raw())
            assert raw.rstrip().endswith(b"data: [DONE]") and b'"content"' in raw
        if workers > 1:
            import psutil

            assert len(psutil.Process(floor.proc.pid).children()) == workers
    assert floor.proc is None


def test_litellm_service_at_worker_counts(tmp_path: Path) -> None:
    one = litellm_service("http://127.0.0.1:9", tmp_path, "/venv/bin/python", 1)
    two = litellm_service("http://127.0.0.1:9", tmp_path, "/venv/bin/python", 2)
    assert one.argv[:3] == ["/venv/bin/python", "-m", "litellm.proxy.proxy_cli"]
    assert one.argv[one.argv.index("--num_workers") + 1] == "1" and "--run_gunicorn" not in one.argv
    assert two.argv[two.argv.index("--num_workers") + 1] == "2" and "--run_gunicorn" in two.argv
    assert one.log_path != two.log_path and one.ready_path == "/health/readiness"
    assert two.env["LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY"] == "true"  # no keys, like thinkgate here
    ok, why = litellm_proxy_available(str(tmp_path / "no-such-python"))
    assert not ok and "not installed" in why


def test_served_decisions_report_a_missing_or_unreadable_log_instead_of_failing_the_run(tmp_path: Path) -> None:
    from benchmarks.overhead.served_decisions import read_served_decisions

    missing = read_served_decisions("t", "never", tmp_path / "none.sqlite3")
    assert missing.n == 0 and missing.error == "no decision log"
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"not a database" * 100)
    broken = read_served_decisions("t", "never", garbage)
    assert broken.n == 0 and broken.error and "decision log" in broken.error
