"""ComplexBench scoring: rule-augmented LLM evaluation (RAL), the dependency rule and DRFR.

Follows the official protocol (see `shared/data/complexbench/PROTOCOL.md`); the judge prompts are our
own wording. Each scoring question takes one route:

* with a `rule`: a judge *extracts* the part of the response the question is about (`all` = the whole
  response, `None` = absent; several spans joined by `||` for `*_each` rules), then `check_rule` tests
  the span(s) against the rule DSL;
* without a rule: the judge answers the yes/no question directly (`答案：是/否`).

A question whose dependency (`dep`, by point id) was itself judged a failure scores 0 (the check is not
recursive: `dep` lists every relevant ancestor). DRFR = passed questions / all questions, micro-averaged.

The judge is any async callable `judge(messages) -> str`, so the caller picks the model (litellm, the
local backend, a fake in tests). Instruction and response are cut to 6,000 / 4,000 characters for it.

Deliberate differences from the official scripts: ASCII->full-width punctuation mapping is applied to the
span and to the rule operand for every check (the scripts skip the span in a few branches); empty spans
from `a||||b` are dropped; failed judge calls are retried `retries` times (official: 30) then count as a
failure; the official quirk that `model_endswith_each` ignores the last span is not reproduced; a question
whose dependency failed is not put to the judge (see `score_example`); an unreadable reply is retried; a rule
whose verdict no verbatim span can change is decided without an extraction call (`fixed_verdict`; the
`always` extraction option turns this off).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

from training.records import Example

log = logging.getLogger(__name__)

Judge = Callable[[list[dict[str, str]]], Awaitable[str]]
MAX_INSTRUCTION_CHARS = 6000
MAX_RESPONSE_CHARS = 4000

# --------------------------------------------------------------------------------------- punctuation

# ASCII punctuation that has a full-width Chinese counterpart; curly double quotes fold to '"'.
_FULLWIDTH = str.maketrans({
    "!": "！", "#": "＃", "$": "＄", "%": "％", "&": "＆", "(": "（", ")": "）", "*": "＊", ",": "，",
    ".": "。", ":": "：", ";": "；", "?": "？", "\\": "＼", "^": "＾", "“": '"', "”": '"',
})
# The punctuation `model_constraint_punc` polices: ASCII punctuation after the mapping above.
_POLICED_PUNCT = tuple(dict.fromkeys("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~".translate(_FULLWIDTH)))
_QUOTES_OPEN, _QUOTES_CLOSE = '"“`', '"”`'


def to_fullwidth(text: str) -> str:
    """Map ASCII punctuation to its full-width form (and curly double quotes to '"') before matching."""
    return text.translate(_FULLWIDTH)


def strip_quotes(span: str) -> str:
    """The span without leading newlines and without one pair of surrounding quotes/backticks."""
    span = span.lstrip("\n")
    if len(span) >= 2 and span[0] in _QUOTES_OPEN and span[-1] in _QUOTES_CLOSE:
        return span[1:-1]
    return span


# ------------------------------------------------------------------------------------------- rule DSL


class RuleError(ValueError):
    """A rule string this checker does not understand (the question then counts as failed)."""


def _items(arg: str) -> list[str]:
    """`[a, b, c]` -> ['a', 'b', 'c'] (comma split, as in the published data; not JSON)."""
    inner = arg.strip().strip("[]")
    return [x.strip() for x in inner.split(",")] if inner.strip() else []


def _range(arg: str) -> tuple[float, float]:
    parts = _items(arg)
    try:
        return float(parts[0]), float(parts[1])
    except (IndexError, ValueError):
        raise RuleError(f"expected [lo, hi], got {arg!r}") from None


def _has(span: str, word: str) -> bool:
    return to_fullwidth(word) in to_fullwidth(span)


def _starts(span: str, prefix: str) -> bool:
    return to_fullwidth(span).startswith(to_fullwidth(prefix))


def _ends(span: str, suffix: str) -> bool:
    s, suf = to_fullwidth(span), to_fullwidth(suffix)
    return any(s.endswith(suf + tail) for tail in ("", "。", "？"))  # tolerate added terminal punctuation


def _in(n: float, bounds: tuple[float, float]) -> bool:
    return bounds[0] <= n <= bounds[1]


def _keyword_num(span: str, arg: str) -> bool:
    parts = _items(arg)
    lo, hi = _range(",".join(parts[:2]))
    return _in(sum(_has(span, k) for k in parts[2:]), (lo, hi))


def _punc_ok(span: str, allowed: list[str]) -> bool:
    ok = {to_fullwidth(p) for p in allowed}
    for s in (to_fullwidth(strip_quotes(span)), to_fullwidth(span)):
        if not any(p in s and p not in ok for p in _POLICED_PUNCT):
            return True
    return False


def _json_ok(span: str, keys: list[str]) -> bool:
    """The first balanced {...} in the span parses as an object with exactly `keys` (any keys if none)."""
    start, depth = span.find("{"), 0
    if start < 0:
        return False
    for i in range(start, len(span)):
        depth += {"{": 1, "}": -1}.get(span[i], 0)
        if depth == 0:
            try:
                obj = json.loads(span[start:i + 1])
            except json.JSONDecodeError:
                return False
            keys = [k for k in keys if k]
            return isinstance(obj, dict) and all(k in obj for k in keys) and (not keys or len(obj) == len(keys))
    return False


# Checks on one span: name -> (check(span, arg), passes_when_no_span)
_SPAN_CHECKS: dict[str, tuple[Callable[[str, str], bool], bool]] = {
    "keyword": (lambda s, a: all(_has(s, k) for k in _items(a)), False),
    "forbidden_word": (lambda s, a: not any(_has(s, w) for w in _items(a)), True),
    "keyword_num": (_keyword_num, False),
    "length": (lambda s, a: _in(len(s), _range(a)) or _in(len(strip_quotes(s)), _range(a)), False),
    "length_word": (lambda s, a: _in(len(s.split()), _range(a)) or _in(len(strip_quotes(s).split()), _range(a)),
                    False),
    "startswith": (_starts, False),
    "not_startswith": (lambda s, a: not _starts(s, a), True),
    "endswith": (lambda s, a: _ends(s, a) or _ends(strip_quotes(s), a), False),
    "not_endswith": (lambda s, a: not _ends(s, a), True),
    "constraint_punc": (lambda s, a: _punc_ok(s, _items(a)), False),
    "match": (lambda s, a: to_fullwidth(s) in {to_fullwidth(a), to_fullwidth(a) + "。"}, False),
    "json": (lambda s, a: _json_ok(s, [k.strip("'\"") for k in _items(a)]), False),
}
# Older rule spellings without the `model_` prefix.
_LEGACY = {"not endswith": "not_endswith", "Json": "json"}
_CLAUSE_START = re.compile(
    r"\n(?=(?:model_[a-z_]+|not endswith|keyword|forbidden_word|startswith|endswith|length|length_word|"
    r"constraint_punc|match|Json):)"
)


@dataclass(frozen=True)
class Clause:
    """One line of a rule: `name` without the `model_` prefix or `_each` suffix, `each`, and the raw `arg`."""

    name: str
    each: bool
    arg: str


def parse_rule(rule: str) -> list[Clause]:
    """Split a rule string into clauses (several lines = all must hold). Raises `RuleError` if unknown."""
    clauses = []
    for line in _CLAUSE_START.split(rule.strip("\n")):
        name, sep, arg = line.partition(":")
        if not sep:
            raise RuleError(f"not a rule clause: {line!r}")
        name = _LEGACY.get(name.strip(), name.strip())
        name = name.removeprefix("model_")
        each = name.endswith("_each")
        name = name.removesuffix("_each")
        if name not in _SPAN_CHECKS and name not in ("number", "starts_with_list"):
            raise RuleError(f"unsupported rule clause {line.split(':', 1)[0]!r}")
        clauses.append(Clause(name, each, arg))
    if not clauses:
        raise RuleError("empty rule")
    return clauses


def _check_clause(c: Clause, spans: list[str]) -> bool:
    if c.name == "number":  # how many spans were extracted
        return bool(spans) and _in(len(spans), _range(c.arg))
    if c.name == "starts_with_list":  # one prefix per span, in order
        prefixes = _items(c.arg)
        return bool(spans) and len(spans) == len(prefixes) and all(map(_starts, spans, prefixes))
    check, when_absent = _SPAN_CHECKS[c.name]
    if not spans:
        return when_absent
    targets = spans if c.each else spans[:1]
    return all(check(s, c.arg) for s in targets)


def check_rule(rule: str, spans: Sequence[str]) -> bool:
    """Does the extracted span list satisfy `rule`? Non-`each` clauses look at the first span only.

    With no span, positive clauses fail and "must not" clauses (forbidden word, not starts/ends with)
    pass. Raises `RuleError` for a rule it does not understand.
    """
    kept = [s for s in spans if s != ""]
    return all(_check_clause(c, kept) for c in parse_rule(rule))


def _fixed_clause(c: Clause, whole: str) -> bool | None:
    """A clause's result when it is the same for every verbatim span of the response (and for none)."""
    if c.name == "forbidden_word" and not any(_has(whole, w) for w in _items(c.arg)):
        return True  # no span of the response can contain a word the response lacks
    if c.name == "keyword" and not all(_has(whole, k) for k in _items(c.arg)):
        return False  # nor contain a keyword the response lacks (and no span fails too)
    if c.name == "keyword_num":
        parts = _items(c.arg)
        lo, _ = _range(",".join(parts[:2]))
        if sum(_has(whole, k) for k in parts[2:]) < lo:
            return False
    return None


def fixed_verdict(rule: str, response: str) -> bool | None:
    """The rule's verdict when no extraction can change it, else None.

    Spans are verbatim copies from the response, so a response without a forbidden word passes that check
    for any span, and a response without a required keyword fails it. Then the protocol's answer is known
    without asking the judge which span the question is about. Raises `RuleError` for an unknown rule.
    """
    results = [_fixed_clause(c, response) for c in parse_rule(rule)]
    if False in results:
        return False
    return True if all(r is True for r in results) else None


# ---------------------------------------------------------------------------------------- judge prompts

EXTRACT_PROMPT = """你是一名细致的评测助手。下面给出一条用户指令、一个模型对它的回复，以及一个针对该回复的评分问题。
这一步你不需要回答评分问题，只需要在模型回复中找到评分问题所考察的那部分内容（评测对象），例如“第二段”“标题”“最后一句话”，并把它一字不差地照抄出来，不要改写、增删或翻译。
- 如果评分问题考察的是整个回复，评测对象写 all
- 如果回复中没有评分问题所考察的内容，评测对象写 None
{each}请先用一两句话说明你的依据，最后以“评测对象：”开头给出结果（照抄的内容可以跨多行），结果之后不要再写任何内容。

【用户指令】
{instruction}

【模型回复】
{response}

【评分问题】
{question}"""

EXTRACT_EACH_NOTE = "- 评测对象可能有多个（例如“每一段”“每个小标题”）：请把每一个都照抄出来，按它们在回复中出现的顺序排列，彼此之间用 || 分隔\n"

JUDGE_PROMPT = """你是一名严格的评测员。请阅读用户指令和模型回复，然后只回答下面这一个评分问题。
评判时请遵守：
1. 只看评分问题本身问到的内容，指令里的其他要求与本题无关。
2. 只有完全满足要求才答“是”；基本满足、部分满足都答“否”。
3. 要求分点或列表时，必须有明确的序号或项目符号；只用“首先”“然后”之类的词串联不算分点。
4. 要求用某种语言作答时，只要夹杂了其他语言就答“否”。
5. 问题涉及“每个”“所有”时，须每一项都满足才答“是”；若问题问模型是否正确判断了条件（例如该走哪个分支），请检查模型是否按符合条件的那个分支作答。
请先简要分析，最后单独一行写“答案：是”或“答案：否”。

【用户指令】
{instruction}

【模型回复】
{response}

【评分问题】
{question}"""

_ANSWER_ZH = re.compile(r"答案\s*[：:]\s*\**\s*(是|否)")
_ANSWER_EN = re.compile(r"\banswer\s*[：:]\s*\**\s*(yes|no)\b", re.IGNORECASE)
_TARGET = re.compile(r"评测对象\s*[：:]")


def extraction_messages(instruction: str, response: str | None, question: str, rule: str) -> list[dict[str, str]]:
    each = EXTRACT_EACH_NOTE if "each" in rule else ""
    text = EXTRACT_PROMPT.format(each=each, instruction=instruction[:MAX_INSTRUCTION_CHARS],
                                 response=(response or "None")[:MAX_RESPONSE_CHARS], question=question)
    return [{"role": "user", "content": text}]


def judge_messages(instruction: str, response: str | None, question: str) -> list[dict[str, str]]:
    text = JUDGE_PROMPT.format(instruction=instruction[:MAX_INSTRUCTION_CHARS],
                               response=(response or "None")[:MAX_RESPONSE_CHARS], question=question)
    return [{"role": "user", "content": text}]


def parse_extraction(reply: str, response: str) -> list[str]:
    """Spans from an extractor reply: `all` -> [response]; `None` -> []; else split on `||`."""
    marks = list(_TARGET.finditer(reply))
    value = reply[marks[-1].end():] if marks else reply
    value = value.strip()
    bare = value.strip("`'\"“”。. ").lower()
    if re.match(r"all(?![a-z])", bare):  # "all", "all（整个回复）"
        return [response]
    if re.match(r"none(?![a-z])", bare) or bare in ("无", ""):
        return []
    return [s.strip() for s in value.split("||") if s.strip()]


def parse_verdict(reply: str) -> bool:
    """`答案：是/否` (or `Answer: yes/no`) when it occurs exactly once; else yes iff '是' and no '否'."""
    for pattern, yes in ((_ANSWER_ZH, "是"), (_ANSWER_EN, "yes")):
        found = pattern.findall(reply)
        if len(found) == 1:
            return found[0].lower() == yes
    return "是" in reply and "否" not in reply


# ------------------------------------------------------------------------------------------- scoring

METRIC_DRFR = "complexbench_drfr"  # per example: passed questions / questions (after the dependency rule)
METRIC_ALL_PASSED = "complexbench_all_passed"  # per example: 1 when every question passed
Source = Literal["judge", "cache", "program", "dependency", "error"]


class JudgeGiveUp(Exception):
    """Raised by a judge for a call that cannot succeed on retry (e.g. a request the judge rejects as invalid):
    the question fails at once."""


class JudgeAbort(Exception):
    """Raised by a judge that is unusable (e.g. it failed many calls in a row): the whole run stops."""


class ReplyCache(Protocol):
    """Accepted judge replies by prompt; bound to one judge model (see `training.judge_cache`)."""

    def get(self, messages: list[dict[str, str]]) -> str | None: ...

    def put(self, messages: list[dict[str, str]], reply: str) -> None: ...


@dataclass(frozen=True)
class QuestionResult:
    """One scoring question. `verdict` is the question's own result (None: not judged, because a dependency
    failed or the judge failed); `passed` is after the dependency rule; `source` says where it came from:
    a judge call, the reply cache, a program alone, a failed dependency (no judge call), or an error."""

    point_id: int
    route: Literal["rule", "llm"]
    verdict: bool | None
    passed: bool
    spans: tuple[str, ...] | None = None
    reply: str | None = None
    error: str | None = None
    source: Source = "judge"


@dataclass(frozen=True)
class ExampleResult:
    id: str
    questions: tuple[QuestionResult, ...]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> int:
        return sum(q.passed for q in self.questions)

    @property
    def drfr(self) -> float:
        return self.passed / len(self.questions)

    def count(self, source: Source) -> int:
        return sum(q.source == source for q in self.questions)

    def to_scores(self) -> dict[str, Any]:
        """The `Outcome.scores` dict: this example's DRFR, all-passed flag, per-question 0/1 and where the
        verdicts came from (`sources`: judge / cache / program / dependency / error counts)."""
        return {
            METRIC_DRFR: self.drfr,
            METRIC_ALL_PASSED: float(self.passed == len(self.questions)),
            "per_question": {str(q.point_id): int(q.passed) for q in self.questions},
            "sources": {s: n for s in ("judge", "cache", "program", "dependency", "error") if (n := self.count(s))},
        }


def accepts_verdict(reply: str) -> bool:
    """A judge reply we can read a verdict from (`答案：是/否`, `Answer: yes/no`, or a bare 是 / 否)."""
    return bool(_ANSWER_ZH.search(reply) or _ANSWER_EN.search(reply)) or "是" in reply or "否" in reply


def accepts_extraction(reply: str) -> bool:
    """An extractor reply that names its target (`评测对象：...`) or is a bare `all` / `None`."""
    return bool(_TARGET.search(reply)) or reply.strip().strip("`'\"“”。. ").lower() in ("all", "none")


@dataclass(frozen=True)
class JudgeOptions:
    """How questions are put to the judge.

    `retries` re-asks after an exception or an unreadable reply, waiting `backoff_s * 2**attempt` (with
    jitter, at most `max_backoff_s`); `cache` keeps accepted replies so no prompt is paid for twice.
    `extraction`: `judge` asks the judge for the span only when it can change the rule's verdict
    (`fixed_verdict`); `always` asks for every rule question, as the official scripts do; `whole` checks
    rules on the whole response without a judge call (not the official protocol).
    """

    retries: int = 3
    backoff_s: float = 0.0
    max_backoff_s: float = 30.0
    cache: ReplyCache | None = None
    extraction: Literal["judge", "always", "whole"] = "judge"


async def _ask(judge: Judge, messages: list[dict[str, str]], opts: JudgeOptions,
               accept: Callable[[str], bool]) -> tuple[str, Source]:
    """The cached reply, or the judge's first acceptable one; retries with back-off, then raises."""
    if opts.cache is not None and (cached := opts.cache.get(messages)) is not None:
        return cached, "cache"
    last: Exception | None = None
    for attempt in range(opts.retries + 1):
        if attempt and opts.backoff_s:
            delay = min(opts.max_backoff_s, opts.backoff_s * 2 ** (attempt - 1))
            await asyncio.sleep(delay * (0.5 + random.random()))
        try:
            reply = await judge(messages)
        except (JudgeAbort, JudgeGiveUp):
            raise
        except Exception as e:  # any other judge failure is retried, then recorded as a failed question
            last = e
            continue
        if reply and accept(reply):
            if opts.cache is not None:
                opts.cache.put(messages, reply)
            return reply, "judge"
        last = ValueError(f"unreadable judge reply: {(reply or '')[:80]!r}")
    assert last is not None
    raise last


async def _score_question(q: Mapping[str, Any], instruction: str, response: str, judge: Judge,
                          opts: JudgeOptions, sem: asyncio.Semaphore) -> QuestionResult:
    pid, rule = q["point_id"], q.get("rule")
    route: Literal["rule", "llm"] = "rule" if rule else "llm"
    try:
        if rule:
            parse_rule(rule)  # fail fast (no judge call) on an unsupported rule
            if opts.extraction == "whole":
                return QuestionResult(pid, route, check_rule(rule, [response] if response else []), False,
                                      source="program")
            if opts.extraction == "judge" and (fixed := fixed_verdict(rule, response)) is not None:
                return QuestionResult(pid, route, fixed, False, source="program")
        async with sem:
            if rule:
                msgs = extraction_messages(instruction, response, q["question"], rule)
                reply, source = await _ask(judge, msgs, opts, accepts_extraction)
            else:
                reply, source = await _ask(judge, judge_messages(instruction, response, q["question"]), opts,
                                           accepts_verdict)
        if rule:
            spans = parse_extraction(reply, response)
            return QuestionResult(pid, route, check_rule(rule, spans), False, tuple(spans), reply, source=source)
        return QuestionResult(pid, route, parse_verdict(reply), False, None, reply, source=source)
    except JudgeAbort:
        raise
    except Exception as e:
        log.warning("complexbench question %s failed: %s", pid, e)
        return QuestionResult(pid, route, None, False, error=f"{type(e).__name__}: {e}", source="error")


def apply_dependencies(results: Sequence[QuestionResult], deps: Mapping[int, Sequence[int]]) -> list[QuestionResult]:
    """A question passes only if its own verdict and every listed dependency's own verdict are true."""
    own = {r.point_id: bool(r.verdict) for r in results}
    out = []
    for r in results:
        missing = [d for d in deps.get(r.point_id, ()) if d not in own]
        if missing:
            raise ValueError(f"question {r.point_id} depends on unknown point(s) {missing}")
        ok = own[r.point_id] and all(own[d] for d in deps.get(r.point_id, ()))
        out.append(replace(r, passed=ok))
    return out


def _dependency_levels(example_id: str, questions: Sequence[Mapping[str, Any]]) -> list[list[Mapping[str, Any]]]:
    """The questions in rounds such that every question comes after all its dependencies."""
    ids = {q["point_id"] for q in questions}
    for q in questions:
        missing = [d for d in q.get("dep") or [] if d not in ids]
        if missing:
            raise ValueError(f"{example_id}: question {q['point_id']} depends on unknown point(s) {missing}")
    done: set[int] = set()
    levels, remaining = [], list(questions)
    while remaining:
        ready = [q for q in remaining if all(d in done for d in q.get("dep") or [])]
        if not ready:
            raise ValueError(f"{example_id}: circular dependencies among questions "
                             f"{sorted(q['point_id'] for q in remaining)}")
        levels.append(ready)
        done |= {q["point_id"] for q in ready}
        remaining = [q for q in remaining if q["point_id"] not in done]
    return levels


async def score_example(example: Example, response: str | None, judge: Judge, *, retries: int = 3,
                        semaphore: asyncio.Semaphore | None = None, options: JudgeOptions | None = None,
                        on_question: Callable[[QuestionResult], None] | None = None) -> ExampleResult:
    """Score one response against the example's scoring questions (from `meta["scoring_questions"]`).

    Dependencies are judged first; a question with a failed dependency is never put to the judge (it fails
    whatever its own verdict would be). Its unknown verdict counts as failed for any question listing it
    in `dep`, which matches the official rule whenever `dep` names every relevant ancestor, as it should.
    """
    questions = example.meta.get("scoring_questions") or []
    if not questions:
        raise ValueError(f"{example.id}: no scoring questions (instructions-only file?); "
                         "load ComplexBench's data_final.json to score")
    opts = options or JudgeOptions(retries=retries)
    sem = semaphore or asyncio.Semaphore(8)
    own: dict[int, QuestionResult] = {}

    async def one(q: Mapping[str, Any]) -> QuestionResult:
        failed_dep = [d for d in q.get("dep") or [] if not own[d].verdict]
        if failed_dep:
            result = QuestionResult(q["point_id"], "rule" if q.get("rule") else "llm", None, False,
                                    source="dependency")
        else:
            result = await _score_question(q, example.prompt, response or "", judge, opts, sem)
        if on_question is not None:
            on_question(result)
        return result

    for level in _dependency_levels(example.id, questions):
        for result in await asyncio.gather(*(one(q) for q in level)):
            own[result.point_id] = result
    results = apply_dependencies([own[q["point_id"]] for q in questions],
                                 {q["point_id"]: q.get("dep") or [] for q in questions})
    meta = {k: example.meta[k] for k in ("category", "task_types", "group") if k in example.meta}
    return ExampleResult(example.id, tuple(results), meta)


async def score_all(pairs: Iterable[tuple[Example, str | None]], judge: Judge, *, concurrency: int = 16,
                    retries: int = 3, options: JudgeOptions | None = None,
                    on_question: Callable[[QuestionResult], None] | None = None) -> list[ExampleResult]:
    """Score many (example, response) pairs with at most `concurrency` judge calls in flight."""
    sem = asyncio.Semaphore(concurrency)
    opts = options or JudgeOptions(retries=retries)
    return list(await asyncio.gather(*(score_example(ex, r, judge, semaphore=sem, options=opts,
                                                     on_question=on_question) for ex, r in pairs)))


def aggregate(results: Iterable[ExampleResult | Mapping[str, Any]]) -> dict[str, Any]:
    """Overall DRFR (a fraction, micro-averaged over questions), DRFR per category and task type, where the
    verdicts came from, and the coherent test over Selection task groups (instructions sharing a `group`).

    Accepts `ExampleResult`s or their `to_scores()` dicts (those carry no category, so only the overall).
    """
    n = total = passed = 0
    groups: dict[str, dict[str, list[int]]] = {"by_category": {}, "by_category_avg": {}, "by_task_type": {}}
    sources: dict[str, int] = {}
    task_groups: dict[Any, list[bool]] = {}
    for r in results:
        if isinstance(r, ExampleResult):
            k_total, k_passed, meta = len(r.questions), r.passed, r.meta
            k_sources = {s: r.count(s) for s in ("judge", "cache", "program", "dependency", "error")}
        else:
            k_total, k_passed, meta = len(r["per_question"]), sum(r["per_question"].values()), {}
            k_sources = r.get("sources") or {}
        n += 1
        total += k_total
        passed += k_passed
        for s, c in k_sources.items():
            sources[s] = sources.get(s, 0) + c
        if meta.get("group") not in (None, ""):  # only instructions with Selection carry a task group
            task_groups.setdefault(meta["group"], []).append(k_passed == k_total)
        keys = {"by_category": meta.get("category"), "by_task_type": meta.get("task_types")}
        if isinstance(keys["by_category"], str):
            keys["by_category_avg"] = keys["by_category"].split("_")[0]
        for g, k in keys.items():
            if isinstance(k, str):
                acc = groups[g].setdefault(k, [0, 0])
                acc[0] += k_passed
                acc[1] += k_total
    if total == 0:
        raise ValueError("nothing to aggregate: no scored questions")
    out: dict[str, Any] = {"n": n, "n_questions": total, "overall_drfr": passed / total,
                           "sources": {s: c for s, c in sources.items() if c}}
    for g, acc in groups.items():
        out[g] = {k: p / t for k, (p, t) in sorted(acc.items())}
    multi = [oks for oks in task_groups.values() if len(oks) > 1]
    if multi:  # the coherent test: every instruction of a group must pass, not just each on its own
        instructions = [ok for oks in multi for ok in oks]
        out["coherent"] = {"groups": len(multi), "origin": sum(instructions) / len(instructions),
                           "coherent": sum(all(oks) for oks in multi) / len(multi)}
    return out
