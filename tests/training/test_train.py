"""`thinkgate train` on a synthetic outcome table with a learnable signal, and the artifact in the proxy."""

from __future__ import annotations

import json
import random

import pytest

from support.clients import openai_client
from support.outcome_fixture import HELPS, HURTS, TOPICS, write_outcome_fixture as _write_fixture
from training.records import Outcome
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
                       "taxonomy-ridge", "--calibration", "budget", "--cost-unit", "requests", "--budget", "0.4",
                       "--learning-curve", "0.5,1", "--learning-curve-plot", str(plot), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["chosen"]["estimator"] == "taxonomy-ridge"
    assert result["threshold"]["method"] == "budget" and result["threshold"]["params"]["think_rate"] <= 0.4
    held = result["held_out"]
    # The budget holds on the training half; held-out, the model thinks where it helps (a third of the prompts).
    # The budget is above that third on purpose: prompts of one kind have the same features, so their scores tie
    # up to rounding, and a smaller budget could take part of the tied group only by rounding noise, which
    # differs between CPUs' BLAS kernels (with 0.2 this test passed on one machine and not on another).
    assert 0.25 < held["think_rate"] < 0.45 and held["policy_accuracy"] > held["never_accuracy"] + 10
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


def _write_complexbench(tmp_path, n=40, seed=1, model="tiny-model"):
    """A ComplexBench file (published format) and outcomes: thinking helps on JSON prompts, 3 questions each."""
    rng = random.Random(seed)
    items, table = [], tmp_path / "cb_outcomes.jsonl"
    with table.open("w") as t:
        for i in range(n):
            helps = i % 2 == 0
            instruction = f"请写一段关于{rng.choice(TOPICS)}的介绍。" + ("以JSON格式输出。" if helps else "全部用小写字母。")
            questions = [{"point_id": k, "question": f"q{k}", "rule": None, "dep": []} for k in range(3)]
            items.append({"main_id": i, "instruction": instruction, "category": "And_1", "scoring_questions": questions})
            for mode in ("direct", "think"):
                passed = 3 if (mode == "think") == helps else 1
                per_q = {str(k): int(k < passed) for k in range(3)}
                scores = {"complexbench_drfr": passed / 3, "complexbench_all_passed": float(passed == 3),
                          "per_question": per_q, "judge": "mock-judge"}
                t.write(json.dumps(Outcome(f"complexbench:{i}", mode, model, "forced-cot", "a", None, scores,
                                           10, 50 if mode == "direct" else 200, 0, 0.1, "v1").to_json()) + "\n")
    data = tmp_path / "cb.json"
    data.write_text(json.dumps(items, ensure_ascii=False))
    return data, table


def test_train_mixes_ifeval_and_complexbench_by_requirements(tmp_path, capsys):
    ifeval_data, ifeval_table = _write_fixture(tmp_path)
    cb_data, cb_table = _write_complexbench(tmp_path)
    out = tmp_path / "artifact"
    assert train_main(["--outcomes", str(ifeval_table), "--outcomes", str(cb_table), "--data", f"ifeval={ifeval_data}",
                       "--data", f"complexbench={cb_data}", "--out", str(out), "--repeats", "0",
                       "--estimator", "linear", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["examples"] == 160 and result["metric"] == "inst_level_loose+complexbench_drfr"
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["dataset"]["name"] == "ifeval+complexbench"
    # The mixing rule: accuracy is the share of all requirements met (1 instruction per IFEval prompt,
    # 3 scoring questions per ComplexBench instruction). Recompute `never` on the held-out half by hand.
    direct = {}
    for table in (ifeval_table, cb_table):
        for line in table.read_text().splitlines():
            row = json.loads(line)
            if row["mode"] == "direct":
                per = row["scores"].get("per_instruction") or row["scores"]["per_question"]
                direct[row["id"]] = (sum(per.values()), len(per))
    held = meta["extra"]["held_out_ids"]
    met, total = (sum(direct[i][k] for i in held) for k in (0, 1))
    assert result["held_out"]["never_accuracy"] == pytest.approx(100 * met / total)
    assert any(i.startswith("complexbench:") for i in held) and any(i.startswith("ifeval:") for i in held)

    assert train_main(["--outcomes", str(cb_table), "--data", f"complexbench={cb_data}", "--metric",
                       "inst_level_loose"]) == 2
    assert "no 'inst_level_loose' score" in capsys.readouterr().err
    cb_data, cb_table = _write_complexbench(tmp_path, model="another-model")
    assert train_main(["--outcomes", str(ifeval_table), "--outcomes", str(cb_table), "--data", f"ifeval={ifeval_data}",
                       "--data", f"complexbench={cb_data}"]) == 2
    assert "outcomes of several models (another-model, tiny-model)" in capsys.readouterr().err
