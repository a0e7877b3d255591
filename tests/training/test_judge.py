"""The judge route's configuration, price lookup and durable reply cache."""

from __future__ import annotations

import argparse

import pytest

from router.errors import ConfigError
from router.settings import load_config
from training.judge import PROTOCOL_MODEL, add_judge_arguments, judge_config, known_price
from training.judge_cache import JudgeCache


def _args(*argv: str, config: str | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_judge_arguments(p)
    args = p.parse_args(list(argv))
    args.config = config
    return args


def test_protocol_defaults():
    cfg = judge_config(_args())
    assert (cfg.model, cfg.temperature, cfg.retries) == (PROTOCOL_MODEL, 0.0, 30)
    route = cfg.route()
    assert (route.backend, route.base_url, route.api_key_env) == ("openai", "https://api.openai.com/v1",
                                                                  "OPENAI_API_KEY")


@pytest.mark.parametrize("argv,expected", [
    (["--judge", "openai/gpt-4o"], ("openai", "gpt-4o", "https://api.openai.com/v1", "OPENAI_API_KEY")),
    (["--judge", "anthropic/claude-sonnet-4-5"], ("litellm", "anthropic/claude-sonnet-4-5", None, "ANTHROPIC_API_KEY")),
    (["--judge", "Qwen/Qwen3-8B", "--judge-base-url", "http://127.0.0.1:8001/v1"],
     ("openai", "Qwen/Qwen3-8B", "http://127.0.0.1:8001/v1", None)),
    (["--judge", "openai/gpt-4o", "--judge-api-key-env", "MY_KEY"],
     ("openai", "gpt-4o", "https://api.openai.com/v1", "MY_KEY")),
])
def test_flags_like_any_upstream(argv, expected):
    route = judge_config(_args(*argv)).route()
    assert (route.backend, route.model, route.base_url, route.api_key_env) == expected


def test_judge_section_of_the_thinkgate_config_and_flag_precedence(tmp_path):
    path = tmp_path / "thinkgate.toml"
    path.write_text('[routes.m]\nbackend = "openai"\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "m"\n\n'
                    '[judge]\nbackend = "litellm"\nmodel = "anthropic/claude-sonnet-4-5"\napi_key_env = "K"\n'
                    'retries = 5\nconcurrency = 2\ninput_price_per_mtok = 3\noutput_price_per_mtok = 15\n')
    assert load_config(path, environ={}).routes["m"].model == "m"  # the proxy accepts (and ignores) [judge]
    cfg = judge_config(_args(config=str(path)))
    assert (cfg.backend, cfg.model, cfg.retries, cfg.concurrency) == ("litellm", "anthropic/claude-sonnet-4-5", 5, 2)
    cfg = judge_config(_args("--judge-retries", "1", "--judge-config", str(path)))
    assert cfg.retries == 1 and cfg.concurrency == 2
    with pytest.raises(ConfigError, match="no \\[judge\\] section"):
        (tmp_path / "routes.toml").write_text('[routes.m]\nbackend = "local"\n')
        judge_config(_args("--judge-config", str(tmp_path / "routes.toml")))
    with pytest.raises(ConfigError, match="needs base_url|needs model"):
        (tmp_path / "j.toml").write_text('[judge]\nbackend = "litellm"\nmodel = ""\n')
        judge_config(_args("--judge-config", str(tmp_path / "j.toml")))
    with pytest.raises(ConfigError, match="API model"):
        judge_config(_args("--judge", "local"))


def test_prices_come_from_litellms_list_without_importing_it():
    assert known_price("gpt-4-1106-preview") == (1e-05, 3e-05)
    assert known_price("openai/gpt-4-1106-preview") == (1e-05, 3e-05)
    assert known_price("my-own-judge") is None


def test_cache_survives_a_restart_and_is_per_model(tmp_path):
    msgs = [{"role": "user", "content": "指令……问题"}]
    cache = JudgeCache(tmp_path / "c.sqlite3", "judge-a")
    assert cache.get(msgs) is None
    cache.put(msgs, "答案：是")
    cache.close()
    again = JudgeCache(tmp_path / "c.sqlite3", "judge-a")
    assert again.get(msgs) == "答案：是" and again.hits == 1 and len(again) == 1
    assert JudgeCache(tmp_path / "c.sqlite3", "judge-b").get(msgs) is None
    assert again.get([{"role": "user", "content": "指令……另一个问题"}]) is None
    (tmp_path / "bad.sqlite3").write_text("not a database")
    with pytest.raises(ValueError, match="judge cache"):
        JudgeCache(tmp_path / "bad.sqlite3", "judge-a")
