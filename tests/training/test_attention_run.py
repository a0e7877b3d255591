"""Grouping, the resumable per-prompt loop, the report, and `thinkgate analyze attention` end to end."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from support.local_model import slow
from training.analyze_cli import main
from training.attention import run as runner
from training.attention.report import write_report
from training.labels import build_training_set
from training.outcomes import pair_outcomes
from training.records import Example, Outcome

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("THINKGATE_DATA_DIR") or ROOT / ".." / "shared" / "data")
TABLE = ROOT / "training" / "outcome_tables" / "smollm2-135m-ifeval.jsonl"
ARTIFACT = ROOT / "classifiers" / "artifacts" / "smollm2-135m-ifeval"

PROMPTS = {  # id -> (prompt, direct score, think score)
    "ifeval:1": ("Tell me a joke about cats. Your entire response should be in lowercase letters.", 0.0, 1.0),
    "ifeval:2": ("Write a poem about rain. Answer with at most 50 words.", 1.0, 0.0),
    "ifeval:3": ("Describe the moon. Do not use any commas in your response.", 1.0, 1.0),
    "ifeval:4": ("Tell me about the history of Rome.", 0.0, 0.5),
    "ifeval:5": ("Write a story about bees. Wrap your entire response in JSON format.", 0.5, 0.0),
}


def _outcome(ex_id: str, mode: str, score: float) -> Outcome:
    scores = {k: score for k in ("prompt_level_strict", "inst_level_strict", "prompt_level_loose", "inst_level_loose")}
    return Outcome(ex_id, mode, "tiny", "forced-cot", f"the {mode} answer", "some reasoning" if mode == "think" else None,
                   {**scores, "per_instruction": {"x:y": int(score)}}, 10, 20, 5 if mode == "think" else 0, 0.1, "v1")


def _jobs():
    outcomes = [_outcome(i, m, s) for i, (_, d, t) in PROMPTS.items() for m, s in (("direct", d), ("think", t))]
    examples = {i: Example(i, ({"role": "user", "content": p},)) for i, (p, _, _) in PROMPTS.items()}
    pairs = pair_outcomes(outcomes)
    return runner.make_jobs(build_training_set(pairs, examples), pairs, examples)


def test_jobs_are_grouped_by_the_tables_verdict_win_first():
    jobs = _jobs()
    assert [(j.id, j.group) for j in jobs] == [("ifeval:1", "WIN"), ("ifeval:4", "WIN"), ("ifeval:2", "LOSE"),
                                               ("ifeval:5", "LOSE"), ("ifeval:3", "TIE")]
    assert jobs[0].reasoning == "some reasoning" and jobs[0].answer_think == "the think answer"
    assert jobs[2].gain == -1.0


def test_run_is_resumable_and_leaves_out_prompts_without_a_span(tmp_path):
    pytest.importorskip("transformers")
    from support.tiny_tokenizer import tiny_tokenizer

    tok = tiny_tokenizer([p for p, _, _ in PROMPTS.values()] + ["the direct think answer some reasoning user"])
    calls = []

    def fake_alpha(seq):
        calls.append(seq)
        steps = len(seq.ids) - seq.prompt_len
        value = 0.01 if seq.think_len else 0.02  # the CoT run attends less
        return {"constraint": np.full((3, steps), value), "control": np.full((3, steps), value / 2)}

    jobs = _jobs()
    out = tmp_path / "per_prompt.jsonl"
    assert runner.run(jobs[:2], out, tok, fake_alpha, max_answer_tokens=None, progress=False) == 2
    with out.open("a") as f:
        f.write('{"id": "ifeval:2", "gro')  # a torn line from an interrupted write
    assert runner.run(jobs, out, tok, fake_alpha, max_answer_tokens=None, progress=False) == 3
    records = {r["id"]: r for r in runner.read_results(out)}
    assert sorted(records) == sorted(PROMPTS)
    assert records["ifeval:4"]["skipped"] == "no constraint span"
    assert len(calls) == 2 * 4  # two runs for each prompt with a span, none for the one without
    r = records["ifeval:1"]
    assert r["group"] == "WIN" and r["constraint_tokens"] > 0

    def failing(seq):
        raise RuntimeError("out of memory")

    out2 = tmp_path / "again" / "per_prompt.jsonl"
    assert runner.run(jobs[:1], out2, tok, failing, max_answer_tokens=None, progress=False) == 1
    assert runner.read_results(out2)[0]["error"] == "RuntimeError: out of memory"
    assert runner.run(jobs[:1], out2, tok, fake_alpha, max_answer_tokens=None, progress=False) == 1  # retried
    assert "error" not in runner.read_results(out2)[0]
    assert r["base"]["beta"] == [0.02] * 3 and r["cot"]["beta"] == [0.01] * 3
    assert r["base"]["beta_control"] == [0.01] * 3 and r["control_tokens"] > 0
    assert r["cot"]["answer_start"] > 0 == r["base"]["answer_start"]


def _synthetic_records(rng, n=40):
    records = []
    for k in range(n):
        group = ("WIN", "LOSE", "TIE")[k % 3]
        base = rng.uniform(3, 5, size=6) * 1e-3
        drop = {"WIN": 0.2, "LOSE": 1.5, "TIE": 0.8}[group] * 1e-3 + rng.normal(0, 0.1e-3, 6)
        trace = list(rng.uniform(0, 4e-3, size=80))
        records.append({"id": f"ifeval:{k}", "group": group, "gain": {"WIN": 1.0, "LOSE": -1.0, "TIE": 0.0}[group],
                        "direct_score": 0.5, "think_score": float(rng.uniform()), "reasoning_tokens": int(rng.integers(5, 160)),
                        "constraint_tokens": 5, "seconds": 1.0, "peak_rss_mb": 900.0,
                        "base": {"beta": list(base), "trace": trace[:30], "answer_start": 0, "answer_tokens": 30,
                                 "tokens": 60, "beta_control": [2e-3] * 6},
                        "cot": {"beta": list(base - drop), "trace": trace, "answer_start": 50, "answer_tokens": 30,
                                "tokens": 110, "beta_control": [2e-3] * 6}})
    records.append({"id": "ifeval:x", "group": "TIE", "gain": 0.0, "direct_score": 0.0, "think_score": 0.0,
                    "reasoning_tokens": 10, "skipped": "no constraint span"})
    return records


def test_report_states_the_verdict_the_numbers_support(tmp_path):
    headline = write_report(_synthetic_records(np.random.default_rng(0)), tmp_path, command="thinkgate analyze …",
                            artifact=None, examples={}, max_answer_tokens=64)
    text = (tmp_path / "README.md").read_text()
    assert "CoT lowers constraint attention on this model" in headline
    assert "The drop is larger where thinking hurt" in text
    assert "The drop is specific to the constraints" in text  # the other tokens' attention did not move
    assert "1 (no constraint span: TIE 1)" in text and "WIN 14, LOSE 13, TIE 13" in text
    assert (tmp_path / "fig1_traces.png").stat().st_size > 10_000
    assert (tmp_path / "fig2_delta_beta.png").stat().st_size > 10_000
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["lose_minus_win"][1] > 0  # the interval of LOSE - WIN excludes 0
    assert summary["left_out"] == {"no constraint span": 1}


def test_report_says_when_there_is_no_drop(tmp_path):
    records = _synthetic_records(np.random.default_rng(1))
    for r in records:
        if "cot" in r:
            r["cot"]["beta"] = r["base"]["beta"]
    headline = write_report(records, tmp_path, command="c", artifact=None, examples={}, max_answer_tokens=None)
    assert "does not measurably lower" in headline
    assert "not distinguishably larger" in headline
    assert "loses about as much attention" in headline


def test_bad_input_is_reported_without_a_traceback(tmp_path, capsys):
    assert main(["attention", "--outcomes", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path)]) == 2
    assert "no example has error-free outcomes" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n{}\n")
    assert main(["attention", "--outcomes", str(bad), "--out", str(tmp_path)]) == 2
    assert "bad.jsonl:1" in capsys.readouterr().err
    assert main(["attention", "--outcomes", str(bad), "--out", str(tmp_path), "--max-answer-tokens", "-1"]) == 2
    assert main(["nonsense"]) == 2
    assert main(["--help"]) == 0


class TestEmbeddedModel:
    pytestmark = slow

    def test_analyze_attention_on_the_embedded_model(self, tmp_path, capsys):
        data = DATA / "ifeval" / "input_data.jsonl"
        if not data.is_file():
            pytest.skip(f"IFEval prompts not found at {data} (set THINKGATE_DATA_DIR)")
        for module in ("torch", "transformers", "gguf"):
            pytest.importorskip(module)
        from router.cli import main as thinkgate

        cache = os.environ.get("THINKGATE_MODEL_CACHE") or str(tmp_path / "model-cache")
        args = ["analyze", "attention", "--outcomes", str(TABLE), "--data", str(data), "--out", str(tmp_path / "out"),
                "--limit", "3", "--max-answer-tokens", "16", "--cache-dir", cache, "--artifact", str(ARTIFACT),
                "--no-progress"]
        assert thinkgate(args) == 0
        out = capsys.readouterr().out
        assert "measured" in out and "report:" in out
        records = runner.read_results(tmp_path / "out" / "per_prompt.jsonl")
        assert len(records) == 3 and all(r["group"] == "WIN" for r in records)  # WIN prompts come first
        assert not any("skipped" in r for r in records)  # these three have spans; the template maps them
        for r in records:
            assert r["constraint_tokens"] > 0
            assert len(r["base"]["beta"]) == len(r["cot"]["beta"]) == 30  # SmolLM2-135M has 30 layers
            assert r["base"]["answer_tokens"] <= 16 and r["cot"]["answer_start"] > 0
            assert all(0 <= v <= 1 for v in r["base"]["trace"] + r["cot"]["trace"])
        assert (tmp_path / "out" / "README.md").is_file()
        assert thinkgate(args) == 0  # resumed: nothing left to measure, the report is rewritten
        assert len(runner.read_results(tmp_path / "out" / "per_prompt.jsonl")) == 3


def test_shards_write_their_own_files_and_are_read_together(tmp_path):
    from training.analyze_cli import _shard

    assert _shard(None) is None and _shard("1/3") == (1, 3)
    for bad in ("2/2", "a/2", "1", "-1/2"):
        with pytest.raises(ValueError, match="K/N"):
            _shard(bad)
    plain, shard = runner.results_file(tmp_path), runner.results_file(tmp_path, (1, 2))
    assert plain.name == "per_prompt.jsonl" and shard.name == "per_prompt.shard-1-of-2.jsonl"
    plain.write_text('{"id": "a", "v": 1}\n{"id": "b", "v": 1}\n')
    shard.write_text('{"id": "c", "v": 2}\n')
    assert sorted(r["id"] for r in runner.read_all_results(tmp_path)) == ["a", "b", "c"]
