"""Counters, histograms and a gauge as plain Python numbers, exposed through a prometheus_client collector.

The one-process form of `router/metrics.py`'s values. Each family offers what `Metrics` uses of
prometheus_client's `Counter` / `Histogram` / `Gauge`: `labels(*values)` returning a child with `inc(n)` or
`observe(v)`, and `inc()` / `dec()` on an unlabelled family. An update is one attribute change; no lock is
taken, so a family must be updated from one thread at a time (the caller's job). At scrape time `collect()`
emits the same samples prometheus_client's own classes do (`_total` and `_created` for counters; cumulative
`_bucket`s with `le`, `_count`, `_sum` and `_created` for histograms).
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from typing import Generic, TypeVar

from prometheus_client.metrics_core import Metric
from prometheus_client.utils import floatToGoString

__all__ = ["LocalValues"]


class LocalCount:
    __slots__ = ("value", "created")

    def __init__(self) -> None:
        self.value = 0.0
        self.created = time.time()

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount


class LocalHistogramChild:
    __slots__ = ("bounds", "counts", "sum", "created")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # per bucket, not cumulative; the last one is +Inf
        self.sum = 0.0
        self.created = time.time()

    def observe(self, amount: float) -> None:
        # the first bound >= amount: `le` means "less than or equal"
        self.counts[bisect_left(self.bounds, amount)] += 1
        self.sum += amount


C = TypeVar("C", LocalCount, LocalHistogramChild)


class _Family(Generic[C]):
    """Children by label values, created on first use."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str]) -> None:
        self.name, self.documentation, self.labelnames = name, documentation, tuple(labelnames)
        self.children: dict[tuple[str, ...], C] = {}

    def labels(self, *values: object) -> C:
        key = tuple(str(v) for v in values)
        child = self.children.get(key)
        if child is None:
            if len(key) != len(self.labelnames):
                raise ValueError(f"{self.name}: expected labels {self.labelnames}, got {key}")
            child = self.children[key] = self._new_child()
        return child

    def _new_child(self) -> C:
        raise NotImplementedError

    def _labels(self, values: tuple[str, ...]) -> dict[str, str]:
        return dict(zip(self.labelnames, values))


class LocalCounter(_Family[LocalCount]):
    def __init__(self, name: str, documentation: str, labelnames: Sequence[str]) -> None:
        super().__init__(name, documentation, labelnames)
        if not self.labelnames:  # an unlabelled counter exists (at 0) from the start, as prometheus_client's does
            self.labels()

    def _new_child(self) -> LocalCount:
        return LocalCount()

    def inc(self, amount: float = 1.0) -> None:
        self.labels().inc(amount)

    def metric(self) -> Metric:
        m = Metric(self.name, self.documentation, "counter")
        for values, child in list(self.children.items()):
            labels = self._labels(values)
            m.add_sample(self.name + "_total", labels, child.value)
            m.add_sample(self.name + "_created", labels, child.created)
        return m


class LocalHistogram(_Family[LocalHistogramChild]):
    def __init__(self, name: str, documentation: str, labelnames: Sequence[str], buckets: Sequence[float]) -> None:
        super().__init__(name, documentation, labelnames)
        self.bounds = tuple(float(b) for b in buckets)
        if list(self.bounds) != sorted(set(self.bounds)):
            raise ValueError(f"{name}: buckets must be strictly increasing")
        self._le = [floatToGoString(b) for b in self.bounds] + ["+Inf"]

    def _new_child(self) -> LocalHistogramChild:
        return LocalHistogramChild(self.bounds)

    def metric(self) -> Metric:
        m = Metric(self.name, self.documentation, "histogram")
        for values, child in list(self.children.items()):
            labels = self._labels(values)
            counts, total = list(child.counts), child.sum  # a snapshot: the loop may update meanwhile
            cumulative = 0
            for le, n in zip(self._le, counts):
                cumulative += n
                m.add_sample(self.name + "_bucket", {**labels, "le": le}, float(cumulative))
            m.add_sample(self.name + "_count", labels, float(cumulative))
            m.add_sample(self.name + "_sum", labels, total)
            m.add_sample(self.name + "_created", labels, child.created)
        return m


class LocalGauge:
    def __init__(self, name: str, documentation: str) -> None:
        self.name, self.documentation = name, documentation
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount

    def dec(self, amount: float = 1.0) -> None:
        self.value -= amount

    def metric(self) -> Metric:
        m = Metric(self.name, self.documentation, "gauge")
        m.add_sample(self.name, {}, self.value)
        return m


class LocalValues:
    """A prometheus_client collector (register it in a registry) holding the families it creates."""

    def __init__(self, namespace: str = "") -> None:
        self.prefix = f"{namespace}_" if namespace else ""
        self.families: list[LocalCounter | LocalHistogram | LocalGauge] = []

    def counter(self, name: str, documentation: str, labelnames: Sequence[str]) -> LocalCounter:
        family = LocalCounter(self.prefix + name, documentation, labelnames)
        self.families.append(family)
        return family

    def histogram(self, name: str, documentation: str, labelnames: Sequence[str],
                  buckets: Sequence[float]) -> LocalHistogram:
        family = LocalHistogram(self.prefix + name, documentation, labelnames, buckets)
        self.families.append(family)
        return family

    def gauge(self, name: str, documentation: str) -> LocalGauge:
        family = LocalGauge(self.prefix + name, documentation)
        self.families.append(family)
        return family

    def collect(self) -> Iterator[Metric]:
        for family in self.families:
            yield family.metric()
