"""A deterministic ComplexBench judge and model for the mock upstream (served over real HTTP in tests).

The judge reads the scoring question out of the prompt: a yes/no question names a word in 「」 and the
answer is yes exactly when that word is in the response (「乱码」 gets an unreadable reply); an
extraction answers `all`, or every line's span from `理由：` on (`||`-joined) for the `*_each` variant.
The model answers each fixture instruction one way with thinking off and another with it on.
"""

from __future__ import annotations

import re
from typing import Any

from support.mock_upstream import last_user_text


def judge_reply(body: dict[str, Any]) -> str:
    text = last_user_text(body)
    head, _, rest = text.partition("【用户指令】")
    response = rest.split("【模型回复】", 1)[1].split("【评分问题】", 1)[0].strip()
    question = text.rsplit("【评分问题】", 1)[1]
    if "评测对象" in head:  # extraction
        if "||" in head:
            spans = [line[line.index("理由："):] for line in response.splitlines() if "理由：" in line]
            return "评测对象：" + ("||".join(spans) if spans else "None")
        return "这道题考察整个回复。\n评测对象：all"
    word = re.search(r"「(.+?)」", question)
    assert word, f"fixture question without a 「word」: {question!r}"
    if word.group(1) == "乱码":
        return "lorem ipsum dolor"
    return f"分析：略。\n答案：{'是' if word.group(1) in response else '否'}"


def thinking(body: dict[str, Any]) -> bool:
    """prompt-cot asks for thinking with a system instruction that mentions <think>."""
    return any(m.get("role") == "system" and "<think>" in (m.get("content") or "") for m in body["messages"])


def model_reply(body: dict[str, Any]) -> str:
    prompt, think = last_user_text(body), thinking(body)
    if "短诗" in prompt:
        answer = "春天走了，冬天还在。" if think else "春天来了，花朵开放。"
    elif "推荐" in prompt:
        answer = ("推荐两本书：\n1.《活着》理由：感人\n2.《围城》理由：幽默" if think
                  else "推荐两部电影：\n1.《霸王别姬》理由：经典\n2.《活着》理由：动人")
    else:
        answer = "今天下雨。" if think else "总结：今天下雨，比赛推迟。\nSummary: it rains, the match is postponed."
    return f"<think>先想一想。</think>{answer}" if think else answer
