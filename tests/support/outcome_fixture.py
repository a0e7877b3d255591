"""A synthetic IFEval-style dataset and outcome table with a learnable signal (thinking helps on JSON prompts)."""

from __future__ import annotations

import json
import random

from training.records import Outcome

TOPICS = ["rain", "cats", "the moon", "bread", "rivers", "chess", "autumn", "trains", "coffee", "music",
          "glaciers", "bees", "lighthouses", "deserts", "kites"]
HELPS = "Wrap your entire response in JSON format."       # thinking helps on these prompts
HURTS = "Your entire response must be in lowercase letters."  # and hurts on these


def write_outcome_fixture(tmp_path, n=120, seed=0):
    rng = random.Random(seed)
    data, table = tmp_path / "data.jsonl", tmp_path / "outcomes.jsonl"
    with data.open("w") as d, table.open("w") as t:
        for key in range(n):
            kind = key % 3  # 0 helps, 1 hurts, 2 neutral
            constraint = [HELPS, HURTS, "Answer in about 100 words."][kind]
            prompt = f"Write a short note about {rng.choice(TOPICS)}. {constraint}"
            d.write(json.dumps({"key": key, "prompt": prompt, "instruction_id_list": ["detectable_format:json_format"],
                                "kwargs": [{}]}) + "\n")
            flip = rng.random() < 0.1  # some label noise
            direct, think = {0: (0.0, 1.0), 1: (1.0, 0.0), 2: (1.0, 1.0)}[kind]
            if flip:
                direct, think = think, direct
            for mode, score, tokens in (("direct", direct, 50), ("think", think, 200)):
                scores = {"prompt_level_strict": score, "inst_level_strict": score, "prompt_level_loose": score,
                          "inst_level_loose": score, "per_instruction": {"detectable_format:json_format": int(score)}}
                t.write(json.dumps(Outcome(f"ifeval:{key}", mode, "tiny-model", "forced-cot", "answer", None, scores,
                                           10, tokens, 0, 0.1, "v1").to_json()) + "\n")
    return data, table
