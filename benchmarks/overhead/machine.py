"""The machine a run happened on: CPU, versions, load, git revision (for the report's header)."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

from ..services import REPO_ROOT
from .wrk import wrk_version


def package_version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def machine_info(python: str) -> dict[str, str]:
    info = {
        "cores": str(os.cpu_count()),
        "cpu": _cpu_model(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "uvicorn": package_version("uvicorn"),
        "starlette": package_version("starlette"),
        "httpx": package_version("httpx"),
        "pydantic": package_version("pydantic"),
        "uvloop (uvicorn loop)": package_version("uvloop"),
        "httptools (uvicorn http)": package_version("httptools"),
        "aiohttp (thinkgate's upstream client, the floor)": package_version("aiohttp"),
        "psutil (CPU per request)": package_version("psutil"),
        "wrk": wrk_version(),
        "load average at start": load_average(),
        "git": git_rev(),
        "classifier's compiled parts (as this checkout loads them)": _compiled_parts(),
    }
    return info


def _compiled_parts() -> str:
    from ..decision_latency import compiled_parts

    return compiled_parts()


_COMPILED_PARTS_OF_CWD = "from benchmarks.decision_latency import compiled_parts; print(compiled_parts())"


def compiled_parts_in(checkout: Path, python: str) -> str:
    """Which compiled parts `checkout`'s classifier loads: its own `compiled_parts()`, asked of a fresh interpreter
    started there."""
    with contextlib.suppress(Exception):
        done = subprocess.run([python, "-c", _COMPILED_PARTS_OF_CWD], cwd=checkout, capture_output=True, text=True,
                              timeout=60, env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
        if done.returncode == 0 and done.stdout.strip():
            return done.stdout.strip().splitlines()[-1]
    return "compiled parts unknown (that checkout could not report them)"


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def git_rev(checkout: Path = REPO_ROOT) -> str:
    """The checkout's commit, noting uncommitted changes under router/ and classifiers/ (what a server runs)."""
    with contextlib.suppress(Exception):
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=checkout, capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "router", "classifiers"], cwd=checkout,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        if rev:
            return rev + (" (with uncommitted changes under router/ or classifiers/)" if dirty else "")
    return "unknown"

