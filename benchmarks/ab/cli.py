"""`thinkgate bench ab`: run a dataset through the proxy once per arm and write the A/B report.

    thinkgate bench ab --data ../shared/data/ifeval/input_data.jsonl --out benchmarks/reports/ab-smollm2-ifeval

With no `--proxy`, the harness writes the arms' proxy config (`proxy.yaml` in `--out`), starts
`thinkgate serve` on it (the embedded model unless `--config`/`--upstream` names another route), runs every
arm through it over HTTP and stops it. With `--proxy URL` it uses a proxy you started yourself on that
same config (`--write-config` writes it and exits). Records go to `records.jsonl` in `--out`; rerunning the
same command resumes (finished requests are skipped, failed ones retried); `--report-only` rebuilds the
report from the records.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from training.collect_cli import add_route_arguments
from training.judge import add_judge_arguments

from .arms import ALL_ARMS, DEFAULT_ARMS, ORACLE, arm_routes, parse_arms

DEFAULT_OUT = Path("benchmarks/reports/ab")
DEFAULT_SELF_SELECT_CALIBRATION = Path(__file__).resolve().parents[2] / "classifiers" / "artifacts" / \
    "smollm2-135m-ifeval.self-select.json"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="thinkgate bench ab", description=__doc__.split("\n\n")[0].split(": ", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="ifeval",
                   help="dataset loader (default ifeval; complexbench is scored by the judge route, --judge ...)")
    p.add_argument("--data", help="dataset file (default: the public dataset id, needs internet)")
    p.add_argument("--out", default=str(DEFAULT_OUT), help=f"output folder (default {DEFAULT_OUT})")
    p.add_argument("--arms", default=",".join(DEFAULT_ARMS),
                   help=f"comma-separated arms out of {','.join(ALL_ARMS)} (default: {','.join(DEFAULT_ARMS)})")
    p.add_argument("--ids", default="auto", help="which examples: held-out (the artifact's held-out half), all, "
                   "or a file with one id per line; auto = held-out when the classifier arm runs, else all")
    p.add_argument("--limit", type=int, help="only the first N of the selected examples")
    p.add_argument("--artifact", help="decision model for the classifier arm (default: the bundled one)")
    p.add_argument("--self-select-calibration", default=str(DEFAULT_SELF_SELECT_CALIBRATION),
                   help="calibration file for the self-select-calibrated arm (from `thinkgate self-select "
                   "calibrate`; default: the one shipped for the embedded model)")
    add_route_arguments(p)  # the base route every arm is built from (default: the embedded model)
    p.add_argument("--think-budget", type=int, default=160, help="thinking budget in tokens (default 160)")
    p.add_argument("--max-tokens", type=int, default=384, help="answer token limit (default 384)")
    p.add_argument("--concurrency", type=int, default=16, help="requests in flight per arm (default 16)")
    p.add_argument("--retries", type=int, default=3, help="retries on transient errors (default 3)")
    p.add_argument("--proxy", help="URL of a running proxy serving the arms' routes (skip starting one)")
    p.add_argument("--proxy-api-key-env", help="environment variable holding the proxy's client key")
    p.add_argument("--write-config", action="store_true", help="write proxy.yaml for the arms and exit")
    p.add_argument("--report-only", action="store_true", help="rebuild the report from existing records")
    p.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples (default 2000)")
    p.add_argument("--no-progress", action="store_true")
    add_judge_arguments(p)
    return p


def _base_route(args: argparse.Namespace) -> dict[str, Any]:
    from training.collect_cli import resolve_route

    _, cfg = resolve_route(args)
    route = cfg.model_dump(mode="json")
    if args.profile:
        route["profile"], route["profile_options"] = args.profile, {}
        route["strategy"], route["strategy_options"] = "single", {}
    route["think_budget"] = args.think_budget
    return route


def _artifact(args: argparse.Namespace) -> str:
    from classifiers.bundled import bundled_artifact
    from router.settings import DEFAULT_ARTIFACT

    if args.artifact:
        return str(Path(args.artifact).resolve())
    path = bundled_artifact(DEFAULT_ARTIFACT)
    if path is None:
        raise ValueError(f"the bundled artifact {DEFAULT_ARTIFACT} is missing; pass --artifact DIR")
    return str(path)


def proxy_config(args: argparse.Namespace, arms: Sequence[str], out: Path) -> dict[str, Any]:
    """The config the arms' proxy serves: one route per arm on one shared backend."""
    calibration = None
    if "self-select-calibrated" in arms:
        calibration = str(Path(args.self_select_calibration).resolve())
        if not Path(calibration).is_file():
            raise ValueError(f"--self-select-calibration {args.self_select_calibration}: no such file")
    routes = arm_routes(_base_route(args), list(arms), artifact=_artifact(args) if "classifier" in arms else None,
                        self_select_calibration=calibration)
    for route in routes.values():
        if route["policy"] == "self-select":
            # Under a full batch on a CPU the question waits its turn; the default 5 s deadline would turn
            # most decisions into fallbacks and measure the queue, not the policy.
            route["policy_options"] = {**route.get("policy_options", {}), "timeout_s": 600}
    return {
        "server": {"host": "127.0.0.1", "decider_timeout_s": 600, "ready_wait_s": 600, "log_level": "warning"},
        "decision_log": {"path": str((out / "decisions.sqlite3").resolve())},
        "routes": routes,
    }


def _held_out_ids(artifact: str | None) -> list[str] | None:
    if artifact is None:
        return None
    from classifiers.artifact import ArtifactError, read_metadata

    try:
        ids = (read_metadata(artifact).get("extra") or {}).get("held_out_ids")
    except ArtifactError as exc:
        raise ValueError(str(exc)) from None
    return list(ids) if ids else None


def _shown(path: str | None) -> str:
    """A path as a report shows it: relative to the working directory when it lies inside it."""
    if path is None:
        return "none"
    resolved = Path(path).resolve()
    return str(resolved.relative_to(Path.cwd())) if resolved.is_relative_to(Path.cwd()) else str(resolved)


def select_ids(spec: str, arms: Sequence[str], artifact: str | None) -> tuple[list[str] | None, str]:
    """The example ids to run (None = all) and a sentence saying which they are.

    With the classifier arm, only examples its artifact was not trained on may count, whatever `spec` says.
    """
    held_out = _held_out_ids(artifact)
    if spec == "auto":
        spec = "held-out" if "classifier" in arms else "all"
    if spec == "held-out":
        if held_out is None:
            raise ValueError(f"--ids held-out: the artifact {artifact} records no held_out_ids; pass --ids all or a file")
        return held_out, f"the {len(held_out)} examples held out from training the decision model ({_shown(artifact)})"
    if spec == "all":
        ids, note = None, "all examples of the dataset"
    else:
        path = Path(spec)
        if not path.is_file():
            raise ValueError(f"--ids takes held-out, all, auto or a file of ids; {spec} is not a file")
        ids = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        note = f"the {len(ids)} examples listed in {spec}"
    if "classifier" in arms and held_out is not None:
        keep = set(held_out)
        ids = held_out if ids is None else [i for i in ids if i in keep]
        note += f", restricted to the {len(ids)} the decision model was not trained on ({_shown(artifact)})"
    return ids, note


def _write_yaml(path: Path, data: dict[str, Any]) -> None:
    import yaml

    path.write_text("# written by `thinkgate bench ab`; serve with: thinkgate serve --config " + str(path) + "\n"
                    + yaml.safe_dump(json.loads(json.dumps(data)), sort_keys=False),  # copies: no YAML anchors
                    encoding="utf-8")


def _examples(args: argparse.Namespace, ids: list[str] | None) -> list[Any]:
    from training.datasets import load

    loaded = load(args.dataset, args.data)
    examples = loaded.examples
    if ids is not None:
        by_id = {ex.id: ex for ex in examples}
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise ValueError(f"{len(missing)} selected ids are not in the dataset (first: {missing[0]}); "
                             "is --data the dataset the artifact was trained on?")
        examples = [by_id[i] for i in ids]
    return examples[: args.limit] if args.limit else examples


def _proxy_process(config_path: Path, out: Path) -> Any:
    from benchmarks.services import Service, free_port

    port = free_port()
    argv = [sys.executable, "-m", "router.cli", "serve", "--config", str(config_path), "--port", str(port)]
    env = {"LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    return Service("thinkgate proxy (A/B arms)", argv, port, out / "proxy.log", env=env)


async def _run(args: argparse.Namespace, arms: list[str], examples: list[Any], base_url: str, out: Path) -> Any:
    from .client import Request
    from .runner import run_arms

    scorer, judging = None, None
    if args.dataset == "ifeval":
        from training.scoring.ifeval import ensure_punkt_tab, score_example

        ensure_punkt_tab()
        scorer = score_example
    elif args.dataset == "complexbench":
        from training.judge import Judging, check_scorable, judge_config

        check_scorable(examples)
        judging = Judging(judge_config(args), progress=not args.no_progress)
        scorer = judging.scorer
    api_key = os.environ.get(args.proxy_api_key_env) if args.proxy_api_key_env else None
    settings = Request(max_tokens=args.max_tokens, api_key=api_key)
    proxied = [a for a in arms if a != ORACLE]
    try:
        return await run_arms(base_url, proxied, examples, records_path=out / "records.jsonl", settings=settings,
                              scorer=scorer, concurrency=args.concurrency, retries=args.retries,
                              progress=not args.no_progress)
    finally:
        if judging is not None:
            await judging.aclose()
            print(judging.meter.describe(), file=sys.stderr)


def _run_through_proxy(args: argparse.Namespace, arms: list[str], examples: list[Any], out: Path) -> int:
    from benchmarks.services import Services

    from .runner import pending

    todo = pending([a for a in arms if a != ORACLE], examples, out / "records.jsonl")
    if not todo:
        print("every selected request is already recorded; not starting a proxy", file=sys.stderr)
        return 0
    if args.proxy:
        summary = asyncio.run(_run(args, arms, examples, args.proxy.rstrip("/"), out))
    else:
        with Services() as services:
            print(f"starting the proxy (config {out / 'proxy.yaml'}, log {out / 'proxy.log'}) ...", file=sys.stderr)
            proxy = services.start(_proxy_process(out / "proxy.yaml", out), timeout_s=900)
            summary = asyncio.run(_run(args, arms, examples, proxy.url, out))
    print(f"requests: {summary.done} done, {summary.skipped} already recorded, {summary.failed} failed "
          f"in {summary.seconds:.0f} s", file=sys.stderr)
    for line in summary.errors[:10]:
        print(f"  failed: {line}", file=sys.stderr)
    return summary.failed


def main(argv: Sequence[str] | None = None) -> int:
    from benchmarks.services import ServiceError
    from router.errors import ThinkgateError

    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    out = Path(args.out)
    try:
        arms = parse_arms(args.arms)
        out.mkdir(parents=True, exist_ok=True)
        artifact = _artifact(args) if "classifier" in arms or args.ids == "held-out" else None
        ids, ids_note = select_ids(args.ids, arms, artifact)
        if not args.report_only:
            _write_yaml(out / "proxy.yaml", proxy_config(args, arms, out))
            if args.write_config:
                print(out / "proxy.yaml")
                return 0
        examples = _examples(args, ids)
        (out / "evaluated_ids.txt").write_text("".join(ex.id + "\n" for ex in examples), encoding="utf-8")
        failed = 0 if args.report_only else _run_through_proxy(args, arms, examples, out)
        from .report import write_report

        paths = write_report(out, arms, examples, ids_note=ids_note, command=_command(argv),
                             settings={"max_tokens": args.max_tokens, "think_budget": args.think_budget,
                                       "concurrency": args.concurrency},
                             resamples=args.bootstrap)
        print("\n".join(f"wrote {p}" for p in paths), file=sys.stderr)
        return 1 if failed else 0
    except KeyboardInterrupt:
        print("thinkgate bench ab: interrupted; finished requests are recorded, rerun the same command to resume",
              file=sys.stderr)
        return 130
    except (ThinkgateError, ServiceError) as exc:
        print(f"thinkgate bench ab: {getattr(exc, 'message', None) or exc}", file=sys.stderr)
        return 1
    except (ValueError, OSError, KeyError) as exc:
        print(f"thinkgate bench ab: {exc}", file=sys.stderr)
        return 2


def _command(argv: Sequence[str] | None) -> str:
    import shlex

    args = list(sys.argv[1:] if argv is None else argv)
    return "thinkgate bench ab " + " ".join(shlex.quote(a) for a in args)
