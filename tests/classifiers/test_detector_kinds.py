"""The detector table declares, per detector, the kinds it emits; here the declaration meets what is emitted.

Each detector is wrapped so every detection is attributed to the detector that made it, then the detector runs
over the phrasings of test_constraints.py and, when the data is present, every IFEval prompt.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import shared_data_dir

from classifiers import _detectors, constraints
from classifiers.constraints import DETECTOR_KINDS, IFEVAL_KINDS, KIND_DETECTOR, KINDS, detect_constraints


def _phrasings() -> list[str]:
    """The texts of test_constraints.py (loaded by path: `classifiers` is the project package here)."""
    path = Path(__file__).with_name("test_constraints.py")
    spec = importlib.util.spec_from_file_location("_constraint_cases", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [case[0] for case in module.POSITIVES + module.NEGATIVES]


def _ifeval_prompts() -> list[str]:
    path = shared_data_dir() / "ifeval" / "input_data.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line)["prompt"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _emitted(texts: list[str], monkeypatch: pytest.MonkeyPatch) -> dict[str, set[str]]:
    """Detector name -> kinds it emitted over `texts`."""
    seen: dict[str, set[str]] = {d.name: set() for d in _detectors.DETECTORS}

    def attributed(detector: _detectors.Detector) -> _detectors.Detector:
        def run(ctx: _detectors._Ctx) -> None:
            before = len(ctx.out)
            detector.run(ctx)
            seen[detector.name].update(found.kind for found in ctx.out[before:])

        run.__name__ = detector.run.__name__
        return detector._replace(run=run)

    monkeypatch.setattr(_detectors, "DETECTORS", tuple(attributed(d) for d in _detectors.DETECTORS))
    monkeypatch.setattr(constraints, "run_detectors", _detectors.run_detectors)  # the module patched (not mypyc's)
    for text in texts:
        detect_constraints(text)
    return seen


@pytest.fixture(scope="module")
def texts() -> Iterator[list[str]]:
    yield _phrasings() + _ifeval_prompts()


def test_every_kind_has_exactly_one_detector() -> None:
    declared = [kind for kinds in DETECTOR_KINDS.values() for kind in kinds]
    assert sorted(declared) == sorted(KINDS)  # the union is KINDS, and no kind is declared twice
    assert set(KIND_DETECTOR) == set(KINDS)
    assert all(kind in DETECTOR_KINDS[name] for kind, name in KIND_DETECTOR.items())


def test_detectors_emit_only_what_they_declare(texts: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    emitted = _emitted(texts, monkeypatch)
    undeclared = {name: kinds - set(DETECTOR_KINDS[name]) for name, kinds in emitted.items()}
    assert not {name: kinds for name, kinds in undeclared.items() if kinds}


def test_every_declared_kind_is_emitted_by_its_detector(texts: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    emitted = _emitted(texts, monkeypatch)
    never = {name: set(kinds) - emitted[name] for name, kinds in DETECTOR_KINDS.items()}
    assert not {name: kinds for name, kinds in never.items() if kinds}
    assert set().union(*emitted.values()) == set(KINDS)


def test_ifeval_prompts_emit_ifeval_kinds_through_their_detectors(monkeypatch: pytest.MonkeyPatch) -> None:
    prompts = _ifeval_prompts()
    if not prompts:
        pytest.skip(f"IFEval prompts not found under {shared_data_dir()} (set THINKGATE_DATA_DIR)")
    emitted = _emitted(prompts, monkeypatch)
    assert all(kinds <= set(DETECTOR_KINDS[name]) for name, kinds in emitted.items())
    assert set(IFEVAL_KINDS) <= set().union(*emitted.values())  # every IFEval kind, each from its own detector
