"""server.gc_freeze / gc_young_threshold: an app that owns its process (`thinkgate serve`) tunes the collector
as configured at start-up; an embedded one does not."""

from __future__ import annotations

import gc

import pytest
from starlette.testclient import TestClient

from router.app import create_app
from router.errors import ConfigError
from router.gc_tuning import freeze_startup_heap
from router.settings import parse_config
from support.scripted import ScriptedBackend


def _app(owns_process: bool = True, **server: object):
    cfg = {"backend": "openai", "base_url": "http://unused.invalid/v1", "model": "upstream-model", "policy": "never"}
    return create_app(parse_config({"server": server, "routes": {"m": cfg}, "decision_log": {"enabled": False}}),
                      backends={"m": ScriptedBackend("blue")}, environ={}, owns_process=owns_process)


@pytest.mark.parametrize("enabled", [True, False])
def test_start_up_freezes_the_heap_only_when_enabled(enabled: bool):
    gc.unfreeze()
    app = _app(gc_freeze=enabled)
    assert gc.get_freeze_count() == 0  # building the app does nothing: start-up does
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        assert (gc.get_freeze_count() > 1000) is enabled


def test_an_app_embedded_in_another_process_leaves_the_collector_alone():
    gc.unfreeze()
    before = gc.get_threshold()
    with TestClient(_app(owns_process=False, gc_young_threshold=25_000)):
        assert gc.get_freeze_count() == 0 and gc.get_threshold() == before


@pytest.mark.parametrize("threshold", [700, 25_000])
def test_start_up_sets_the_young_generation_threshold(threshold: int):
    before = gc.get_threshold()
    with TestClient(_app(gc_young_threshold=threshold)):
        assert gc.get_threshold() == (threshold, before[1], before[2])


def test_a_threshold_that_would_turn_the_collector_off_is_a_config_error():
    with pytest.raises(ConfigError, match="gc_young_threshold"):
        _app(gc_young_threshold=0)


def test_frozen_objects_are_skipped_and_new_garbage_is_still_collected():
    gc.unfreeze()

    class Cycle:
        pass

    survivor = Cycle()
    survivor.me = survivor  # type: ignore[attr-defined]
    assert freeze_startup_heap() > 0
    assert not any(obj is survivor for gen in range(3) for obj in gc.get_objects(gen))  # frozen: never walked
    garbage = Cycle()
    garbage.me = garbage  # type: ignore[attr-defined]
    del garbage
    assert gc.collect() >= 1  # a cycle made after the freeze is collected as usual
