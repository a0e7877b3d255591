"""Strategies: how many calls answer one request, each call going through the route's switch.

A strategy wraps any switch (`router.profiles`) and combines its calls through `Attempt` values. `attempt`
is the seam for components that call the route again (a guard escalating with thinking on): it returns one
`Attempt`; `complete` is its OpenAI response; `stream` yields OpenAI chunks.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, AsyncIterator, ClassVar, Generic, TypeVar, cast

from pydantic import BaseModel, ConfigDict

from ..backends.base import Backend, Body, Chunk
from ..profiles.base import Switch
from ..registry import validate_options
from .attempt import Attempt
from .calls import call, stream_call


class StrategyOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")


OptionsT = TypeVar("OptionsT", bound=StrategyOptions)


class Strategy(ABC, Generic[OptionsT]):
    name: ClassVar[str]
    Options: ClassVar[type[StrategyOptions]] = StrategyOptions

    def __init__(self, switch: Switch, options: dict[str, Any] | None = None, *, label: str | None = None) -> None:
        self.switch = switch
        self.options = cast(OptionsT, validate_options(self.Options, options, f"strategy '{self.name}'"))
        # The name reports and outcome tables show: the switch alone, or "strategy/switch".
        self.label = label or (switch.name if self.name == SingleCall.name else f"{self.name}/{switch.name}")

    @abstractmethod
    async def attempt(self, backend: Backend, body: Body, *, think: bool, budget: int) -> Attempt:
        """Answer `body` (thinking on or off) and return the combined attempt."""

    @abstractmethod
    def stream(self, backend: Backend, body: Body, *, think: bool, budget: int) -> AsyncIterator[Chunk]:
        """Answer `body` as OpenAI chunks. Closing the iterator closes the upstream stream."""

    async def complete(self, backend: Backend, body: Body, *, think: bool, budget: int) -> Body:
        return (await self.attempt(backend, body, think=think, budget=budget)).response

    def direct_body(self, body: Body) -> Body:
        """A body with thinking off, for side calls such as the self-select question."""
        return self.switch.direct_body(body)


class SingleCall(Strategy[StrategyOptions]):
    """One answer through the switch (the default): what every switch did on its own before strategies."""

    name = "single"

    async def attempt(self, backend: Backend, body: Body, *, think: bool, budget: int) -> Attempt:
        return await call(self.switch, backend, body, think=think, budget=budget)

    def stream(self, backend: Backend, body: Body, *, think: bool, budget: int) -> AsyncIterator[Chunk]:
        return stream_call(self.switch, backend, body, think=think, budget=budget)
