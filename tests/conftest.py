"""Shared fixtures: a mock OpenAI-compatible upstream and a thinkgate proxy, both on real loopback ports."""

from __future__ import annotations

import gc
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import hypothesis  # noqa: F401 - see below
import pytest

# hypothesis is imported here, at start-up, on purpose: pytest rewrites the modules of an entry-point plugin's
# distribution when they are imported, and if hypothesis's plugin first imports them late in a session, a
# finalizer of test garbage can run inside that ast.parse and trip CPython 3.11.7's "SystemError: AST
# constructor recursion depth mismatch".

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from support.clients import close_openai_clients  # noqa: E402
from support.mock_upstream import MockUpstream  # noqa: E402
from support.servers import ThreadedServer, serve  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    return Path(os.environ.get("THINKGATE_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(autouse=True)
def _close_openai_clients() -> Iterator[None]:
    yield
    close_openai_clients()


@pytest.fixture(autouse=True)
def _unfreeze_gc() -> Iterator[None]:
    """An app that owns its process (`create_app(..., owns_process=True)`, as in test_gc_tuning) tunes the
    collector, process-wide: put it back after each test."""
    thresholds = gc.get_threshold()
    yield
    if gc.get_freeze_count():
        gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.fixture(scope="session")
def upstream() -> Iterator[tuple[MockUpstream, ThreadedServer]]:
    mock = MockUpstream()
    with serve(mock.app) as server:
        yield mock, server


@pytest.fixture()
def mock(upstream: tuple[MockUpstream, ThreadedServer]) -> Iterator[MockUpstream]:
    """The session's mock upstream, reset to its defaults for each test."""
    mock_, _ = upstream
    fresh = MockUpstream()
    for attr in ("reply", "chunk_size", "fail", "fail_times", "delay_s", "chunk_delay_s", "logprobs"):
        setattr(mock_, attr, getattr(fresh, attr))
    mock_.requests.clear()
    mock_.headers.clear()
    mock_.cancelled_streams = 0
    mock_.in_flight = mock_.max_in_flight = 0
    yield mock_


@pytest.fixture()
def upstream_url(upstream: tuple[MockUpstream, ThreadedServer]) -> str:
    return upstream[1].url + "/v1"


@pytest.fixture()
def proxy(tmp_path: Path, upstream_url: str):
    """`with proxy(route_overrides, **config) as p:` starts thinkgate in front of the mock upstream
    (`protocol=`: a uvicorn protocol class, e.g. `server_limits.guarded_protocol(...)` as `thinkgate serve` uses)."""

    @contextmanager
    def start(route: dict[str, Any] | None = None, *, routes: dict[str, Any] | None = None,
              environ: dict[str, str] | None = None, protocol: Any = None,
              **config: Any) -> Iterator[ThreadedServer]:
        from router.app import create_app
        from router.settings import parse_config

        if routes is None:
            routes = {"mock-model": {"backend": "openai", "base_url": upstream_url, "model": "upstream-model",
                                     **(route or {})}}
        data = {"routes": routes, "decision_log": {"path": str(tmp_path / "decisions.sqlite3")}, **config}
        app = create_app(parse_config(data), environ=environ or {})
        with serve(app, **({"http": protocol} if protocol is not None else {})) as server:
            yield server

    return start

