"""`router.settings.load_config`: one loader for a file, `THINKGATE_*` variables and command-line overrides."""

from __future__ import annotations

import argparse

import pytest

from router.errors import ConfigError
from router.settings import DEFAULT_ROUTE, Overrides, load_config

FILE = """
[server]
host = "0.0.0.0"
port = 7000
decider_timeout_s = 2.0

[decision_log]
path = "from-file.sqlite3"

[routes.m]
backend = "openai"
base_url = "http://x/v1"
"""


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "thinkgate.toml"
    path.write_text(FILE, encoding="utf-8")
    return path


def test_defaults_without_file_environment_or_flags():
    config = load_config(environ={})
    assert (config.server.host, config.server.port, config.server.ready_wait_s) == ("127.0.0.1", 8000, 30.0)
    assert list(config.routes) == [DEFAULT_ROUTE] and config.decision_log.enabled


def test_flags_beat_environment_beat_file_beat_defaults(config_file):
    env = {"THINKGATE_PORT": "7001", "THINKGATE_DECISION_LOG": "from-env.sqlite3"}
    config = load_config(config_file, env, Overrides(port=7002))
    assert config.server.port == 7002  # flag
    assert config.decision_log.path == "from-env.sqlite3"  # environment over file
    assert config.server.host == "0.0.0.0"  # file over default
    assert config.server.max_body_bytes == 4 * 1024 * 1024  # default
    assert load_config(config_file, env, Overrides(decision_log="off")).decision_log.enabled is False


def test_file_comes_from_the_flag_then_the_environment(config_file, tmp_path):
    assert list(load_config(environ={"THINKGATE_CONFIG": str(config_file)}).routes) == ["m"]
    other = tmp_path / "other.yaml"
    other.write_text("routes: {y: {backend: openai, base_url: 'http://y/v1'}}\n", encoding="utf-8")
    flags = Overrides(config=str(other))
    assert list(load_config(None, {"THINKGATE_CONFIG": str(config_file)}, flags).routes) == ["y"]


def test_route_flags_adjust_the_default_route_or_replace_the_routes(config_file):
    config = load_config(environ={}, overrides=Overrides(policy="always", think_budget=32, alias="mine"))
    (alias, route), = config.routes.items()
    assert (alias, route.policy, route.think_budget, route.policy_options) == ("mine", "always", 32, {})
    config = load_config(config_file, {}, Overrides(upstream="openai/gpt-4o-mini", profile="reasoning-effort"))
    (alias, route), = config.routes.items()
    assert (alias, route.base_url, route.profile) == ("gpt-4o-mini", "https://api.openai.com/v1", "reasoning-effort")
    assert load_config(config_file, {}, Overrides(policy="always")).routes["m"].policy == "never"  # file routes win


def test_overrides_from_an_argparse_namespace_ignore_other_attributes():
    flags = Overrides.from_namespace(argparse.Namespace(port=9, rounds=3))
    assert flags == Overrides(port=9) and flags.given() and not Overrides().given()


@pytest.mark.parametrize("env,key", [({"THINKGATE_PORT": "eighty"}, "server.port"),
                                     ({"THINKGATE_LOG_LEVEL": "loud"}, "server.log_level"),
                                     ({"THINKGATE_READY_WAIT_S": "-1"}, "server.ready_wait_s")])
def test_bad_environment_values_name_the_key(env, key):
    with pytest.raises(ConfigError, match=f"invalid configuration in environment: {key}"):
        load_config(environ=env)


def test_bad_file_values_name_the_file_and_the_key(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[routes.m]\nbackend = 'openai'\nbase_url = 'http://x'\nstrategy_options = 3\n")
    with pytest.raises(ConfigError, match=f"invalid configuration in {path}: routes.m.strategy_options"):
        load_config(path, {})
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "missing.toml", {})
    with pytest.raises(ConfigError, match="invalid configuration in command line: server.port"):
        load_config(environ={}, overrides=Overrides(port=70000))
