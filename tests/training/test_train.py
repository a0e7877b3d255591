"""`thinkgate train` on a synthetic outcome table with a learnable signal, and the artifact in the proxy."""

from __future__ import annotations

import json

import pytest

from support.clients import openai_client
from support.outcome_fixture import HELPS, HURTS, write_outcome_fixture as _write_fixture
from training.train_cli import main as train_main

def test_train_learns_the_signal_and_beats_fixed_policies(tmp_path, capsys):
    data, table = _write_fixture(tmp_path)
    out = tmp_path / "artifact"
    assert train_main(["--outcomes", str(table), "--data", str(data), "--out", str(out), "--repeats", "1",
                       "--estimator", "linear", "--estimator", "tree", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    held = result["held_out"]
    assert held["n"] == 60
    assert held["policy_accuracy"] > max(held["never_accuracy"], held["always_accuracy"]) + 10
    assert held["auc"] > 0.8
    assert result["cross_validation"]["splits"] == 2
    meta = json.loads((out / "metadata.json").read_text())
    assert set(meta["extra"]["train_ids"]).isdisjoint(meta["extra"]["held_out_ids"])
    assert meta["target"] == {"model": "tiny-model", "profile": "forced-cot"}
    assert meta["threshold"]["method"] == "max_accuracy"


def test_train_reports_bad_input_clearly(tmp_path, capsys):
    data, table = _write_fixture(tmp_path, n=12)
    assert train_main(["--outcomes", str(table), "--data", str(data)]) == 2
    assert "need at least 20" in capsys.readouterr().err
    data, table = _write_fixture(tmp_path)
    assert train_main(["--outcomes", str(table), "--data", str(data), "--estimator", "lineer"]) == 2
    assert "unknown estimator" in capsys.readouterr().err


def test_classifier_policy_through_the_proxy(tmp_path, proxy, mock, capsys):
    data, table = _write_fixture(tmp_path)
    out = tmp_path / "artifact"
    assert train_main(["--outcomes", str(table), "--data", str(data), "--out", str(out), "--repeats", "0",
                       "--estimator", "linear"]) == 0
    with proxy({"policy": "classifier", "policy_options": {"artifact": str(out)}}) as server:
        client = openai_client(server)
        helps = client.chat.completions.with_raw_response.create(
            model="mock-model", messages=[{"role": "user", "content": f"A note about owls. {HELPS}"}])
        hurts = client.chat.completions.with_raw_response.create(
            model="mock-model", messages=[{"role": "user", "content": f"A note about owls. {HURTS}"}])
    assert helps.headers["x-thinkgate-decision"] == "think"
    assert hurts.headers["x-thinkgate-decision"] == "direct"
    assert float(helps.headers["x-thinkgate-score"]) > float(hurts.headers["x-thinkgate-score"])
    assert helps.headers["x-thinkgate-policy"] == "classifier"
