"""Live routes: a backend, a strategy over a reasoning switch, and a decider each; and where a route answers.

`Route.complete` and `Route.stream` are the one place a route answers a decided request: the strategy runs
its calls through the switch (a guard that checks the answer will wrap them here). `Route.attempt` is the
seam for components that need the answer as one value (an `Attempt`) and may call the route again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, AsyncIterator, Mapping

from .backends.base import Backend, Body, Chunk, aclose
from .conversation import strip_client_reasoning
from .deciders import Decider, make_decider
from .errors import ConfigError, ServiceNotReady
from .guard_run import GuardReport
from .settings import Config, RouteConfig
from .strategies import Attempt, Strategy, build_strategy
from .strategies.guard import GuardStrategy
from .strategies.streaming import client_view, wants_usage, with_usage


@dataclass
class Route:
    alias: str
    config: RouteConfig
    backend: Backend
    strategy: Strategy[Any]
    decider: Decider

    @property
    def default_think(self) -> bool:
        return self.config.default_decision == "think"

    async def ensure_ready(self, wait_s: float) -> None:
        if self.backend.is_ready():
            return
        if not await self.backend.wait_ready(wait_s):
            raise ServiceNotReady(f"model '{self.alias}' is still loading; retry shortly (see GET /readyz)")

    def upstream_body(self, request: Body, messages: list[dict[str, Any]]) -> Body:
        """The client's request as this route sends it: its model name, history without reasoning, and no
        client reasoning fields (the decision is applied by the switch; `none` forwards them untouched)."""
        body = {**request, "messages": messages, "model": self.config.model or request["model"]}
        return body if self.strategy.switch.name == "none" else strip_client_reasoning(body)

    async def attempt(self, body: Body, *, think: bool, budget: int, guard: GuardReport | None = None) -> Attempt:
        """`guard` carries the client's guard switch in and what the guard did out (routes with strategy `guard`)."""
        if guard is not None and isinstance(self.strategy, GuardStrategy):
            return await self.strategy.guarded(self.backend, body, think=think, budget=budget, report=guard)
        return await self.strategy.attempt(self.backend, body, think=think, budget=budget)

    async def complete(self, body: Body, *, think: bool, budget: int, guard: GuardReport | None = None) -> Body:
        return (await self.attempt(body, think=think, budget=budget, guard=guard)).response

    def stream(self, body: Body, *, think: bool, budget: int, guard: GuardReport | None = None) -> "RouteStream":
        """Usage is always requested upstream (the decision log needs it) and shown only if the client asked."""
        if guard is not None and isinstance(self.strategy, GuardStrategy):
            chunks = self.strategy.stream_guarded(self.backend, with_usage(body), think=think, budget=budget,
                                                  report=guard)
        else:
            chunks = self.strategy.stream(self.backend, with_usage(body), think=think, budget=budget)
        return RouteStream(chunks, client_wants_usage=wants_usage(body))


class RouteStream:
    """The chunks a client sees, and the usage the upstream reported (for the decision record)."""

    def __init__(self, chunks: AsyncIterator[Chunk], *, client_wants_usage: bool) -> None:
        self._chunks = chunks
        self._client_wants_usage = client_wants_usage
        self.usage: dict[str, Any] | None = None

    def __aiter__(self) -> "RouteStream":
        return self

    async def __anext__(self) -> Chunk:
        while True:
            chunk = await anext(self._chunks)
            if chunk.get("usage"):
                self.usage = chunk["usage"]
            visible = client_view(chunk, self._client_wants_usage)
            if visible is not None:
                return visible

    async def aclose(self) -> None:
        await aclose(self._chunks)


def _api_key(alias: str, cfg: RouteConfig, environ: Mapping[str, str]) -> str | None:
    if not cfg.api_key_env:
        return None
    key = environ.get(cfg.api_key_env)
    if not key:
        raise ConfigError(f"route '{alias}': environment variable {cfg.api_key_env} (api_key_env) is not set")
    return key


def _backend_key(cfg: RouteConfig) -> tuple[Any, ...]:
    """Routes that talk to the same upstream share one backend (one connection pool, one loaded model)."""
    return (cfg.backend, cfg.base_url, cfg.api_key_env, cfg.model_path, cfg.prefill, cfg.timeout_s,
            tuple(sorted(cfg.backend_options.items())), cfg.model if cfg.backend == "litellm" else None)


def build_backend(alias: str, cfg: RouteConfig, *, environ: Mapping[str, str]) -> Backend:
    api_key = _api_key(alias, cfg, environ)
    if cfg.backend == "openai":
        from .backends.openai_compat import OpenAICompatBackend

        return OpenAICompatBackend(cfg.base_url or "", api_key, timeout_s=cfg.timeout_s,
                                   prefill_style=cfg.prefill, **cfg.backend_options)
    if cfg.backend == "litellm":
        from .backends.litellm_backend import LiteLLMBackend

        return LiteLLMBackend(cfg.model, api_key=api_key, base_url=cfg.base_url, timeout_s=cfg.timeout_s,
                              extra=cfg.backend_options)
    from .backends.local import LocalBackend

    return LocalBackend(cfg.model_path, **cfg.backend_options)


def build_routes(config: Config, *, backends: Mapping[str, Backend] | None = None,
                 environ: Mapping[str, str] | None = None) -> dict[str, Route]:
    """Build every route; `backends` injects ready-made backends by alias (tests, embedding)."""
    environ = os.environ if environ is None else environ
    shared: dict[tuple[Any, ...], Backend] = {}
    routes: dict[str, Route] = {}
    for alias, cfg in config.routes.items():
        if backends and alias in backends:
            backend = backends[alias]
        else:
            key = _backend_key(cfg)
            if key not in shared:
                try:
                    shared[key] = build_backend(alias, cfg, environ=environ)
                except TypeError as exc:  # unknown backend_options key
                    raise ConfigError(f"route '{alias}': backend_options: {exc}") from None
            backend = shared[key]
        strategy = build_strategy(cfg.profile, cfg.profile_options, cfg.strategy, cfg.strategy_options)
        try:
            decider = make_decider(cfg.policy, cfg.policy_options, backend=backend,
                                   direct_body=strategy.direct_body, upstream_model=cfg.model)
        except ConfigError as exc:
            raise ConfigError(f"route '{alias}': {exc}") from None
        routes[alias] = Route(alias, cfg, backend, strategy, decider)
    return routes


def unique_backends(routes: Mapping[str, Route]) -> list[Backend]:
    seen: dict[int, Backend] = {}
    for route in routes.values():
        seen.setdefault(id(route.backend), route.backend)
    return list(seen.values())
