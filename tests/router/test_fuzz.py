"""Property-based fuzzing of request bodies and headers against the real app over HTTP: never a 500, always
OpenAI's error format. A modest number of cases here; `python -m benchmarks.fuzz` runs 10,000 or more."""

from __future__ import annotations

import httpx
from hypothesis import HealthCheck, given, settings

from benchmarks.fuzz import check_response, proxy_config, requests
from support.servers import serve


def test_fuzzed_requests_never_get_a_500(tmp_path, upstream_url):
    from router.app import create_app
    from router.settings import parse_config

    config = parse_config(proxy_config(upstream_url, str(tmp_path / "decisions.sqlite3")))
    with serve(create_app(config, environ={"FUZZ_KEYS": "fuzz-key"})) as server, \
            httpx.Client(base_url=server.url, timeout=30) as client:

        @settings(max_examples=100, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
        @given(requests)
        def one(case: tuple[bytes, dict[str, bytes]]) -> None:
            raw, extra = case
            headers = {"authorization": b"Bearer fuzz-key", "content-type": b"application/json", **extra}
            r = client.post("/v1/chat/completions", content=raw, headers=headers)
            problem = check_response(r.status_code, r.headers.get("content-type", ""), r.content)
            assert problem is None, (problem, raw[:300], extra)

        one()
