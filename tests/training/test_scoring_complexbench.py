import asyncio
from pathlib import Path

import pytest

from training.datasets import load_examples
from training.scoring.complexbench import (
    JudgeOptions,
    RuleError,
    aggregate,
    check_rule,
    fixed_verdict,
    parse_extraction,
    parse_rule,
    parse_verdict,
    score_all,
    score_example,
    strip_quotes,
    to_fullwidth,
)

FIXTURES = Path(__file__).parent / "fixtures"


def examples(lang: str = "zh"):
    return load_examples("complexbench", FIXTURES / "complexbench_mini.json", lang=lang)


# --------------------------------------------------------------------------------------------- rules


def test_fullwidth_and_quotes():
    assert to_fullwidth('Hi, you! (ok?) “x”') == 'Hi， you！ （ok？） "x"'
    assert strip_quotes("\n“春天”") == "春天"
    assert strip_quotes('"a"') == "a" and strip_quotes("a") == "a"


@pytest.mark.parametrize("rule,spans,expected", [
    # character length, with the quote leniency
    ("model_length:[1,5]", ["春天来了"], True),
    ("model_length:[1,3]", ["“春天”"], True),
    ("model_length:[1,3]", ["春天来了啊"], False),
    ("model_length:[1,3]", [], False),
    ("model_length_word:[2,3]", ["spring is here"], True),
    ("model_length_word:[2,3]", ["spring is here again"], False),
    ("model_length_each:[2,4]", ["春天", "夏天来了"], True),
    ("model_length_each:[2,4]", ["春天", "夏天来了啦啦"], False),
    ("model_length_word_each:[1,2]", ["a b", "c"], True),
    # keywords; ASCII punctuation in the rule matches full-width in the text
    ("model_keyword:[花朵, 春风]", ["花朵在春风里"], True),
    ("model_keyword:[花朵, 春风]", ["花朵"], False),
    ("model_keyword:[你好!]", ["你好！朋友"], True),
    ("model_keyword_each:[花]", ["花开", "花落"], True),
    ("model_keyword_each:[花]", ["花开", "叶落"], False),
    ("model_keyword_num:[2,3,春,夏,秋,冬]", ["春夏"], True),
    ("model_keyword_num:[2,3,春,夏,秋,冬]", ["春天"], False),
    ("model_keyword_num_each:[1,1,春,夏]", ["春", "夏"], True),
    ("model_keyword_num_each:[1,1,春,夏]", ["春夏", "夏"], False),
    # forbidden words pass when nothing was extracted
    ("model_forbidden_word:[冬天]", ["春天"], True),
    ("model_forbidden_word:[冬天]", ["冬天"], False),
    ("model_forbidden_word:[冬天]", [], True),
    ("model_forbidden_word_each:[冬]", ["春", "冬"], False),
    ("model_forbidden_word_each:[冬]", [], True),
    # starts / ends, with the terminal-punctuation leniency
    ("model_startswith:亲爱的", ["亲爱的朋友"], True),
    ("model_startswith:亲爱的", ["朋友"], False),
    ("model_startswith:Dear,", ["Dear， friend"], True),
    ("model_endswith:祝好", ["此致，祝好。"], True),
    ("model_endswith:祝好", ["此致，祝好？"], True),
    ("model_endswith:祝好", ["“此致，祝好”"], True),
    ("model_endswith:祝好", ["祝好吗"], False),
    ("model_endswith:Thanks!", ["Many thanks. Thanks！"], True),
    ("model_not_endswith:吗", ["你好吗。"], False),
    ("model_not_endswith:吗", ["你好"], True),
    ("model_not_endswith:吗", [], True),
    ("model_not_endswith_each:吗", ["好", "好吗"], False),
    ("model_not_startswith:我", ["你好"], True),
    ("model_startswith_each:推荐理由:", ["推荐理由：好看", "推荐理由：有趣"], True),
    ("model_startswith_each:推荐理由:", ["推荐理由：好看", "有趣"], False),
    ("model_endswith_each:。", ["一句。", "两句。"], True),
    ("model_starts_with_list_each:[一, 二]", ["一是", "二是"], True),
    ("model_starts_with_list_each:[一, 二]", ["一是"], False),
    # punctuation allow-list
    ("model_constraint_punc:[，, 。]", ["春天来了，花开了。"], True),
    ("model_constraint_punc:[，, 。]", ["春天来了！"], False),
    ("model_constraint_punc:[!]", ["a! b"], True),
    ("model_constraint_punc:[，]", ["a, b."], False),
    ("model_constraint_punc_each:[。]", ["一。", "二。"], True),
    ("model_constraint_punc_each:[。]", ["一。", "二！"], False),
    # number of spans
    ("model_number_each:[2,3]", ["a", "b"], True),
    ("model_number_each:[2,3]", ["a"], False),
    ("model_number_each:[2,3]", ["a", "", "b"], True),  # empty spans are dropped
    ("model_number_each:[0,3]", [], False),
    # several clauses: all must hold
    ("model_startswith:亲爱的\nmodel_endswith:祝好", ["亲爱的朋友，祝好"], True),
    ("model_startswith:亲爱的\nmodel_endswith:祝好", ["亲爱的朋友"], False),
    ("model_keyword_num_each:[1,2,春,夏]\nmodel_forbidden_word_each:[冬]", ["春", "夏天"], True),
    ("model_keyword_num_each:[1,2,春,夏]\nmodel_forbidden_word_each:[冬]", ["春", "夏冬"], False),
])
def test_check_rule(rule, spans, expected):
    assert check_rule(rule, spans) is expected


@pytest.mark.parametrize("rule,response,expected", [
    ("model_forbidden_word:[冬天]", "春天来了", True),  # no span can contain it
    ("model_forbidden_word:[冬天]", "冬天走了", None),  # depends on the span
    ("model_forbidden_word_each:[冬]", "春夏秋", True),
    ("model_keyword:[花朵, 春风]", "花朵开了", False),  # 春风 is nowhere, so in no span
    ("model_keyword:[花朵]", "花朵开了", None),
    ("model_keyword_num:[2,3,春,夏,秋]", "春天", False),
    ("model_keyword_num:[1,3,春,夏,秋]", "春天", None),
    ("model_length:[1,5]", "春天", None),  # every other family depends on the span
    ("model_forbidden_word:[冬天]\nmodel_keyword:[花]", "春天", False),  # one fixed failure decides
    ("model_forbidden_word:[冬天]\nmodel_length:[1,5]", "春天", None),
    ("model_forbidden_word:[冬天]\nmodel_forbidden_word:[秋天]", "春天", True),
    ("model_keyword:[你好!]", "你好！", None),  # matched after the full-width mapping, like check_rule
])
def test_fixed_verdict_agrees_with_every_possible_span(rule, response, expected):
    assert fixed_verdict(rule, response) is expected
    if expected is not None:  # whatever verbatim spans a judge extracts, check_rule agrees
        spans = [[], [response], [response[:1]], [response[1:]], [response[:1], response[1:]]]
        assert all(check_rule(rule, [s for s in sp if s]) is expected for sp in spans)


def test_non_each_rules_look_at_the_first_span():
    assert check_rule("model_keyword:[花]", ["花开", "叶落"]) is True
    assert check_rule("model_keyword:[花]", ["叶落", "花开"]) is False


def test_unknown_rules_raise():
    with pytest.raises(RuleError, match="model_rhymes"):
        parse_rule("model_rhymes:[a]")
    with pytest.raises(RuleError):
        check_rule("model_length:[x]", ["a"])
    assert [c.name for c in parse_rule("keyword:[a]\nnot endswith:b")] == ["keyword", "not_endswith"]


# ---------------------------------------------------------------------------------------- judge parsing


def test_parse_extraction():
    resp = "全文"
    assert parse_extraction("分析……\n评测对象：all", resp) == ["全文"]
    assert parse_extraction("分析……\n评测对象：None", resp) == []
    assert parse_extraction("评测对象：第一段||第二段", resp) == ["第一段", "第二段"]
    assert parse_extraction("评测对象：依据\n评测对象: 最后一句。", resp) == ["最后一句。"]
    assert parse_extraction("春天来了", resp) == ["春天来了"]  # no marker: the whole reply
    assert parse_extraction("评测对象：all（即整个回复）", resp) == ["全文"]
    assert parse_extraction("评测对象：“None”", resp) == []
    assert parse_extraction("评测对象：allow me", resp) == ["allow me"]


def test_parse_verdict():
    assert parse_verdict("分析：满足。\n答案：是") is True
    assert parse_verdict("分析：不满足。\n答案：否") is False
    assert parse_verdict("答案: **是**") is True
    assert parse_verdict("Analysis...\nAnswer: yes") is True
    assert parse_verdict("Answer: no") is False
    assert parse_verdict("是的，完全满足") is True  # fallback: 是 and no 否
    assert parse_verdict("是否满足？不确定") is False
    assert parse_verdict("答案：是 …… 更正，答案：否") is False  # two matches -> fallback (has 否)


# -------------------------------------------------------------------------------------------- scoring


class FakeJudge:
    """Answers by matching the scoring question in the prompt; records the calls."""

    def __init__(self, verdicts: dict[str, str], extractions: dict[str, str], fail_first: int = 0):
        self.verdicts, self.extractions = verdicts, extractions
        self.calls: list[str] = []
        self.fail_first = fail_first

    async def __call__(self, messages):
        text = messages[-1]["content"]
        self.calls.append(text)
        if self.fail_first > 0:
            self.fail_first -= 1
            raise ConnectionError("upstream hiccup")
        table = self.extractions if "评测对象" in text.split("【用户指令】")[0] else self.verdicts
        asked = text.split("【评分问题】")[-1]
        for question, reply in table.items():
            if question in asked:
                return reply
        raise AssertionError(f"unexpected prompt: {text[:80]}")


POEM = "春风吹拂，花朵盛开，燕子归来。"


def poem_judge(topic_ok: bool = True) -> FakeJudge:
    return FakeJudge(
        verdicts={"关于春天的诗": "这是一首春天的诗。\n答案：是" if topic_ok else "写的是秋天。\n答案：否"},
        extractions={"不超过40个字": "诗就是全文。\n评测对象：all",
                     "出现了“花朵”": "评测对象：all",
                     "没有提到“冬天”": "评测对象：all"},
    )


def run(coro):
    return asyncio.run(coro)


def test_score_example_all_pass():
    ex = examples()[0]
    judge = poem_judge()
    res = run(score_example(ex, POEM, judge))
    assert [q.verdict for q in res.questions] == [True, True, True, True]
    assert [q.route for q in res.questions] == ["llm", "rule", "rule", "rule"]
    # the poem has no 冬天, so no span can have it: the forbidden-word rule needs no judge
    assert res.drfr == 1.0 and res.to_scores() == {
        "complexbench_drfr": 1.0, "complexbench_all_passed": 1.0, "per_question": {"0": 1, "1": 1, "2": 1, "3": 1},
        "sources": {"judge": 3, "program": 1}}
    assert len(judge.calls) == 3
    assert all(ex.prompt in c and POEM in c for c in judge.calls)


def test_failed_dependency_zeroes_dependents_without_a_judge_call():
    ex = examples()[0]
    judge = poem_judge(topic_ok=False)
    res = run(score_example(ex, POEM, judge))
    assert [q.verdict for q in res.questions] == [False, None, None, True]  # 1 and 2 were never judged
    assert [q.source for q in res.questions] == ["judge", "dependency", "dependency", "program"]
    assert [q.passed for q in res.questions] == [False, False, False, True]  # 1 and 2 depend on 0
    assert res.drfr == 0.25
    assert len(judge.calls) == 1


def test_dependencies_are_judged_first_and_cycles_are_reported():
    ex = examples()[0]
    judge = poem_judge()
    run(score_example(ex, POEM, judge))
    asked = [c.split("【评分问题】")[-1] for c in judge.calls]
    first_dependent = min(i for i, q in enumerate(asked) if "不超过40个字" in q or "出现了“花朵”" in q)
    assert any("关于春天的诗" in q for q in asked[:first_dependent])  # 1 and 2 wait for 0
    ex.meta["scoring_questions"][0]["dep"] = [1]  # 0 -> 1 -> 0
    with pytest.raises(ValueError, match="circular"):
        run(score_example(ex, POEM, judge))
    ex.meta["scoring_questions"][0]["dep"] = [9]
    with pytest.raises(ValueError, match="unknown point"):
        run(score_example(ex, POEM, judge))


def test_unreadable_replies_are_retried_then_fail_and_the_cache_is_used():
    from training.scoring.complexbench import JudgeOptions

    ex = examples()[0]
    judge = poem_judge()
    judge.verdicts = {"关于春天的诗": "lorem ipsum"}  # no verdict in it
    res = run(score_example(ex, POEM, judge, options=JudgeOptions(retries=2)))
    assert res.questions[0].source == "error" and "unreadable" in res.questions[0].error
    assert len(judge.calls) == 3  # three tries for 0; 1 and 2 not judged; 3 decided by the rule alone

    class Memory:
        def __init__(self):
            self.data = {}

        def get(self, messages):
            return self.data.get(messages[-1]["content"])

        def put(self, messages, reply):
            self.data[messages[-1]["content"]] = reply

    cache, judge = Memory(), poem_judge()
    first = run(score_example(ex, POEM, judge, options=JudgeOptions(cache=cache)))
    calls = len(judge.calls)
    second = run(score_example(ex, POEM, judge, options=JudgeOptions(cache=cache)))
    assert len(judge.calls) == calls == 3 and len(cache.data) == 3
    assert second.drfr == first.drfr == 1.0 and {q.source for q in second.questions} == {"cache", "program"}


def test_whole_response_extraction_needs_no_judge_for_rules():
    from training.scoring.complexbench import JudgeOptions

    ex = examples()[0]
    judge = poem_judge()
    res = run(score_example(ex, POEM, judge, options=JudgeOptions(extraction="whole")))
    assert [q.source for q in res.questions] == ["judge", "program", "program", "program"]
    assert res.drfr == 1.0 and len(judge.calls) == 1


def test_rule_failures_and_drfr():
    ex = examples()[0]
    too_long = "花朵" + "春" * 40 + "冬天"  # 44 characters, has the keyword and the forbidden word
    res = run(score_example(ex, too_long, poem_judge()))
    assert [q.passed for q in res.questions] == [True, False, True, False]
    assert res.drfr == 0.5


def test_selection_branch_and_each_rules():
    ex = examples()[1]
    answer = "推荐两本书：\n1.《活着》推荐理由：感人。\n2.《围城》推荐理由：幽默。"
    judge = FakeJudge(
        verdicts={"正确判断出应该推荐书": "模型推荐了书，判断正确。\n答案：是"},
        extractions={"都以“推荐理由：”开头": "评测对象：推荐理由：感人。||推荐理由：幽默。",
                     "两条推荐理由": "评测对象：推荐理由：感人。||推荐理由：幽默。"},
    )
    res = run(score_example(ex, answer, judge))
    assert [q.passed for q in res.questions] == [True, True, True]
    each_prompts = [c for c in judge.calls if "||" in c.split("【用户指令】")[0]]
    assert len(each_prompts) == 2  # the *_each rules got the multi-span extraction prompt

    judge.verdicts = {"正确判断出应该推荐书": "今天是周一却推荐了电影。\n答案：否"}
    res = run(score_example(ex, answer, judge))
    assert [q.passed for q in res.questions] == [False, False, False]


def test_english_uses_english_instruction_and_questions():
    ex = examples("en")[0]
    judge = FakeJudge(verdicts={"poem about spring": "答案：是"},
                      extractions={"at most 40": "评测对象：all", "contain \"flowers\"": "评测对象：all",
                                   "avoid \"winter\"": "评测对象：None"})
    res = run(score_example(ex, "Spring breeze, flowers bloom.", judge))
    assert "Write a short poem" in judge.calls[0]
    # model_keyword:[花朵] cannot match English text; the forbidden word passes on "None"
    assert [q.passed for q in res.questions] == [True, True, False, True]


def test_judge_errors_are_retried_then_counted_as_failures():
    ex = examples()[0]
    judge = poem_judge()
    judge.fail_first = 2
    res = run(score_example(ex, POEM, judge, retries=3))
    assert res.drfr == 1.0

    async def broken(messages):
        raise TimeoutError("judge down")

    res = run(score_example(ex, POEM, broken, options=JudgeOptions(retries=1, extraction="always")))
    assert res.drfr == 0.0
    assert [q.source for q in res.questions] == ["error", "dependency", "dependency", "error"]
    assert all("judge down" in q.error for q in res.questions if q.source == "error")


def test_unsupported_rule_fails_without_a_judge_call():
    ex = examples()[0]
    ex.meta["scoring_questions"][3]["rule"] = "model_rhymes:[a]"
    judge = poem_judge()
    res = run(score_example(ex, POEM, judge))
    assert res.questions[3].passed is False and "model_rhymes" in res.questions[3].error
    assert len(judge.calls) == 3


def test_instructions_only_examples_cannot_be_scored():
    ex = load_examples("complexbench", FIXTURES / "complexbench_instructions.jsonl")[0]
    with pytest.raises(ValueError, match="no scoring questions"):
        run(score_example(ex, POEM, poem_judge()))


def test_score_all_and_aggregate():
    poem, sel = examples()
    judge = FakeJudge(
        verdicts={"关于春天的诗": "答案：否", "正确判断出应该推荐书": "答案：是"},
        extractions={"不超过40个字": "评测对象：all", "出现了“花朵”": "评测对象：all", "没有提到“冬天”": "评测对象：all",
                     "都以“推荐理由：”开头": "评测对象：推荐理由：感人||推荐理由：幽默",
                     "两条推荐理由": "评测对象：推荐理由：感人"},
    )
    results = run(score_all([(poem, POEM), (sel, "……")], judge, concurrency=2))
    # poem: 0 fails -> 1, 2 zeroed; 3 passes. selection: 0, 1 pass; 2 fails (one span).
    assert [r.passed for r in results] == [1, 2]
    agg = aggregate(results)
    assert agg["n"] == 2 and agg["n_questions"] == 7
    assert agg["overall_drfr"] == pytest.approx(3 / 7)
    assert agg["by_category"] == {"And_1": 0.25, "Selection_1": pytest.approx(2 / 3)}
    assert agg["by_category_avg"] == {"And": 0.25, "Selection": pytest.approx(2 / 3)}
    assert set(agg["by_task_type"]) == {"Creative Writing", "Open-ended Questions"}
    from_scores = aggregate([r.to_scores() for r in results])
    assert from_scores["overall_drfr"] == agg["overall_drfr"] and from_scores["n_questions"] == 7
    with pytest.raises(ValueError):
        aggregate([])
