"""Configuration: a TOML or YAML file validated with pydantic, quick CLI flags, and `THINKGATE_*` variables.

One entry point, `load_config(path, environ, overrides)`; command-line tools only build an `Overrides`.
Precedence (highest first): CLI flags, environment variables, the config file, built-in defaults.
With no file and no flags, thinkgate serves the embedded SmolLM2-135M-Instruct as route `smollm2-135m`.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import ConfigError
from .pricing import ModelPrice

ENV_PREFIX = "THINKGATE_"
DEFAULT_ROUTE = "smollm2-135m"
# The decision model shipped for the default route (classifiers/artifacts/NAME, made by `thinkgate train`).
DEFAULT_ARTIFACT = "smollm2-135m-ifeval"
# `--upstream PROVIDER/MODEL` for these providers uses the pass-through backend at this base URL.
KNOWN_PROVIDERS_OPENAI = {"openai": "https://api.openai.com/v1"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RouteConfig(_Strict):
    """One model alias: where requests go, how thinking is switched, and who decides."""

    backend: Literal["openai", "litellm", "local"] = "openai"
    model: str = ""  # the upstream's model name (litellm: `provider/model`); local: a label
    base_url: str | None = None
    api_key_env: str | None = None  # name of the environment variable that holds the upstream key
    model_path: str | None = None  # local: a GGUF file or model directory; unset = embedded SmolLM2
    prefill: Literal["none", "vllm"] = "none"  # openai backend: can the upstream continue an assistant turn?
    backend_options: dict[str, Any] = Field(default_factory=dict)
    profile: str = "prompt-cot"  # the reasoning switch (or an old strategy alias, see router.strategies)
    profile_options: dict[str, Any] = Field(default_factory=dict)
    strategy: str = "single"  # how many calls answer: single, self-reflect, few-shot (each over `profile`)
    strategy_options: dict[str, Any] = Field(default_factory=dict)
    think_budget: int = Field(default=160, ge=1, le=32768)
    policy: str = "never"
    policy_options: dict[str, Any] = Field(default_factory=dict)
    default_decision: Literal["think", "direct"] = "direct"  # used when the policy fails or times out
    # A request that carries its own reasoning fields (reasoning_effort, thinking, enable_thinking):
    # "respect" lets them decide; "override" strips them and lets the policy decide.
    client_reasoning: Literal["respect", "override"] = "respect"
    timeout_s: float = Field(default=120.0, gt=0)
    # USD per million tokens of the models this route calls (router.pricing); used by cost reports/replays.
    prices: dict[str, ModelPrice] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check_backend_fields(self) -> "RouteConfig":
        if self.backend == "openai" and not self.base_url:
            raise ValueError("backend 'openai' needs base_url (e.g. https://api.openai.com/v1)")
        if self.backend == "litellm" and not self.model:
            raise ValueError("backend 'litellm' needs model (e.g. anthropic/claude-sonnet-4-5)")
        return self


class ServerSettings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    # Client API keys are read from this variable (comma-separated); unset or empty = no client auth.
    api_keys_env: str = f"{ENV_PREFIX}API_KEYS"
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    decider_timeout_s: float = Field(default=5.0, gt=0)
    ready_wait_s: float = Field(default=30.0, ge=0)  # how long a request waits for a loading backend
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    workers: int = Field(default=1, ge=1, le=64)  # processes on one port (router/workers.py)
    # Limits and guarantees (README "Errors"): a request's head must arrive within header_timeout_s and its
    # body within body_timeout_s (408 beyond); heads over max_header_bytes or max_headers get 431.
    header_timeout_s: float = Field(default=10.0, gt=0)
    body_timeout_s: float = Field(default=30.0, gt=0)
    max_header_bytes: int = Field(default=32 * 1024, ge=1024)
    max_headers: int = Field(default=100, ge=8)
    # A decision reads at most this many characters from each end of the decision text.
    decision_text_chars: int = Field(default=8192, ge=256)
    # With client keys configured: /metrics needs a key too (true) or stays open to scrapers (false).
    # /healthz and /readyz are always open (probes carry no keys); /readyz then hides route names.
    metrics_require_key: bool = True
    # Exempt the objects alive after start-up from garbage collection (router/gc_tuning.py): full passes
    # over them otherwise stall the event loop for milliseconds at a time under load.
    gc_freeze: bool = True
    # Generation-0 threshold of the garbage collector (Python's default is 700, which requests in flight
    # cross on their own; router/gc_tuning.py has the measurements).
    gc_young_threshold: int = Field(default=10000, ge=100, le=10_000_000)


class DecisionLogSettings(_Strict):
    enabled: bool = True
    # A SQLite file (one machine; several workers are fine) or a PostgreSQL DSN, postgresql://... (a fleet).
    path: str = "thinkgate-decisions.sqlite3"
    log_prompts: bool = False
    queue_size: int = Field(default=10000, ge=1)
    # The writer commits queued records this often: the most a kill -9 can lose (see router/decision_log.py).
    flush_interval_ms: float = Field(default=50.0, gt=0, le=10000)

    @model_validator(mode="before")
    @classmethod
    def _target_shorthand(cls, data: Any) -> Any:
        """`decision_log = "postgresql://..."` (or a path) is short for `decision_log.path = ...`."""
        return {"path": data} if isinstance(data, str) else data


def default_routes() -> dict[str, RouteConfig]:
    return {DEFAULT_ROUTE: RouteConfig(backend="local", model="SmolLM2-135M-Instruct", profile="forced-cot",
                                       policy="classifier", policy_options={"artifact": DEFAULT_ARTIFACT})}


class Config(_Strict):
    server: ServerSettings = Field(default_factory=ServerSettings)
    decision_log: DecisionLogSettings = Field(default_factory=DecisionLogSettings)
    routes: dict[str, RouteConfig] = Field(default_factory=default_routes, min_length=1)
    # The ComplexBench judge route of the offline tools, validated by `training.judge`; the proxy ignores it.
    judge: dict[str, Any] = Field(default_factory=dict)

    def client_api_keys(self, environ: Mapping[str, str] | None = None) -> frozenset[str]:
        raw = (os.environ if environ is None else environ).get(self.server.api_keys_env, "")
        return frozenset(k.strip() for k in raw.split(",") if k.strip())


def _format_validation_error(exc: ValidationError, source: str) -> str:
    lines = []
    for err in exc.errors()[:5]:
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"{key}: {msg}")
    return f"invalid configuration in {source}: " + "; ".join(lines)


def parse_config(data: Mapping[str, Any], source: str = "config") -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, source)) from None


def read_config_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            data = tomllib.loads(text)
    except Exception as exc:  # yaml.YAMLError / tomllib.TOMLDecodeError
        raise ConfigError(f"cannot parse config file {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return data


_OFF = ("off", "none", "false", "0")
_ENV_KEYS: dict[str, tuple[str, str]] = {
    "HOST": ("server", "host"),
    "PORT": ("server", "port"),
    "MAX_BODY_BYTES": ("server", "max_body_bytes"),
    "DECIDER_TIMEOUT_S": ("server", "decider_timeout_s"),
    "READY_WAIT_S": ("server", "ready_wait_s"),
    "LOG_LEVEL": ("server", "log_level"),
    "WORKERS": ("server", "workers"),
    "DECISION_LOG": ("decision_log", "path"),
    "LOG_PROMPTS": ("decision_log", "log_prompts"),
}


def _expand_shorthands(data: dict[str, Any]) -> dict[str, Any]:
    """`decision_log = "TARGET"` -> `decision_log = {path = "TARGET"}`, so overlays can add keys to it."""
    if isinstance(data.get("decision_log"), str):
        return {**data, "decision_log": {"path": data["decision_log"]}}
    return data


def apply_env(data: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """Overlay `THINKGATE_*` variables (see `_ENV_KEYS`); `THINKGATE_DECISION_LOG=off` disables the log."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in _expand_shorthands(data).items()}
    for suffix, (section, key) in _ENV_KEYS.items():
        value = environ.get(ENV_PREFIX + suffix)
        if value is None:
            continue
        target = out.setdefault(section, {})
        if suffix == "DECISION_LOG" and value.lower() in ("", *_OFF):
            target["enabled"] = False
        else:
            target[key] = value
    return out


@dataclass(frozen=True)
class Overrides:
    """What command-line flags set (None: not given); `load_config` applies them above everything else."""

    config: str | None = None
    upstream: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    alias: str | None = None
    profile: str | None = None
    policy: str | None = None
    artifact: str | None = None
    think_budget: int | None = None
    host: str | None = None
    port: int | None = None
    decision_log: str | None = None
    workers: int | None = None

    @classmethod
    def from_namespace(cls, args: object) -> "Overrides":
        """The overrides among an argparse namespace's attributes (missing attributes are not given)."""
        return cls(**{f.name: getattr(args, f.name, None) for f in fields(cls)})

    def given(self) -> bool:
        return any(getattr(self, f.name) is not None for f in fields(self))


def route_from_upstream(flags: Overrides) -> tuple[str, dict[str, Any]]:
    """Translate the quick flags (`--upstream`, `--base-url`, ...) into one route config."""
    upstream = flags.upstream or ""
    route: dict[str, Any] = {}
    if upstream == "local" or upstream.startswith("local:"):
        route = {"backend": "local", "model": "local", "profile": "forced-cot"}
        if ":" in upstream:
            route["model_path"] = upstream.split(":", 1)[1]
            route["model"] = os.path.basename(route["model_path"].rstrip("/"))
    else:
        provider, _, model = upstream.partition("/")
        if flags.base_url or provider in KNOWN_PROVIDERS_OPENAI:
            model = model if provider in KNOWN_PROVIDERS_OPENAI else upstream
            route = {"backend": "openai", "model": model,
                     "base_url": flags.base_url or KNOWN_PROVIDERS_OPENAI[provider]}
            if provider == "openai" and not flags.base_url:
                route["api_key_env"] = "OPENAI_API_KEY"
        else:
            if not model:
                raise ConfigError(f"--upstream {upstream!r}: expected PROVIDER/MODEL, e.g. openai/gpt-4o-mini")
            route = {"backend": "litellm", "model": upstream,
                     "api_key_env": f"{provider.upper().replace('-', '_')}_API_KEY"}
    if flags.api_key_env:
        route["api_key_env"] = flags.api_key_env
    for key, value in (("profile", flags.profile), ("policy", flags.policy), ("think_budget", flags.think_budget)):
        if value is not None:
            route[key] = value
    if flags.artifact:
        route["policy_options"] = {"artifact": flags.artifact}
    alias = flags.alias or route.get("model") or "default"
    return alias, route


def _apply_route_flags(data: dict[str, Any], flags: Overrides) -> dict[str, Any]:
    """`--upstream`/`--base-url` replace the routes; route flags alone adjust the default route."""
    if flags.upstream or flags.base_url:
        alias, route = route_from_upstream(flags)
        return {**data, "routes": {alias: route}}
    if data.get("routes") or all(v is None for v in (flags.profile, flags.policy, flags.think_budget,
                                                      flags.artifact, flags.alias)):
        return data
    route = default_routes()[DEFAULT_ROUTE].model_dump()
    if flags.policy is not None and flags.policy != route["policy"]:
        route["policy_options"] = {}  # the default's options belong to its own policy
    for key in ("profile", "policy", "think_budget"):
        if getattr(flags, key) is not None:
            route[key] = getattr(flags, key)
    if flags.artifact:
        route["policy_options"] = {"artifact": flags.artifact}
    return {**data, "routes": {flags.alias or DEFAULT_ROUTE: route}}


def _apply_server_flags(data: dict[str, Any], flags: Overrides) -> dict[str, Any]:
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in _expand_shorthands(data).items()}
    server = out.setdefault("server", {})
    if flags.host:
        server["host"] = flags.host
    if flags.port is not None:
        server["port"] = flags.port
    if flags.workers is not None:
        server["workers"] = flags.workers
    if flags.decision_log:
        log_cfg = out.setdefault("decision_log", {})
        if flags.decision_log.lower() in _OFF:
            log_cfg["enabled"] = False
        else:
            log_cfg["path"] = flags.decision_log
    return out


def load_config(path: str | Path | None = None, environ: Mapping[str, str] | None = None,
                overrides: Overrides | None = None) -> Config:
    """The configuration: `path` (or `--config`, or `$THINKGATE_CONFIG`), then `THINKGATE_*` variables,
    then the command-line `overrides`; every error is a `ConfigError` naming the key."""
    environ = os.environ if environ is None else environ
    flags = overrides or Overrides()
    path = flags.config or path or environ.get(ENV_PREFIX + "CONFIG")
    data = read_config_file(path) if path else {}
    data = _apply_server_flags(apply_env(_apply_route_flags(data, flags), environ), flags)
    return parse_config(data, str(path or ("command line" if flags.given() else "environment")))
