"""Detect IFEval-style verifiable constraints in a natural-language prompt.

`detect_constraints(text)` returns what it found as `DetectedConstraint(kind, span, params)`, where `kind` is an
IFEval instruction id (`category:name`) when IFEval has one, and one of `EXTENSION_KINDS` otherwise. Parameters
use IFEval's kwarg names (`num_words`, `relation`, `keywords`, ...); a parameter that could not be read is None.

Design notes (why it looks like this):

* It runs on every request, so it is built for speed (typically tens of microseconds per prompt). Regexes are
  compiled once, written in lower case and matched against a length-preserving lower-cased copy of the prompt
  (IGNORECASE makes Python's `re` several times slower); parameters are cut from the original text at the same
  offsets. Each detector runs only if one of its trigger substrings occurs, and its patterns are tried only
  next to the words a match must contain (scanning a regex over the whole prompt costs microseconds per hundred
  characters). Which trigger substrings occur is found once per prompt from its `split()` tokens: the needles
  inside each token are remembered in a bounded cache (50,000 tokens), and unseen tokens are read by one scan of
  a prefix trie of all needles (a loop of `str.find` calls costs more in Python overhead than the search itself);
  offsets are found with `str.find` for the few needles that occur, when a detector asks for them. Inside those windows
  a pattern whose alternatives `re` cannot reject on their first character is tried only where one of its
  possible first words starts, followed by a relaxed copy of what the pattern needs after that word (`_Anchored`
  tails: a trie whose alternatives all start with a literal, so `re` skips to candidate characters and the full
  pattern runs in Python only at near-matches). Counts ("at least 300 words") are read backwards from the unit
  word (from its tokens first; their offsets only for a count that is found), and alternations of many words
  (number words, relations, languages) are compiled as prefix tries.
* Shortcuts that only skip work which cannot find anything (the relaxed candidate scans, the checks before
  `find_times` and the forbidden-words subject pattern) are switched by `_detectors.PREFILTERS`; a test runs the
  detector with it off (the reference path) and on, on texts built to break such arguments, and compares.
* Detectors run from most to least specific. Each detection claims its span and a later detector ignores
  matches overlapping a claimed span: "use words in all caps at least 3 times" is a capital-word frequency,
  so the later whole-response "all caps" detector must not fire on it.
* Relations are normalised to "at least" / "at most" / "less than" / "exactly", plus "about" for hedged or
  bare word counts ("a 300-word essay"). "more than N" becomes ("at least", N + 1), IFEval's own convention.
* Per-unit limits ("each bullet under 10 words") are not response-level limits and are skipped.
* It reads English instructions. It is a feature extractor, not a verifier: it aims at recall of the kinds
  with sensible parameters, and a quoted text that itself contains an instruction will be read as one.

Layout: this module is the public API and the driver; `_detectors.py` holds one detector per kind and
`_phrasing.py` the shared readers (numbers, relations, counts, quoted phrases, keyword lists). `compiled.py`
chooses which `run_detectors` runs: mypyc's build of those two modules when it is current, else the modules.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from . import compiled
from ._detectors import DETECTORS, LANGUAGES, Found
from ._phrasing import parse_number

__all__ = [
    "DetectedConstraint",
    "IFEVAL_KINDS",
    "EXTENSION_KINDS",
    "KINDS",
    "DETECTOR_KINDS",
    "KIND_DETECTOR",
    "LANGUAGES",
    "detect_constraints",
    "constraint_counts",
    "parse_number",
]

IFEVAL_KINDS: tuple[str, ...] = (
    "change_case:capital_word_frequency",
    "change_case:english_capital",
    "change_case:english_lowercase",
    "combination:repeat_prompt",
    "combination:two_responses",
    "detectable_content:number_placeholders",
    "detectable_content:postscript",
    "detectable_format:constrained_response",
    "detectable_format:json_format",
    "detectable_format:multiple_sections",
    "detectable_format:number_bullet_lists",
    "detectable_format:number_highlighted_sections",
    "detectable_format:title",
    "keywords:existence",
    "keywords:forbidden_words",
    "keywords:frequency",
    "keywords:letter_frequency",
    "language:response_language",
    "length_constraints:nth_paragraph_first_word",
    "length_constraints:number_paragraphs",
    "length_constraints:number_sentences",
    "length_constraints:number_words",
    "punctuation:no_comma",
    "startend:end_checker",
    "startend:quotation",
)
"""The 25 instruction ids of IFEval (Zhou et al., 2023), sorted."""

EXTENSION_KINDS: tuple[str, ...] = (
    "startend:start_checker",
    "length_constraints:number_characters",
    "detectable_format:numbered_list",
    "detectable_format:table",
    "detectable_format:markdown",
)
"""Kinds IFEval has no id for, named in the same `category:name` style."""

run_detectors = compiled.run_detectors()
"""The detector `detect_constraints` calls: mypyc's build of `_detectors.run_detectors` when it is current, else
that function itself (classifiers/compiled.py; tests that patch `_detectors` set this to the Python one)."""

KINDS: tuple[str, ...] = IFEVAL_KINDS + EXTENSION_KINDS
"""Every kind the detector can emit, in a fixed order (feature columns follow it)."""

DETECTOR_KINDS: dict[str, tuple[str, ...]] = {d.name: d.kinds for d in DETECTORS}
"""Each detector (by name) and the kinds it emits, as the detector table declares them."""

KIND_DETECTOR: dict[str, str] = {kind: name for name, kinds in DETECTOR_KINDS.items() for kind in kinds}
"""Which detector finds each kind (every kind has exactly one)."""


@dataclass(frozen=True)
class DetectedConstraint:
    """One constraint found in a prompt: its kind, the (start, end) character span, parsed parameters."""

    kind: str
    span: tuple[int, int]
    params: dict[str, Any] = field(default_factory=dict, hash=False)


def _postprocess(found: list[Found]) -> list[DetectedConstraint]:
    out = [DetectedConstraint(f.kind, f.span, f.params) for f in found]
    kinds = {d.kind for d in out}
    if "change_case:english_capital" in kinds or "change_case:english_lowercase" in kinds:
        # IFEval's case ids mean "in English, all capitals/lowercase": "in English" there is part of that rule.
        out = [d for d in out if not (d.kind == "language:response_language" and d.params.get("language") == "en")]
    if "length_constraints:nth_paragraph_first_word" in kinds:
        # The paragraph count belongs to the nth-paragraph rule (IFEval's kwargs carry it there).
        counts = [d for d in out if d.kind == "length_constraints:number_paragraphs"]
        paras = counts[0].params.get("num_paragraphs") if counts else None
        fixed = []
        for d in out:
            if d.kind == "length_constraints:number_paragraphs" and paras is not None:
                continue
            if d.kind == "length_constraints:nth_paragraph_first_word":
                params = dict(d.params, num_paragraphs=paras)
                if params["nth_paragraph"] == -1 and paras:
                    params["nth_paragraph"] = paras
                d = DetectedConstraint(d.kind, d.span, params)
            fixed.append(d)
        out = fixed
    out.sort(key=lambda d: d.span)
    return out


def detect_constraints(text: str) -> list[DetectedConstraint]:
    """All constraints found in `text`, sorted by position. See the module docstring for what it recognises."""
    if not text:
        return []
    return _postprocess(run_detectors(text))


def constraint_counts(text: str | Iterable[DetectedConstraint]) -> dict[str, int]:
    """How many constraints of each kind a prompt carries (kinds that occur only). Accepts detections too."""
    found = detect_constraints(text) if isinstance(text, str) else text
    counts: dict[str, int] = {}
    for d in found:
        counts[d.kind] = counts.get(d.kind, 0) + 1
    return counts
