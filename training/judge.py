"""The judge route for ComplexBench: configured like any upstream, cached, bounded, metered.

    --judge openai/gpt-4-1106-preview          # or PROVIDER/MODEL (litellm), or MODEL with --judge-base-url
    --judge-base-url URL --judge-api-key-env VAR
    --judge-config FILE                        # a `[judge]` section (or a file holding only judge keys)

A `[judge]` section takes a route's upstream keys (`backend`, `model`, `base_url`, `api_key_env`,
`timeout_s`, `backend_options`, validated by the proxy's own `RouteConfig`) plus the judge's own keys below.
Precedence: flags > the file > the official protocol's settings (PROTOCOL.md: gpt-4-1106-preview,
temperature 0, 30 retries). Calls go through the proxy's pure backends (pass-through or litellm), at most
`concurrency` at a time; accepted replies are cached (`training.judge_cache`); a progress bar shows the
judge calls, cached replies, tokens and, when the model's price is known, the money spent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from router.backends.base import Backend
from router.errors import ConfigError, UpstreamError

from .jobs import TRANSIENT_STATUSES
from .judge_cache import JudgeCache
from .records import Example
from .scoring.complexbench import JudgeAbort, JudgeGiveUp, JudgeOptions, QuestionResult, score_example

PROTOCOL_MODEL = "gpt-4-1106-preview"
OPENAI_URL = "https://api.openai.com/v1"
ROUTE_KEYS = ("backend", "model", "base_url", "api_key_env", "timeout_s", "backend_options")


class JudgeConfig(BaseModel):
    """The judge: an upstream (route keys) plus how it is asked. Defaults are the official protocol's."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["openai", "litellm"] = "openai"
    model: str = PROTOCOL_MODEL
    base_url: str | None = None  # openai backend without one: OpenAI's API, key in OPENAI_API_KEY
    api_key_env: str | None = None
    timeout_s: float = Field(default=120.0, gt=0)
    backend_options: dict[str, Any] = Field(default_factory=dict)
    temperature: float = Field(default=0.0, ge=0)
    max_tokens: int | None = Field(default=None, ge=1)
    retries: int = Field(default=30, ge=0)  # per judge prompt, after which the question counts as failed
    backoff_s: float = Field(default=1.0, ge=0)  # first wait between tries; doubles, at most max_backoff_s
    max_backoff_s: float = Field(default=30.0, ge=0)
    concurrency: int = Field(default=8, ge=1)  # judge calls in flight
    abort_after: int = Field(default=100, ge=1)  # consecutive failed calls that stop the run (dead judge)
    cache: str = "complexbench-judge-cache.sqlite3"
    # judge: ask for the span only when it can change the verdict; always: for every rule question (the
    # official scripts); whole: check rules on the whole response, no judge (not the official protocol)
    extraction: Literal["judge", "always", "whole"] = "judge"
    input_price_per_mtok: float | None = Field(default=None, ge=0)  # USD per million tokens; default:
    output_price_per_mtok: float | None = Field(default=None, ge=0)  # litellm's price list, when it knows the model

    @model_validator(mode="after")
    def _openai_by_default(self) -> "JudgeConfig":
        if self.backend == "openai" and not self.base_url:
            self.base_url = OPENAI_URL
            self.api_key_env = self.api_key_env or "OPENAI_API_KEY"
        return self

    def route(self) -> Any:
        """The judge's upstream as the proxy's `RouteConfig` (its validators apply)."""
        from router.settings import RouteConfig

        try:
            return RouteConfig.model_validate({k: getattr(self, k) for k in ROUTE_KEYS})
        except ValidationError as exc:
            raise ConfigError(f"judge: {exc.errors()[0]['msg'].removeprefix('Value error, ')}") from None

    def options(self, cache: JudgeCache | None) -> JudgeOptions:
        return JudgeOptions(retries=self.retries, backoff_s=self.backoff_s, max_backoff_s=self.max_backoff_s,
                            cache=cache, extraction=self.extraction)


def add_judge_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("judge (ComplexBench)")
    g.add_argument("--judge", metavar="MODEL", help="judge upstream: openai/MODEL, PROVIDER/MODEL (litellm), or "
                   f"MODEL with --judge-base-url (default: openai/{PROTOCOL_MODEL}, the official judge)")
    g.add_argument("--judge-base-url", help="OpenAI-compatible base URL of the judge")
    g.add_argument("--judge-api-key-env", help="environment variable holding the judge's key")
    g.add_argument("--judge-config", help="TOML/YAML file with a [judge] section (see README)")
    g.add_argument("--judge-cache", help="verdict cache (SQLite; default complexbench-judge-cache.sqlite3)")
    g.add_argument("--judge-retries", type=int, help="tries after a failed or unreadable reply (default 30)")
    g.add_argument("--judge-concurrency", type=int, help="judge calls in flight (default 8)")
    g.add_argument("--judge-extraction", choices=["judge", "always", "whole"],
                   help="judge (default): ask the judge for a rule's span only when it can change the verdict; "
                        "always: for every rule question; whole: check rules on the whole response, no judge "
                        "(not the official protocol)")


def _judge_section(path: str, *, required: bool) -> dict[str, Any]:
    from router.settings import read_config_file

    data = read_config_file(path)
    if "judge" in data:
        if not isinstance(data["judge"], dict):
            raise ConfigError(f"{path}: [judge] must be a table")
        return dict(data["judge"])
    if not required:
        return {}  # a thinkgate config without a judge: the protocol's defaults
    if {"routes", "server", "decision_log"} & set(data):
        raise ConfigError(f"{path} has no [judge] section")
    return data  # a file holding only the judge's keys


def judge_config(args: argparse.Namespace) -> JudgeConfig:
    """Flags > `--judge-config` (or the `[judge]` section of `--config`) > the protocol's defaults."""
    if getattr(args, "judge_config", None):
        data = _judge_section(args.judge_config, required=True)
    elif getattr(args, "config", None):
        data = _judge_section(args.config, required=False)
    else:
        data = {}
    if args.judge or args.judge_base_url:
        from router.cli import route_from_upstream

        spec = args.judge or data.get("model") or PROTOCOL_MODEL
        if spec == "local" or spec.startswith("local:"):
            raise ConfigError("--judge: the judge must be an API model "
                              "(openai/MODEL, PROVIDER/MODEL or MODEL with --judge-base-url)")
        ns = argparse.Namespace(upstream=spec, base_url=args.judge_base_url, api_key_env=None, profile=None,
                                policy=None, think_budget=None, artifact=None, alias=None)
        _, route = route_from_upstream(ns)
        data.update({"base_url": None, "api_key_env": None, **route})
    for key, value in (("api_key_env", args.judge_api_key_env), ("cache", args.judge_cache),
                       ("retries", args.judge_retries), ("concurrency", args.judge_concurrency),
                       ("extraction", args.judge_extraction)):
        if value is not None:
            data[key] = value
    try:
        cfg = JudgeConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "judge"
        raise ConfigError(f"judge.{where}: {err['msg']}") from None
    cfg.route()
    return cfg


def check_scorable(examples: Sequence[Example]) -> None:
    """ComplexBench examples need their scoring questions (data_final.json); say so before any model call."""
    unscorable = [ex.id for ex in examples if not ex.meta.get("scoring_questions")]
    if unscorable:
        raise ValueError(f"{len(unscorable)} ComplexBench example(s) have no scoring questions (first: "
                         f"{unscorable[0]}); scoring needs data_final.json, not the instructions-only file")


def known_price(model: str) -> tuple[float, float] | None:
    """(input, output) USD per token from litellm's bundled price list, read without importing litellm."""
    import importlib.util

    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "model_prices_and_context_window_backup.json"
    try:
        prices = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for name in (model, model.split("/", 1)[-1]):
        entry = prices.get(name)
        if isinstance(entry, dict) and "input_cost_per_token" in entry and "output_cost_per_token" in entry:
            return float(entry["input_cost_per_token"]), float(entry["output_cost_per_token"])
    return None


@dataclass
class JudgeMeter:
    """Running judge cost and where verdicts came from; drives the progress bar."""

    model: str
    price: tuple[float, float] | None = None  # USD per input / output token
    calls: int = 0
    failed_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    sources: dict[str, int] = field(default_factory=dict)
    bar: Any = None

    @property
    def cost_usd(self) -> float | None:
        if self.price is None:
            return None
        return self.prompt_tokens * self.price[0] + self.completion_tokens * self.price[1]

    def question(self, result: QuestionResult) -> None:
        self.sources[result.source] = self.sources.get(result.source, 0) + 1
        if self.bar is not None:
            self.bar.set_postfix_str(self.postfix(), refresh=False)
            self.bar.update(1)

    def postfix(self) -> str:
        cost = f" ${self.cost_usd:.4f}" if self.cost_usd is not None else ""
        return (f"calls {self.calls} cached {self.sources.get('cache', 0)} failed {self.sources.get('error', 0)} "
                f"tokens {self.prompt_tokens}+{self.completion_tokens}{cost}")

    def summary(self) -> dict[str, Any]:
        return {"model": self.model, "calls": self.calls, "failed_calls": self.failed_calls,
                "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "cost_usd": None if self.cost_usd is None else round(self.cost_usd, 4),
                "questions": dict(sorted(self.sources.items()))}

    def describe(self) -> str:
        s = self.sources
        cost = f", ${self.cost_usd:.4f}" if self.cost_usd is not None else " (price unknown: tokens only)"
        return (f"judge {self.model}: {self.calls} calls ({self.failed_calls} failed), "
                f"{self.prompt_tokens} prompt + {self.completion_tokens} completion tokens{cost}; questions: "
                f"{s.get('judge', 0)} judged, {s.get('cache', 0)} from the cache, {s.get('program', 0)} by program "
                f"alone, {s.get('dependency', 0)} not judged (failed dependency), {s.get('error', 0)} failed")


class JudgeClient:
    """`await client(messages) -> reply text`: one judge call through a proxy backend, metered."""

    def __init__(self, cfg: JudgeConfig, backend: Backend, meter: JudgeMeter) -> None:
        self.cfg, self.backend, self.meter = cfg, backend, meter
        self._model = cfg.route().model
        self._failures_in_a_row = 0
        self.aborted: str | None = None  # why the judge was given up on; no call is made after that

    async def __call__(self, messages: list[dict[str, str]]) -> str:
        if self.aborted:
            raise JudgeAbort(self.aborted)
        body: dict[str, Any] = {"model": self._model, "messages": messages, "temperature": self.cfg.temperature}
        if self.cfg.max_tokens:
            body["max_tokens"] = self.cfg.max_tokens
        self.meter.calls += 1
        try:
            response = await self.backend.complete(body)
            usage = response.get("usage") or {}
            self.meter.prompt_tokens += int(usage.get("prompt_tokens") or 0)
            self.meter.completion_tokens += int(usage.get("completion_tokens") or 0)
            content = ((response.get("choices") or [{}])[0].get("message") or {}).get("content")
            if not isinstance(content, str):
                raise ValueError("judge reply has no text content")
        except Exception as exc:
            self.meter.failed_calls += 1
            self._failures_in_a_row += 1
            if self._failures_in_a_row >= self.cfg.abort_after:
                self.aborted = (f"the judge failed {self._failures_in_a_row} calls in a row (last: "
                                f"{getattr(exc, 'message', None) or exc}); stopped. Verdicts so far are "
                                f"cached in {self.cfg.cache}; rerun when the judge works")
                raise JudgeAbort(self.aborted) from exc
            if isinstance(exc, UpstreamError) and 400 <= exc.status < 500 and exc.status not in TRANSIENT_STATUSES:
                raise JudgeGiveUp(exc.message) from exc  # the judge rejected this prompt: retrying cannot help
            raise
        self._failures_in_a_row = 0
        return content


class Judging:
    """Everything a command needs to judge: config, backend, cache, meter; `await scorer(example, answer)`."""

    def __init__(self, cfg: JudgeConfig, *, environ: Mapping[str, str] | None = None, progress: bool = True) -> None:
        from router.routes import build_backend

        self.cfg = cfg
        route = cfg.route()
        self.backend = build_backend("judge", route, environ=os.environ if environ is None else environ)
        price = None
        if cfg.input_price_per_mtok is not None and cfg.output_price_per_mtok is not None:
            price = (cfg.input_price_per_mtok / 1e6, cfg.output_price_per_mtok / 1e6)
        self.meter = JudgeMeter(route.model, price or known_price(route.model))
        self.cache = JudgeCache(cfg.cache, route.model)
        self.client = JudgeClient(cfg, self.backend, self.meter)
        self.options = cfg.options(self.cache)
        self.semaphore = asyncio.Semaphore(cfg.concurrency)
        self._progress = progress

    def start_progress(self, total: int | None = None) -> None:
        """Show the judge's progress bar (questions; `total` when known) with the running cost."""
        if self._progress and self.meter.bar is None:
            from tqdm import tqdm

            self.meter.bar = tqdm(total=total, unit="question", desc="judge", dynamic_ncols=True)

    async def scorer(self, example: Example, answer: str) -> dict[str, Any]:
        """ComplexBench scores for one answer (`Outcome.scores`), with the judge model and the category."""
        self.start_progress()
        result = await score_example(example, answer, self.client, semaphore=self.semaphore, options=self.options,
                                     on_question=self.meter.question)
        category = {"category": example.meta["category"]} if isinstance(example.meta.get("category"), str) else {}
        return {**result.to_scores(), "judge": self.meter.model, **category}

    async def aclose(self) -> None:
        if self.meter.bar is not None:
            self.meter.bar.close()
        self.cache.close()
        await self.backend.aclose()
