"""Self-selection by log-probabilities: parsing, the decider over real HTTP, calibration files."""

from __future__ import annotations

import json
import math

import pytest

from router.backends.base import probs_from_top_logprobs, usage_tokens
from router.deciders.self_select import Calibration, yes_share
from router.errors import ConfigError
from support.clients import collect_stream, openai_client

USER = [{"role": "user", "content": "Write a haiku about rain, all in lowercase."}]


def response_with(top) -> dict:
    return {"choices": [{"logprobs": {"content": [{"token": "x", "logprob": -1.0, "top_logprobs": top}]}}]}


def test_top_logprobs_sum_every_spelling_of_a_word():
    top = [{"token": "YES", "logprob": math.log(0.5)}, {"token": " yes", "logprob": math.log(0.1)},
           {"token": "No", "logprob": math.log(0.2)}, {"token": "Maybe", "logprob": math.log(0.2)}]
    probs = probs_from_top_logprobs(response_with(top), ["YES", "NO"])
    assert probs == pytest.approx({"YES": 0.6, "NO": 0.2})
    assert yes_share(probs["YES"], probs["NO"]) == pytest.approx(0.75)


@pytest.mark.parametrize("response", [
    {}, {"choices": []}, {"choices": [{"logprobs": None}]}, {"choices": [{"logprobs": {"content": []}}]},
    response_with("YES"), response_with([]), [], "YES", None,
])
def test_missing_or_malformed_logprobs_give_none(response):
    assert probs_from_top_logprobs(response, ["YES", "NO"]) is None


def test_hostile_entries_are_skipped_not_trusted():
    top = [{"token": "YES", "logprob": float("nan")}, {"token": "YES", "logprob": 3.0}, {"token": 7, "logprob": -1},
           {"token": "YES", "logprob": True}, "YES", {"token": "NO", "logprob": math.log(0.25)}]
    assert probs_from_top_logprobs(response_with(top), ["YES", "NO"]) == pytest.approx({"YES": 0.0, "NO": 0.25})
    assert yes_share(0.0, 0.0) is None


def test_usage_tokens_ignores_malformed_counts():
    assert usage_tokens({"usage": {"prompt_tokens": 30, "completion_tokens": 1}}) == 31
    assert usage_tokens({"usage": {"prompt_tokens": "30", "completion_tokens": -1}}) == 0
    assert usage_tokens({"usage": "many"}) == 0 and usage_tokens(None) == 0


def yes_no_logprobs(p_yes: float, p_no: float):
    return lambda body: [("Yes", math.log(p_yes)), ("No", math.log(p_no)), ("The", math.log(0.05))]


def answer_or_question(body):
    return "NO" if "YES or NO" in body["messages"][0]["content"] else "final answer"


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("p_yes,p_no,expected", [(0.6, 0.2, "think"), (0.1, 0.3, "direct")])
def test_score_comes_from_logprobs_over_http(proxy, mock, stream, p_yes, p_no, expected):
    mock.reply = answer_or_question  # the text says NO: a think decision proves the log-probabilities won
    mock.logprobs = yes_no_logprobs(p_yes, p_no)
    with proxy({"policy": "self-select", "profile": "reasoning-effort"}) as server:
        client = openai_client(server)
        if stream:
            raw = client.chat.completions.with_raw_response.create(model="mock-model", messages=USER, stream=True)
            assert "final answer" in collect_stream(raw.parse())[0]
        else:
            raw = client.chat.completions.with_raw_response.create(model="mock-model", messages=USER)
            assert raw.parse().choices[0].message.content == "final answer"
    assert raw.headers["x-thinkgate-score-method"] == "logprobs"
    assert float(raw.headers["x-thinkgate-score"]) == pytest.approx(p_yes / (p_yes + p_no), abs=1e-4)
    assert raw.headers["x-thinkgate-decision"] == expected
    assert raw.headers["x-thinkgate-decision-source"] == "policy"
    assert int(raw.headers["x-thinkgate-decision-tokens"]) > 0
    question = mock.requests[0]
    assert question["logprobs"] is True and question["top_logprobs"] == 20 and question["reasoning_effort"] == "none"
    assert len(mock.requests) == 2  # one question, one answer


def test_without_logprobs_the_same_reply_is_parsed(proxy, mock):
    mock.reply = lambda body: "YES" if "YES or NO" in body["messages"][0]["content"] else "final answer"
    with proxy({"policy": "self-select"}) as server:
        raw = openai_client(server).chat.completions.with_raw_response.create(model="mock-model", messages=USER)
    assert raw.headers["x-thinkgate-score-method"] == "text"
    assert raw.headers["x-thinkgate-decision"] == "think"
    assert len(mock.requests) == 2  # the text fallback reuses the question's own reply: no second question


def test_logprobs_only_method_falls_back_to_the_default_without_them(proxy, mock):
    mock.reply = answer_or_question
    with proxy({"policy": "self-select", "policy_options": {"method": "logprobs"},
                "default_decision": "think"}) as server:
        raw = openai_client(server).chat.completions.with_raw_response.create(model="mock-model", messages=USER)
    assert raw.headers["x-thinkgate-decision-source"] == "fallback"
    assert raw.headers["x-thinkgate-decision"] == "think"


def write_calibration(path, threshold: float, **extra) -> str:
    data = {"format": "thinkgate-self-select-calibration", "version": 1, "threshold": threshold,
            "prompt": "Think? Reply YES or NO.", "model": "mock", "method": "max_accuracy", "command": "test", **extra}
    path.write_text(json.dumps(data))
    return str(path)


def test_calibration_file_sets_threshold_and_prompt(proxy, mock, tmp_path):
    mock.reply = answer_or_question
    mock.logprobs = yes_no_logprobs(0.6, 0.2)  # score 0.75
    calibration = write_calibration(tmp_path / "cal.json", 0.8)
    with proxy({"policy": "self-select", "policy_options": {"calibration": calibration}}) as server:
        raw = openai_client(server).chat.completions.with_raw_response.create(model="mock-model", messages=USER)
    assert raw.headers["x-thinkgate-decision"] == "direct"  # 0.75 < the calibrated 0.8
    assert mock.requests[0]["messages"][0]["content"] == "Think? Reply YES or NO."


def test_calibration_round_trip_and_errors(tmp_path):
    path = write_calibration(tmp_path / "ok.json", 0.42, report={"held_out": {"n": 3}})
    loaded = Calibration.load(path)
    assert loaded.threshold == 0.42 and loaded.prompt == "Think? Reply YES or NO."
    assert json.loads(loaded.model_dump_json())["report"] == {"held_out": {"n": 3}}
    with pytest.raises(ConfigError, match="not a valid calibration file"):
        Calibration.load(write_calibration(tmp_path / "bad.json", 7.0))
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not a valid calibration file"):
        Calibration.load(tmp_path / "junk.json")
    with pytest.raises(ConfigError, match="No such file"):
        Calibration.load(tmp_path / "missing.json")


def test_the_decision_log_keeps_the_questions_cost_and_method(proxy, mock, tmp_path):
    import io

    from router.decision_log import export_jsonl

    mock.reply = answer_or_question
    mock.logprobs = yes_no_logprobs(0.6, 0.2)
    with proxy({"policy": "self-select"}) as server:
        raw = openai_client(server).chat.completions.with_raw_response.create(model="mock-model", messages=USER)
    out = io.StringIO()
    export_jsonl(tmp_path / "decisions.sqlite3", out)
    (row,) = [json.loads(line) for line in out.getvalue().splitlines()]
    assert row["score_method"] == "logprobs" and row["guard"] is None
    assert row["decision_tokens"] == int(raw.headers["x-thinkgate-decision-tokens"]) > 0
