"""The live constraint detector against a frozen copy of the one before its speed work (`detector_v1/`).

`test_detector_reference.py` pins the output on a recorded set of texts; this file adds generated ones. The
texts are built from the words the detectors react to (every needle, every word in their regexes, numbers,
relations, languages, quotes, punctuation), glued in random order, with random case, so that the gates and the
shared views the faster detector computes once are exercised on inputs the recorded set might not contain.
Both detectors must return the same raw detections (`run_detectors`) and the same public output.

More examples: THINKGATE_EQUIV_EXAMPLES=20000 pytest tests/classifiers/test_detector_equivalence.py
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

if str(Path(__file__).resolve().parent) not in sys.path:  # detector_v1 and test_detector_reference, as pytest has it
    sys.path.append(str(Path(__file__).resolve().parent))

from classifiers import _detectors as live_detectors  # noqa: E402
from classifiers import constraints  # noqa: E402
from classifiers import _phrasing as live_phrasing  # noqa: E402
from classifiers.constraints import detect_constraints  # noqa: E402
from detector_v1 import _detectors as v1_detectors  # noqa: E402
from detector_v1 import _phrasing as v1_phrasing  # noqa: E402
from detector_v1.constraints import detect_constraints as v1_detect_constraints  # noqa: E402

# "live" is the Python module (mypyc's build of it is compared with it in test_compiled_detector.py)
pytestmark = pytest.mark.usefixtures("python_detector")

EXAMPLES = int(os.environ.get("THINKGATE_EQUIV_EXAMPLES", "400"))


def _vocabulary() -> list[str]:
    words: set[str] = set()
    for module in (v1_detectors, v1_phrasing):
        for value in vars(module).values():
            if isinstance(value, re.Pattern):
                words.update(re.findall(r"[a-z]{2,}", value.pattern))
            elif isinstance(value, dict):
                words.update(k for k in value if isinstance(k, str))
            elif isinstance(value, (frozenset, set)):
                words.update(k for k in value if isinstance(k, str))
    for d in v1_detectors.DETECTORS:
        words.update(n for n in d.needles if n)
    words.update(["SECTION", "Section", "PARAGRAPH", "Paragraph", "PART", "Part", "CHAPTER", "Day", "STEP", "X",
                  "N", "#", "{x}", "[x]", "1", "2", "3", "12", "300", "1,000", "2k", "200-300", "5+", "-", "–",
                  "twenty-five", "a dozen", "*", "**", "***", "* * *", "******", "<<", ">>", "<<title>>", "p.s.",
                  "P.P.S", "\"", "“", "”", "'", "‘", "’", "«", "»", "[", "]", "(", ")", ":", ";", ",", ".", "!",
                  "?", "\n", "\n\n", "n't", "don’t", "json", "```json", "İ", "ß", "東京", "\u00a0", "\t"])
    return sorted(words)


_VOCAB = _vocabulary()
_SEPS = [" ", " ", " ", "", "\n", ". ", ", ", "-", "  "]

_piece = st.one_of(
    st.sampled_from(_VOCAB),
    st.sampled_from(_VOCAB).map(str.upper),
    st.sampled_from(_VOCAB).map(str.title),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz \"'*.,:-\n0123456789", max_size=6),
)


def _sentences() -> list[str]:
    """Instruction-bearing sentences of the IFEval prompts (when the data is there) and the reference test's pieces."""
    from test_detector_reference import _PIECES, IFEVAL

    out = list(_PIECES)
    if IFEVAL.exists():
        for line in IFEVAL.read_text(encoding="utf-8").splitlines():
            if line.strip():
                prompt = json.loads(line)["prompt"]
                out += [s for s in re.split(r"(?<=[.!?\n])\s+", prompt) if s.strip() and len(s) < 400]
    return out


_SENTENCES = _sentences()


@st.composite
def _texts(draw: st.DrawFn) -> str:
    """Random pieces of the vocabulary glued together."""
    pieces = draw(st.lists(_piece, min_size=1, max_size=60))
    out = []
    for p in pieces:
        out.append(p)
        out.append(draw(st.sampled_from(_SEPS)))
    return "".join(out)


@st.composite
def _mutated(draw: st.DrawFn) -> str:
    """A few real instruction sentences, then words inserted, dropped, replaced or re-cased at random places."""
    sents = draw(st.lists(st.sampled_from(_SENTENCES), min_size=1, max_size=4))
    toks = re.split(r"(\s+)", draw(st.sampled_from(["", " ", "\n"])).join(sents))
    for _ in range(draw(st.integers(0, 6))):
        op = draw(st.sampled_from(["insert", "drop", "replace", "upper", "glue"]))
        i = draw(st.integers(0, max(0, len(toks) - 1)))
        if op == "insert":
            toks.insert(i, draw(_piece) + draw(st.sampled_from(_SEPS)))
        elif op == "drop" and toks:
            del toks[i]
        elif op == "replace" and toks:
            toks[i] = draw(_piece)
        elif op == "upper" and toks:
            toks[i] = toks[i].upper()
        elif op == "glue" and toks and toks[i].isspace():
            toks[i] = ""
    return "".join(toks)


def _same(text: str) -> None:
    assert live_detectors.run_detectors(text) == v1_detectors.run_detectors(text), text
    live = [(d.kind, d.span, d.params) for d in detect_constraints(text)]
    assert live == [(d.kind, d.span, d.params) for d in v1_detect_constraints(text)], text


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_texts())
def test_same_detections_on_trigger_soup(text: str) -> None:
    _same(text)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutated())
def test_same_detections_on_mutated_instructions(text: str) -> None:
    _same(text)


@settings(max_examples=EXAMPLES // 2, deadline=None)
@given(st.text(max_size=200))
def test_same_detections_on_any_text(text: str) -> None:
    _same(text)


def test_phrasing_helpers_agree() -> None:
    assert live_phrasing.parse_number("two hundred and fifty") == v1_phrasing.parse_number("two hundred and fifty")


def _check_index(text: str) -> None:
    low = live_detectors.lower_preserving(text)
    index, hits = live_detectors._needle_index(low)
    for n in live_detectors._NEEDLES:
        assert list(index[n]) == live_detectors._find_all(low, n), (n, text)
        assert (n in low) == any(n in h for h in hits), (n, text)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_texts(), _mutated()))
def test_needle_index_is_str_find(text: str) -> None:
    _check_index(text)


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.text(alphabet="*' \"“‘[<p.swordkeynt’-", max_size=40))
def test_needle_index_on_overlapping_needles(text: str) -> None:
    _check_index(text + " " + text.replace(" ", ""))


_EDGES = [" ", "", "’", "'", "-", "\u00a0", "\u2003", "é", "x", "1", "_", ".", "\n", "ß", "\u200b", "«"]


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_EDGES), st.sampled_from(["english", "french", "lao", "polish", "thai",
                                                                    "in", "respond", "only", "write", "Spanish"]),
                          st.sampled_from(_EDGES)), min_size=1, max_size=12))
def test_same_language_detections_at_token_edges(parts: list[tuple[str, str, str]]) -> None:
    _same(" ".join(a + w + b for a, w, b in parts))


_ANCHORED = [(a.rx.pattern[:40], a) for a in live_detectors.ALL_ANCHORED]


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_texts(), _mutated()), st.integers(0, 400), st.integers(0, 400))
def test_anchored_scans_are_finditer(text: str, a: int, b: int) -> None:
    """Every `_Anchored` pattern finds what a plain `finditer` over the same range finds: its first words are
    complete (no match starts elsewhere)."""
    low = live_detectors.lower_preserving(text)
    s, e = min(a, b, len(low)), min(max(a, b), len(low))
    for name, anchored in _ANCHORED:
        for lo, hi in ((0, len(low)), (s, e)):
            expected = [m.span() for m in anchored.rx.finditer(low, lo, hi)]
            assert all(x < y for x, y in expected), name  # never empty
            assert [m.span() for m in anchored.finditer(low, lo, hi)] == expected, (name, lo, hi, text)


def test_anchored_patterns_exist() -> None:
    assert len(_ANCHORED) >= 14


def test_anchored_scans_on_recorded_texts() -> None:
    """The same on the IFEval prompts and the recorded adversarial texts, whole and glued without spaces."""
    from test_detector_reference import adversarial_texts

    texts = _SENTENCES + adversarial_texts()
    texts += ["".join(texts[i:i + 3]).replace(" ", "") for i in range(0, len(texts), 3)]
    for text in texts:
        low = live_detectors.lower_preserving(text)
        for name, anchored in _ANCHORED:
            expected = [m.span() for m in anchored.rx.finditer(low)]
            assert [m.span() for m in anchored.finditer(low)] == expected, (name, text)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_texts(), _mutated()), st.integers(0, 3))
def test_count_before_agrees(text: str, max_adj: int) -> None:
    low = live_detectors.lower_preserving(text)
    for end in range(len(low) + 1):
        assert live_phrasing.count_before(low, end, max_adj) == v1_phrasing.count_before(low, end, max_adj), (end, text)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_texts(), _mutated(), st.text(alphabet="ab .!?\n\t\u00a0é", max_size=60)))
def test_rewritten_patterns_match_the_same(text: str) -> None:
    """Patterns rewritten for speed (same language, different form) find the same matches as the v1 ones."""
    low = live_detectors.lower_preserving(text)
    for name in ("_SENT_END_RE", "_TIMES_STOP_RE"):
        new, old = getattr(live_phrasing, name), getattr(v1_phrasing, name)
        assert [m.span() for m in new.finditer(low)] == [m.span() for m in old.finditer(low)], (name, text)
        for i in range(0, len(low), 7):
            a, b = new.search(low, i, i + 40), old.search(low, i, i + 40)
            assert (a and a.span()) == (b and b.span()), (name, i, text)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_texts(), _mutated()), st.integers(10, 120), st.booleans())
def test_find_times_agrees(text: str, limit: int, bare: bool) -> None:
    low = live_detectors.lower_preserving(text)
    for start in range(len(low)):
        assert live_phrasing.find_times(low, start, limit, bare) == v1_phrasing.find_times(low, start, limit, bare)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_texts(), _mutated(), st.text(max_size=80)), st.booleans())
def test_prompt_index_is_str_find(text: str, cold: bool) -> None:
    """The token-cached index equals `str.find` for every needle, with the token cache empty or warm."""
    if cold:
        live_detectors._TOKEN_NEEDLES.clear()
    ctx = live_detectors._Ctx(text)
    _, present = live_detectors._prompt_index(ctx.low)
    assert present == ctx.hits
    for n in live_detectors._NEEDLES:
        expected = live_detectors._find_all(ctx.low, n)
        assert [i for i, _ in ctx.positions((n,))] == expected, (n, text)
        assert (n in present) == bool(expected) == ctx.has(n), (n, text)


def test_detect_constraints_runs_the_python_module_patched_here() -> None:
    """The `python_detector` fixture: the public output below comes from `_detectors`, not mypyc's build of it."""
    assert constraints.run_detectors is live_detectors.run_detectors
