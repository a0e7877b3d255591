"""Threshold calibration on synthetic data with known answers."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from classifiers.calibration import Threshold, calibrate, cost_aware, evaluate, match_think_rate, maximize_accuracy


def test_max_accuracy_finds_the_separating_threshold() -> None:
    scores = [0.1, 0.2, 0.8, 0.9]
    direct = [1.0, 1.0, 0.0, 0.0]
    think = [0.0, 0.0, 1.0, 1.0]  # thinking helps exactly on the two high scores
    th = maximize_accuracy(scores, direct, think)
    assert th.method == "max_accuracy"
    assert th.value == pytest.approx(0.5)  # halfway between 0.2 and 0.8
    assert th.train_metric == 1.0
    assert th.params["think_rate"] == 0.5 and th.params["accuracy_never"] == 0.5 and th.params["accuracy_oracle"] == 1.0
    assert [th.decide(s) for s in scores] == [False, False, True, True]


def test_never_and_always() -> None:
    scores = [0.3, 0.6, 0.9]
    never = maximize_accuracy(scores, direct=[1, 1, 1], think=[0, 0.5, 0])
    assert never.value == math.inf and never.params["think_rate"] == 0.0 and never.train_metric == 1.0
    always = maximize_accuracy(scores, direct=[0, 0, 0], think=[1, 1, 1])
    assert always.value == 0.3 and always.params["think_rate"] == 1.0


def test_ties_go_to_fewer_thinks() -> None:
    # thinking on the top example changes nothing: same accuracy, so do not think
    th = maximize_accuracy([0.2, 0.9], direct=[1, 1], think=[0, 1])
    assert th.value == math.inf


def test_tied_scores_are_never_split() -> None:
    scores = [0.5, 0.5, 0.5, 0.1]
    th = maximize_accuracy(scores, direct=[0, 0, 1, 1], think=[1, 1, 0, 0])
    assert th.value in (0.3, math.inf) or th.value == pytest.approx(0.3)
    mask = np.asarray(scores) >= th.value
    assert mask[:3].all() or not mask[:3].any()


def test_matches_brute_force_on_random_data() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        n = int(rng.integers(5, 60))
        scores = np.round(rng.random(n), 2)  # with ties
        direct, think = rng.random(n), rng.random(n)
        th = maximize_accuracy(scores, direct, think)
        cands = np.r_[np.unique(scores), np.inf]
        best = max(np.where(scores >= c, think, direct).mean() for c in cands)
        assert th.train_metric == pytest.approx(best)
        assert np.where(scores >= th.value, think, direct).mean() == pytest.approx(best)


def test_think_rate_target() -> None:
    scores = np.linspace(0, 1, 10)
    th = match_think_rate(scores, 0.3)
    assert th.method == "think_rate" and th.train_metric == pytest.approx(0.3)
    assert (scores >= th.value).mean() == pytest.approx(0.3)
    assert match_think_rate(scores, 0.0).value == math.inf
    assert (scores >= match_think_rate(scores, 1.0).value).all()
    with_outcomes = match_think_rate(scores, 0.5, direct=np.zeros(10), think=np.ones(10))
    assert with_outcomes.params["accuracy"] == pytest.approx(0.5)
    with pytest.raises(ValueError):
        match_think_rate(scores, 1.5)


def test_cost_aware() -> None:
    scores = [0.1, 0.5, 0.9]
    direct = [0.0, 0.0, 0.0]
    think = [0.1, 0.1, 0.5]
    tokens = [100, 100, 100]
    free = cost_aware(scores, direct, think, tokens, cost_penalty=0.0)
    assert free.value == maximize_accuracy(scores, direct, think).value == 0.1
    # 100 tokens at 0.002 per token cost 0.2 accuracy: only the 0.5 gain is worth it
    mid = cost_aware(scores, direct, think, tokens, cost_penalty=0.002)
    assert mid.value == pytest.approx(0.7) and mid.params["think_rate"] == pytest.approx(1 / 3)
    assert mid.params["mean_extra_cost"] == pytest.approx(100 / 3)
    assert mid.train_metric == pytest.approx((0.5 - 0.2) / 3)
    assert cost_aware(scores, direct, think, tokens, cost_penalty=1.0).value == math.inf


def test_calibrate_dispatch_and_errors() -> None:
    s, d, t = [0.1, 0.9], [1, 0], [0, 1]
    assert calibrate(s, direct=d, think=t).method == "max_accuracy"
    assert calibrate(s, "think_rate", rate=0.5).method == "think_rate"
    assert calibrate(s, "cost", direct=d, think=t, extra_cost=[1, 1], cost_penalty=0.0).method == "cost"
    with pytest.raises(ValueError, match="needs direct, think"):
        calibrate(s)
    with pytest.raises(ValueError, match="unknown calibration method"):
        calibrate(s, "magic")
    with pytest.raises(ValueError, match="expected 2 values"):
        maximize_accuracy(s, [1], [0])
    with pytest.raises(ValueError, match="finite"):
        maximize_accuracy([np.nan, 1], d, t)
    with pytest.raises(ValueError):
        maximize_accuracy([], [], [])


def test_threshold_json_round_trip() -> None:
    for value in (0.42, math.inf, -math.inf):
        th = Threshold(value, "max_accuracy", {"n": 3, "accuracy": 0.5}, float("nan"))
        data = json.loads(json.dumps(th.to_json()))  # strict JSON
        back = Threshold.from_json(data)
        assert back.value == value and back.method == th.method and dict(back.params) == dict(th.params)
        assert math.isnan(back.train_metric)
    assert float(Threshold(0.25, "x")) == 0.25
    with pytest.raises(AttributeError):  # frozen (dataclasses.FrozenInstanceError)
        Threshold(0.1, "x").value = 0.2  # type: ignore[misc]


def test_evaluate_on_held_out() -> None:
    out = evaluate(Threshold(0.5, "x"), [0.2, 0.8], direct=[1, 0], think=[0, 1], extra_cost=[10, 30])
    assert out["accuracy"] == 1.0 and out["think_rate"] == 0.5 and out["mean_extra_cost"] == 15.0
    assert out["accuracy_always"] == 0.5 and out["accuracy_never"] == 0.5


def test_thresholds_compare_by_decision_not_training_metric() -> None:
    assert Threshold(0.5, "default") == Threshold(0.5, "default")  # NaN train_metric does not break ==
    assert Threshold(0.5, "default") != Threshold(0.6, "default")
    assert hash(Threshold(0.5, "x", {"a": 1})) == hash(Threshold(0.5, "x", {"a": 2}))


def test_budget_keeps_the_most_accurate_threshold_that_fits():
    from classifiers.calibration import within_budget

    scores = [0.9, 0.7, 0.5, 0.1]
    direct, think = [0, 0, 0, 1], [1, 1, 1, 0]
    dollars = [0.01, 0.03, 0.01, 0.01]  # what thinking costs beyond direct, per example
    # budget 0.01/request: thinking on the first two costs 0.04/4 = 0.01 -> fits; adding the third does not
    th = within_budget(scores, direct, think, dollars, 0.01)
    assert th.method == "budget" and 0.5 < th.value <= 0.7
    assert th.params["think_rate"] == 0.5 and th.params["mean_extra_cost"] == pytest.approx(0.01)
    assert within_budget(scores, direct, think, dollars, 0.0).value == math.inf
    assert calibrate(scores, "budget", direct=direct, think=think, extra_cost=dollars, budget=1.0).params[
        "think_rate"] == 0.75
    with pytest.raises(ValueError, match="budget must be"):
        within_budget(scores, direct, think, dollars, -1)
    with pytest.raises(ValueError, match="some are unknown"):
        within_budget(scores, direct, think, [0.01, math.nan, 0.0, 0.0], 1.0)
    with pytest.raises(ValueError, match="needs budget"):
        calibrate(scores, "budget", direct=direct, think=think, extra_cost=dollars)
