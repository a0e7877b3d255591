"""`thinkgate serve --workers N`: N processes accepting on one port, each a complete proxy.

uvicorn's process supervisor binds the socket once, starts N worker processes (multiprocessing "spawn")
and restarts a worker that dies; a worker killed does not take the others down. uvicorn cannot hand a
built app to a new process, so each worker builds its own from an import string and a factory
(`router.workers:app`): the parent validates the configuration once and passes it to the workers as JSON in
`THINKGATE_WORKER_CONFIG`; nothing is built at import time.

Per worker: its own routes, upstream connection pool, decision-log writer (SQLite with several writers, or
PostgreSQL; each row names its worker in `instance`), and metrics, summed over all workers at `/metrics`
through prometheus_client's multiprocess mode (`router/metrics.py`). A `local` route loads one copy of the
embedded model per worker (memory times N); the engine already batches concurrent requests, so one worker
is the better choice for the embedded model, and the command says so.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from typing import Any

from .metrics import MULTIPROC_ENV

__all__ = ["CONFIG_ENV", "app", "serve_workers"]

CONFIG_ENV = "THINKGATE_WORKER_CONFIG"
log = logging.getLogger("thinkgate")


def app() -> Any:
    """uvicorn's factory in each worker: the proxy built from the configuration the parent validated."""
    from .app import create_app
    from .settings import Config

    raw = os.environ.get(CONFIG_ENV)
    if not raw:
        raise RuntimeError(f"{CONFIG_ENV} is not set: start workers with `thinkgate serve --workers N`")
    return create_app(Config.model_validate_json(raw), owns_process=True)


def serve_workers(config: Any, workers: int) -> None:
    """Run `workers` worker processes on the configured host and port until SIGINT/SIGTERM."""
    import uvicorn

    if any(route.backend == "local" for route in config.routes.values()):
        log.warning("%d workers each load their own copy of the embedded model; the engine already batches "
                    "concurrent requests, so --workers 1 usually serves it better", workers)
    own_dir = None
    if not os.environ.get(MULTIPROC_ENV):
        own_dir = tempfile.mkdtemp(prefix="thinkgate-metrics-")
        os.environ[MULTIPROC_ENV] = own_dir
    else:  # a directory the operator chose: start from zero, as a fresh process would
        for stale in os.scandir(os.environ[MULTIPROC_ENV]):
            if stale.name.endswith(".db"):
                os.remove(stale.path)
    os.environ[CONFIG_ENV] = config.model_dump_json()
    try:
        uvicorn.run("router.workers:app", factory=True, workers=workers, host=config.server.host,
                    port=config.server.port, log_level=config.server.log_level, access_log=False,
                    timeout_graceful_shutdown=30)
    finally:
        if own_dir is not None:
            shutil.rmtree(own_dir, ignore_errors=True)
