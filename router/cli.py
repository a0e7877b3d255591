"""The `thinkgate` command: `serve` here; other subcommands live next to the code they drive.

Subcommands are looked up by module path and imported only when used, so `thinkgate serve` never
imports the training stack and `thinkgate score` never imports the web server.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from typing import Any, Callable, Mapping, Sequence

from . import settings
from .errors import ConfigError
from .settings import Config, Overrides

# name -> (module, help). Each module exposes `main(argv) -> int`.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "log": ("router.log_cli", "export the decision log"),
    "score": ("training.score_cli", "score a responses file (IFEval, ComplexBench)"),
    "collect": ("training.collect_cli", "run a dataset through a model in both modes"),
    "import": ("training.import_cli", "build an outcome table from answers produced elsewhere"),
    "train": ("training.train_cli", "fit and calibrate a decision model"),
    "self-select": ("training.self_select_cli", "score and calibrate the self-select policy"),
    "bench": ("benchmarks.cli", "A/B and overhead benchmarks"),
    "analyze": ("training.analyze_cli", "analyses of an outcome table (constraint attention)"),
}

def _serve_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="thinkgate serve", description=(
        "Serve the OpenAI-compatible proxy. With no flags: the embedded SmolLM2-135M-Instruct, no API key."))
    p.add_argument("--config", help="TOML or YAML config file (also $THINKGATE_CONFIG)")
    p.add_argument("--upstream", help="one upstream instead of a config file: openai/MODEL, "
                   "PROVIDER/MODEL (litellm, e.g. anthropic/claude-sonnet-4-5), or local[:PATH]")
    p.add_argument("--base-url", help="OpenAI-compatible base URL (vLLM, Ollama, ...); implies pass-through")
    p.add_argument("--api-key-env", help="environment variable holding the upstream key")
    p.add_argument("--alias", help="model name clients use (default: the upstream model name)")
    p.add_argument("--profile", help="reasoning profile (prompt-cot, forced-cot, reasoning-effort, ...)")
    p.add_argument("--policy", help="policy (never, always, random, self-select, classifier)")
    p.add_argument("--artifact", help="decision-model directory for --policy classifier")
    p.add_argument("--think-budget", type=int, help="thinking budget in tokens")
    p.add_argument("--host", help="bind address (default 127.0.0.1; also $THINKGATE_HOST)")
    p.add_argument("--port", type=int, help="port (default 8000; also $THINKGATE_PORT)")
    p.add_argument("--decision-log", help="decision log: a SQLite path, a postgresql:// DSN, or 'off'")
    p.add_argument("--workers", type=int, help="worker processes on one port (default 1; also $THINKGATE_WORKERS)")
    return p


def build_config(args: argparse.Namespace, environ: Mapping[str, str]) -> Config:
    """The serve flags as overrides of the one configuration loader."""
    return settings.load_config(None, environ, Overrides.from_namespace(args))


def route_from_upstream(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """The quick flags as one route config (see `router.settings.route_from_upstream`)."""
    return settings.route_from_upstream(Overrides.from_namespace(args))


def serve(argv: Sequence[str]) -> int:
    args = _serve_parser().parse_args(list(argv))
    try:
        config = build_config(args, os.environ)
        if config.server.workers > 1:
            return _serve_workers(config)
        from .app import create_app

        app = create_app(config, owns_process=True)
    except ConfigError as exc:
        print(f"thinkgate: {exc.message}", file=sys.stderr)
        return 2
    import uvicorn

    from .redact import RedactingFilter
    from .server_limits import guarded_protocol, limits_of

    logging.basicConfig(level=config.server.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:  # upstream keys never reach a log line
        handler.addFilter(RedactingFilter(app.state.runtime.redact))
    print(f"thinkgate: serving {', '.join(config.routes)} on http://{config.server.host}:{config.server.port}/v1",
          file=sys.stderr)
    uvicorn.run(app, host=config.server.host, port=config.server.port, log_level=config.server.log_level,
                access_log=False, timeout_graceful_shutdown=30, http=guarded_protocol(limits_of(config.server)))
    return 0


def _serve_workers(config: Config) -> int:
    """Several processes on one port; each builds its own app (router/workers.py)."""
    from .workers import serve_workers

    logging.basicConfig(level=config.server.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    print(f"thinkgate: serving {', '.join(config.routes)} on http://{config.server.host}:{config.server.port}/v1 "
          f"with {config.server.workers} workers", file=sys.stderr)
    serve_workers(config, config.server.workers)
    return 0


def _subcommand(name: str) -> Callable[[list[str]], int]:
    module_name = SUBCOMMANDS[name][0]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        missing = getattr(exc, "name", None) or str(exc)
        raise ConfigError(f"'thinkgate {name}' needs a module that is not installed ({missing}); "
                          "install the extras: pip install 'thinkgate[local,eval]'") from None
    return module.main


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    if not argv or argv[0] in ("-h", "--help"):
        lines = ["usage: thinkgate COMMAND [ARGS]", "", "commands:", "  serve      run the proxy (default model: "
                 "embedded SmolLM2-135M-Instruct)"]
        lines += [f"  {name:<10} {help_}" for name, (_, help_) in SUBCOMMANDS.items()]
        print("\n".join(lines))
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "serve":
        return serve(rest)
    if command not in SUBCOMMANDS:
        print(f"thinkgate: unknown command '{command}' (try: serve, {', '.join(SUBCOMMANDS)})", file=sys.stderr)
        return 2
    try:
        return _subcommand(command)(rest)
    except ConfigError as exc:
        print(f"thinkgate: {exc.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
