"""Prometheus metrics for the proxy, in a registry owned by one `Metrics` instance.

No metric lives in prometheus_client's global registry, so several apps (or tests) can coexist in one
process. The `observe_*` methods run once or twice per request: each caches the labelled child per label
tuple, so the steady-state cost is a dict lookup plus the child's own (locked) increment. They never
raise on bad input (negative token counts or durations are ignored).

Cardinality: `route` comes from the client's `model` field. Pass `routes=` (the configured aliases) and
any other value is reported as `"other"`, so a client cannot create unbounded series.

Several workers (`thinkgate serve --workers N`): prometheus_client's multiprocess mode. The parent sets
`PROMETHEUS_MULTIPROC_DIR` to an empty directory before the workers start; every worker's metrics then live
in memory-mapped files there, and `render()`, in whichever worker answers `GET /metrics`, sums all of them,
so totals are fleet-correct. A worker that dies keeps its counts (counters only grow); its share of the
in-flight gauge is dropped at the next scrape. The mode is chosen when prometheus_client is imported, so the
variable must be set before that (the workers are fresh processes).

One process (the default): the values are plain Python numbers (`router/metric_values.py`) that a collector
turns into the same exposition at scrape time. A prometheus_client child costs several Python calls and a lock
per update; these cost one attribute update, which matters at about nine updates per request. They are
updated from the event loop's thread only (every caller is on it), except the decision log's drop counter,
which any thread may bump and which takes a lock.

Metric names (with the default namespace `thinkgate`):

    thinkgate_requests_total{route,status}
    thinkgate_decisions_total{route,policy,decision,source}
    thinkgate_decision_seconds{policy}                    histogram, 10 µs .. 5 s
    thinkgate_upstream_seconds{route}                     histogram, 10 ms .. 10 min
    thinkgate_tokens_total{route,kind}                    kind: prompt | completion | reasoning
    thinkgate_decision_log_dropped_total
    thinkgate_decider_fallbacks_total{policy,reason}
    thinkgate_inflight_requests                           gauge
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess

from .metric_values import LocalValues

if TYPE_CHECKING:
    from router.decision_log import DecisionRecord

__all__ = ["DECISION_BUCKETS", "MULTIPROC_ENV", "UPSTREAM_BUCKETS", "OTHER_ROUTE", "Metrics"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's own switch for multiprocess mode

# A classifier decides in tens of microseconds; a remote self-select policy may take seconds.
DECISION_BUCKETS = (1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05,
                    0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# An upstream call: a cached reply in milliseconds, a long reasoning trace in minutes.
UPSTREAM_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0,
                    300.0, 600.0)
OTHER_ROUTE = "other"


class Metrics:
    """The proxy's metrics. Construct one per app; expose `render()` at `GET /metrics`."""

    def __init__(self, *, namespace: str = "thinkgate", routes: Iterable[str] | None = None,
                 registry: CollectorRegistry | None = None, plain_values: bool | None = None) -> None:
        """`plain_values`: keep the values as plain numbers (`metric_values.py`) rather than prometheus_client
        children; the default is yes, except in multiprocess mode, which needs prometheus_client's shared files."""
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        # Set (by `serve --workers`) before prometheus_client was imported: every value is in a shared file.
        self.multiprocess_dir = os.environ.get(MULTIPROC_ENV) or None
        self._routes = frozenset(routes) if routes is not None else None
        ns, reg = namespace, self.registry
        self._drop_lock = threading.Lock()
        if plain_values is None:
            plain_values = self.multiprocess_dir is None
        elif plain_values and self.multiprocess_dir is not None:
            raise ValueError(f"plain values cannot be shared between processes ({MULTIPROC_ENV} is set)")
        families: Any = LocalValues(ns) if plain_values else _PrometheusFamilies(ns, reg)
        if plain_values:
            reg.register(families)
        self.requests = families.counter("requests", "Requests handled, by route and HTTP status.",
                                         ["route", "status"])
        self.decisions = families.counter("decisions", "Think/direct decisions, by who made them.",
                                          ["route", "policy", "decision", "source"])
        self.decision_seconds = families.histogram("decision_seconds", "Time spent deciding whether to think.",
                                                   ["policy"], DECISION_BUCKETS)
        self.upstream_seconds = families.histogram("upstream_seconds", "Time spent waiting for the upstream LLM.",
                                                   ["route"], UPSTREAM_BUCKETS)
        self.tokens = families.counter("tokens", "Tokens reported by the upstream, by kind.", ["route", "kind"])
        self.decision_log_dropped = families.counter("decision_log_dropped", "Decision-log records dropped "
                                                     "(queue full or log closed).", [])
        self.decider_fallbacks = families.counter("decider_fallbacks", "Decider failures or timeouts that fell "
                                                  "back to the default decision.", ["policy", "reason"])
        self.inflight = families.gauge("inflight_requests", "Requests currently being handled.")
        # label tuple -> child; filled lazily, read without a lock (a racing miss just calls .labels()
        # twice, which returns the same child).
        self._requests_c: dict[tuple[str, int], Any] = {}
        self._decisions_c: dict[tuple[str, str, str, str], Any] = {}
        self._decision_s_c: dict[str, Any] = {}
        self._upstream_s_c: dict[str, Any] = {}
        self._tokens_c: dict[tuple[str, str], Any] = {}
        self._fallbacks_c: dict[tuple[str, str], Any] = {}
        self._record_c: dict[tuple[str, int, str, str, str], list[Any]] = {}

    # -- per-request observations ------------------------------------------------------------------

    def route_label(self, route: str) -> str:
        """`route` itself if it is a configured alias (or no aliases were given), else `"other"`."""
        if self._routes is None or route in self._routes:
            return route
        return OTHER_ROUTE

    def observe_request(self, route: str, status: int) -> None:
        key = (self.route_label(route), status)
        child = self._requests_c.get(key)
        if child is None:
            child = self._requests_c[key] = self.requests.labels(key[0], str(status))
        child.inc()

    def observe_decision(self, route: str, policy: str, decision: str, source: str,
                         seconds: float | None = None) -> None:
        """Count a decision; `seconds` (how long the policy took) feeds `decision_seconds{policy}`."""
        key = (self.route_label(route), policy, decision, source)
        child = self._decisions_c.get(key)
        if child is None:
            child = self._decisions_c[key] = self.decisions.labels(*key)
        child.inc()
        if seconds is not None:
            self.observe_decision_seconds(policy, seconds)

    def observe_decision_seconds(self, policy: str, seconds: float) -> None:
        if seconds < 0:
            return
        child = self._decision_s_c.get(policy)
        if child is None:
            child = self._decision_s_c[policy] = self.decision_seconds.labels(policy)
        child.observe(seconds)

    def observe_upstream(self, route: str, seconds: float) -> None:
        if seconds < 0:
            return
        label = self.route_label(route)
        child = self._upstream_s_c.get(label)
        if child is None:
            child = self._upstream_s_c[label] = self.upstream_seconds.labels(label)
        child.observe(seconds)

    def observe_tokens(self, route: str, *, prompt: int | None = None, completion: int | None = None,
                       reasoning: int | None = None) -> None:
        """Add token counts; None or non-positive counts are skipped."""
        label = self.route_label(route)
        for kind, n in (("prompt", prompt), ("completion", completion), ("reasoning", reasoning)):
            if n is None or n <= 0:
                continue
            key = (label, kind)
            child = self._tokens_c.get(key)
            if child is None:
                child = self._tokens_c[key] = self.tokens.labels(label, kind)
            child.inc(n)

    def observe_fallback(self, policy: str, reason: str) -> None:
        """A decider failed or timed out (`reason`, e.g. "timeout" or "error") and the default was used."""
        key = (policy, reason)
        child = self._fallbacks_c.get(key)
        if child is None:
            child = self._fallbacks_c[key] = self.decider_fallbacks.labels(policy, reason)
        child.inc()

    def on_decision_log_drop(self) -> None:
        """Pass as `DecisionLog(on_drop=metrics.on_decision_log_drop)`. Any thread may call it."""
        with self._drop_lock:
            self.decision_log_dropped.inc()

    def observe_record(self, rec: DecisionRecord) -> None:
        """Everything a finished request's `DecisionRecord` says: request, decision, fallback, upstream
        time, tokens. Use this *instead of* the individual `observe_*` calls, not in addition to them.

        Runs once per request: the children one record touches are looked up once per combination of labels
        (bounded: routes collapse to the configured ones, the others are fixed vocabularies or HTTP statuses)."""
        route = self.route_label(rec.route)
        key = (route, rec.status, rec.policy, rec.decision, rec.decision_source)
        children = self._record_c.get(key)
        if children is None:
            children = self._record_c[key] = self._record_children(key)
        children[0].inc()
        children[1].inc()
        if rec.decision_ms >= 0:
            children[2].observe(rec.decision_ms / 1000.0)
        if rec.fallback_reason is not None:
            self.observe_fallback(rec.policy, rec.fallback_reason)
        if rec.upstream_ms is not None and rec.upstream_ms >= 0:
            (children[3] or self._record_child(children, 3, route)).observe(rec.upstream_ms / 1000.0)
        for at, n in ((4, rec.prompt_tokens), (5, rec.completion_tokens), (6, rec.reasoning_tokens)):
            if n is not None and n > 0:
                (children[at] or self._record_child(children, at, route)).inc(n)

    def _record_children(self, key: tuple[str, int, str, str, str]) -> list[Any]:
        """The children of one label combination: request, decision and decision-time now; upstream time and
        the three token kinds (None until first used, so a series appears only once it has a value)."""
        route, status, policy, decision, source = key
        return [self.requests.labels(route, str(status)), self.decisions.labels(route, policy, decision, source),
                self.decision_seconds.labels(policy), None, None, None, None]

    def _record_child(self, children: list[Any], at: int, route: str) -> Any:
        child = children[at] = (self.upstream_seconds.labels(route) if at == 3 else
                                self.tokens.labels(route, ("prompt", "completion", "reasoning")[at - 4]))
        return child

    # -- in-flight gauge ---------------------------------------------------------------------------

    def inflight_inc(self) -> None:
        self.inflight.inc()

    def inflight_dec(self) -> None:
        self.inflight.dec()

    @contextmanager
    def track_inflight(self) -> Iterator[None]:
        """Count the enclosed block as one in-flight request. For streamed responses, call
        `inflight_inc()` / `inflight_dec()` around the stream instead, since the handler returns early."""
        self.inflight.inc()
        try:
            yield
        finally:
            self.inflight.dec()

    # -- exposition --------------------------------------------------------------------------------

    def render(self) -> tuple[bytes, str]:
        """(body, content type) in the Prometheus text format, for `GET /metrics`: this process's
        metrics, or with several workers the sum over all of them."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        _forget_dead_workers(self.multiprocess_dir)
        fleet = CollectorRegistry()
        multiprocess.MultiProcessCollector(fleet, path=self.multiprocess_dir)
        return generate_latest(fleet), CONTENT_TYPE_LATEST


class _PrometheusFamilies:
    """prometheus_client's own classes behind `LocalValues`' interface (multiprocess mode needs them)."""

    def __init__(self, namespace: str, registry: CollectorRegistry) -> None:
        self.namespace, self.registry = namespace, registry

    def counter(self, name: str, documentation: str, labelnames: list[str]) -> Counter:
        return Counter(name, documentation, labelnames, namespace=self.namespace, registry=self.registry)

    def histogram(self, name: str, documentation: str, labelnames: list[str], buckets: tuple[float, ...]) -> Histogram:
        return Histogram(name, documentation, labelnames, buckets=buckets, namespace=self.namespace,
                         registry=self.registry)

    def gauge(self, name: str, documentation: str) -> Gauge:
        return Gauge(name, documentation, namespace=self.namespace, registry=self.registry,
                     multiprocess_mode="livesum")


def _forget_dead_workers(path: str) -> None:
    """Drop the live gauges (in-flight requests) of worker processes that no longer exist."""
    for gauge_file in Path(path).glob("gauge_live*_*.db"):
        pid = gauge_file.stem.rsplit("_", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            multiprocess.mark_process_dead(int(pid), path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
