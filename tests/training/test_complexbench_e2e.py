"""ComplexBench end to end from the command line: `thinkgate score`, `collect` (both modes), `train`.

A fixture in the published format (rules, dependencies, a Selection group) is scored by a mock judge and
answered by a mock model, both OpenAI-compatible servers on loopback. Expected numbers are by hand:

  instruction            direct answer passes    think answer passes
  0 poem (And)           4 of 4                  2 of 4 (no 花朵, mentions 冬天)
  1 Monday -> books      0 of 3 (films; 1, 2     3 of 3
                         never judged)
  2 Saturday -> films    3 of 3                  0 of 3 (books; 1, 2 never judged)
  3 summary (Chain)      2 of 2                  0 of 2 (no summary; 1 never judged)

DRFR direct 9/12 = 75.00, think 5/12 = 41.67. Judge calls: direct 3+1+3+2 = 9, think 3+3+1+1 = 8 (the poem's
forbidden-word rule needs no judge for the direct answer, which lacks 冬天, nor its keyword rule for the think
answer, which lacks 花朵: no extracted span could change those verdicts).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from router.cli import main as thinkgate
from support.mock_judge import judge_reply, model_reply
from support.mock_upstream import MockUpstream
from support.servers import serve

FIXTURE = Path(__file__).parent / "fixtures" / "complexbench_e2e.json"


@pytest.fixture(scope="module")
def judge_server():
    judge = MockUpstream()
    judge.reply = judge_reply
    with serve(judge.app) as server:
        yield judge, server.url + "/v1"


@pytest.fixture()
def judge(judge_server):
    mock, url = judge_server
    mock.reply, mock.fail, mock.fail_times = judge_reply, None, None
    mock.requests.clear()
    return mock, url


def _judge_flags(url: str, tmp_path: Path) -> list[str]:
    return ["--judge", "mock-judge", "--judge-base-url", url, "--judge-cache", str(tmp_path / "verdicts.sqlite3"),
            "--no-progress"]


def _generations(tmp_path: Path, think: bool) -> Path:
    items = json.loads(FIXTURE.read_text(encoding="utf-8"))
    system = [{"role": "system", "content": "Think inside <think></think> first."}] if think else []
    path = tmp_path / "generations.jsonl"
    with path.open("w", encoding="utf-8") as f:
        for item in items:
            body = {"messages": [*system, {"role": "user", "content": item["instruction"]}]}
            answer = model_reply(body).split("</think>")[-1]
            f.write(json.dumps({"main_id": item["main_id"], "model": "mock", "instruction": item["instruction"],
                                "generated": answer}, ensure_ascii=False) + "\n")
    return path


def test_score_matches_the_hand_computed_drfr_and_the_second_run_is_free(judge, tmp_path, capsys):
    mock, url = judge
    argv = ["score", "--dataset", "complexbench", "--data", str(FIXTURE), "--responses",
            str(_generations(tmp_path, think=False)), "--json", *_judge_flags(url, tmp_path)]
    assert thinkgate(argv) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["overall_drfr"] == pytest.approx(9 / 12)
    assert first["n_questions"] == 12 and first["judge"]["model"] == "mock-judge"
    assert first["sources"] == {"judge": 9, "program": 1, "dependency": 2}
    assert first["judge"]["calls"] == len(mock.requests) == 9
    assert all(r["model"] == "mock-judge" and r["temperature"] == 0 for r in mock.requests)
    # Selection group 1: Monday failed, Saturday passed
    assert first["coherent"] == {"groups": 1, "origin": 0.5, "coherent": 0.0}
    assert first["by_category_avg"] == {"And": 1.0, "Chain": 1.0, "Selection": 0.5}

    mock.requests.clear()
    details = tmp_path / "details.jsonl"
    assert thinkgate([*argv, "--details", str(details)]) == 0
    rows = [json.loads(line) for line in details.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == [f"complexbench:{i}" for i in range(4)]
    monday = rows[1]
    assert monday["drfr"] == 0 and monday["category"] == "Selection_1" and monday["judge"] == "mock-judge"
    assert [(q["source"], q["verdict"], q["passed"]) for q in monday["questions"]] == [
        ("cache", False, False), ("dependency", None, False), ("dependency", None, False)]
    second = json.loads(capsys.readouterr().out)
    assert len(mock.requests) == 0 and second["judge"]["calls"] == 0
    assert second["overall_drfr"] == first["overall_drfr"]
    assert second["sources"] == {"cache": 9, "program": 1, "dependency": 2}

    table = ["score", "--dataset", "complexbench", "--data", str(FIXTURE), "--responses",
             str(_generations(tmp_path, think=True)), *_judge_flags(url, tmp_path)]
    assert thinkgate(table) == 0
    out, err = capsys.readouterr()
    assert "overall DRFR                         41.67" in out and "judge mock-judge" in out
    assert "judge mock-judge: 8 calls (0 failed)" in err and "price unknown: tokens only" in err


def test_whole_response_rules_need_no_judge(judge, tmp_path, capsys):
    mock, url = judge
    assert thinkgate(["score", "--dataset", "complexbench", "--data", str(FIXTURE), "--responses",
                      str(_generations(tmp_path, think=False)), "--json", "--judge-extraction", "whole",
                      *_judge_flags(url, tmp_path)]) == 0
    res = json.loads(capsys.readouterr().out)
    # the 5 yes/no questions are judged; 5 rule questions are checked on the whole response, 2 never reached
    assert res["sources"] == {"judge": 5, "program": 5, "dependency": 2} and len(mock.requests) == 5
    assert res["judge"]["extraction"] == "whole"
    # a variant, not the protocol: on the whole Saturday answer "each reason starts with 理由：" fails and
    # there is one span, not two, so it loses 2 of the 9 questions the judged extraction passed
    assert res["overall_drfr"] == pytest.approx(7 / 12)


def test_always_extraction_asks_for_every_rule_and_concurrency_is_bounded(judge, tmp_path, capsys):
    mock, url = judge
    mock.delay_s, mock.max_in_flight = 0.05, 0
    try:
        assert thinkgate(["score", "--dataset", "complexbench", "--data", str(FIXTURE), "--responses",
                          str(_generations(tmp_path, think=False)), "--json", "--judge-extraction", "always",
                          "--judge-concurrency", "2", *_judge_flags(url, tmp_path)]) == 0
    finally:
        mock.delay_s = 0.0
    res = json.loads(capsys.readouterr().out)
    # like the official scripts: the forbidden-word rule is put to the judge too; same verdicts
    assert res["sources"] == {"judge": 10, "dependency": 2} and res["overall_drfr"] == pytest.approx(9 / 12)
    assert mock.max_in_flight == 2  # never more judge calls in flight than --judge-concurrency


def test_a_failing_or_garbage_judge_is_retried_then_the_question_fails(judge, tmp_path, capsys):
    mock, url = judge
    items = json.loads(FIXTURE.read_text(encoding="utf-8"))
    items[3]["scoring_questions"][1]["question"] = "英文翻译是否通顺「乱码」？"  # the judge answers garbage
    data = tmp_path / "data.json"
    data.write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
    config = tmp_path / "judge.toml"
    config.write_text(f'[judge]\nmodel = "mock-judge"\nbase_url = "{url}"\nretries = 2\nbackoff_s = 0.01\n'
                      f'cache = "{tmp_path / "v.sqlite3"}"\n', encoding="utf-8")
    mock.fail, mock.fail_times = (503, "judge overloaded"), 3  # the first three calls fail
    argv = ["score", "--dataset", "complexbench", "--data", str(data), "--responses",
            str(_generations(tmp_path, think=False)), "--judge-config", str(config), "--json", "--no-progress"]
    assert thinkgate(argv) == 0
    out, err = capsys.readouterr()
    res = json.loads(out)
    assert res["sources"] == {"judge": 8, "program": 1, "dependency": 2, "error": 1}
    assert res["overall_drfr"] == pytest.approx(8 / 12)  # the garbage question counts as not satisfied
    garbage_tries = sum("乱码" in r["messages"][-1]["content"] for r in mock.requests)
    assert garbage_tries == 3  # one call and two retries (none of them among the failed three)
    assert res["judge"]["failed_calls"] == 3 and res["judge"]["calls"] == 9 + 3 + 2
    assert "1 failed" in err

    mock.fail, mock.fail_times = (503, "judge down"), None  # a dead judge: the run stops with a clear message
    config.write_text(config.read_text() + "abort_after = 4\n", encoding="utf-8")
    (tmp_path / "v.sqlite3").unlink()
    assert thinkgate(argv) == 2
    assert "failed 4 calls in a row" in capsys.readouterr().err


def test_judge_configuration_errors_are_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    responses = str(_generations(tmp_path, think=False))
    base = ["score", "--dataset", "complexbench", "--data", str(FIXTURE), "--responses", responses]
    assert thinkgate(base) == 2  # the protocol's judge, gpt-4-1106-preview on OpenAI, needs a key
    assert "OPENAI_API_KEY" in capsys.readouterr().err
    assert thinkgate([*base, "--judge", "gpt-4o"]) == 2
    assert "expected PROVIDER/MODEL" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text('[judge]\nmodel = "m"\nbase_url = "http://x/v1"\ntemprature = 0\n')
    assert thinkgate([*base, "--judge-config", str(bad)]) == 2
    assert "judge.temprature: Extra inputs are not permitted" in capsys.readouterr().err


# ----------------------------------------------------------------------------------- collect and train


def _big_fixture(tmp_path: Path, copies: int = 6) -> Path:
    """`copies` variants of each fixture instruction (different topic words), ids 0..4*copies-1."""
    base = json.loads(FIXTURE.read_text(encoding="utf-8"))
    items = []
    for c in range(copies):
        for item in base:
            new = json.loads(json.dumps(item))
            new["main_id"] = len(items)
            new["group"] = item["group"] + 10 * c
            new["instruction"] = f"（第{c}组）" + item["instruction"]
            items.append(new)
    path = tmp_path / "complexbench_big.json"
    path.write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
    return path


def _collect(data: Path, out: Path, upstream_url: str, judge_url: str, tmp_path: Path) -> list[str]:
    return ["collect", "--dataset", "complexbench", "--data", str(data), "--out", str(out), "--base-url",
            upstream_url, "--upstream", "upstream-model", "--profile", "prompt-cot", "--concurrency", "4",
            *_judge_flags(judge_url, tmp_path)]


def test_collect_both_modes_and_train_on_complexbench(mock, upstream_url, judge, tmp_path, capsys):
    judge_mock, judge_url = judge
    mock.reply = model_reply
    small = tmp_path / "small.jsonl"
    assert thinkgate(_collect(FIXTURE, small, upstream_url, judge_url, tmp_path)) == 0
    out, err = capsys.readouterr()
    assert re.search(r"complexbench_drfr +75.00 +41.67 +-33.33", out)
    assert "judge: mock-judge" in out and "wins 1, loses 3, ties 0" in out
    assert len(judge_mock.requests) == 17 and len(mock.requests) == 8
    rows = [json.loads(line) for line in small.read_text(encoding="utf-8").splitlines()]
    poem_think = next(r for r in rows if r["id"] == "complexbench:0" and r["mode"] == "think")
    assert poem_think["scores"]["per_question"] == {"0": 1, "1": 1, "2": 0, "3": 0}
    assert poem_think["scores"]["complexbench_drfr"] == 0.5 and poem_think["scores"]["judge"] == "mock-judge"
    assert poem_think["reasoning"] == "先想一想。"

    # A second table of the same answers (another policy, a lost table) pays no judge call.
    judge_mock.requests.clear()
    assert thinkgate(_collect(FIXTURE, tmp_path / "again.jsonl", upstream_url, judge_url, tmp_path)) == 0
    assert len(judge_mock.requests) == 0 and "judge mock-judge: 0 calls" in capsys.readouterr().err

    big, table = _big_fixture(tmp_path), tmp_path / "big.jsonl"
    assert thinkgate(_collect(big, table, upstream_url, judge_url, tmp_path)) == 0
    capsys.readouterr()
    artifact = tmp_path / "artifact"
    assert thinkgate(["train", "--dataset", "complexbench", "--data", str(big), "--outcomes", str(table),
                      "--out", str(artifact), "--repeats", "0", "--estimator", "linear", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["examples"] == 24 and result["metric"] == "complexbench_drfr"
    held = result["held_out"]
    # thinking helps only on the Monday variants: a decision model can find them from the text
    assert held["oracle_accuracy"] > held["never_accuracy"] > held["always_accuracy"]
    meta = json.loads((artifact / "metadata.json").read_text())
    assert meta["extra"]["metric"] == "complexbench_drfr" and meta["extra"]["judges"] == ["mock-judge"]


def test_dry_run_counts_calls_and_tokens_without_calling(judge, tmp_path, capsys):
    mock, url = judge
    argv = ["score", "--dataset", "complexbench", "--data", str(FIXTURE), "--responses",
            str(_generations(tmp_path, think=False)), "--json", *_judge_flags(url, tmp_path)]
    assert thinkgate([*argv, "--dry-run"]) == 0
    before = json.loads(capsys.readouterr().out)
    assert (before["judge_calls_at_most"], before["cached"], before["program_only"]) == (11, 0, 1)
    assert before["prompt_units"] > 11 * 300
    assert thinkgate(argv) == 0  # the real run pays 9 calls (2 questions follow a failed dependency)
    capsys.readouterr()
    assert thinkgate([*argv, "--dry-run"]) == 0
    after = json.loads(capsys.readouterr().out)
    assert (after["judge_calls_at_most"], after["cached"]) == (2, 9) and len(mock.requests) == 9


def test_dry_run_on_the_shared_instructions_and_reference_generations(capsys):
    from conftest import shared_data_dir

    folder = shared_data_dir() / "complexbench"
    if not (folder / "reference_generations" / "gpt4_1106.jsonl").is_file():
        pytest.skip(f"ComplexBench reference generations not found under {folder}")
    assert thinkgate(["score", "--dataset", "complexbench", "--data", str(folder / "instructions_zh.jsonl"),
                      "--responses", str(folder / "reference_generations" / "gpt4_1106.jsonl"), "--dry-run",
                      "--json"]) == 0
    out, err = capsys.readouterr()
    res = json.loads(out)
    assert res["instructions"] == 1150 and res["judge_calls_at_most"] == 5306 and res["questions_averaged_for"] == 1150
    assert "differs" not in err and "no response" not in err  # every generation matches its instruction


def test_collect_stops_calling_the_model_once_the_judge_is_gone_and_resumes(mock, upstream_url, judge, tmp_path,
                                                                          capsys):
    judge_mock, judge_url = judge
    mock.reply = model_reply
    judge_mock.fail = (503, "judge down")
    config = tmp_path / "judge.toml"
    config.write_text(f'[judge]\nmodel = "mock-judge"\nbase_url = "{judge_url}"\nretries = 1\nbackoff_s = 0.01\n'
                      f'abort_after = 2\ncache = "{tmp_path / "v.sqlite3"}"\n', encoding="utf-8")
    table = tmp_path / "t.jsonl"
    argv = ["collect", "--dataset", "complexbench", "--data", str(FIXTURE), "--out", str(table), "--base-url",
            upstream_url, "--upstream", "upstream-model", "--profile", "prompt-cot", "--concurrency", "1",
            "--judge-config", str(config), "--no-progress"]
    assert thinkgate(argv) == 1
    assert "failed 2 calls in a row" in capsys.readouterr().err
    assert len(mock.requests) == 1  # after the judge was given up on, no model call was wasted
    rows = [json.loads(line) for line in table.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 8 and all(r["error"] for r in rows)

    judge_mock.fail = None  # the judge is back: the same command finishes the table
    assert thinkgate(argv) == 0
    assert re.search(r"complexbench_drfr +75.00 +41.67", capsys.readouterr().out)


@pytest.mark.parametrize("lines,message", [
    (['{"main_id": 0, "generated": 5}'], "the response must be a string"),
    (['{"main_id": 0, "generated": "a"}', '{"main_id": 0, "generated": "b"}'], "a second response for complexbench:0"),
    (['{"id": 0, "text": "a"}'], "expected 'main_id' and 'generated'"),
    (['{"main_id": 99, "generated": "a"}'], "no response in"),
    (['[1, 2]'], "expected a JSON object"),
])
def test_bad_generation_files_are_one_line_errors(tmp_path, capsys, lines, message):
    responses = tmp_path / "g.jsonl"
    responses.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert thinkgate(["score", "--dataset", "complexbench", "--data", str(FIXTURE), "--responses", str(responses),
                      "--judge", "m", "--judge-base-url", "http://127.0.0.1:9/v1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_replay_on_a_complexbench_table_reports_drfr(mock, upstream_url, judge, tmp_path, capsys):
    """`thinkgate bench replay` on the collected table: DRFR micro-averaged over the 12 scoring questions."""
    _, judge_url = judge
    mock.reply = model_reply
    table, out, prices = tmp_path / "t.jsonl", tmp_path / "report", tmp_path / "prices.toml"
    assert thinkgate(_collect(FIXTURE, table, upstream_url, judge_url, tmp_path)) == 0
    prices.write_text('[models.upstream-model]\ninput_per_mtok = 1\noutput_per_mtok = 2\n')
    capsys.readouterr()
    assert thinkgate(["bench", "replay", str(table), "--dataset", "complexbench", "--data", str(FIXTURE),
                      "--arms", "never,always,oracle", "--ids", "all", "--prices", str(prices),
                      "--resamples", "100", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"arm +DRFR +all passed +think-rate", printed)
    arms = json.loads((out / "results.json").read_text())["arms"]
    # DRFR: direct 9/12, think 5/12, oracle 12/12 (think only on Monday); all passed: 3/4, 1/4, 4/4
    assert {a: s["metrics"]["complexbench_drfr"] for a, s in arms.items()} == {
        "never": 75.0, "always": 41.67, "oracle": 100.0}
    assert {a: s["metrics"]["complexbench_all_passed"] for a, s in arms.items()} == {
        "never": 75.0, "always": 25.0, "oracle": 100.0}
    assert arms["oracle"]["think_rate"] == 0.25
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "Accuracy in % (ComplexBench; DRFR first)" in report and "## Accuracy differences (DRFR," in report
    # one table mixing the benchmarks is refused with one line, not scored on the wrong metric
    lines = [json.loads(line) for line in table.read_text(encoding="utf-8").splitlines()]
    rows = [next(r for r in lines if r["mode"] == mode) for mode in ("direct", "think")]
    with table.open("a", encoding="utf-8") as f:
        for r in rows:
            r["id"] = "ifeval:1"
            r["scores"] = {m: 1.0 for m in ("inst_level_loose", "inst_level_strict", "prompt_level_loose",
                                            "prompt_level_strict")}
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    assert thinkgate(["bench", "replay", str(table), "--dataset", "complexbench", "--data", str(FIXTURE),
                      "--arms", "never,always", "--ids", "all", "--prices", str(prices)]) == 2
    assert "mixes IFEval and ComplexBench outcomes" in capsys.readouterr().err
