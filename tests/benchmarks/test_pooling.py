"""`thinkgate bench pooling` on two synthetic tables over the same prompts (same signal, different strength)."""

import json

from benchmarks.pooling import main
from training.records import Outcome

HELPS = "Wrap your entire response in JSON format."
HURTS = "Your entire response must be in lowercase letters."


def _tables(tmp_path, n=90):
    data = tmp_path / "data.jsonl"
    tables = [tmp_path / "a.jsonl", tmp_path / "b.jsonl"]
    with data.open("w") as d:
        for key in range(n):
            prompt = f"Write note {key} about rain. {[HELPS, HURTS, 'Be brief.'][key % 3]}"
            d.write(json.dumps({"key": key, "prompt": prompt, "instruction_id_list": ["punctuation:no_comma"],
                                "kwargs": [{}]}) + "\n")
    for k, table in enumerate(tables):
        with table.open("w") as t:
            for key in reversed(range(n)) if k else range(n):  # a different order in each table
                direct, think = {0: (0.0, 1.0), 1: (1.0, 0.0), 2: (1.0, 1.0)}[key % 3]
                if k and key % 9 == 0:
                    direct, think = think, direct  # the second model differs on some prompts
                for mode, score in (("direct", direct), ("think", think)):
                    scores = {m: score for m in ("prompt_level_strict", "inst_level_strict", "prompt_level_loose",
                                                 "inst_level_loose")} | {"per_instruction": {"x": int(score)}}
                    t.write(json.dumps(Outcome(f"ifeval:{key}", mode, f"m{k}", "p", "", None, scores, None, None,
                                               None, None, "v").to_json()) + "\n")
    return data, tables


def test_pooling_reports_both_models_per_table(tmp_path, capsys):
    data, tables = _tables(tmp_path)
    assert main([str(t) for t in tables] + ["--data", str(data), "--repeats", "1", "--budget", "0.5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: [float(x) for x in line.split()[1:]] for line in lines[2:]}
    assert set(rows) == {"a.jsonl", "b.jsonl"}
    separate, pooled, never, always, random_, oracle, rate_sep, rate_pool = rows["a.jsonl"]
    # the JSON prompts gain from thinking: both models learn to think there, within the 50% budget
    assert separate > max(never, always) + 10 and pooled > max(never, always) + 10
    assert oracle >= separate and 0.2 < rate_sep <= 0.5 and 0.2 < rate_pool <= 0.5


def test_pooling_needs_shared_prompts(tmp_path, capsys):
    data, tables = _tables(tmp_path, n=12)
    assert main([str(t) for t in tables] + ["--data", str(data)]) == 2
    assert "share only 12 examples" in capsys.readouterr().err
