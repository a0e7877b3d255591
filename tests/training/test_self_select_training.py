"""`thinkgate self-select score` over real HTTP (resumable) and `calibrate` on a synthetic table."""

from __future__ import annotations

import json
import math

import pytest

from router.deciders.self_select import Calibration
from training.self_select_cli import main
from support.outcome_fixture import HELPS, write_outcome_fixture as _write_fixture


def test_score_reads_logprobs_and_resumes(tmp_path, mock, upstream_url, capsys):
    data, _ = _write_fixture(tmp_path, n=6)
    mock.logprobs = lambda body: [("YES", math.log(0.3)), ("NO", math.log(0.1))]
    mock.reply = lambda body: "NO"
    out = tmp_path / "scores.jsonl"
    args = ["score", "--data", str(data), "--out", str(out), "--upstream", "upstream-model",
            "--base-url", upstream_url, "--no-progress", "--concurrency", "2"]
    assert main(args) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["id"] for r in records) == [f"ifeval:{k}" for k in range(6)]
    assert all(r["method"] == "logprobs" and r["score"] == pytest.approx(0.75) and r["tokens"] > 0 for r in records)
    asked = len(mock.requests)
    assert asked == 6 and all(r["logprobs"] is True and r["max_tokens"] == 4 for r in mock.requests)
    assert main(args) == 0  # resumed: everything is done, nothing is asked again
    assert len(mock.requests) == asked and "already done 6" in capsys.readouterr().err


def _scores(tmp_path, data) -> str:
    """A self-select score that is high on the prompts where thinking helps, with a wrong-way bias of +0.3."""
    out = tmp_path / "scores.jsonl"
    with out.open("w") as f:
        for line in data.read_text().splitlines():
            example = json.loads(line)
            score = 0.9 if HELPS in example["prompt"] else 0.65  # biased: every score is above 0.5
            f.write(json.dumps({"id": f"ifeval:{example['key']}", "score": score, "method": "logprobs",
                                "tokens": 40}) + "\n")
    return str(out)


def test_calibrate_corrects_the_bias_on_the_training_half(tmp_path, capsys):
    data, table = _write_fixture(tmp_path)
    scores = _scores(tmp_path, data)
    out = tmp_path / "cal.json"
    assert main(["calibrate", "--scores", scores, "--outcomes", str(table), "--data", str(data),
                 "--out", str(out), "--model", "tiny-model", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    calibration = Calibration.load(out)
    assert 0.65 < calibration.threshold < 0.9  # the default 0.5 would think on every prompt
    assert calibration.model == "tiny-model" and calibration.method == "max_accuracy"
    assert calibration.command.startswith("thinkgate self-select calibrate --scores")
    held = printed["report"]["held_out"]
    default = printed["report"]["default_threshold_held_out"]
    assert default["think_rate"] == 1.0 and held["think_rate"] < 0.5
    assert held["policy_accuracy"] > max(held["never_accuracy"], held["always_accuracy"])
    assert held["auc_gain_positive"] > 0.8
    assert printed["report"]["methods"] == {"logprobs": 120}


def test_calibrate_names_what_is_missing(tmp_path, capsys):
    data, table = _write_fixture(tmp_path)
    partial = tmp_path / "partial.jsonl"
    partial.write_text(json.dumps({"id": "ifeval:0", "score": 0.5, "method": "text", "tokens": 1}) + "\n")
    assert main(["calibrate", "--scores", str(partial), "--outcomes", str(table), "--data", str(data)]) == 2
    assert "have no self-select score" in capsys.readouterr().err
    assert main(["calibrate", "--scores", str(tmp_path / "nope.jsonl"), "--outcomes", str(table),
                 "--data", str(data)]) == 2
