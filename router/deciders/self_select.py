"""Self-selective reasoning: ask the model itself whether the request needs step-by-step thinking.

The question goes to the route's own upstream with thinking off, a small `max_tokens` and a bounded
timeout. The answer is parsed for YES/NO; anything else is an error, and the caller falls back.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, Callable

from pydantic import Field

from ..backends.base import Backend, Body
from .base import Decider, DecisionContext, DeciderOptions

SELF_SELECT_PROMPT = (
    "You will see a request. Do not answer it. Decide whether answering it well needs careful "
    "step-by-step reasoning first. Reply with exactly one word: YES or NO."
)

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


class SelfSelectOptions(DeciderOptions):
    max_tokens: int = Field(default=4, ge=1, le=64)
    timeout_s: float = Field(default=5.0, gt=0)
    prompt: str = SELF_SELECT_PROMPT


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

    async def score(self, ctx: DecisionContext) -> float:
        opts = self.options
        body = self._direct_body({
            "model": self._model,
            "messages": [{"role": "system", "content": opts.prompt}, {"role": "user", "content": ctx.text}],
            "max_tokens": opts.max_tokens,
            "temperature": 0,
        })
        response = await asyncio.wait_for(self._backend.complete(body), opts.timeout_s)
        text = (response.get("choices") or [{}])[0].get("message", {}).get("content") or ""
        return 1.0 if parse_yes_no(text) else 0.0
