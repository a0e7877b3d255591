"""mypyc's build of the constraint detector (`classifiers._compiled`, classifiers/compiled.py) equals the Python one.

The same raw detections (`run_detectors`: kinds, spans, parameters with their types) and the same public output on
every IFEval prompt, on the generated instruction texts of the prefilter test (trigger words with Unicode
look-alikes, strings generated from the anchored patterns), on arbitrary Unicode text, and on str subclasses.
mypyc checks annotations at run time (a value that does not match raises TypeError), so the fuzzing here is also
the check that the annotations hold.

Set THINKGATE_PURE_PYTHON=1 to run the whole suite on the Python detector (the comparisons then skip), and
THINKGATE_NATIVE_OPTIONAL=1 where the compiled parts are expected to be absent (no mypy or no C compiler):
otherwise `test_the_compiled_detector_is_built_and_used` fails, so that CI never tests only the fallback without
saying so.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.builds import assert_built_and_used
from support.threads import run_interleaved

from conftest import shared_data_dir

if str(Path(__file__).resolve().parent) not in sys.path:  # test_detector_prefilters, as pytest has it
    sys.path.append(str(Path(__file__).resolve().parent))

from test_detector_prefilters import _LOOKALIKES, _PATTERN_SAMPLES, _embedded, _mutated, _soup  # noqa: E402

from classifiers import _detectors, compiled, constraints  # noqa: E402
from classifiers._compiled import COMPILED_SOURCES, source_digest  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
IFEVAL = shared_data_dir() / "ifeval" / "input_data.jsonl"
EXAMPLES = int(os.environ.get("THINKGATE_EQUIV_EXAMPLES", "400"))

needs_compiled = pytest.mark.skipif(compiled.compiled_module() is None,
                                    reason=f"compiled detector not used: {compiled.compiled_status()}")

# look-alikes (Kelvin sign, long s, dotted/dotless i, fullwidth and other digits, spaces), characters whose case
# mapping changes length or depends on context, non-BMP, NUL, lone surrogates, and the detectors' punctuation
ALPHABET = sorted({c for alts in _LOOKALIKES.values() for alt in alts for c in alt}) + list(
    "ab AB_1-é\t\n\r\x0b\x0c\x1c\x85\u2028ǅ²٣東😀'.,:;*#<>[]{}()\"\x00ßﬁΣς０１２３４５６７８９") + [
    "\ud800", "\udfff", "\U0010ffff", "\U0001d7d8", "\u212a", "\u017f", "\u0130", "\u0131"]
ODD_TEXT = st.text(alphabet=st.sampled_from(ALPHABET) | st.characters(), max_size=200)
INSTRUCTIONS = st.one_of(_soup(), _mutated(), st.sampled_from(_PATTERN_SAMPLES).flatmap(_embedded))


def _typed(value: Any) -> Any:
    """`value` with every leaf paired with its type: 1 == True == 1.0 would hide a changed type."""
    if isinstance(value, dict):
        return {k: _typed(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value).__name__, [_typed(v) for v in value]
    return type(value).__name__, value


def _raw(found: list[Any]) -> Any:
    return [(type(f).__name__, _typed(tuple(f))) for f in found]


def _same(text: str) -> None:
    module = compiled.compiled_module()
    assert module is not None
    fast, python = module.run_detectors(text), _detectors.run_detectors(text)
    assert _raw(fast) == _raw(python), text
    assert constraints._postprocess(fast) == constraints._postprocess(python), text


def test_the_compiled_detector_is_built_and_used() -> None:
    assert_built_and_used("compiled constraint detector", compiled.compiled_status())
    module = compiled.compiled_module()
    assert module is not None
    assert constraints.run_detectors is module.run_detectors  # what detect_constraints calls


@needs_compiled
def test_the_build_is_a_separate_compiled_module() -> None:
    """The compiled copy is an extension under its own name; the Python modules stay Python (not shadowed)."""
    module = compiled.compiled_module()
    assert module is not None and module.__name__ == "classifiers._compiled._detectors"
    assert Path(module.__file__ or "").suffix == ".so"
    assert Path(_detectors.__file__).name == "_detectors.py"
    assert module.SOURCE_SHA256 == source_digest() == source_digest(ROOT / "classifiers")
    so = {p.name.split(".")[0] for p in (ROOT / "classifiers" / "_compiled").glob("*.so")}
    assert so == {"_detectors", "_phrasing", "detector__mypyc"}  # mypyc's shared library is inside the package
    assert not list((ROOT / "classifiers").glob("_detectors*.so")) + list((ROOT / "classifiers").glob("_phrasing*.so"))
    assert not list(ROOT.glob("*__mypyc*"))


@needs_compiled
def test_every_ifeval_prompt_gives_the_same_detections() -> None:
    if not IFEVAL.is_file():
        pytest.skip(f"IFEval prompts not found at {IFEVAL} (set THINKGATE_DATA_DIR)")
    texts = [json.loads(line)["prompt"] for line in IFEVAL.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(texts) == 541
    for text in texts:
        _same(text)
    assert sum(len(_detectors.run_detectors(t)) for t in texts) > 541  # the comparison saw detections


@needs_compiled
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=INSTRUCTIONS)
def test_generated_instructions_give_the_same_detections(text: str) -> None:
    _same(text)


@needs_compiled
@settings(max_examples=EXAMPLES, deadline=None)
@given(text=ODD_TEXT)
def test_arbitrary_text_gives_the_same_detections(text: str) -> None:
    _same(text)


@needs_compiled
@settings(max_examples=EXAMPLES // 2, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(head=ODD_TEXT, body=INSTRUCTIONS, tail=ODD_TEXT)
def test_instructions_inside_arbitrary_text_give_the_same_detections(head: str, body: str, tail: str) -> None:
    _same(head + " " + body + tail)


@needs_compiled
def test_concurrent_calls_equal_single_threaded_ones() -> None:
    """The proxy decides long prompts in executor threads; the detector's module-level token cache is shared and
    cleared when full (more distinct tokens here than it holds): from 4 threads, every result is the sequential
    one."""
    import random

    module = compiled.compiled_module()
    assert module is not None
    rng = random.Random(3)
    words = ["answer", "json", "bullet", "points", "at", "least", "words", "highlight", "section", "title", "<<t>>",
             "lowercase", "capital", "times", "3", "five", "quote", "\"", "p.s.", "end", "with", "phrase", "İ", "ſ"]
    texts = [" ".join(rng.choice(words) if rng.random() < 0.3 else f"tok{rng.randrange(10**9)}"
                      for _ in range(rng.randint(200, 600))) for _ in range(200)]  # ~56,000 distinct tokens
    expected = [_raw(_detectors.run_detectors(t)) for t in texts]
    errors: list[tuple[int, int]] = []

    def work(seed: int) -> None:
        order = list(range(len(texts)))
        random.Random(seed).shuffle(order)
        for i in order:
            if _raw(module.run_detectors(texts[i])) != expected[i]:
                errors.append((seed, i))

    run_interleaved(work, threads=4)
    assert errors == []


class _Plain(str):
    pass


class _OwnLower(str):
    """A str subclass whose methods differ from str's."""

    def lower(self) -> str:
        return "answer in all lowercase letters"

    def find(self, *args: Any) -> int:
        return 0


@needs_compiled
@pytest.mark.parametrize("cls", [_Plain, _OwnLower])
def test_str_subclasses_give_the_same_detections(cls: type[str]) -> None:
    for text in ["Answer in JSON. Use at least 3 bullet points and end with \"Bye.\"", "İ ſ \u212a ３ times", ""]:
        _same(cls(text))


def test_detect_constraints_follows_the_choice() -> None:
    """constraints.run_detectors is compiled.run_detectors() (made at import) and detect_constraints calls it."""
    assert constraints.run_detectors is compiled.run_detectors()
    module = compiled.compiled_module()
    expected = _detectors.run_detectors if module is None else module.run_detectors
    assert constraints.run_detectors is expected


def test_the_pure_python_switch(monkeypatch) -> None:
    monkeypatch.setenv(compiled.PURE_PYTHON_ENV, "1")
    assert compiled.compiled_module() is None
    assert compiled.compiled_status() == f"disabled by {compiled.PURE_PYTHON_ENV}"
    assert compiled.run_detectors() is _detectors.run_detectors
    monkeypatch.setenv(compiled.PURE_PYTHON_ENV, "0")
    assert compiled.compiled_status() != f"disabled by {compiled.PURE_PYTHON_ENV}"


def test_the_switch_is_native_py_s() -> None:
    from classifiers import native

    assert compiled.PURE_PYTHON_ENV == native.PURE_PYTHON_ENV


@pytest.mark.parametrize("value,python", [("1", True), ("0", None), ("", None)])
def test_a_new_process_chooses_once_at_import(value: str, python: bool | None) -> None:
    """The choice as the proxy makes it: in a fresh process, when classifiers.constraints is imported."""
    code = ("import classifiers.compiled as c, classifiers.constraints as k, classifiers._detectors as d; "
            "print(k.run_detectors is d.run_detectors, c.compiled_status())")
    env = dict(os.environ, **{compiled.PURE_PYTHON_ENV: value})
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    is_python, status = out.stdout.strip().split(" ", 1)
    if python is None:  # not forced: Python exactly when the build is not used
        python = status != "loaded"
    assert is_python == str(python), out
    assert (status == f"disabled by {compiled.PURE_PYTHON_ENV}") == (value == "1")


@needs_compiled
def test_a_stale_build_is_not_used_and_says_so_once(monkeypatch, tmp_path, caplog) -> None:
    for name in COMPILED_SOURCES:
        (tmp_path / name).write_bytes((ROOT / "classifiers" / name).read_bytes())
    monkeypatch.setattr(compiled._build, "loaded", None)
    monkeypatch.setattr(compiled, "_SOURCES", tmp_path)
    assert compiled.compiled_module() is not None  # the same sources elsewhere: the same digest

    with open(tmp_path / "_phrasing.py", "a", encoding="utf-8") as f:
        f.write("# an edit after the build\n")
    monkeypatch.setattr(compiled._build, "loaded", None)
    with caplog.at_level(logging.INFO, logger="classifiers.compiled"):
        assert compiled.compiled_module() is None and compiled.compiled_module() is None
        assert compiled.run_detectors() is _detectors.run_detectors
        assert compiled.compiled_status().startswith("stale build:")
    assert [r.levelname for r in caplog.records] == ["WARNING"]

    (tmp_path / "_phrasing.py").unlink()  # cannot tell whether the build is current: not used
    monkeypatch.setattr(compiled._build, "loaded", None)
    assert compiled.compiled_module() is None
    assert compiled.compiled_status().startswith("sources unreadable")


def test_a_missing_build_is_not_used(monkeypatch, caplog) -> None:
    import classifiers._compiled

    monkeypatch.setitem(sys.modules, "classifiers._compiled._detectors", None)  # the import raises ImportError
    monkeypatch.delattr(classifiers._compiled, "_detectors", raising=False)
    monkeypatch.delenv(compiled.PURE_PYTHON_ENV, raising=False)
    monkeypatch.setattr(compiled._build, "loaded", None)
    with caplog.at_level(logging.INFO, logger="classifiers.compiled"):
        assert compiled.compiled_module() is None
        assert compiled.run_detectors() is _detectors.run_detectors
    assert compiled.compiled_status().startswith("not built:")
    assert [r.levelname for r in caplog.records] == ["INFO"]


def test_the_digest_covers_both_sources(tmp_path) -> None:
    for name in COMPILED_SOURCES:
        (tmp_path / name).write_bytes((ROOT / "classifiers" / name).read_bytes())
    before = source_digest(tmp_path)
    assert before == source_digest(ROOT / "classifiers")
    for name in COMPILED_SOURCES:
        original = (tmp_path / name).read_bytes()
        (tmp_path / name).write_bytes(original + b"\n")
        assert source_digest(tmp_path) != before, name
        (tmp_path / name).write_bytes(original)
    assert source_digest(tmp_path) == before
