"""`thinkgate import` on small fixtures written for the project: each source format, nulls, unmatched and
near-matched prompts, a model pair and one model in two modes."""

import hashlib
import json
from pathlib import Path

import pytest

from training.import_cli import main, meta_path
from training.imports import Joiner, SourceRow, read_source
from training.outcomes import read_outcomes
from training.records import Example

FIXTURES = Path(__file__).parent / "fixtures"
IMPORTS = FIXTURES / "imports"
MINI = str(FIXTURES / "ifeval_mini.jsonl")


@pytest.fixture(autouse=True)
def _needs_scorer():
    pytest.importorskip("lm_eval", reason="IFEval scoring needs the 'eval' extra (lm-eval)")
    from training.scoring import ifeval

    try:
        ifeval.ensure_punkt_tab()
    except ifeval.MissingNLTKDataError as e:
        pytest.skip(str(e))


def _by(table: Path) -> dict[tuple[str, str], object]:
    return {(o.id, o.mode): o for o in read_outcomes(table)}


def test_model_pair_from_ifeval_and_lm_eval_files(tmp_path, capsys):
    out = tmp_path / "pair.jsonl"
    direct, think = IMPORTS / "direct_ifeval.jsonl", IMPORTS / "think_lm_eval.jsonl"
    assert main(["--data", MINI, "--direct", str(direct), "--direct-model", "small-direct",
                 "--think", str(think), "--think-model", "big-reasoner", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    outcomes = _by(out)
    # keys 1-3 have both answers; key 4 has no direct answer and is reported, not invented
    assert sorted({i for i, _ in outcomes}) == ["ifeval:1", "ifeval:2", "ifeval:3"]
    assert outcomes[("ifeval:1", "direct")].model == "small-direct"
    assert outcomes[("ifeval:1", "think")].model == "big-reasoner"
    assert {o.profile for o in outcomes.values()} == {"model-pair"}
    # re-scored here: the think answer uses commas (no_comma fails), the direct one does not
    assert outcomes[("ifeval:1", "direct")].scores["inst_level_loose"] == 1.0
    assert outcomes[("ifeval:1", "think")].scores["inst_level_loose"] == 0.5
    # a null answer is a failed answer, scored 0 and kept
    failed = outcomes[("ifeval:2", "think")]
    assert failed.answer == "" and failed.error is None and failed.scores["inst_level_loose"] == 0.0
    # no token counts in either format: unknown, never zero
    assert all(o.completion_tokens is None and o.prompt_tokens is None for o in outcomes.values())
    # the near-matched prompt (older wording) joins key 3, with its similarity reported
    assert "near match: line 3 -> ifeval:3 (similarity 0.964" in printed
    assert "unmatched: line 4: 'Summarise the plot of Hamlet in one line.'" in printed
    assert "unmatched: line 5: 'key 99'" in printed
    assert "failed answers (null or empty): 1" in printed
    assert "examples without a direct answer (left out of the table): 1 (ifeval:4)" in printed
    meta = json.loads(meta_path(out).read_text())
    assert meta["sources"]["direct"]["sha256"] == hashlib.sha256(direct.read_bytes()).hexdigest()
    assert meta["sources"]["think"]["format"] == "lm-eval" and meta["sources"]["direct"]["format"] == "ifeval"
    assert meta["sources"]["think"]["join"]["failed_answers"] == {"count": 1, "ids": ["ifeval:2"]}
    assert meta["sources"]["direct"]["join"]["near_matches"][0]["id"] == "ifeval:3"
    assert meta["sources"]["direct"]["tokens"] == "unknown"
    assert meta["command"].startswith("thinkgate import --data ")


def test_one_model_two_modes_from_plain_jsonl_with_tokens(tmp_path, capsys):
    out = tmp_path / "plain.jsonl"
    assert main(["--data", MINI, "--direct", str(IMPORTS / "direct_plain.jsonl"), "--direct-model", "m",
                 "--think", str(IMPORTS / "think_plain.jsonl"), "--think-model", "m", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    outcomes = _by(out)
    assert {o.profile for o in outcomes.values()} == {"imported"}
    think = outcomes[("ifeval:1", "think")]
    assert (think.prompt_tokens, think.completion_tokens, think.reasoning_tokens) == (20, 309, 300)
    assert outcomes[("ifeval:3", "direct")].completion_tokens == 12
    assert outcomes[("ifeval:1", "think")].answer.startswith("Tea, warm")  # the first row wins a duplicate
    assert "duplicate: line 4 (ifeval:1 already joined; kept the first)" in printed
    assert "unmatched: line 5: 'key 7'" in printed
    # both an empty string (direct, key 2) and a null (think, key 3) are failed answers
    assert outcomes[("ifeval:2", "direct")].scores["inst_level_loose"] == 0.0
    assert outcomes[("ifeval:3", "think")].scores["inst_level_loose"] == 0.0
    assert printed.count("failed answers (null or empty): 1") == 2


def test_near_match_threshold_is_a_parameter_and_never_silent(tmp_path, capsys):
    out = tmp_path / "strict.jsonl"
    assert main(["--data", MINI, "--direct", str(IMPORTS / "direct_ifeval.jsonl"), "--direct-model", "a",
                 "--think", str(IMPORTS / "think_lm_eval.jsonl"), "--think-model", "b", "--out", str(out),
                 "--near-match", "0.99"]) == 0
    printed = capsys.readouterr().out
    assert "unmatched: line 3: 'Give a title in double angular brackets" in printed
    assert sorted({o.id for o in read_outcomes(out)}) == ["ifeval:1", "ifeval:2"]


def test_ambiguous_near_match_is_unmatched():
    examples = [Example(f"ifeval:{k}", ({"role": "user", "content": text},)) for k, text in
                ((1, "Write a poem about the sea in exactly four lines."),
                 (2, "Write a poem about the sky in exactly four lines."))]
    sun = "Write a poem about the sun in exactly four lines."
    joined, report = Joiner(examples).join([SourceRow(1, "x", prompt=sun)])
    assert joined == {} and report.unmatched == [(1, sun)]


def test_bad_inputs_are_one_line_errors(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a", "response": "b"}\nnot json\n')
    args = ["--data", MINI, "--direct", str(bad), "--direct-model", "a", "--think", str(bad), "--think-model", "b"]
    assert main([*args, "--out", str(tmp_path / "t.jsonl")]) == 2
    assert f"{bad}:2: invalid JSON" in capsys.readouterr().err
    bad.write_text('{"text": "no response field"}\n')
    assert main([*args, "--out", str(tmp_path / "t.jsonl")]) == 2
    assert "not a known answer format" in capsys.readouterr().err
    bad.write_text('{"prompt": "a", "response": 3}\n')
    assert main([*args, "--out", str(tmp_path / "t.jsonl")]) == 2
    assert "'response' must be a string or null" in capsys.readouterr().err
    existing = tmp_path / "exists.jsonl"
    existing.write_text("")
    good = ["--data", MINI, "--direct", str(IMPORTS / "direct_plain.jsonl"), "--direct-model", "m",
            "--think", str(IMPORTS / "think_plain.jsonl"), "--think-model", "m", "--out", str(existing)]
    assert main(good) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err


def test_detects_each_format():
    assert read_source(IMPORTS / "think_lm_eval.jsonl")[0] == "lm-eval"
    assert read_source(IMPORTS / "direct_ifeval.jsonl")[0] == "ifeval"
    assert read_source(IMPORTS / "direct_plain.jsonl")[0] == "jsonl"


def test_real_response_files_join_key_2785_by_near_match(tmp_path, capsys):
    data = Path(__file__).resolve().parents[2].parent / "shared" / "data"
    direct = data / "ifeval-responses" / "input_response_data_gpt-4o-mini-2024-07-18.jsonl"
    if not direct.is_file():
        pytest.skip(f"the public IFEval responses are not at {direct.parent}")
    think = data / "ifeval-responses" / "input_response_data_o1-mini-2024-09-12.jsonl"
    out = tmp_path / "real.jsonl"
    assert main(["--data", str(data / "ifeval" / "input_data.jsonl"), "--direct", str(direct), "--direct-model",
                 "gpt-4o-mini", "--think", str(think), "--think-model", "o1-mini", "--out", str(out)]) == 0
    meta = json.loads(meta_path(out).read_text())
    assert [n["id"] for n in meta["sources"]["direct"]["join"]["near_matches"]] == ["ifeval:2785"]
    assert meta["sources"]["think"]["join"]["failed_answers"]["count"] == 21
    assert meta["examples_in_table"] == 541
