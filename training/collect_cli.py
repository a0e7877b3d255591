"""`thinkgate collect`: run a dataset through a route in both modes; `--report` summarises a table."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import Any, Sequence

from .judge import add_judge_arguments
from .records import MODES


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="thinkgate collect", description=(
        "Run each example through a model with thinking off (direct) and on (think), score the answers, "
        "and append outcome records to a JSONL table (resumable). Default model: the embedded SmolLM2."))
    p.add_argument("--dataset", default="ifeval", help="dataset loader (ifeval, complexbench, jsonl, decision-log)")
    p.add_argument("--data", help="dataset file (default: the public dataset id, needs internet)")
    p.add_argument("--out", help="outcome table to append to (JSONL)")
    p.add_argument("--report", metavar="TABLE", help="print the report for an existing table and exit")
    p.add_argument("--json", action="store_true", help="with --report: print JSON")
    add_route_arguments(p)
    p.add_argument("--modes", default="direct,think", help="comma-separated modes (default: direct,think)")
    p.add_argument("--limit", type=int, help="only the first N examples")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--max-tokens", type=int, default=384, help="answer token limit (default 384)")
    p.add_argument("--think-budget", type=int, help="thinking budget in tokens (default: the route's, 160)")
    p.add_argument("--retries", type=int, default=3, help="retries on transient upstream errors")
    p.add_argument("--no-progress", action="store_true")
    add_judge_arguments(p)
    return p


def add_route_arguments(p: argparse.ArgumentParser) -> None:
    """The flags `resolve_route` reads (plus `--think-budget`, whose default each command sets)."""
    p.add_argument("--config", help="thinkgate config file holding the route")
    p.add_argument("--route", help="route alias in --config (default: its only route)")
    p.add_argument("--upstream", help="as in `thinkgate serve --upstream`")
    p.add_argument("--base-url", help="as in `thinkgate serve --base-url`")
    p.add_argument("--api-key-env", help="environment variable holding the upstream key")
    p.add_argument("--profile", help="reasoning profile (default: the route's)")


def resolve_route(args: argparse.Namespace) -> tuple[str, Any]:
    """The route named by --config/--route or built from --upstream/--base-url (default: the embedded model)."""
    from router.errors import ConfigError
    from router.settings import DEFAULT_ROUTE, Overrides, default_routes, load_config

    if args.upstream or args.base_url:
        flags = Overrides(upstream=args.upstream, base_url=args.base_url, api_key_env=args.api_key_env,
                          profile=args.profile, think_budget=args.think_budget)
        (alias, route), = load_config(None, environ={}, overrides=flags).routes.items()
        return alias, route
    routes = load_config(args.config, environ={}).routes if args.config else default_routes()
    alias = args.route or (next(iter(routes)) if len(routes) == 1 else DEFAULT_ROUTE)
    if alias not in routes:
        raise ConfigError(f"route '{alias}' not in config; known: {', '.join(routes)}")
    return alias, routes[alias]


def resolve_strategy(args: argparse.Namespace, cfg: Any) -> Any:
    """The route's strategy over its switch; `--profile` replaces both (their options belong to them)."""
    from router.strategies import build_strategy

    if args.profile:
        return build_strategy(args.profile)
    return build_strategy(cfg.profile, cfg.profile_options, cfg.strategy, cfg.strategy_options)


def _scorer(dataset: str) -> Any:
    if dataset == "ifeval":
        from .scoring.ifeval import ensure_punkt_tab, score_example

        ensure_punkt_tab()
        return score_example
    return None


async def _run(args: argparse.Namespace) -> int:
    from router.errors import ThinkgateError
    from router.routes import build_backend

    from .collect import Target, collect
    from .datasets import load

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        print(f"thinkgate collect: --modes takes {', '.join(MODES)} (got {args.modes!r})", file=sys.stderr)
        return 2
    loaded = load(args.dataset, args.data, limit=args.limit)
    judging = _complexbench_judging(args, loaded.examples) if args.dataset == "complexbench" else None
    scorer = judging.scorer if judging is not None else _scorer(args.dataset)
    alias, cfg = resolve_route(args)
    strategy = resolve_strategy(args, cfg)
    backend = build_backend(alias, cfg, environ=os.environ)
    target = Target(backend=backend, strategy=strategy, model=cfg.model or alias,
                    think_budget=args.think_budget or cfg.think_budget, max_tokens=args.max_tokens)
    try:
        await backend.start()
        if not await backend.wait_ready(600):
            print("thinkgate collect: the model did not become ready", file=sys.stderr)
            return 1
        summary = await collect(loaded.examples, target, modes=modes, out_path=args.out, scorer=scorer,
                                dataset_version=loaded.version, concurrency=args.concurrency,
                                retries=args.retries, progress=not args.no_progress,
                                halt=(lambda: judging.client.aborted) if judging is not None else None)
    except ThinkgateError as exc:
        print(f"thinkgate collect: {exc.message}", file=sys.stderr)
        return 1
    finally:
        await backend.aclose()
        if judging is not None:
            await judging.aclose()
            print(judging.meter.describe(), file=sys.stderr)
    print(f"collected {summary.done}, already done {summary.skipped}, failed {summary.failed} "
          f"in {summary.seconds:.0f} s -> {args.out}", file=sys.stderr)
    for line in summary.errors[:10]:
        print(f"  failed: {line}", file=sys.stderr)
    if summary.done + summary.skipped and scorer is not None:
        _print_report(args.out, as_json=False)
    return 0 if summary.failed == 0 else 1


def _complexbench_judging(args: argparse.Namespace, examples: Sequence[Any]) -> Any:
    """The judge that scores ComplexBench answers (checked before any model call is made)."""
    from .judge import Judging, check_scorable, judge_config

    check_scorable(examples)
    return Judging(judge_config(args), progress=not args.no_progress)


def _print_report(table: str, *, as_json: bool) -> int:
    from . import complexbench_report
    from .outcome_report import build_report, format_report
    from .outcomes import pair_outcomes, read_outcomes

    pairs = pair_outcomes(read_outcomes(table))
    if not pairs:
        print(f"thinkgate collect: no example in {table} has scored outcomes in both modes", file=sys.stderr)
        return 2
    if complexbench_report.is_complexbench(pairs):
        cb = complexbench_report.build_report(pairs)
        print(json.dumps(cb, indent=2) if as_json else complexbench_report.format_report(cb))
        return 0
    report = build_report(pairs)
    print(json.dumps(report.to_json(), indent=2) if as_json else format_report(report))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from router.errors import ThinkgateError

    from .scoring.ifeval import MissingNLTKDataError

    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        if args.report:
            return _print_report(args.report, as_json=args.json)
        if not args.out:
            print("thinkgate collect: --out is required (or --report TABLE)", file=sys.stderr)
            return 2
        return asyncio.run(_run(args))
    except ThinkgateError as exc:
        print(f"thinkgate collect: {exc.message}", file=sys.stderr)
        return 2
    except (ValueError, OSError, KeyError, MissingNLTKDataError) as exc:
        print(f"thinkgate collect: {exc}", file=sys.stderr)
        return 2
