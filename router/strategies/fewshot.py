"""`few-shot`: forced thinking, primed with worked examples of thinking failures and their corrections.

Thinking makes models plan content and lose simple constraints on the form of the answer. One mitigation
in Li et al. (arXiv 2505.11423) shows the model examples of exactly that failure next to a corrected answer
(a small gain there). "On" adds such examples as a system instruction, then thinks with the route's switch
(`forced-cot` for the old `few-shot` profile name: native on the local backend, prefill or two calls
elsewhere); the answer/reasoning split, usage and streaming are the switch's. "Off" is the switch's "off".

The bundled examples (`fewshot_examples.json`) are written for this project, never taken from a benchmark:
each is a request with a checkable constraint, a short thought that loses it, and an answer that follows it.
They target the constraints SmolLM2-135M breaks most often when it thinks (title in `<<...>>`, exact
bullet counts, a JSON-only answer, a sentence count, `*highlighted*` phrases, `Section N` headers).
A user file (`examples_path`) has the same schema: a JSON list of objects with `request`,
`flawed_thinking`, `corrected_answer` and an optional `kind`.

Size control, estimating tokens as ceil(characters / 4): examples are taken in order while the whole block
stays within `examples_token_budget` (and `max_examples`); per request, examples are dropped from the end
while request + block + thinking budget + `max_tokens` would exceed `context_tokens` (possibly to none).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, AsyncIterator, Sequence

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from ..backends.base import Backend, Body, Chunk
from ..errors import ConfigError
from ..profiles.base import Prepared, Switch, with_system_instruction
from .attempt import Attempt
from .base import Strategy, StrategyOptions
from .calls import call, stream_call

BUNDLED_EXAMPLES = Path(__file__).with_name("fewshot_examples.json")
HEADER = "Thinking first can make you forget simple rules of a request. Learn from these mistakes:"
FOOTER = "Keep every rule of the user's request in mind while you think, and follow all of them."
MESSAGE_OVERHEAD_TOKENS = 4  # role markers and separators of one chat message


class FewShotExample(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request: str = Field(min_length=1)
    flawed_thinking: str = Field(min_length=1)
    corrected_answer: str = Field(min_length=1)
    kind: str = ""


_EXAMPLE_LIST = TypeAdapter(list[FewShotExample])


class FewShotOptions(StrategyOptions):
    examples_path: str | None = None  # None: the bundled examples
    max_examples: int = Field(default=6, ge=0)
    examples_token_budget: int = Field(default=600, ge=0)
    context_tokens: int = Field(default=8192, ge=1)


class FewShotStrategy(Strategy[FewShotOptions]):
    name = "few-shot"
    Options = FewShotOptions

    def __init__(self, switch: Switch, options: dict[str, Any] | None = None, *, label: str | None = None) -> None:
        super().__init__(switch, options, label=label)
        opts = self.options
        examples = load_examples(opts.examples_path or BUNDLED_EXAMPLES)
        chosen = within_budget(examples[:opts.max_examples], opts.examples_token_budget)
        self.blocks = [render_block(chosen[:k]) for k in range(len(chosen) + 1)]  # blocks[k]: the first k

    def instruction_for(self, body: Body, budget: int) -> str:
        """The largest examples block that still fits the context with this request ("" for none)."""
        room = self.options.context_tokens - request_tokens(body) - budget - max_tokens_of(body)
        fitting = [block for block in self.blocks if estimate_tokens(block) <= room]
        return fitting[-1] if fitting else ""

    def prepare(self, body: Body, think: bool, budget: int = 0) -> Prepared:
        """The request with the examples that fit (thinking on only), before the switch shapes it."""
        instruction = self.instruction_for(body, budget) if think else ""
        if not instruction:
            return Prepared(body)
        return Prepared({**body, "messages": with_system_instruction(body["messages"], instruction)})

    async def attempt(self, backend: Backend, body: Body, *, think: bool, budget: int) -> Attempt:
        body = self.prepare(body, think, budget).body
        return await call(self.switch, backend, body, think=think, budget=budget)

    def stream(self, backend: Backend, body: Body, *, think: bool, budget: int) -> AsyncIterator[Chunk]:
        body = self.prepare(body, think, budget).body
        return stream_call(self.switch, backend, body, think=think, budget=budget)


def load_examples(path: str | Path) -> list[FewShotExample]:
    """Read and validate an examples file; any problem is a `ConfigError` naming the file and the entry."""
    where = f"few-shot examples file '{path}'"
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read it ({exc.strerror or exc})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where}: not valid JSON ({exc})") from None
    try:
        examples = _EXAMPLE_LIST.validate_python(data)
    except ValidationError as exc:
        raise ConfigError(f"{where}: {_describe(exc)}") from None
    if not examples:
        raise ConfigError(f"{where}: the list holds no examples")
    return examples


def _describe(exc: ValidationError) -> str:
    first = exc.errors()[0]
    loc = first["loc"]
    if not loc:
        return "must be a JSON list of objects with request, flawed_thinking and corrected_answer"
    field = f", field '{loc[1]}'" if len(loc) > 1 else ""
    return f"example {int(loc[0]) + 1}{field}: {first['msg']}"


def render_example(example: FewShotExample) -> str:
    return (f"Request: {example.request}\nBad thinking: {example.flawed_thinking}\n"
            f"Correct answer:\n{example.corrected_answer}")


def render_block(examples: Sequence[FewShotExample]) -> str:
    if not examples:
        return ""
    return "\n\n".join([HEADER, *(render_example(e) for e in examples), FOOTER])


def within_budget(examples: Sequence[FewShotExample], budget: int) -> list[FewShotExample]:
    """The longest prefix of `examples` whose block fits `budget` estimated tokens."""
    chosen: list[FewShotExample] = []
    for example in examples:
        if estimate_tokens(render_block([*chosen, example])) > budget:
            break
        chosen.append(example)
    return chosen


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def request_tokens(body: Body) -> int:
    messages = body.get("messages") or []
    text = "".join(str(m.get("content") or "") for m in messages)
    return estimate_tokens(text) + MESSAGE_OVERHEAD_TOKENS * len(messages)


def max_tokens_of(body: Body) -> int:
    """The answer's token limit, 0 when the request sets none (the upstream then uses what is left)."""
    return int(body.get("max_completion_tokens") or body.get("max_tokens") or 0)
