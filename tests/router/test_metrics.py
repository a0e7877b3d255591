"""Metrics: counters move, labels are bounded, instances are independent, exposition parses."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from router.decision_log import DecisionLog, DecisionRecord
from router.metrics import Metrics


def value(m: Metrics, name: str, **labels: str) -> float:
    return m.registry.get_sample_value(f"thinkgate_{name}", labels) or 0.0


def test_counters_and_histograms_move() -> None:
    m = Metrics()
    m.observe_request("fast", 200)
    m.observe_request("fast", 200)
    m.observe_request("fast", 502)
    m.observe_decision("fast", "classifier", "think", "policy", 0.00004)
    m.observe_decision("fast", "classifier", "direct", "header")
    m.observe_upstream("fast", 1.5)
    m.observe_tokens("fast", prompt=12, completion=30, reasoning=None)
    m.observe_fallback("classifier", "timeout")
    m.on_decision_log_drop()

    assert value(m, "requests_total", route="fast", status="200") == 2
    assert value(m, "requests_total", route="fast", status="502") == 1
    assert value(m, "decisions_total", route="fast", policy="classifier", decision="think",
                 source="policy") == 1
    assert value(m, "decisions_total", route="fast", policy="classifier", decision="direct",
                 source="header") == 1
    assert value(m, "decision_seconds_count", policy="classifier") == 1  # only the timed one
    assert value(m, "decision_seconds_bucket", policy="classifier", le="5e-05") == 1
    assert value(m, "decision_seconds_bucket", policy="classifier", le="2.5e-05") == 0
    assert value(m, "upstream_seconds_sum", route="fast") == 1.5
    assert value(m, "tokens_total", route="fast", kind="prompt") == 12
    assert value(m, "tokens_total", route="fast", kind="completion") == 30
    assert m.registry.get_sample_value("thinkgate_tokens_total", {"route": "fast", "kind": "reasoning"}) is None
    assert value(m, "decider_fallbacks_total", policy="classifier", reason="timeout") == 1
    assert value(m, "decision_log_dropped_total") == 1


def test_bad_values_are_ignored_not_raised() -> None:
    m = Metrics()
    m.observe_tokens("fast", prompt=-3, completion=0)
    m.observe_upstream("fast", -1.0)
    m.observe_decision_seconds("p", -1.0)
    assert m.registry.get_sample_value("thinkgate_tokens_total", {"route": "fast", "kind": "prompt"}) is None
    assert m.registry.get_sample_value("thinkgate_upstream_seconds_count", {"route": "fast"}) is None


def test_unknown_routes_collapse_to_other() -> None:
    m = Metrics(routes=["fast", "smart"])
    for i in range(50):
        m.observe_request(f"client-invented-{i}", 404)
    m.observe_request("smart", 200)
    assert value(m, "requests_total", route="other", status="404") == 50
    assert value(m, "requests_total", route="smart", status="200") == 1
    assert len(m._requests_c) == 2  # the child cache is bounded too


def test_observe_record_covers_a_whole_request() -> None:
    m = Metrics()
    rec = DecisionRecord(time=0.0, request_id="r", route="fast", upstream_model="u", policy="classifier",
                         decision="direct", decision_ms=2.0, decision_source="fallback",
                         fallback_reason="error", upstream_ms=250.0, status=200, stream=True,
                         prompt_tokens=5, completion_tokens=7, reasoning_tokens=3)
    m.observe_record(rec)
    assert value(m, "requests_total", route="fast", status="200") == 1
    assert value(m, "decisions_total", route="fast", policy="classifier", decision="direct",
                 source="fallback") == 1
    assert value(m, "decision_seconds_sum", policy="classifier") == pytest.approx(0.002)
    assert value(m, "decider_fallbacks_total", policy="classifier", reason="error") == 1
    assert value(m, "upstream_seconds_sum", route="fast") == pytest.approx(0.25)
    assert value(m, "tokens_total", route="fast", kind="reasoning") == 3


def test_inflight_gauge() -> None:
    m = Metrics()
    with m.track_inflight():
        m.inflight_inc()
        assert value(m, "inflight_requests") == 2
        m.inflight_dec()
    assert value(m, "inflight_requests") == 0
    with pytest.raises(ValueError), m.track_inflight():
        raise ValueError
    assert value(m, "inflight_requests") == 0


def test_instances_do_not_share_state() -> None:
    a, b = Metrics(), Metrics()  # would raise "Duplicated timeseries" on a shared registry
    a.observe_request("fast", 200)
    assert value(a, "requests_total", route="fast", status="200") == 1
    assert value(b, "requests_total", route="fast", status="200") == 0


def test_render_is_parseable_prometheus_text() -> None:
    m = Metrics()
    m.observe_request("fast", 200)
    m.observe_decision("fast", "classifier", "think", "policy", 0.0001)
    m.observe_upstream("fast", 0.3)
    m.observe_tokens("fast", prompt=1, completion=2, reasoning=3)
    m.observe_fallback("classifier", "timeout")
    body, content_type = m.render()
    assert isinstance(body, bytes) and content_type.startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    assert {"thinkgate_requests", "thinkgate_decisions", "thinkgate_decision_seconds",
            "thinkgate_upstream_seconds", "thinkgate_tokens", "thinkgate_decision_log_dropped",
            "thinkgate_decider_fallbacks", "thinkgate_inflight_requests"} <= set(families)
    assert families["thinkgate_decision_seconds"].type == "histogram"
    assert families["thinkgate_inflight_requests"].type == "gauge"
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in families.values() for s in f.samples}
    assert samples[("thinkgate_requests_total", (("route", "fast"), ("status", "200")))] == 1
    assert samples[("thinkgate_tokens_total", (("kind", "reasoning"), ("route", "fast")))] == 3


def test_decision_log_drops_feed_the_counter(tmp_path: Path) -> None:
    m = Metrics()
    log = DecisionLog(tmp_path / "d.sqlite3", queue_size=1, on_drop=m.on_decision_log_drop)
    rec = DecisionRecord(time=0.0, request_id="r", route="fast", upstream_model="u", policy="p",
                         decision="think", decision_ms=0.1, decision_source="policy", status=200,
                         stream=False)
    assert log.record(rec)
    assert not log.record(rec)  # not started: the one-slot queue is full
    assert value(m, "decision_log_dropped_total") == 1
    assert log.close()


def _observe_everything(m: Metrics) -> None:
    for status in (200, 200, 502):
        m.observe_request("fast", status)
    m.observe_request("invented", 404)
    for seconds in (0.0, 1e-5, 2e-5, 0.00004, 0.3, 5.0, 99.0):  # on bounds, between them and past the last
        m.observe_decision("fast", "classifier", "think", "policy", seconds)
    m.observe_decision("fast", "classifier", "direct", "header")
    for seconds in (0.01, 0.011, 1.5, 1e4):
        m.observe_upstream("fast", seconds)
    m.observe_tokens("fast", prompt=12, completion=30, reasoning=4)
    m.observe_fallback("classifier", "timeout")
    m.on_decision_log_drop()
    m.inflight_inc()


def _samples(m: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body, _ = m.render()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(body.decode()) for s in f.samples
            if not s.name.endswith("_created")}


def test_plain_values_expose_what_prometheus_client_children_do() -> None:
    """The one-process values (plain numbers) against prometheus_client's own classes: the same samples,
    names, labels, bucket bounds and values; only the `_created` timestamps differ."""
    plain, reference = Metrics(routes=["fast"]), Metrics(routes=["fast"], plain_values=False)
    for m in (plain, reference):
        _observe_everything(m)
    got, want = _samples(plain), _samples(reference)
    assert got == want
    assert got[("thinkgate_decision_seconds_bucket", (("le", "1e-05"), ("policy", "classifier")))] == 2
    body, _ = plain.render()
    created = [line for line in body.decode().splitlines() if "_created" in line and not line.startswith("#")]
    assert len(created) == len([line for line in reference.render()[0].decode().splitlines()
                                if "_created" in line and not line.startswith("#")])


def test_plain_values_refuse_multiprocess_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "/nonexistent")
    with pytest.raises(ValueError, match="shared between processes"):
        Metrics(plain_values=True)


@pytest.mark.parametrize("plain", [True, False], ids=["plain-values", "prometheus-children"])
def test_observe_record_equals_the_individual_observations(plain: bool) -> None:
    """`observe_record`'s cached children give the same exposition as the `observe_*` calls it stands for,
    series that never got a value included (absent in both)."""
    records = [
        DecisionRecord(time=0.0, request_id="a", route="fast", upstream_model="u", policy="classifier",
                       decision="think", decision_ms=0.04, decision_source="policy", status=200, stream=False,
                       upstream_ms=1200.0, prompt_tokens=10, completion_tokens=20),
        DecisionRecord(time=0.0, request_id="b", route="invented", upstream_model="u", policy="classifier",
                       decision="direct", decision_ms=-1.0, decision_source="fallback", status=504, stream=True,
                       fallback_reason="timeout", upstream_ms=None, prompt_tokens=0, reasoning_tokens=7),
        DecisionRecord(time=0.0, request_id="c", route="fast", upstream_model="u", policy="classifier",
                       decision="think", decision_ms=0.02, decision_source="policy", status=200, stream=False,
                       upstream_ms=-5.0, completion_tokens=3),
    ]
    by_record, by_call = (Metrics(routes=["fast"], plain_values=plain) for _ in range(2))
    for rec in records:
        by_record.observe_record(rec)
        by_call.observe_request(rec.route, rec.status)
        by_call.observe_decision(rec.route, rec.policy, rec.decision, rec.decision_source, rec.decision_ms / 1000)
        if rec.fallback_reason is not None:
            by_call.observe_fallback(rec.policy, rec.fallback_reason)
        if rec.upstream_ms is not None:
            by_call.observe_upstream(rec.route, rec.upstream_ms / 1000)
        by_call.observe_tokens(rec.route, prompt=rec.prompt_tokens, completion=rec.completion_tokens,
                               reasoning=rec.reasoning_tokens)
    assert _samples(by_record) == _samples(by_call)
    assert ("thinkgate_tokens_total", (("kind", "reasoning"), ("route", "fast"))) not in _samples(by_record)
