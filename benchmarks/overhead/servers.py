"""The processes the overhead benchmark starts: the mock upstream, the floor, thinkgate variants, LiteLLM's proxy."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from ..services import HOST, Service, free_port
from .machine import package_version
from .probes import MODEL


def mock_service(workdir: Path, python: str) -> Service:
    port = free_port()
    argv = [python, "-m", "benchmarks.mock_upstream_server", "--host", HOST, "--port", str(port)]
    return Service("mock upstream", argv, port, workdir / "mock.log")


def floor_service(upstream_url: str, workdir: Path, python: str, workers: int = 1) -> Service:
    """The floor: `benchmarks/overhead/floor_server.py`, a bare aiohttp forwarder (see its docstring)."""
    port = free_port()
    argv = [python, "-m", "benchmarks.overhead.floor_server", "--host", HOST, "--port", str(port),
            "--upstream", upstream_url, "--workers", str(workers)]
    suffix = f"-w{workers}" if workers > 1 else ""
    return Service(f"floor ({workers} worker{'s' if workers > 1 else ''})", argv, port,
                   workdir / f"floor{suffix}.log", ready_path="/healthz")


def stack_floor_service(upstream_url: str, workdir: Path, python: str) -> Service:
    """The stack floor: `benchmarks/overhead/stack_floor_server.py`, the same bare forwarder on thinkgate's server
    stack (uvicorn + httptools + uvloop + Starlette), with thinkgate's client settings."""
    port = free_port()
    argv = [python, "-m", "benchmarks.overhead.stack_floor_server", "--host", HOST, "--port", str(port),
            "--upstream", upstream_url]
    return Service("stack floor", argv, port, workdir / "stack-floor.log", ready_path="/healthz")


@dataclass
class ProxyVariant:
    """One thinkgate configuration to measure."""

    key: str
    label: str
    policy: str
    profile: str = "prompt-cot"
    decision_log: bool = True
    artifact: str | None = None
    repo: Path | None = None  # another checkout to run (a patched copy); None: --proxy-repo
    env: dict[str, str] = field(default_factory=dict)  # on top of --proxy-env
    workers: int = 1

    def serve_args(self, upstream_url: str, port: int, log_path: Path) -> list[str]:
        args = ["serve", "--base-url", f"{upstream_url}/v1", "--upstream", MODEL, "--policy", self.policy,
                "--profile", self.profile, "--host", HOST, "--port", str(port),
                "--decision-log", str(log_path) if self.decision_log else "off"]
        if self.artifact:
            args += ["--artifact", self.artifact]
        if self.workers > 1:
            args += ["--workers", str(self.workers)]
        return args

    def describe(self) -> str:
        parts = [f"policy {self.policy}", f"profile {self.profile}",
                 "decision log on (SQLite, WAL)" if self.decision_log else "decision log off"]
        if self.workers > 1:
            parts.append(f"{self.workers} workers")
        if self.artifact:
            parts.append(f"artifact {self.artifact}")
        if self.repo is not None:
            parts.append(f"router/ from {self.repo}")
        if self.env:
            parts.append("environment " + " ".join(f"{k}={v}" for k, v in self.env.items()))
        return ", ".join(parts)


def variant_from_spec(spec: str, artifact: str | None, *, key: str, label_prefix: str = "thinkgate") -> ProxyVariant:
    """`NAME=DIR[,KEY=VALUE...]`: thinkgate from the checkout DIR, with extra environment KEY=VALUE; the lower-case
    key `policy=P` picks the policy (default never; classifier needs `artifact`). ValueError says what is wrong."""
    name, _, rest = spec.partition("=")
    repo, *pairs = rest.split(",")
    if not name or not repo or not (Path(repo) / "router").is_dir():
        raise ValueError(f"{spec!r}: expected NAME=DIR[,KEY=VALUE...] with DIR/router")
    env = dict(pair.split("=", 1) for pair in pairs if "=" in pair)
    policy = env.pop("policy", "never")
    if policy == "classifier" and not artifact:
        raise ValueError(f"{spec!r}: policy=classifier needs --artifact")
    return ProxyVariant(key, f"{label_prefix} {policy} [{name}]", policy,
                        artifact=artifact if policy == "classifier" else None, repo=Path(repo).resolve(), env=env)


def decision_log_path(workdir: Path, key: str) -> Path:
    """Where the thinkgate variant `key` writes its decision log (when it has one)."""
    return workdir / f"decisions-{key}.sqlite3"


def proxy_service(variant: ProxyVariant, upstream_url: str, workdir: Path, python: str,
                  proxy_repo: Path, extra_env: dict[str, str]) -> Service:
    port = free_port()
    args = variant.serve_args(upstream_url, port, decision_log_path(workdir, variant.key))
    argv = [python, "-m", "router.cli", *args]
    env = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "THINKGATE_LOG_LEVEL": "warning", **extra_env, **variant.env}
    return Service(f"thinkgate ({variant.label})", argv, port, workdir / f"proxy-{variant.key}.log", env=env,
                   cwd=variant.repo or proxy_repo)


def litellm_proxy_available(python: str) -> tuple[bool, str]:
    """LiteLLM's proxy needs its extras; check in a child so a broken import cannot hurt this process."""
    code = "import litellm.proxy.proxy_server"
    try:
        done = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=120,
                              env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"not installed ({exc})"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["import failed"])[-1]
        return False, (f"not installed in {python} (`{code}` fails: {last}); "
                       "`bash benchmarks/overhead/litellm_venv.sh DIR` builds a side venv for --litellm-python")
    return True, "installed"


def litellm_service(upstream_url: str, workdir: Path, python: str, workers: int = 1) -> Service:
    """LiteLLM's proxy in front of the mock: one uvicorn process, or gunicorn + N uvicorn workers."""
    port = free_port()
    # the proxy's CLI as a module: the `litellm` console script need not sit beside `python` (e.g. a side venv
    # that reaches the main one's packages through a .pth file)
    argv = [python, "-m", "litellm.proxy.proxy_cli", "--model", f"openai/{MODEL}", "--alias", MODEL,
            "--api_base", f"{upstream_url}/v1",
            "--host", HOST, "--port", str(port), "--num_workers", str(workers)]
    if workers > 1:
        # LiteLLM's own CLI with uvicorn and --num_workers > 1 loses its workers at start-up ("Child process
        # died", nothing logged; litellm 1.110); its --run_gunicorn mode ("better for managing multiple
        # workers", says its help) runs them
        argv.append("--run_gunicorn")
    env = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "OPENAI_API_KEY": "sk-benchmark-mock",
           "LITELLM_LOG": "ERROR", "DISABLE_SCHEMA_UPDATE": "True",
           # no client keys, as thinkgate is measured (loopback only): newer LiteLLM refuses to start without a
           # master key unless told this is deliberate
           "LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY": "true"}
    suffix = f"-w{workers}" if workers > 1 else ""
    return Service(f"LiteLLM proxy ({workers} worker{'s' if workers > 1 else ''})", argv, port,
                   workdir / f"litellm{suffix}.log", ready_path="/health/readiness", env=env)
