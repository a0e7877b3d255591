"""Self-selective reasoning: ask the model itself whether the request needs step-by-step thinking.

The question goes to the route's own upstream with thinking off and a bounded timeout. The score is the
model's own probability of answering YES against NO at the first answer token,
P(YES) / (P(YES) + P(NO)), read from log-probabilities (`Backend.next_token_probs`: exact logits on the
local model, OpenAI's `top_logprobs` on pass-through and litellm upstreams). Upstreams without
log-probabilities, or whose top tokens hold neither word, fall back to parsing a short text reply (score 1.0
or 0.0); a reply with neither word is an error, and the caller falls back to the route's default decision.
`Decision.method` (and the `x-thinkgate-score-method` header) says which was used.

Self-selection is biased (the paper: it chooses to reason too often), so the threshold should be calibrated on
outcomes: `thinkgate calibrate self-select` writes a calibration file that `policy_options.calibration` loads.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any, Callable, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..backends.base import Backend, Body, message_text, usage_tokens
from ..errors import ConfigError
from .base import Decider, DecisionContext, DeciderOptions, Decision

SELF_SELECT_PROMPT = (
    "You will see a request. Do not answer it. Decide whether answering it well needs careful "
    "step-by-step reasoning first. Reply with exactly one word: YES or NO."
)
YES, NO = "YES", "NO"
CALIBRATION_FORMAT = "thinkgate-self-select-calibration"

_WORD = re.compile(r"[A-Za-z]+")


class SelfSelectError(ValueError):
    """The model's reply held neither YES nor NO."""


def parse_yes_no(text: str) -> bool:
    """First YES/NO-like word wins ("**Yes.**", "no, because…", "Answer: YES"); otherwise raise."""
    for word in _WORD.findall(text or "")[:12]:
        w = word.lower()
        if w in ("yes", "y", "true"):
            return True
        if w in ("no", "n", "false"):
            return False
    raise SelfSelectError(f"self-select reply had no YES/NO: {text[:80]!r}")


def yes_share(p_yes: float, p_no: float) -> float | None:
    """P(YES) / (P(YES) + P(NO)), or None when neither word has any probability."""
    total = p_yes + p_no
    return p_yes / total if total > 0 else None


def question_messages(prompt: str, text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": prompt}, {"role": "user", "content": text}]


class Calibration(BaseModel):
    """A calibrated self-select threshold, as `thinkgate calibrate self-select` writes it."""

    model_config = ConfigDict(extra="allow")

    format: Literal["thinkgate-self-select-calibration"]
    version: Literal[1]
    threshold: float = Field(ge=0.0, le=2.0)  # above 1: never think (scores lie in [0, 1])
    prompt: str = Field(min_length=1)
    model: str = ""
    method: str = ""  # how the threshold was chosen (max_accuracy, think_rate, cost)
    command: str = ""

    @classmethod
    def load(cls, path: str | Path) -> "Calibration":
        try:
            return cls.model_validate(json.loads(Path(path).read_text(encoding="utf-8")))
        except OSError as exc:
            raise ConfigError(f"self-select calibration {path}: {exc.strerror or exc}") from None
        except (ValueError, ValidationError) as exc:
            raise ConfigError(f"self-select calibration {path} is not a valid calibration file: "
                              f"{str(exc).splitlines()[0]}") from None


class SelfSelectOptions(DeciderOptions):
    max_tokens: int = Field(default=4, ge=1, le=64)  # the text fallback's reply
    timeout_s: float = Field(default=5.0, gt=0)
    prompt: str = SELF_SELECT_PROMPT
    # auto: log-probabilities, then text; logprobs: no text fallback (an upstream without them fails over to the
    # route's default decision); text: the reply's first YES/NO word only.
    method: Literal["auto", "logprobs", "text"] = "auto"
    calibration: str | None = None  # a calibration file: its threshold and prompt replace the defaults


class SelfSelectDecider(Decider[SelfSelectOptions]):
    name = "self-select"
    Options = SelfSelectOptions
    io_bound = True

    def __init__(self, options: dict[str, Any] | None = None, *, backend: Backend | None = None,
                 direct_body: Callable[[Body], Body] | None = None, upstream_model: str = "", **deps: Any) -> None:
        super().__init__(options)
        if backend is None:
            raise ValueError("self-select needs the route's backend")
        self._backend = backend
        self._direct_body = direct_body or (lambda body: body)
        self._model = upstream_model
        opts = self.options
        self._prompt, self._threshold = opts.prompt, opts.threshold
        if opts.calibration:
            calibration = Calibration.load(opts.calibration)
            self._prompt = calibration.prompt if "prompt" not in opts.model_fields_set else opts.prompt
            self._threshold = calibration.threshold if "threshold" not in opts.model_fields_set else opts.threshold

    @property
    def threshold(self) -> float:
        return self._threshold

    async def score(self, ctx: DecisionContext) -> float:
        return (await self.measure(ctx))[0]

    async def decide(self, ctx: DecisionContext) -> Decision:
        score, method, tokens = await self.measure(ctx)
        return Decision(think=score >= self.threshold, policy=self.name, score=score, method=method, tokens=tokens)

    async def measure(self, ctx: DecisionContext) -> tuple[float, str, int]:
        """(score, "logprobs" | "text", tokens the question cost): one upstream call, within `timeout_s`.

        The reply's log-probabilities give the score; without them (or with neither word among the top
        tokens) the reply's text is parsed, unless `method` forbids it.
        """
        opts = self.options
        body = self._direct_body({"model": self._model, "messages": question_messages(self._prompt, ctx.text),
                                  "max_tokens": opts.max_tokens, "temperature": 0})
        if opts.method == "text":
            response = await asyncio.wait_for(self._backend.complete(body), opts.timeout_s)
            return (1.0 if parse_yes_no(message_text(response)) else 0.0), "text", usage_tokens(response)
        found = await asyncio.wait_for(self._backend.next_token_probs(body, (YES, NO)), opts.timeout_s)
        if found.probs is not None:
            share = yes_share(found.probs.get(YES, 0.0), found.probs.get(NO, 0.0))
            if share is not None:
                return share, "logprobs", found.tokens
        if opts.method == "logprobs" or not found.text:
            raise SelfSelectError("the upstream gave no log-probabilities for YES or NO")
        return (1.0 if parse_yes_no(found.text) else 0.0), "text", found.tokens
