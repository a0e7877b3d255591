import json
import logging
import os
from pathlib import Path

import pytest

from training.datasets import (
    DatasetError,
    UnknownDatasetError,
    dataset_names,
    dataset_version,
    file_version,
    load,
    load_examples,
)
from training.records import Constraint

FIXTURES = Path(__file__).parent / "fixtures"
DATA = Path(os.environ.get("THINKGATE_DATA_DIR") or Path(__file__).resolve().parents[2] / ".." / "shared" / "data")


def needs_data(*parts: str) -> Path:
    path = DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"reference data not found at {path} (set THINKGATE_DATA_DIR)")
    return path


def test_registry_names():
    assert {"ifeval", "complexbench", "jsonl", "decision-log"} <= set(dataset_names())


def test_unknown_name_lists_close_matches():
    with pytest.raises(UnknownDatasetError) as e:
        load_examples("ifevl", FIXTURES / "ifeval_mini.jsonl")
    assert isinstance(e.value, KeyError)
    assert "'ifeval'" in str(e.value) and "did you mean" in str(e.value)


def test_missing_file_is_clear(tmp_path):
    with pytest.raises(DatasetError, match="file not found"):
        load_examples("ifeval", tmp_path / "nope.jsonl")


# ---------------------------------------------------------------------------------------------- IFEval


def test_ifeval_fixture():
    ex = load_examples("ifeval", FIXTURES / "ifeval_mini.jsonl")
    assert [e.id for e in ex] == ["ifeval:1", "ifeval:2", "ifeval:3", "ifeval:4"]
    assert ex[0].messages == ({"role": "user", "content": "Write two sentences about tea. Do not use any commas."},)
    assert ex[0].prompt.startswith("Write two sentences")
    assert ex[0].constraints == (
        Constraint("punctuation:no_comma", {}),
        Constraint("length_constraints:number_sentences", {"relation": "less than", "num_sentences": 3}),
    )
    # None kwargs are dropped
    assert ex[2].constraints[1].kwargs == {"keyword": "river", "frequency": 2, "relation": "at least"}
    assert ex[0].meta == {"key": 1}


def test_limit():
    assert len(load_examples("ifeval", FIXTURES / "ifeval_mini.jsonl", limit=2)) == 2


def test_bad_line_names_file_and_line(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"key": 1, "prompt": "a", "instruction_id_list": [], "kwargs": []}\n{not json\n')
    with pytest.raises(DatasetError, match=r"bad\.jsonl:2: invalid JSON"):
        load_examples("ifeval", p)
    p.write_text('{"key": 1, "instruction_id_list": [], "kwargs": []}\n')
    with pytest.raises(DatasetError, match=r"bad\.jsonl:1: missing field 'prompt'"):
        load_examples("ifeval", p)
    p.write_text('{"key": 1, "prompt": "a", "instruction_id_list": ["x:y"], "kwargs": []}\n')
    with pytest.raises(DatasetError, match=r"bad\.jsonl:1: 'kwargs'"):
        load_examples("ifeval", p)


def test_dataset_version_is_file_hash(tmp_path):
    p = tmp_path / "a.jsonl"
    p.write_bytes(b"hello\n")
    # sha256("hello\n") = 5891b5b522d5df08...
    assert file_version(p) == "5891b5b522d5df08"
    assert dataset_version("jsonl", p) == "5891b5b522d5df08"
    assert dataset_version("ifeval", None) == "public:google/IFEval"
    with pytest.raises(DatasetError):
        dataset_version("jsonl", None)
    with pytest.raises(UnknownDatasetError):
        dataset_version("nope", p)


def test_real_ifeval_data():
    path = needs_data("ifeval", "input_data.jsonl")
    res = load("ifeval", path)
    assert len(res.examples) == 541
    assert sum(len(e.constraints) for e in res.examples) == 834
    assert res.version == "67ffeee0fcb87c31"  # as listed in the data's SOURCE.md
    assert len({c.id for e in res.examples for c in e.constraints}) == 25


# ----------------------------------------------------------------------------------------- ComplexBench


def test_complexbench_published_format_zh():
    ex = load_examples("complexbench", FIXTURES / "complexbench_mini.json")
    assert [e.id for e in ex] == ["complexbench:0", "complexbench:1"]
    assert ex[0].prompt.startswith("写一首关于春天的小诗")
    qs = ex[0].meta["scoring_questions"]
    assert [q["point_id"] for q in qs] == [0, 1, 2, 3]
    assert qs[1] == {
        "point_id": 1, "question": "诗的长度是否不超过40个字？", "rule": "model_length:[1,40]", "dep": [0],
        "constraint_dimensions": ["Length"], "composition_types": ["And"],
    }
    assert ex[1].meta["category"] == "Selection_1"
    assert ex[1].meta["group"] == 1 and ex[0].meta["lang"] == "zh"
    json.dumps([e.to_json() for e in ex])  # serialisable


def test_complexbench_english():
    ex = load_examples("complexbench", FIXTURES / "complexbench_mini.json", lang="en")
    assert ex[0].prompt.startswith("Write a short poem")
    assert ex[0].meta["scoring_questions"][0]["question"] == "Is the response a poem about spring?"


def test_complexbench_instructions_only():
    ex = load_examples("complexbench", FIXTURES / "complexbench_instructions.jsonl")
    assert [e.id for e in ex] == ["complexbench:0", "complexbench:1"]
    assert ex[1].meta["scoring_questions"] == []
    with pytest.raises(DatasetError, match="instruction_en"):
        load_examples("complexbench", FIXTURES / "complexbench_instructions.jsonl", lang="en")
    with pytest.raises(DatasetError, match="lang"):
        load_examples("complexbench", FIXTURES / "complexbench_instructions.jsonl", lang="fr")


def test_real_complexbench_instructions():
    path = needs_data("complexbench", "instructions_zh.jsonl")
    ex = load_examples("complexbench", path)
    assert len(ex) == 1150
    assert ex[0].id == "complexbench:0" and ex[-1].id == "complexbench:1149"


# ------------------------------------------------------------------------------------------- user data


def test_jsonl_prompts_and_messages():
    ex = load_examples("jsonl", FIXTURES / "prompts.jsonl")
    assert [e.id for e in ex] == ["jsonl:1", "jsonl:greeting", "jsonl:4"]  # default id = line number
    assert ex[0].messages == ({"role": "user", "content": "What is the capital of France?"},)
    assert ex[1].prompt == "Be brief.\n\nSay hello."
    assert ex[2].constraints == (Constraint("detectable_format:number_bullet_lists", {"num_bullets": 3}),)
    assert ex[2].meta == {"source": "team-a"}


def test_jsonl_errors(tmp_path):
    p = tmp_path / "p.jsonl"
    p.write_text('{"prompt": "a"}\n{"text": "b"}\n')
    with pytest.raises(DatasetError, match=r"p\.jsonl:2: .*'prompt'"):
        load_examples("jsonl", p)
    p.write_text('{"id": 1, "prompt": "a"}\n{"id": 1, "prompt": "b"}\n')
    with pytest.raises(DatasetError, match=r"p\.jsonl:2: duplicate id '1' \(first on line 1\)"):
        load_examples("jsonl", p)
    p.write_text('{"messages": [{"content": "x"}]}\n')
    with pytest.raises(DatasetError, match=r"p\.jsonl:1: .*role"):
        load_examples("jsonl", p)
    p.write_text('[1, 2]\n')
    with pytest.raises(DatasetError, match=r"p\.jsonl:1: expected a JSON object"):
        load_examples("jsonl", p)


def test_decision_log_skips_lines_without_prompt(caplog):
    with caplog.at_level(logging.WARNING):
        res = load("decision-log", FIXTURES / "decision_log.jsonl")
    assert [e.id for e in res.examples] == ["decision-log:req-1", "decision-log:req-3"]
    assert [s.line for s in res.skipped] == [2, 4]
    assert "skipped 2 record(s)" in caplog.text
    assert res.examples[0].meta == {"route": "default", "think": True, "score": 0.81, "policy": "classifier"}
    assert res.examples[1].prompt == "Translate 'cat' to French."
    assert len(load_examples("decision-log", FIXTURES / "decision_log.jsonl")) == 2


def test_decision_log_needs_id_and_route(tmp_path):
    p = tmp_path / "log.jsonl"
    p.write_text('{"route": "r", "prompt": "x"}\n')
    with pytest.raises(DatasetError, match=r"log\.jsonl:1: missing field 'id'"):
        load_examples("decision-log", p)
    p.write_text('{"id": "a", "prompt": "x"}\n')
    with pytest.raises(DatasetError, match=r"log\.jsonl:1: missing field 'route'"):
        load_examples("decision-log", p)
