"""Chain-of-thought switches for plain instruct models, which have no reasoning switch of their own.

- `prompt-cot`: "on" asks for reasoning inside `<think>…</think>` in a system instruction and splits the
  reply. Small models ignore the instruction (SmolLM2-135M: no tag in 48 of 48 replies), in which case the
  whole reply is the answer and there is no reasoning (see `router.thinksplit`).
- `forced-cot`: "on" *makes* the model think: the assistant turn is opened with `<think>`, the model writes
  up to `think_budget` tokens or until it closes the tag, the tag is closed, then it writes the answer with
  that reasoning in context. Done natively by the local backend (one batched request), by prefill where the
  upstream continues an assistant message (vLLM `continue_final_message`, Anthropic), and otherwise in two
  calls (`two-call`): one for the reasoning only, one for the answer with the reasoning in context. The
  switch only says so (`Prepared.forced`); `router.strategies.calls` runs the calls with `ForcedPhases`.
- `two-call-cot` (an alias, see `router.profiles.ALIASES`): `forced-cot` with `mode = "two-call"`.

"Off" sends the request unchanged in every case.
"""

from __future__ import annotations

import copy

from ..backends.base import Backend, Body
from ..thinksplit import CLOSE_TAG, OPEN_TAG
from .base import ForcedMode, ForcedThinking, Prepared, ProfileOptions, ReasoningProfile, SplitRule, \
    with_system_instruction

COT_INSTRUCTION = (
    f"Before answering, think step by step inside {OPEN_TAG} and {CLOSE_TAG} tags. After {CLOSE_TAG}, write "
    "only your final answer, following every instruction in the request exactly."
)
REASONING_ONLY_INSTRUCTION = (
    "Think step by step about how to answer the user's last message so that the answer follows every "
    "instruction in it exactly. Write only this reasoning; do not write the answer itself."
)
ANSWER_WITH_REASONING = (
    "Your private reasoning about the request (the user does not see it):\n{reasoning}\n\n"
    "Now write only your final answer to the user's last message."
)


class PromptCotOptions(ProfileOptions):
    instruction: str = COT_INSTRUCTION


class PromptCotProfile(ReasoningProfile[PromptCotOptions]):
    name = "prompt-cot"
    Options = PromptCotOptions

    def prepare(self, body: Body, think: bool, budget: int = 0) -> Prepared:
        if not think:
            return Prepared(body)
        out = {**body, "messages": with_system_instruction(body["messages"], self.options.instruction)}
        return Prepared(out, SplitRule())


class ForcedCotOptions(ProfileOptions):
    mode: ForcedMode = "auto"


class ForcedCotProfile(ReasoningProfile[ForcedCotOptions]):
    name = "forced-cot"
    Options = ForcedCotOptions

    def prepare(self, body: Body, think: bool, budget: int = 0) -> Prepared:
        return Prepared(body, forced=ForcedThinking(self.options.mode) if think else None)


def resolve_forced_mode(mode: ForcedMode, backend: Backend) -> ForcedMode:
    """`auto`: native where the backend can, else prefill where it can continue a turn, else two calls."""
    if mode != "auto":
        return mode
    if backend.native_forced_thinking:
        return "native"
    return "prefill" if backend.supports_prefill else "two-call"


class ForcedPhases:
    """Builds the two requests of forced thinking without native support (pure: no calls)."""

    def __init__(self, body: Body, budget: int, *, prefill: bool) -> None:
        self.body, self.budget, self.prefill = body, budget, prefill

    def reasoning_body(self) -> Body:
        out = {k: v for k, v in self.body.items() if k not in ("max_completion_tokens", "stop", "n")}
        out["max_tokens"] = self.budget
        if self.prefill:
            out["messages"] = [*self.body["messages"], {"role": "assistant", "content": f"{OPEN_TAG}\n"}]
            out["stop"] = [CLOSE_TAG]
        else:
            out["messages"] = with_system_instruction(self.body["messages"], REASONING_ONLY_INSTRUCTION)
        return out

    def answer_body(self, reasoning: str) -> Body:
        messages = copy.copy(self.body["messages"])
        if self.prefill:
            messages.append({"role": "assistant", "content": f"{OPEN_TAG}\n{reasoning}\n{CLOSE_TAG}\n"})
        else:
            messages.append({"role": "system", "content": ANSWER_WITH_REASONING.format(reasoning=reasoning)})
        return {**self.body, "messages": messages}

    @staticmethod
    def clean_reasoning(text: str) -> str:
        """Keep only the reasoning: drop an echoed open tag and anything after a close tag."""
        text = text.strip()
        if text.startswith(OPEN_TAG):
            text = text[len(OPEN_TAG):]
        return text.split(CLOSE_TAG, 1)[0].strip()
