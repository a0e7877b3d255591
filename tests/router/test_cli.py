from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from router.cli import build_config, main, route_from_upstream
from router.settings import load_config

REPO = Path(__file__).resolve().parents[2]


def _args(**kw):
    base = dict(config=None, upstream=None, base_url=None, api_key_env=None, alias=None, profile=None, policy=None,
                artifact=None, think_budget=None, host=None, port=None, decision_log=None, workers=None)
    return argparse.Namespace(**{**base, **kw})


def test_no_flags_serves_the_embedded_model():
    config = build_config(_args(), {})
    (alias, route), = config.routes.items()
    assert alias == "smollm2-135m" and route.backend == "local"


@pytest.mark.parametrize("upstream,base_url,backend,model", [
    ("openai/gpt-4o-mini", None, "openai", "gpt-4o-mini"),
    ("anthropic/claude-sonnet-4-5", None, "litellm", "anthropic/claude-sonnet-4-5"),
    ("Qwen/Qwen3-8B", "http://127.0.0.1:8001/v1", "openai", "Qwen/Qwen3-8B"),
    ("local:/models/x.gguf", None, "local", "x.gguf"),
])
def test_upstream_quick_flag(upstream, base_url, backend, model):
    alias, route = route_from_upstream(_args(upstream=upstream, base_url=base_url))
    assert (route["backend"], route["model"]) == (backend, model)


def test_flags_beat_environment_beats_file(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("server: {port: 7000, host: 0.0.0.0}\nroutes: {m: {backend: openai, base_url: 'http://x'}}\n")
    config = build_config(_args(config=str(cfg), port=7002), {"THINKGATE_PORT": "7001", "THINKGATE_HOST": "::1"})
    assert (config.server.port, config.server.host) == (7002, "::1")


def test_example_config_is_valid():
    config = load_config(REPO / "examples" / "thinkgate.toml", environ={})
    assert "smollm2-135m" in config.routes


def test_main_reports_bad_config_without_traceback(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[routes.m]\nbackend = 'openai'\nbase_url = 'http://x'\npolcy = 'never'\n")
    assert main(["serve", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "routes.m.polcy" in err and "Traceback" not in err
    assert main(["frobnicate"]) == 2
    assert main(["--help"]) == 0


def test_model_pair_example_routes_with_its_decision_model_and_prices():
    from classifiers.artifact import load_artifact
    from classifiers.bundled import bundled_artifact
    from router.pricing import PriceTable
    from router.profiles import make_profile

    route = load_config(REPO / "examples" / "gpt-4o-mini-o1-mini.toml", environ={}).routes["gpt-4o-mini"]
    profile = make_profile(route.profile, route.profile_options)
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    assert profile.prepare(body, think=True).body["model"] == "o1-mini-2024-09-12"
    assert profile.prepare(body, think=False).body["model"] == "gpt-4o-mini-2024-07-18"
    model = load_artifact(bundled_artifact(route.policy_options["artifact"]))
    assert model.decide("Write a haiku about rain.")[0] in (True, False)
    prices = PriceTable(route.prices)
    assert prices.price("o1-mini-2024-09-12").output_per_mtok == 12.0
