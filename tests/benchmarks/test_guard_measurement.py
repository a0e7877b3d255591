"""The guard's measurement: verifier confusion against gold verdicts, kind choice, and the replay rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import guard_replay, verifiers
from benchmarks.answer_sets import AnswerSet, held_out_ids
from benchmarks.guard_replay import guard_pick, replay
from benchmarks.verifiers import Confusion, choose_kinds, confusions, gold_for_detections
from classifiers.constraints import detect_constraints
from training.records import Constraint, Example

PROMPT = "Write about tea in all lowercase letters and do not use any commas."
LOWER, COMMA = "change_case:english_lowercase", "punctuation:no_comma"


def _example(eid: str, prompt: str = PROMPT) -> Example:
    return Example(eid, ({"role": "user", "content": prompt},), (Constraint(LOWER), Constraint(COMMA)))


def test_guard_pick_keeps_a_passing_direct_answer_without_a_second_call():
    found = detect_constraints(PROMPT)
    assert guard_pick(found, "tea is warm and kind", "unused", None).escalated is False


def test_guard_pick_escalates_on_a_failed_check_and_keeps_the_better_answer():
    found = detect_constraints(PROMPT)
    better = guard_pick(found, "Tea, warm.", "tea is warm", None)
    assert (better.escalated, better.kept) == (True, "escalated")
    tie = guard_pick(found, "Tea, warm.", "Tea, hot.", None)
    assert (tie.escalated, tie.kept) == (True, "direct")  # ties go to the cheaper answer


def test_guard_pick_ignores_failures_of_kinds_it_does_not_act_on():
    found = detect_constraints(PROMPT)
    assert guard_pick(found, "tea, warm", "tea warm", {LOWER}).escalated is False
    assert guard_pick(found, "tea, warm", "tea warm", {COMMA}).kept == "escalated"


def test_replay_counts_accuracy_escalation_and_calls():
    examples = {f"x:{i}": _example(f"x:{i}") for i in range(4)}
    direct = AnswerSet("d", {"x:0": "tea is warm", "x:1": "Tea, warm.", "x:2": "Tea, warm.", "x:3": None},
                       {"x:0": [True, True], "x:1": [False, False], "x:2": [False, False], "x:3": [False, False]})
    think = AnswerSet("t", {"x:0": "TEA", "x:1": "tea is warm", "x:2": "Tea, hot.", "x:3": "tea"},
                      {"x:0": [False, True], "x:1": [True, True], "x:2": [False, False], "x:3": [True, True]})
    r = replay(examples, direct, think, set(examples), None)
    assert (r.n, r.escalation_rate, r.calls_per_request) == (4, 0.75, 1.75)
    assert r.never == pytest.approx(100 * 2 / 8) and r.always == pytest.approx(100 * 5 / 8)
    assert r.oracle == pytest.approx(100 * 6 / 8) and r.guard == pytest.approx(100 * 6 / 8)
    assert r.headroom == pytest.approx(1.0)


def test_gold_matching_prefers_the_instruction_with_the_same_parameters():
    ex = Example("x:1", ({"role": "user", "content": "p"},), (
        Constraint("length_constraints:number_words", {"relation": "at least", "num_words": 5}),
        Constraint("length_constraints:number_words", {"relation": "less than", "num_words": 50}),
    ))
    found = [d for d in detect_constraints("Use fewer than 50 words.")]
    assert gold_for_detections(ex, found, [True, False]) == [False]
    other = detect_constraints("Wrap it all in JSON.")  # no IFEval instruction of that kind: the prompt's verdict
    assert gold_for_detections(ex, other, [True, False]) == [False]


def test_confusion_and_kind_choice():
    examples = {"x:1": _example("x:1")}
    s = AnswerSet("s", {"x:1": "Tea, warm."}, {"x:1": [True, False]})  # gold: the capital is fine (loose), the comma not
    table = confusions(examples, [s], {"x:1"})
    assert table[COMMA].true_alarms == 1 and table[LOWER].false_alarms == 1
    assert choose_kinds(table, 0.9, 1) == [COMMA]
    c = Confusion()
    for status, ok in (("fail", False), ("fail", True), ("pass", False), ("cannot_tell", True)):
        c.add(status, ok)
    assert (c.alarms, c.precision, c.misses, c.cannot_tell, c.n) == (2, 0.5, 1, 1, 4)


# ------------------------------------------------------------------------------------ the two commands


def _write_fixture(root: Path) -> None:
    """A tiny data folder: two training-half prompts and two held-out ones (ids from the shipped artifact)."""
    held = sorted(held_out_ids())[:2]
    train = ["ifeval:1000", "ifeval:1002"]
    assert not set(train) & set(held)
    prompts = {}
    for i, eid in enumerate(train + held):
        prompts[eid] = f"Write about tea number {i} in all lowercase letters and do not use any commas."
    (root / "ifeval").mkdir(parents=True)
    with (root / "ifeval" / "input_data.jsonl").open("w") as f:
        for eid, p in prompts.items():
            f.write(json.dumps({"key": int(eid.split(":")[1]), "prompt": p,
                                "instruction_id_list": [LOWER, COMMA], "kwargs": [{}, {}]}) + "\n")
    answers = {"gpt-4o-mini": ["Tea, warm.", "tea is warm", "Tea, warm.", "tea is kind"],
               "o1-mini": ["tea is warm", "tea, warm", "tea is calm", None]}
    (root / "ifeval-responses").mkdir()
    for name, fname in (("gpt-4o-mini", "input_response_data_gpt-4o-mini-2024-07-18.jsonl"),
                        ("o1-mini", "input_response_data_o1-mini-2024-09-12.jsonl")):
        with (root / "ifeval-responses" / fname).open("w") as f:
            for p, a in zip(prompts.values(), answers[name]):
                f.write(json.dumps({"prompt": p, "response": a}) + "\n")


@pytest.fixture(scope="module")
def fixture_data(tmp_path_factory):
    pytest.importorskip("lm_eval", reason="gold scoring needs the 'eval' extra (lm-eval)")
    from training.scoring.ifeval import MissingNLTKDataError, ensure_punkt_tab

    try:
        ensure_punkt_tab()
    except MissingNLTKDataError as e:
        pytest.skip(str(e))
    root = tmp_path_factory.mktemp("data")
    _write_fixture(root)
    return root


def test_bench_verifiers_and_guard_replay_write_their_reports(fixture_data, tmp_path):
    common = ["--data", str(fixture_data), "--table", str(tmp_path / "absent.jsonl"),
              "--cache", str(tmp_path / "cache.json"), "--no-progress"]
    kinds = tmp_path / "kinds.json"
    rc = verifiers.main([*common, "--min-precision", "0.5", "--min-alarms", "1", "--out", str(tmp_path / "v.md"),
                         "--kinds-out", str(kinds)])
    assert rc == 0
    chosen = json.loads(kinds.read_text())
    assert COMMA in chosen["kinds"] and chosen["min_precision"] == 0.5
    report = (tmp_path / "v.md").read_text()
    assert "| punctuation:no_comma |" in report and "Command: `thinkgate bench verifiers" in report
    assert (tmp_path / "cache.json").exists()
    rc = guard_replay.main([*common, "--kinds", str(kinds), "--out", str(tmp_path / "g.md")])
    assert rc == 0
    text = (tmp_path / "g.md").read_text()
    assert "| gpt-4o-mini -> o1-mini | acted-on kinds | 2 |" in text


def test_bench_commands_explain_missing_inputs(tmp_path, capsys):
    assert guard_replay.main(["--kinds", str(tmp_path / "nope.json")]) == 2
    assert "cannot load" in capsys.readouterr().err
    assert verifiers.main(["--data", str(tmp_path)]) == 2
    assert "cannot load" in capsys.readouterr().err
