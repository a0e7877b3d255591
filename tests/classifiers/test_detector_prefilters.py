"""The detector's prefilters only skip work that cannot find anything: with them off, the output is the same.

`_detectors.PREFILTERS` switches off every shortcut that rests on an argument of the form "a match needs X, and X
is not there": the relaxed candidate scans of `_Anchored` (tails), the check before `find_times` in the keyword
counts, the subject-pattern check of the forbidden-words detector, and the shortcuts inside `find_times` (passed
on as `fast=`). With the switch off the detector runs its slow reference path, the one before those shortcuts. Both
paths must agree on every text; the texts here are built to hit the arguments' weak spots: the trigger words in
every case, glued to each other, with Unicode look-alikes that `re` or `str.lower` treat specially (the Kelvin
sign, long s, dotted and dotless i, non-breaking and other spaces, fullwidth, Arabic-Indic and superscript digits,
curly quotes); strings generated from each anchored pattern and from the patterns the other shortcuts reason about
(`from_regex`), glued to what follows or not, with windows cut at and inside their matches; and every written form
of a count. Each of these tests was checked to fail on a deliberately unsound shortcut (a tail missing a noun or
asking for a space the pattern does not, a window a few characters short, a first word left out).

More examples: THINKGATE_EQUIV_EXAMPLES=20000 pytest tests/classifiers/test_detector_prefilters.py
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

if str(Path(__file__).resolve().parent) not in sys.path:  # test_detector_reference, as pytest has it
    sys.path.append(str(Path(__file__).resolve().parent))

from classifiers import _detectors, constraints  # noqa: E402
from classifiers.constraints import detect_constraints  # noqa: E402

# PREFILTERS is a global of the Python module: the public output must come from it (tests/classifiers/conftest.py)
pytestmark = pytest.mark.usefixtures("python_detector")

EXAMPLES = int(os.environ.get("THINKGATE_EQUIV_EXAMPLES", "400"))

# Characters `re` and `str.lower` treat specially, next to what they look like.
_LOOKALIKES = {
    "k": ["\u212a", "K"],  # Kelvin sign: lower() is "k"
    "s": ["\u017f", "S"],  # long s: IGNORECASE would match it to "s", lower() keeps it
    "i": ["\u0130", "\u0131", "I"],  # dotted capital I lowers to two code points; dotless i
    " ": ["\u00a0", "\u2003", "\u3000", "\n", "\t", "  ", ""],
    "1": ["\uff11", "\u0661", "\u00b9"],  # fullwidth, Arabic-Indic, superscript (isdigit, not \d)
    "3": ["\uff13", "\u0663", "\u2462"],
    "'": ["\u2019", "\u2018"],
    '"': ["\u201c", "\u201d", "\u00ab"],
    "-": ["\u2013", "\u2010"],
    "e": ["\u0435"],  # Cyrillic
    "o": ["\u043e", "0"],
}


def _vocabulary() -> list[str]:
    """Every needle, every first word and tail key of the anchored patterns, and the words of every pattern."""
    words: set[str] = set(_detectors._NEEDLES)
    for a in _detectors.ALL_ANCHORED:
        words.update(a.firsts)
        words.update(re.findall(r"[a-z]{2,}", a.rx.pattern))
    for value in vars(_detectors).values():
        if isinstance(value, re.Pattern):
            words.update(re.findall(r"[a-z]{2,}", value.pattern))
    words.update(["1", "3", "12", "300", "1,000", "twenty-five", "a dozen", "at least", "at most", "less than",
                  "times", "once", "twice", "\"", "“", "”", "'", "‘", "’", "[", "]", "*", "***", "******", ":", ",",
                  ".", "\n", "p.s.", "<<title>>", "n't", "don’t", "should not appear", "must not be used"])
    return sorted(w for w in words if w)


_VOCAB = _vocabulary()
_SEPS = [" ", " ", " ", "", "\n", ". ", ", ", ": ", " \"", "\" ", "  ", "\u00a0"]


@st.composite
def _variant(draw: st.DrawFn, word: str) -> str:
    """`word`, re-cased and with some characters swapped for look-alikes."""
    case = draw(st.sampled_from(["same", "same", "upper", "title", "swap"]))
    word = {"same": word, "upper": word.upper(), "title": word.title(), "swap": word.swapcase()}[case]
    chars = list(word)
    for _ in range(draw(st.integers(0, 2))):
        if not chars:
            break
        i = draw(st.integers(0, len(chars) - 1))
        alts = _LOOKALIKES.get(chars[i].lower())
        if alts:
            chars[i] = draw(st.sampled_from(alts))
    return "".join(chars)


@st.composite
def _soup(draw: st.DrawFn, max_words: int = 40) -> str:
    """Trigger words (some as look-alike variants) glued by separators."""
    out = []
    for _ in range(draw(st.integers(1, max_words))):
        word = draw(st.sampled_from(_VOCAB))
        out.append(draw(_variant(word)) if draw(st.booleans()) else word)
        out.append(draw(st.sampled_from(_SEPS)))
    return "".join(out)


_PATTERN_SAMPLES = [st.from_regex(a.rx, fullmatch=True) for a in _detectors.ALL_ANCHORED]


@st.composite
def _embedded(draw: st.DrawFn, sample: st.SearchStrategy[str], max_words: int = 20) -> str:
    """A string matching a pattern, between trigger words, glued to them or not (a tail must not ask for a
    character after the match that the pattern does not ask for)."""
    glue = st.sampled_from(["", " ", "\n", ".", ",", "s", "x", "\"", "*", "\u00a0"])
    return draw(_soup(max_words)) + draw(glue) + draw(sample) + draw(glue) + draw(_soup(max_words))


def _sentences() -> list[str]:
    from test_detector_reference import _PIECES, IFEVAL

    out = list(_PIECES)
    if IFEVAL.exists():
        for line in IFEVAL.read_text(encoding="utf-8").splitlines():
            if line.strip():
                out += [s for s in re.split(r"(?<=[.!?\n])\s+", json.loads(line)["prompt"]) if s.strip()]
    return out


_SENTENCES = _sentences()


@st.composite
def _mutated(draw: st.DrawFn) -> str:
    """Real instruction sentences with words swapped for look-alike variants or trigger words."""
    text = " ".join(draw(st.lists(st.sampled_from(_SENTENCES), min_size=1, max_size=3)))
    toks = re.split(r"(\s+)", text)
    for _ in range(draw(st.integers(0, 8))):
        i = draw(st.integers(0, len(toks) - 1))
        op = draw(st.sampled_from(["variant", "variant", "insert", "upper"]))
        if op == "variant":
            toks[i] = draw(_variant(toks[i]))
        elif op == "insert":
            toks.insert(i, draw(st.sampled_from(_VOCAB)) + " ")
        else:
            toks[i] = toks[i].upper()
    return "".join(toks)


_TEXTS = st.one_of(_soup(), _mutated(), st.sampled_from(_PATTERN_SAMPLES).flatmap(_embedded))

# Instructions the other prefilters reason about: "the words X and Y should not appear" (the forbidden-words
# subject pattern) and "use the word X at least 3 times" (a keyword, then a count read by `find_times`).
_TIMES = st.sampled_from(["at least 3 times", "twice", "once", "exactly 2 times", "10 or more times", "times", "thrice",
                          "only once", "less than 4 times", "5 times"])
_CHECKED = {
    "forbidden subject": st.from_regex(_detectors._FORBID_SUBJ_RE, fullmatch=True),
    "keyword count": st.tuples(st.from_regex(_detectors._KW_FREQ_RE, fullmatch=True),
                               st.text(alphabet="abc ,.\n\"'", max_size=80), _TIMES).map("".join),
}


def _detections(text: str, on: bool) -> tuple[list[Any], list[Any]]:
    _detectors.PREFILTERS = on
    try:
        raw = _detectors.run_detectors(text)
        public = [(d.kind, d.span, d.params) for d in detect_constraints(text)]
    finally:
        _detectors.PREFILTERS = True
    return raw, public


def _same(text: str) -> None:
    assert _detections(text, True) == _detections(text, False), text


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_TEXTS)
def test_prefilters_do_not_change_the_detections(text: str) -> None:
    _same(text)


@pytest.mark.parametrize("k", range(len(_detectors.ALL_ANCHORED)))
@settings(max_examples=max(50, EXAMPLES // 4), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_anchored_scans_are_the_same_with_and_without_prefilters(k: int, data: st.DataObject) -> None:
    """Each anchored pattern finds the same matches with and without its relaxed candidate scan, in texts holding
    a string of that pattern, and in windows cut anywhere, in particular right at and inside its matches (where a
    tail that asks for more than the pattern would fail)."""
    anchored = _detectors.ALL_ANCHORED[k]
    text = data.draw(_embedded(_PATTERN_SAMPLES[k], max_words=6))
    low = _detectors.lower_preserving(text)
    size = len(low)
    a, b = data.draw(st.integers(0, size)), data.draw(st.integers(0, size))
    windows = {(0, size), (min(a, b), max(a, b))}
    for m in anchored.rx.finditer(low):
        windows |= {(m.start(), m.end()), (max(0, m.start() - 2), m.end()), (m.start(), max(m.start(), m.end() - 1))}
    for lo, hi in sorted(windows):
        found = [_scan(anchored, low, lo, hi, on) for on in (True, False)]
        assert found[0] == found[1], (anchored.rx.pattern[:40], lo, hi, text)


def _scan(anchored: Any, low: str, lo: int, hi: int, on: bool) -> list[tuple[int, int]]:
    _detectors.PREFILTERS = on
    try:
        spans = [m.span() for m in anchored.finditer(low, lo, hi)]
        first = anchored.first(low, lo, hi)
    finally:
        _detectors.PREFILTERS = True
    assert (first and first.span()) == (spans[0] if spans else None), (anchored.rx.pattern[:40], low)
    return spans


@pytest.mark.parametrize("name", sorted(_CHECKED))
@settings(max_examples=max(50, EXAMPLES // 2), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_prefilters_on_the_instructions_they_reason_about(name: str, data: st.DataObject) -> None:
    _same(data.draw(_embedded(_CHECKED[name], max_words=8)))


@pytest.mark.parametrize("word", ["time", "times", "once", "twice", "thrice"])
def test_keyword_count_at_every_distance(word: str) -> None:
    """A count word at each distance after a keyword, across the 70 characters `find_times` reads."""
    for keyword in ('the word "apple"', "the keyword apple", "use 'apple'"):
        for gap in range(40, 80):
            filler = ("at least 3 " + "x" * gap)[-gap:] if gap else ""
            _same(f"Write about fruit and {keyword} {filler} {word} in the text.")
            _same(f"Include {keyword}{filler}{word}")


def test_prefilters_on_the_recorded_texts() -> None:
    """The IFEval prompts and the recorded adversarial texts, as written and with look-alikes swapped in."""
    from test_detector_reference import adversarial_texts

    texts = _SENTENCES + adversarial_texts()
    swapped = [t.replace("k", "\u212a").replace("s", "\u017f").replace("i", "\u0130") for t in texts[::5]]
    spaced = [t.replace(" ", "\u00a0").replace("1", "\uff11").replace("'", "\u2019") for t in texts[1::5]]
    for text in texts + swapped + spaced + [t.upper() for t in texts[2::5]]:
        _same(text)


def test_detect_constraints_runs_the_python_module_patched_here() -> None:
    """The `python_detector` fixture: the public output below comes from `_detectors`, not mypyc's build of it."""
    assert constraints.run_detectors is _detectors.run_detectors


def test_the_switch_is_on_by_default() -> None:
    assert _detectors.PREFILTERS is True


def test_anchored_tails_start_with_a_first_word() -> None:
    """A tail key must start with one of the pattern's first words (else it could add candidates)."""
    count = len(_detectors.ALL_ANCHORED)
    with pytest.raises(ValueError):
        _detectors._Anchored(re.compile("abc"), ("abc",), tails={"xyz": ""})
    assert len(_detectors.ALL_ANCHORED) == count  # not registered


_STOP_ORIGINAL = re.compile(r"[,;]|\b(?:but|while|whereas)\b|\b(?:the\s+)?(?:key)?(?:word|letter|term|name)\b")
_STOP_PIECES = ["but", "while", "whereas", "the", "key", "word", "letter", "term", "name", "s", "ed", " ", "  ", "\n",
                ",", ";", "x", "_", "1", "é", "\u00a0", "-", "'"]


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.lists(st.sampled_from(_STOP_PIECES), max_size=30).map("".join), st.integers(0, 60), st.integers(0, 60))
def test_clause_stop_pattern_is_the_original(text: str, a: int, b: int) -> None:
    """`_TIMES_STOP_RE` is written to start with literals; it matches what the plain pattern matches, from any
    offset (its word boundaries look behind the start offset, as `\\b` does)."""
    from classifiers._phrasing import _TIMES_STOP_RE

    lo, hi = min(a, b, len(text)), min(max(a, b), len(text))
    new, old = _TIMES_STOP_RE.search(text, lo, hi), _STOP_ORIGINAL.search(text, lo, hi)
    assert (new and new.span()) == (old and old.span()), (text, lo, hi)
    assert [m.span() for m in _TIMES_STOP_RE.finditer(text, lo)] == [m.span() for m in _STOP_ORIGINAL.finditer(text, lo)]


def _count_phrases() -> st.SearchStrategy[str]:
    from classifiers._phrasing import _TIMES_REL_ONLY_RE, _TIMES_RE

    phrase = st.one_of(st.from_regex(_TIMES_RE, fullmatch=True), st.from_regex(_TIMES_REL_ONLY_RE, fullmatch=True))
    return st.tuples(st.sampled_from(["words in all caps ", "the letter q ", "the word 'x' ", ""]), phrase,
                     st.sampled_from(["", " times", ", but", " and the word y", "."])).map("".join)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_TEXTS, _count_phrases(), st.tuples(_soup(8), _count_phrases()).map(" ".join)), st.integers(0, 3))
def test_find_times_fast_path_is_the_reference(text: str, k: int) -> None:
    """`find_times` with its shortcuts (candidate-first searches, the recheck after a clause stop) equals the plain
    searches, at every offset."""
    from classifiers._phrasing import find_times

    low = _detectors.lower_preserving(text)
    limit = (70, 90, 110, 40)[k]
    for start in range(len(low)):
        for bare in (True, False):
            assert find_times(low, start, limit, bare) == find_times(low, start, limit, bare, fast=False), (start, text)


_COUNT_FORMS = ["a dozen times", "a hundred times", "a thousand times", "a couple of times", "a pair of times",
                "a single time", "single time", "twenty-five times", "one hundred and one times", "5 times", "1,000 times",
                "2k times", "3.5 times", "5+ times", "10 or more times", "once", "twice or more", "thrice", "only once",
                "at least twice", "no more than 3 times", "to at least 4", "at most five", "\u0663 times", "\uff15 times",
                "\u00b2 times", "5\u00a0times", "a\ndozen\ttimes"]


@pytest.mark.parametrize("form", _COUNT_FORMS)
def test_find_times_on_every_count_form(form: str) -> None:
    """Each way to write a count, after a keyword and glued to what follows, read from every offset."""
    from classifiers._phrasing import find_times

    for text in (f"use the word x {form}.", f"words in all caps {form}, but", f"the letter q{form} and more",
                 f"x {form}"):
        low = _detectors.lower_preserving(text)
        for start in range(len(low)):
            for limit in (40, 70, 90, 110):
                for bare in (True, False):
                    assert find_times(low, start, limit, bare) == find_times(low, start, limit, bare, fast=False), (
                        start, limit, text)
