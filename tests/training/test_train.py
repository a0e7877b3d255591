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


def test_taxonomy_model_budget_in_requests_and_learning_curve(tmp_path, capsys):
    data, table = _write_fixture(tmp_path)
    plot = tmp_path / "curve.png"
    assert train_main(["--outcomes", str(table), "--data", str(data), "--repeats", "1", "--estimator",
                       "taxonomy-ridge", "--calibration", "budget", "--cost-unit", "requests", "--budget", "0.2",
                       "--learning-curve", "0.5,1", "--learning-curve-plot", str(plot), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["chosen"]["estimator"] == "taxonomy-ridge"
    assert result["threshold"]["method"] == "budget" and result["threshold"]["params"]["think_rate"] <= 0.2
    held = result["held_out"]
    # the budget holds on the training half; held-out, the model still thinks only where it helps (a third)
    assert held["think_rate"] < 0.4 and held["policy_accuracy"] > held["never_accuracy"]
    assert held["random_accuracy"] == pytest.approx(
        (1 - held["think_rate"]) * held["never_accuracy"] + held["think_rate"] * held["always_accuracy"])
    curve = result["learning_curve"]
    assert [row["fraction"] for row in curve] == [0.5, 1.0] and [row["train_examples"] for row in curve] == [30, 60]
    assert all(row["splits"] == 2 for row in curve) and plot.stat().st_size > 0


def test_cost_in_dollars_prices_each_mode(tmp_path, capsys):
    data, table = _write_fixture(tmp_path, n=60)
    prices = tmp_path / "prices.toml"
    prices.write_text('[models.tiny-model]\ninput_per_mtok = 1000\noutput_per_mtok = 1000\n')
    # thinking costs (200 - 50) output tokens * $1000 / 1e6 = $0.15 more per request; a penalty of 100 accuracy
    # per dollar (15 points per request) outweighs any gain, so the calibrated policy never thinks
    assert train_main(["--outcomes", str(table), "--data", str(data), "--repeats", "0", "--estimator", "linear",
                       "--calibration", "cost", "--cost-unit", "usd", "--prices", str(prices),
                       "--cost-penalty", "100", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["threshold"]["value"] == "inf" and result["held_out"]["cost_unit"] == "usd"
    assert result["held_out"]["mean_extra_cost"] == 0.0
    assert train_main(["--outcomes", str(table), "--data", str(data), "--repeats", "0", "--estimator", "linear",
                       "--calibration", "cost", "--cost-unit", "usd", "--cost-penalty", "1"]) == 2
    assert "no price for model 'tiny-model'" in capsys.readouterr().err
