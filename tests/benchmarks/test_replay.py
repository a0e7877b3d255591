"""Replay benchmark: arms on a hand-computed fixture, and the CLI on an imported table."""

import json
from pathlib import Path

import pytest

from benchmarks.replay.arms import ARMS, Context, Row, register_arm
from benchmarks.replay.cli import main
from benchmarks.replay.results import build
from router.pricing import PriceTable
from training.costs import CostModel
from training.outcomes import Pair
from training.records import Outcome


def _outcome(id_: str, mode: str, inst: float, n: int, out_tokens: int) -> Outcome:
    followed = round(inst * n)
    per = {f"type:i{k}": int(k < followed) for k in range(n)}
    return Outcome(id=id_, mode=mode, model="small" if mode == "direct" else "reasoner", profile="model-pair",
                   answer="a", reasoning=None,
                   scores={"inst_level_loose": inst, "inst_level_strict": inst, "prompt_level_loose": float(inst == 1),
                           "prompt_level_strict": float(inst == 1), "per_instruction": per},
                   prompt_tokens=100, completion_tokens=out_tokens, reasoning_tokens=0, latency_s=None,
                   dataset_version="v")


# (id, instructions, direct inst-loose, think inst-loose, classifier score)
CASES = [("A", 1, 1.0, 0.0, 0.9), ("B", 2, 0.5, 1.0, 0.8), ("C", 1, 0.0, 0.0, 0.1), ("D", 2, 1.0, 1.0, 0.2)]
PRICES = PriceTable({"small": {"input_per_mtok": 1, "output_per_mtok": 2},
                     "reasoner": {"input_per_mtok": 10, "output_per_mtok": 40}})


def _rows() -> list[Row]:
    costs = CostModel(PRICES)
    rows = []
    for id_, n, d, t, score in CASES:
        pair = Pair(id_, _outcome(id_, "direct", d, n, 100), _outcome(id_, "think", t, n, 1000))
        rows.append(Row(id_, "prompt", pair, {m: costs.spend(pair.of(m), "prompt") for m in ("direct", "think")},
                        score))
    return rows


def test_replay_equals_hand_computed_result():
    results = build(_rows(), ["never", "always", "random", "classifier", "oracle"], Context(threshold=0.5, rate=0.5),
                    resamples=200)
    arms = results.arms
    # 6 instructions: never follows 1+1+0+2, always 0+2+0+2, oracle 1+2+0+2 (D is a tie: direct)
    assert arms["never"].metrics["inst_level_loose"] == pytest.approx(66.67)
    assert arms["always"].metrics["inst_level_loose"] == pytest.approx(66.67)
    assert arms["oracle"].metrics["inst_level_loose"] == pytest.approx(83.33)
    assert arms["oracle"].think_rate == 0.25
    # classifier thinks on A and B (scores >= 0.5): 0 + 2 + 0 + 2
    assert arms["classifier"].metrics["inst_level_loose"] == pytest.approx(66.67)
    assert arms["classifier"].think_rate == 0.5
    assert arms["classifier"].metrics["prompt_level_loose"] == 50.0
    # direct call: (100*1 + 100*2)/1e6 USD; think: (100*10 + 1000*40)/1e6 USD; per 1,000 requests
    assert arms["never"].usd_per_1k == pytest.approx(0.3)
    assert arms["always"].usd_per_1k == pytest.approx(41.0)
    assert arms["classifier"].usd_per_1k == pytest.approx((0.3 + 41.0) / 2)
    assert arms["oracle"].usd_per_1k == pytest.approx(0.25 * 41.0 + 0.75 * 0.3)
    assert arms["random"].usd_per_1k == pytest.approx((0.3 + 41.0) / 2)
    assert arms["random"].output_tokens == pytest.approx(550.0)
    # the curve: never, then think on A, A+B, A+B+D, all
    assert [round(p.accuracy, 2) for p in results.curve] == [66.67, 50.0, 66.67, 66.67, 66.67]
    assert [p.think_rate for p in results.curve] == [0.0, 0.25, 0.5, 0.75, 1.0]
    goal = results.goal
    assert goal["best_fixed"] == "never" and goal["gain"] == 0.0
    assert goal["needed_gain"] == pytest.approx(16.67 / 3, abs=0.01)
    assert not goal["gain_ok"] and not goal["think_rate_ok"]
    oracle_vs_never = next(c for c in results.comparisons if (c.arm, c.reference) == ("oracle", "never"))
    assert oracle_vs_never.diff == pytest.approx(16.67)


def test_a_registered_arm_replays_with_its_own_calls_and_cost():
    from benchmarks.replay.arms import Choice, answer

    def escalate(row: Row, ctx: Context) -> Choice:  # direct first; a second call when it failed anything
        first = answer(row, "direct")
        if first.metrics["inst_level_loose"] == 1.0:
            return first
        second = answer(row, "think")
        return Choice(1.0, 2.0, first.prompt_tokens + second.prompt_tokens,
                      first.output_tokens + second.output_tokens, first.usd + second.usd, second.metrics)

    register_arm("test-escalate", escalate, "test double of a guard")
    try:
        arm = build(_rows(), ["test-escalate"], Context()).arms["test-escalate"]
    finally:
        del ARMS["test-escalate"]
    # B and C escalate: followed 1 + 2 + 0 + 2 of 6; calls 1,2,2,1
    assert arm.metrics["inst_level_loose"] == pytest.approx(83.33)
    assert arm.calls == 1.5 and arm.think_rate == 0.5
    assert arm.usd_per_1k == pytest.approx(0.3 + 0.5 * 41.0)


def test_cli_on_an_imported_table_estimates_tokens_and_says_so(tmp_path, capsys):
    pytest.importorskip("lm_eval", reason="importing re-scores with the 'eval' extra")
    from training.import_cli import main as import_main
    from training.scoring import ifeval

    try:
        ifeval.ensure_punkt_tab()
    except ifeval.MissingNLTKDataError as e:
        pytest.skip(str(e))
    fixtures = Path(__file__).parents[1] / "training" / "fixtures"
    mini = str(fixtures / "ifeval_mini.jsonl")
    table = tmp_path / "t.jsonl"
    assert import_main(["--data", mini, "--direct", str(fixtures / "imports" / "direct_ifeval.jsonl"),
                        "--direct-model", "small", "--think", str(fixtures / "imports" / "think_lm_eval.jsonl"),
                        "--think-model", "reasoner", "--out", str(table)]) == 0
    prices = tmp_path / "prices.toml"
    prices.write_text('[models.small]\ninput_per_mtok = 1\noutput_per_mtok = 2\n'
                      '[models.reasoner]\ninput_per_mtok = 10\noutput_per_mtok = 40\n')
    out = tmp_path / "report"
    capsys.readouterr()
    assert main([str(table), "--data", mini, "--arms", "never,always,oracle", "--prices", str(prices),
                 "--reasoning-tokens", "500", "--out", str(out), "--resamples", "100"]) == 0
    printed = capsys.readouterr().out
    assert "tokens ESTIMATED from characters (4 characters per token)" in printed
    assert "assumed 500 hidden reasoning tokens" in printed
    results = json.loads((out / "results.json").read_text())
    assert set(results["arms"]) == {"never", "always", "oracle"} and results["arms"]["never"]["n"] == 3
    assert (out / "curve.png").stat().st_size > 0 and "## Goal" in (out / "report.md").read_text()
    # a model without a price is an error naming it, never a silent zero
    prices.write_text('[models.small]\ninput_per_mtok = 1\noutput_per_mtok = 2\n')
    assert main([str(table), "--data", mini, "--arms", "never,always", "--prices", str(prices)]) == 2
    assert "no price for model 'reasoner'" in capsys.readouterr().err
    assert main([str(table), "--data", mini, "--arms", "never,classifier"]) == 2
    assert "needs --artifact" in capsys.readouterr().err
