"""Turn validated route configs into live routes: a backend, a reasoning profile and a decider each."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping

from .backends.base import Backend
from .deciders import Decider, make_decider
from .errors import ConfigError, ServiceNotReady
from .profiles import ReasoningProfile, make_profile
from .settings import Config, RouteConfig


@dataclass
class Route:
    alias: str
    config: RouteConfig
    backend: Backend
    profile: ReasoningProfile
    decider: Decider

    @property
    def default_think(self) -> bool:
        return self.config.default_decision == "think"

    async def ensure_ready(self, wait_s: float) -> None:
        if self.backend.is_ready():
            return
        if not await self.backend.wait_ready(wait_s):
            raise ServiceNotReady(f"model '{self.alias}' is still loading; retry shortly (see GET /readyz)")


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
        profile = make_profile(cfg.profile, cfg.profile_options)
        try:
            decider = make_decider(cfg.policy, cfg.policy_options, backend=backend,
                                   direct_body=profile.direct_body, upstream_model=cfg.model)
        except ConfigError as exc:
            raise ConfigError(f"route '{alias}': {exc}") from None
        routes[alias] = Route(alias, cfg, backend, profile, decider)
    return routes


def unique_backends(routes: Mapping[str, Route]) -> list[Backend]:
    seen: dict[int, Backend] = {}
    for route in routes.values():
        seen.setdefault(id(route.backend), route.backend)
    return list(seen.values())
