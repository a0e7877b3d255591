"""`thinkgate serve --workers 2`: responses against decision-log rows and /metrics totals, on SQLite and
PostgreSQL, and a worker killed with SIGKILL does not take the other down."""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks.services import HOST, Service, Services, free_port
from router.decision_log import export_jsonl
from support.faulty_upstream import wait_until

BODY = json.dumps({"model": "mock", "messages": [{"role": "user", "content": "Say hi."}]})


def _post(port: int) -> int:
    """One request on a new connection (so the kernel spreads them over the workers)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        conn.request("POST", "/v1/chat/completions", BODY, {"content-type": "application/json"})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def _load(port: int, n: int) -> list[int]:
    with ThreadPoolExecutor(16) as pool:
        return list(pool.map(lambda _: _post(port), range(n)))


def _metric_total(port: int, name: str) -> float:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    return sum(float(m.group(1)) for m in re.finditer(rf"^{name}{{[^}}]*}} (\S+)$", text, re.M))


def _rows(log_target: str) -> list[dict]:
    buf = io.StringIO()
    export_jsonl(log_target, buf)
    return [json.loads(line) for line in buf.getvalue().splitlines()]


def _committed_rows(log_target: str, expected: int, timeout_s: float = 60.0) -> list[dict]:
    """The log's rows once all `expected` are committed (the writers commit within their flush interval on
    a machine left alone; CI's machine may be busier)."""
    wait_until(lambda: len(_rows(log_target)) >= expected, timeout_s)
    return _rows(log_target)


def _load_until_both_workers_served(port: int, log_target: str, timeout_s: float = 120.0) -> tuple[int, set[str]]:
    """Rounds of 100 requests until the log shows two instances: (requests sent, instances). The first port
    answer only says one worker is up, and the kernel need not spread connections evenly."""
    sent, deadline = 0, time.monotonic() + timeout_s
    while True:
        statuses = _load(port, 100)
        assert statuses.count(200) == 100, statuses
        sent += 100
        instances = {r["instance"] for r in _committed_rows(log_target, sent)}
        if len(instances) == 2 or time.monotonic() > deadline:
            return sent, instances


def test_two_workers_count_exactly_and_survive_a_killed_worker(log_target: str, mock_process_url: str,
                                                               tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "proxy.yaml"
    config.write_text(json.dumps({"routes": {"mock": {"backend": "openai", "base_url": mock_process_url + "/v1",
                                                      "model": "upstream-model"}},
                                  "decision_log": {"path": log_target}}))
    proxy = Service("thinkgate", [sys.executable, "-m", "router.cli", "serve", "--config", str(config),
                                  "--port", str(port), "--workers", "2"], port, tmp_path / "proxy.log",
                    env={"THINKGATE_LOG_LEVEL": "warning"})
    with Services() as services:
        services.start(proxy, 180)
        sent, instances = _load_until_both_workers_served(port, log_target)
        assert len(instances) == 2, instances  # both workers served
        for _ in range(5):  # whichever worker answers, the totals are the fleet's
            assert _metric_total(port, "thinkgate_requests_total") == sent
        assert len(_committed_rows(log_target, sent)) == sent
        victim = int(sorted(instances)[0].rsplit(":", 1)[1])
        os.kill(victim, signal.SIGKILL)
        second = _load(port, 100)
        assert second.count(200) == 100  # the other worker (and the replacement) kept serving
        assert _metric_total(port, "thinkgate_requests_total") == sent + 100  # the dead worker's counts remain
        proxy.stop(60)  # SIGTERM: the live workers drain their logs
        assert proxy.log_path.read_text().count("Traceback") == 0

    rows = _rows(log_target)
    assert len(rows) == sent + 100 and len({r["request_id"] for r in rows}) == sent + 100
    after_kill = {r["instance"] for r in rows[-100:]}  # rows are in time order: the second batch is last
    assert after_kill and victim not in {int(i.rsplit(":", 1)[1]) for i in after_kill}  # survivor + replacement
