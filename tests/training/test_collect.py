"""Outcome collection in both modes through a mock upstream over real HTTP, with resume and retries."""

from __future__ import annotations

import asyncio
import json

import pytest

from router.backends.openai_compat import OpenAICompatBackend
from router.strategies import build_strategy
from training.collect import Target, collect
from training.collect_cli import main as collect_main
from training.outcome_report import build_report
from training.outcomes import pair_outcomes, read_outcomes
from training.records import Constraint, Example



@pytest.fixture(autouse=True)
def _punkt():
    from training.scoring.ifeval import MissingNLTKDataError, ensure_punkt_tab
    try:
        ensure_punkt_tab()
    except MissingNLTKDataError as exc:
        pytest.skip(f"IFEval scoring needs NLTK punkt_tab: {exc}")


EXAMPLES = [
    Example(id=f"ifeval:{i}", messages=({"role": "user", "content": f"Say hello to {name}. Do not use any commas."},),
            constraints=(Constraint("punctuation:no_comma"),))
    for i, name in enumerate(["Ann", "Bob", "Cy", "Di"])
]


def _reply(body):
    thinking = any(m["role"] == "system" and "<think>" in m["content"] for m in body["messages"])
    if thinking:
        return "<think>No commas allowed.</think>Hello there friend"
    return "Hello, friend"


def _scorer(example, answer):
    from training.scoring.ifeval import score_example
    return score_example(example, answer)


def _target(upstream_url: str) -> Target:
    return Target(OpenAICompatBackend(upstream_url), build_strategy("prompt-cot"), "upstream-model")


def _collect(upstream_url, examples, out, **kw):
    async def go():
        target = _target(upstream_url)
        try:
            return await collect(examples, target, modes=["direct", "think"], out_path=out, scorer=_scorer,
                                 dataset_version="test", progress=False, backoff_s=0.01, **kw)
        finally:
            await target.backend.aclose()
    return asyncio.run(go())


def test_both_modes_are_collected_and_scored(mock, upstream_url, tmp_path):
    mock.reply = _reply
    out = tmp_path / "outcomes.jsonl"
    summary = _collect(upstream_url, EXAMPLES, out, concurrency=3)
    assert (summary.done, summary.failed) == (8, 0)
    outcomes = read_outcomes(out)
    think = [o for o in outcomes if o.mode == "think"]
    direct = [o for o in outcomes if o.mode == "direct"]
    assert all(o.answer == "Hello there friend" and o.reasoning == "No commas allowed." for o in think)
    assert all(o.scores["inst_level_loose"] == 1.0 for o in think)
    assert all(o.scores["inst_level_loose"] == 0.0 and o.reasoning is None for o in direct)
    report = build_report(pair_outcomes(outcomes))
    assert (report.win, report.lose, report.tie) == (4, 0, 0)
    assert report.by_mode["think"]["inst_level_loose"] == 100.0
    assert report.by_type["punctuation:no_comma"]["delta"] == 100.0


def test_resume_skips_finished_work_and_survives_a_torn_line(mock, upstream_url, tmp_path):
    mock.reply = _reply
    out = tmp_path / "outcomes.jsonl"
    _collect(upstream_url, EXAMPLES[:2], out)
    with out.open("a") as f:
        f.write('{"id": "ifeval:2", "mode": "dir')  # an interrupted write
    mock.requests.clear()
    summary = _collect(upstream_url, EXAMPLES, out)
    assert (summary.skipped, summary.done) == (4, 4)
    assert len(mock.requests) == 4
    assert len(pair_outcomes(read_outcomes(out))) == 4


def test_transient_errors_are_retried_and_permanent_ones_recorded(mock, upstream_url, tmp_path):
    mock.reply = _reply
    mock.fail, mock.fail_times = (503, "overloaded"), 2
    out = tmp_path / "outcomes.jsonl"
    summary = _collect(upstream_url, EXAMPLES[:1], out, concurrency=1)
    assert (summary.done, summary.failed) == (2, 0)

    mock.fail, mock.fail_times = (400, "bad request"), None
    out2 = tmp_path / "failed.jsonl"
    summary = _collect(upstream_url, EXAMPLES[:1], out2, concurrency=1)
    assert summary.failed == 2 and "bad request" in summary.errors[0]
    assert all(o.error for o in read_outcomes(out2))
    mock.fail = None
    summary = _collect(upstream_url, EXAMPLES[:1], out2, concurrency=1)  # failed pairs are redone
    assert summary.done == 2 and all(o.error is None for o in read_outcomes(out2))


def test_cli_collects_and_reports(mock, upstream_url, tmp_path, capsys):
    mock.reply = _reply
    data = tmp_path / "ifeval.jsonl"
    data.write_text("".join(json.dumps({"key": i, "prompt": f"Say hi to {n}. Do not use any commas.",
                                        "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}) + "\n"
                            for i, n in enumerate(["Ann", "Bob"])))
    out = tmp_path / "t.jsonl"
    code = collect_main(["--dataset", "ifeval", "--data", str(data), "--out", str(out), "--base-url", upstream_url,
                         "--upstream", "upstream-model", "--profile", "prompt-cot", "--no-progress"])
    assert code == 0
    assert "wins 2, loses 0, ties 0" in capsys.readouterr().out
    assert collect_main(["--report", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 2
    assert collect_main(["--dataset", "nope", "--out", str(out)]) == 2
