"""Detect IFEval-style verifiable constraints in a natural-language prompt.

`detect_constraints(text)` returns what it found as `DetectedConstraint(kind, span, params)`, where `kind` is an
IFEval instruction id (`category:name`) when IFEval has one, and a few extensions otherwise (listed in
`EXTENSION_KINDS`). Parameters use IFEval's kwarg names (`num_words`, `relation`, `keywords`, ...).

Design notes (why it looks like this):

* It runs on every request, so every regex is compiled once at import and each detector is guarded by
  cheap substring triggers on the lower-cased text; a prompt without e.g. "comma" never pays for the
  comma regex. A typical prompt costs a few tens of microseconds.
* Detectors run from most to least specific. Each detection claims its span, and a less specific detector
  ignores matches that overlap a claimed span: "use words in all caps at least 3 times" is a capital-word
  frequency, so the later "all caps" (whole response upper-case) detector must not fire on it.
* Relations are normalised to "at least" / "at most" / "less than" / "exactly" (plus "about" for hedged
  numbers). "more than N" becomes "at least N+1", which is IFEval's own convention.
* Per-unit limits ("each bullet under 10 words") are not response-level limits and are skipped.
* It is a heuristic for features, not a verifier: it reads English instructions and aims for good recall of
  the instruction kinds; parameters are best effort and may be None.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

__all__ = [
    "DetectedConstraint",
    "IFEVAL_KINDS",
    "EXTENSION_KINDS",
    "KINDS",
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
"""Kinds IFEval has no id for; named in the same `category:name` style."""

KINDS: tuple[str, ...] = IFEVAL_KINDS + EXTENSION_KINDS
"""Every kind the detector can emit, in a fixed order (feature columns follow it)."""


@dataclass(frozen=True)
class DetectedConstraint:
    """One constraint found in a prompt: its kind, the (start, end) character span, parsed parameters."""

    kind: str
    span: tuple[int, int]
    params: dict[str, Any] = field(default_factory=dict, hash=False)


# --------------------------------------------------------------------------------------------- numbers

_ONES = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}
_TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
    "ninety": 90,
}
_SPECIAL = {"single": 1, "a single": 1, "once": 1, "twice": 2, "thrice": 3, "a dozen": 12, "dozen": 12,
            "a couple of": 2, "a pair of": 2, "a hundred": 100, "a thousand": 1000}
_ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
    "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12,
}

_ONES_ALT = "|".join(sorted(_ONES, key=len, reverse=True))
_TENS_ALT = "|".join(_TENS)
_SMALL = rf"(?:(?:{_TENS_ALT})(?:[\s-](?:{_ONES_ALT}))?|{_ONES_ALT})"
# A number: digits (with thousands separators), number words up to the thousands, or a few idioms.
NUM = (
    rf"(?:\d{{1,3}}(?:,\d{{3}})+(?!\d)|\d+(?:\.\d+)?k?"
    rf"|(?:{_SMALL}|a)\s+(?:hundred|thousand)(?:\s+(?:and\s+)?{_SMALL})?"
    rf"|a\s+dozen|a\s+single|a\s+couple\s+of|a\s+pair\s+of|single|{_SMALL})"
)
_NUM_RE = re.compile(NUM, re.I)


def parse_number(s: str) -> int | None:
    """Parse the numbers NUM matches: "300", "1,000", "2k", "twenty-five", "two hundred and fifty", "a dozen"."""
    s = " ".join(s.lower().replace("-", " ").split())
    if not s:
        return None
    if s[0].isdigit():
        try:
            if s.endswith("k"):
                return int(float(s[:-1]) * 1000)
            return int(float(s.replace(",", "")))
        except ValueError:
            return None
    if s in _SPECIAL:
        return _SPECIAL[s]
    total, current = 0, 0
    for w in s.split():
        if w in ("and",):
            continue
        if w in _ONES:
            current += _ONES[w]
        elif w in _TENS:
            current += _TENS[w]
        elif w == "a":
            current += 1
        elif w == "hundred":
            current = max(current, 1) * 100
        elif w == "thousand":
            total += max(current, 1) * 1000
            current = 0
        else:
            return None
    return total + current


# ------------------------------------------------------------------------------------------- relations

_REL_PRE_MAP = {
    "at least": "at least", "no fewer than": "at least", "no less than": "at least",
    "not fewer than": "at least", "not less than": "at least", "a minimum of": "at least",
    "minimum of": "at least", "minimum": "at least", "min": "at least", "upwards of": "at least",
    "more than": "more than", "over": "more than", "greater than": "more than", "in excess of": "more than",
    "above": "more than", "exceeding": "more than", "longer than": "more than",
    "at most": "at most", "no more than": "at most", "not more than": "at most", "up to": "at most",
    "a maximum of": "at most", "maximum of": "at most", "maximum": "at most", "max": "at most",
    "no longer than": "at most", "not exceeding": "at most", "not to exceed": "at most", "within": "at most",
    "only": "at most", "no greater than": "at most",
    "less than": "less than", "fewer than": "less than", "under": "less than", "below": "less than",
    "shorter than": "less than",
    "exactly": "exactly", "precisely": "exactly", "just": "exactly", "exactly only": "exactly",
    "only exactly": "exactly",
    "about": "about", "around": "about", "approximately": "about", "roughly": "about", "circa": "about",
}
REL = "(?:" + "|".join(
    re.escape(k).replace(r"\ ", r"\s+") for k in sorted(_REL_PRE_MAP, key=len, reverse=True)
) + ")"
_REL_POST_MAP = {
    "or more": "at least", "or greater": "at least", "or above": "at least", "or longer": "at least",
    "at least": "at least", "minimum": "at least", "at minimum": "at least", "at a minimum": "at least",
    "or less": "at most", "or fewer": "at most", "or under": "at most", "or below": "at most",
    "or shorter": "at most", "at most": "at most", "maximum": "at most", "max": "at most",
    "at the most": "at most", "tops": "at most", "or so": "about",
}
REL_POST = "(?:" + "|".join(
    re.escape(k).replace(r"\ ", r"\s+") for k in sorted(_REL_POST_MAP, key=len, reverse=True)
) + ")"


def _norm(s: str | None) -> str:
    return " ".join(s.lower().split()) if s else ""


def _relation(pre: str | None, post: str | None, plus: str | None, n: int, default: str) -> tuple[str, int]:
    """Map the words around a number to (relation, number); "more than N" becomes ("at least", N + 1)."""
    if plus:
        return "at least", n
    if pre:
        rel = _REL_PRE_MAP.get(_norm(pre), default)
        if rel == "more than":
            return "at least", n + 1
        return rel, n
    if post:
        return _REL_POST_MAP.get(_norm(post), default), n
    return default, n


def _count_pattern(unit: str) -> str:
    """`[relation] N[+][-]unit [relation]`, e.g. "at least 300 words", "a 300-word", "50 words or less"."""
    return (
        rf"\b(?:(?P<pre>{REL})\s+)?(?:a\s+|an\s+)?(?P<num>{NUM})(?P<plus>\s?\+)?(?:\s*-\s*|\s+)(?:\w+\s+)??(?:{unit})\b"
        rf"(?:,?\s+(?P<post>{REL_POST})\b)?"
    )


def _count_from(m: re.Match[str], default: str = "exactly") -> tuple[str, int] | None:
    n = parse_number(m.group("num"))
    if n is None:
        return None
    gd = m.groupdict()
    return _relation(gd.get("pre"), gd.get("post"), gd.get("plus"), n, default)


# Counts of occurrences ("at least 3 times", "twice", "10 or more times", "only once").
_TIMES_RE = re.compile(
    rf"(?:(?P<pre>{REL})\s+)?(?:(?P<num>{NUM})\s*(?P<plus>\+)?\s*(?:(?P<post>{REL_POST})\s+)?times?\b"
    rf"|(?P<word>once|twice|thrice)\b(?:\s+(?P<post2>{REL_POST})\b)?)",
    re.I,
)
_TIMES_REL_ONLY_RE = re.compile(rf"(?:to\s+)?(?P<pre>{REL})\s+(?P<num>{NUM})\b", re.I)


def _find_times(text: str, start: int, limit: int = 90, allow_bare_relation: bool = True) -> tuple[str, int, int] | None:
    """Find an occurrence count in text[start:start+limit] (same sentence). Returns (relation, n, end)."""
    end = _sentence_end(text, start, limit)
    m = _TIMES_RE.search(text, start, end)
    if m:
        if m.group("word"):
            n = _SPECIAL[m.group("word").lower()]
            pre = m.group("pre")
            rel = _REL_PRE_MAP.get(_norm(pre), "exactly") if pre else _REL_POST_MAP.get(_norm(m.group("post2")), "at least")
            if rel == "more than":
                rel, n = "at least", n + 1
            return rel, n, m.end()
        n = parse_number(m.group("num"))
        if n is not None:
            rel, n = _relation(m.group("pre"), m.group("post"), m.group("plus"), n, "exactly")
            return rel, n, m.end()
    if allow_bare_relation:
        m = _TIMES_REL_ONLY_RE.search(text, start, end)
        if m:
            n = parse_number(m.group("num"))
            if n is not None:
                rel, n = _relation(m.group("pre"), None, None, n, "exactly")
                return rel, n, m.end()
    return None


_SENT_END_RE = re.compile(r"(?<!\b[A-Za-z])[.!?](?=\s|$)|\n")


def _sentence_end(text: str, start: int, limit: int) -> int:
    m = _SENT_END_RE.search(text, start, start + limit)
    return m.start() if m else min(len(text), start + limit)


def _clause_start(text: str, pos: int, limit: int = 60) -> int:
    lo = max(0, pos - limit)
    best = lo
    for m in _SENT_END_RE.finditer(text, lo, pos):
        best = m.end()
    return best


# --------------------------------------------------------------------------------------------- quoting

_QOPEN = r"(?:[\"“”«]|(?<![\w])['‘’])"
_QCLOSE = r"(?:[\"“”»]|['‘’](?!\w))"
QUOTED = rf"{_QOPEN}(?P<q>[^\"“”«»\n]{{1,200}}?){_QCLOSE}"
_QUOTED_RE = re.compile(QUOTED)
_QUOTED_ITEM_RE = re.compile(rf"{_QOPEN}([^\"“”«»\n]{{1,60}}?){_QCLOSE}")

_LIST_STOP_RE = re.compile(
    r"\s+(?:in|into|within|throughout|anywhere|somewhere|at\s+all|at\s+least|at\s+most|when|while|so|because|"
    r"to|for|as|if|that|which|but|since|unless|though|although|from|on|with|whatsoever)\b|\s*[.;!?()\n]|,\s*(?:and\s+)?(?:make|use|do|be|write|keep|include|avoid|please|also|the)\b",
    re.I,
)
_LIST_SPLIT_RE = re.compile(r"\s*,\s*(?:and\s+|or\s+|nor\s+)?|\s+(?:and|or|nor|&)\s+|\s*/\s*", re.I)
_WORDISH_RE = re.compile(r"^[^\W\d_][\w'’-]*$")


def _parse_keywords(text: str, pos: int, limit: int = 160) -> tuple[list[str], int]:
    """Parse a keyword list starting at `pos`: quoted items if the list is quoted, else bare words."""
    seg_end = min(len(text), pos + limit)
    head = text[pos:seg_end]
    stripped = head.lstrip(" :\t-–")
    offset = pos + (len(head) - len(stripped))
    if stripped[:1] and stripped[:1] in "\"“”«'‘’":
        items: list[str] = []
        end = offset
        for m in _QUOTED_ITEM_RE.finditer(text, offset, seg_end):
            gap = text[end:m.start()]
            if items and not re.fullmatch(r"\s*(?:,|and|or|nor|&|/)?\s*(?:,|and|or|nor)?\s*(?:the\s+)?(?:words?\s+|keywords?\s+)?", gap, re.I):
                break
            items.append(m.group(1).strip())
            end = m.end()
        return [i for i in items if i], end
    stop = _LIST_STOP_RE.search(text, offset, seg_end)
    end = stop.start() if stop else seg_end
    items = []
    for raw in _LIST_SPLIT_RE.split(text[offset:end]):
        words = raw.strip(" \"'“”‘’").split()
        if not words:
            continue
        if len(words) > 2:  # "feed Mention the keyword ..." -> a run-on; keep the first word and stop
            items.append(words[0])
            break
        cand = " ".join(words)
        if not all(_WORDISH_RE.match(w) for w in words):
            break
        items.append(cand)
    return items, end


_PHRASE_LEAD_RE = re.compile(
    r"\s*(?:the\s+|this\s+|that\s+|a\s+|these\s+)?(?:(?:exact|following|specific|same|precise)\s+)*"
    r"(?P<noun>(?:phrase|sentence|words?|line|question|text|statement|quote|greeting|sign[\s-]?off)\b)?"
    r"(?:\s+of)?\s*(?P<colon>:)?\s*",
    re.I,
)
_UNQUOTED_PHRASE_RE = re.compile(r"[^\n]{1,150}?(?:[.!?](?=\s|$)|(?=\n)|$)")


def _phrase_after(text: str, pos: int, require_marker: bool = True) -> tuple[str | None, int]:
    """The phrase an instruction refers to: quoted, or after a colon / "the exact phrase" up to sentence end."""
    lead = _PHRASE_LEAD_RE.match(text, pos)
    p = lead.end() if lead else pos
    q = _QUOTED_RE.match(text, p)
    if q:
        return q.group("q").strip(), q.end()
    if lead and (lead.group("colon") or lead.group("noun")) or not require_marker:
        m = _UNQUOTED_PHRASE_RE.match(text, p)
        if m and m.group(0).strip():
            return m.group(0).strip(), m.end()
    return None, pos


# --------------------------------------------------------------------------------------------- detectors

_F = re.I
_Claims = list[tuple[int, int]]
_Out = list[DetectedConstraint]


def _overlaps(span: tuple[int, int], claimed: _Claims) -> bool:
    s, e = span
    for cs, ce in claimed:
        if s < ce and cs < e:
            return True
    return False


def _emit(out: _Out, claimed: _Claims, kind: str, span: tuple[int, int], params: dict[str, Any] | None = None) -> None:
    out.append(DetectedConstraint(kind, span, params or {}))
    claimed.append(span)


def _windows(low: str, needles: Iterable[str], before: int, after: int) -> list[tuple[int, int]]:
    """Merged (start, end) windows around every occurrence of the needles in the lower-cased text.

    Regexes that begin with an optional relation and a number are expensive to try at every position, so
    they only run inside these windows around their unit word ("word", "bullet", ...).
    """
    spans: list[tuple[int, int]] = []
    n = len(low)
    for needle in needles:
        i = low.find(needle)
        while i != -1:
            spans.append((max(0, i - before), min(n, i + len(needle) + after)))
            i = low.find(needle, i + 1)
    if len(spans) <= 1:
        return spans
    spans.sort()
    merged = [spans[0]]
    for s, e in spans[1:]:
        ps, pe = merged[-1]
        if s <= pe:
            merged[-1] = (ps, max(pe, e))
        else:
            merged.append((s, e))
    return merged


def _finditer(rx: re.Pattern[str], text: str, windows: list[tuple[int, int]]) -> Iterable[re.Match[str]]:
    for s, e in windows:
        yield from rx.finditer(text, s, e)


_PER_UNIT_RE = re.compile(r"\b(?:each|every|per|individual)\b", re.I)


def _per_unit(text: str, pos: int) -> bool:
    """True when the count is about each unit ("each bullet should be under 10 words"), not the response."""
    cs = _clause_start(text, pos, 40)
    return bool(_PER_UNIT_RE.search(text, cs, pos))


# -- combination

_REPEAT_RE = re.compile(
    r"\b(?:repeat|restate|copy|reproduce|echo|recite)\w*\s+(?:back\s+|out\s+)?(?:the|this|my|your|our|that|above|following)?\s*"
    r"(?:(?:exact|entire|original|whole|same|full|above|following|user'?s?)\s+)*"
    r"(?:request|prompt|question|instructions?|query|sentence|task|message|input|text)s?\b"
    r"|\b(?:request|prompt|question|instructions?)\b[^.\n]{0,40}\b(?:verbatim|word\s+for\s+word)",
    _F,
)


def _d_repeat(text: str, low: str, out: _Out, claimed: _Claims) -> None:
    if "repeat" in low or "verbatim" in low or "word for word" in low or "restate" in low or "copy" in low:
        m = _REPEAT_RE.search(text)
        if m:
            _emit(out, claimed, "combination:repeat_prompt", m.span())


_TWO_RESP_RE = re.compile(
    r"\b(?:two|2)\s+(?:different|distinct|separate|alternative|independent)\s+(?:responses|answers|versions|replies|drafts)\b"
    r"|\b(?:six|6)\s+asterisk(?:s|\s+symbols?|\s+marks?|\s+characters?)?"
    r"|(?<!\*)\*{6}(?!\*)",
    _F,
)


def _d_two_responses(text: str, low: str, out: _Out, claimed: _Claims) -> None:
    if "******" in low or "asterisk" in low or "two " in low or "2 " in low:
        m = _TWO_RESP_RE.search(text)
        if m and not _overlaps(m.span(), claimed):
            _emit(out, claimed, "combination:two_responses", m.span())


# -- detectable_content

_PS_RE = re.compile(r"\bpost[\s-]?scripts?\b|(?<![A-Za-z])P\.\s?(?:P\.\s?)*S\b\.?", _F)
_PS_MARKER_RE = re.compile(r"(?<![A-Za-z])P\.\s?(?:P\.\s?)*S\b\.?")


def _d_postscript(text: str, low: str, out: _Out, claimed: _Claims) -> None:
    if "p.s" in low or "p.p.s" in low or "script" in low or "p. s" in low:
        m = _PS_RE.search(text)
        if m and not _overlaps(m.span(), claimed):
            mk = _PS_MARKER_RE.search(text, m.start(), min(len(text), m.end() + 60))
            marker = mk.group(0).replace(" ", "") if mk else "P.S."
            _emit(out, claimed, "detectable_content:postscript", (m.start(), mk.end() if mk else m.end()),
                  {"postscript_marker": marker})


_PLACEHOLDER_NUM_RE = re.compile(_count_pattern(r"placeholders?"), _F)
_PLACEHOLDER_RE = re.compile(r"\bplaceholders?\b|\bsquare\s+brackets?\b", _F)


def _d_placeholders(text: str, low: str, out: _Out, claimed: _Claims) -> None:
    if "placeholder" not in low:
        return
    m = next(_finditer(_PLACEHOLDER_NUM_RE, text, _windows(low, ("placeholder",), 60, 12)), None)
    if m:
        c = _count_from(m, "at least")
        if c:
            _emit(out, claimed, "detectable_content:number_placeholders", m.span(),
                  {"relation": c[0], "num_placeholders": c[1]})
            return
    m = _PLACEHOLDER_RE.search(text)
    if m:
        _emit(out, claimed, "detectable_content:number_placeholders", m.span(),
              {"relation": "at least", "num_placeholders": 1})


# -- detectable_format

_TITLE_RE = re.compile(
    r"<<[^<>\n]{0,100}>>|\bdouble\s+angul?ar\s+brackets?\b|\bdouble\s+angle\s+brackets?\b|\bangle\s+brackets?\b|"
    r"\btitle\b[^.\n]{0,40}«",
    _F,
)


def _d_title(text: str, low: str, out: _Out, claimed: _Claims) -> None:
    if "<<" in low or "angular" in low or "angle bracket" in low or "«" in low:
        m = _TITLE_RE.search(text)
        if m and not _overlaps(m.span(), claimed):
            _emit(out, claimed, "detectable_format:title", m.span())


_JSON_RE = re.compile(r"\bjson\b", _F)


def _d_json(text: str, low: str, out: _Out, claimed: _Claims) -> None:
    if "json" in low:
        for m in _JSON_RE.finditer(text):
            if not _overlaps(m.span(), claimed):
                _emit(out, claimed, "detectable_format:json_format", m.span())
                return


_QUOTATION_RE = re.compile(
    r"\b(?:wrap|enclose|surround|put|place|encase|encapsulate|bookend|start\s+and\s+end|begin\s+and\s+end)\w*\b"
    r"[^.!?\n]{0,80}?(?:\bdouble[\s-]*quot\w*(?:\s+marks?)?|\bquotation\s+marks?|\bquote\s+marks?|\bquotes\b|\"\s*\")"
    r"|\b(?:response|answer|reply|output|text|everything)\b[^.!?\n]{0,40}?\b(?:wrapped|enclosed|surrounded|in|within|inside|between)\s+"
    r"(?:with\s+|in\s+|by\s+)?(?:a\s+pair\s+of\s+)?(?:double[\s-]*quot\w*(?:\s+marks?)?|quotation\s+marks?)",
    _F,
)
_WHOLE_RE = re.compile(r"\b(?:response|answer|reply|output|everything|entire|whole|all\s+of)\b", _F)


def _d_quotation(text: str, low: str, out: _Out, claimed: _Claims) -> None:
    if "quot" not in low:
        return
    for m in _QUOTATION_RE.finditer(text):
        if _overlaps(m.span(), claimed):
            continue
        s, e = m.span()
        if _WHOLE_RE.search(text, s, min(len(text), e + 50)):
            _emit(out, claimed, "startend:quotation", m.span())
            return


_CONSTRAINED_RE = re.compile(
    r"\b(?:answer|reply|respond|choose|pick|select|say|contain|include)\w*\s+(?:with\s+|from\s+|using\s+)?(?:exactly\s+|only\s+|just\s+)?"
    r"one\s+of\s+(?:the\s+)?(?:following|these|those|below|options|choices)"
    r"|\b(?:choose|pick|select)\s+(?:from|between|among)\b|\bone\s+of\s+the\s+following\s+(?:options|choices|phrases|answers|responses)"
    r"|\bmy\s+answer\s+is\s+(?:yes|no|maybe)\b|\b(?:options|choices)\s*:\s*\(?[\"'“(]",
    _F,
)


def _d_constrained(text: str, low: str, out: _Out, claimed: _Claims) -> None:
    if ("one of" in low or "choose" in low or "pick" in low or "select" in low or "my answer is" in low
            or "options" in low or "choices" in low):
        m = _CONSTRAINED_RE.search(text)
        if m and not _overlaps(m.span(), claimed):
            _emit(out, claimed, "detectable_format:constrained_response", m.span())


_END_RE = re.compile(
    r"\b(?:end|finish|conclude|close|wrap\s+up|sign\s+off|terminate)(?:s|ing|ed)?\s+(?:(?:your|the|this|each|my|it|with)\b\s*)?"
    r"(?:(?!with\b)\w+\s+){0,3}?with\b"
    r"|\b(?:must|should|has\s+to|needs\s+to|will)\s+(?:always\s+)?end\s+with\b"
    r"|\b(?:very\s+)?(?:last|final|closing|ending)\s+(?:sentence|line|words?|phrase)\s+(?:of\s+(?:your|the)\s+(?:\w+\s+){0,2})?"
    r"(?:must|should|has\s+to|needs\s+to|will)\s+(?:be|read)\b"
    r"|\b(?:very\s+)?end\s+of\s+(?:your|the)\s+(?:\w+\s+){0,2}(?:must|should|has\s+to|needs\s+to|will)\s+(?:be|read|say)\b",
    _F,
)


def _d_end(text: str, low: str, out: _Out, claimed: _Claims) -> None:
    if not ("end" in low or "finish" in low or "conclu" in low or "close" in low or "last" in low or "final" in low
            or "sign off" in low or "wrap up" in low):
        return
    for m in _END_RE.finditer(text):
        if _overlaps(m.span(), claimed):
            continue
        phrase, pe = _phrase_after(text, m.end())
        if phrase:
            _emit(out, claimed, "startend:end_checker", (m.start(), pe), {"end_phrase": phrase})
            return


_START_RE = re.compile(
    r"\b(?:start|begin|open)(?:s|ing)?\s+(?:your|the)\s+(?:(?:entire|whole|very)\s+)?(?:response|answer|reply|output|essay|email|letter|story|poem|text)\s+with\b"
    r"|\b(?:response|answer|reply|output)\s+(?:must|should|has\s+to|needs\s+to|will)\s+(?:always\s+)?(?:start|begin|open)\s+with\b"
    r"|\b(?:very\s+)?first\s+(?:word|sentence|line|phrase)\s+of\s+(?:your|the)\s+(?:\w+\s+){0,2}(?:must|should|has\s+to|needs\s+to|will)\s+be\b",
    _F,
)


def _d_start(text: str, low: str, out: _Out, claimed: _Claims) -> None:
    if not ("start" in low or "begin" in low or "open" in low or "first" in low):
        return
    for m in _START_RE.finditer(text):
        if _overlaps(m.span(), claimed):
            continue
        phrase, pe = _phrase_after(text, m.end())
        if phrase:
            _emit(out, claimed, "startend:start_checker", (m.start(), pe), {"start_phrase": phrase})
            return


_ORD_ALT = "|".join(list(_ORDINALS) + ["last", "final", r"\d+(?:st|nd|rd|th)"])
_FIRST_WORD = rf"(?:the\s+)?(?:(?:single\s+)?word\s+)?(?:{QUOTED}|(?P<bare>[^\W\d_][\w'-]*))"
_NTH_PARA_RE = re.compile(
    rf"\b(?:(?:the\s+)?(?:very\s+)?(?P<ord>{_ORD_ALT})\s+paragraph|paragraph\s+(?P<idx>\d+|{_ONES_ALT}))\s+"
    rf"(?:(?:must|should|has\s+to|needs\s+to|will|is\s+to|shall)\s+)?(?:always\s+)?(?:start|begin|open)s?\s+with\s+{_FIRST_WORD}"
    rf"|\b(?:start|begin|open)\s+(?:the\s+)?(?P<ord2>{_ORD_ALT})\s+paragraph\s+with\s+"
    rf"(?:the\s+)?(?:(?:single\s+)?word\s+)?(?:{_QOPEN}(?P<q2>[^\"“”«»\n]{{1,60}}?){_QCLOSE}|(?P<bare2>[^\W\d_][\w'-]*))",
    _F,
)


def _ordinal(s: str) -> int:
    s = s.lower()
    if s in _ORDINALS:
        return _ORDINALS[s]
    if s in ("last", "final"):
        return -1
    digits = re.match(r"\d+", s)
    if digits:
        return int(digits.group(0))
    return _ONES.get(s, -1)


def _d_nth_paragraph(text: str, low: str, out: _Out, claimed: _Claims) -> None:
    if "paragraph" not in low:
        return
    for m in _NTH_PARA_RE.finditer(text):
        if _overlaps(m.span(), claimed):
            continue
        g = m.groupdict()
        nth = _ordinal(g["ord"] or g["idx"] or g["ord2"] or "")
        word = (g["q"] or g["bare"] or g["q2"] or g["bare2"] or "").strip().lower()
        if word in ("a", "an", "the", "word"):
            continue
        _emit(out, claimed, "length_constraints:nth_paragraph_first_word", m.span(),
              {"first_word": word, "nth_paragraph": nth, "num_paragraphs": None})


_SECTION_MARK_RE = re.compile(
    r"\b(?P<sp>SECTION|Section|section|PARAGRAPH|Paragraph|PART|Part|CHAPTER|Chapter|STANZA|Stanza|VERSE|Verse|SLIDE|Slide|DAY|Day|STEP|Step)"
    r"\s+(?P<x>X|N|#|\{\w*\}|\[\w*\]|\d+)(?![\w.])"
)
_SECTION_COUNT_RE = re.compile(
    _count_pattern(r"sections?|parts?|paragraphs?|chapters?|stanzas?|verses?|slides?|days?|steps?"), _F
)


def _d_sections(text: str, low: str, out: _Out, claimed: _Claims) -> None:
    if not ("section" in low or "paragraph" in low or "part" in low or "chapter" in low or "stanza" in low
            or "verse" in low or "slide" in low or "day" in low or "step" in low):
        return
    for m in _SECTION_MARK_RE.finditer(text):
        if _overlaps(m.span(), claimed):
            continue
        sp = m.group("sp")
        unit = sp.lower()
        count = None
        cm_span = None
        for cm in _SECTION_COUNT_RE.finditer(text):
            if not _overlaps(cm.span(), claimed) and cm.group(0).lower().rstrip("s").endswith(unit):
                count = _count_from(cm, "exactly")
                cm_span = cm.span()
                break
        if m.group("x").isdigit() and count is None:
            continue  # "Section 2 of the contract" is a reference, not a format rule
        _emit(out, claimed, "detectable_format:multiple_sections", m.span(),
              {"section_spliter": sp, "num_sections": count[1] if count else None,
               "relation": count[0] if count else None})
        if cm_span:
            claimed.append(cm_span)
        return


_HIGHLIGHT_NUM_RE = re.compile(
    rf"\bhighlight\w*\s+(?:(?P<pre>{REL})\s+)?(?P<num>{NUM})\s+(?:[\w-]+\s+){{0,3}}?"
    r"(?:sections?|parts?|phrases?|passages?|points?|areas?|words?|sentences?|key\s+\w+|things?|items?|terms?|lines?)\b"
    rf"|(?:(?P<pre2>{REL})\s+)?(?P<num2>{NUM})\s+(?:[\w-]+\s+){{0,2}}?(?:sections?|parts?|phrases?|words?|points?|sentences?|passages?)\s+"
    r"(?:(?:should|must|need\s+to|needs\s+to|have\s+to|has\s+to|will)\s+be\s+|are\s+|be\s+)?(?:highlighted|bold(?:ed)?|italici[sz]ed|emphasi[sz]ed)",
    _F,
)
_HIGHLIGHT_RE = re.compile(
    r"\*highlighted\s+(?:section|part|text)[^*\n]{0,20}\*|\bhighlight\w*\b[^.!?\n]{0,40}?\b(?:with|in|using)\s+markdown\b|\bhighlighted\s+sections?\b",
    _F,
)


def _d_highlights(text: str, low: str, out: _Out, claimed: _Claims) -> None:
    if "highlight" not in low and "bold" not in low and "italic" not in low and "emphasi" not in low:
        return
    for m in _finditer(_HIGHLIGHT_NUM_RE, text, _windows(low, ("highlight", "bold", "italic", "emphasi"), 80, 80)):
        if _overlaps(m.span(), claimed):
            continue
        num = m.group("num") or m.group("num2")
        n = parse_number(num)
        if n is None:
            continue
        rel, n = _relation(m.group("pre") or m.group("pre2"), None, None, n, "at least")
        _emit(out, claimed, "detectable_format:number_highlighted_sections", m.span(),
              {"relation": rel, "num_highlights": n})
        for extra in _HIGHLIGHT_RE.finditer(text):  # the "*highlighted section*" example belongs to it
            claimed.append(extra.span())
        return
    m = _HIGHLIGHT_RE.search(text)
    if m and not _overlaps(m.span(), claimed):
        _emit(out, claimed, "detectable_format:number_highlighted_sections", m.span(),
              {"relation": "at least", "num_highlights": 1})


_BULLET_UNIT = r"bullet(?:ed)?[\s-]*points?|bullets|bullet[\s-]*items?|bullet(?:ed)?[\s-]*list\s+items|bulleted\s+items"
_BULLET_NUM_RE = re.compile(
    rf"(?:(?P<pre>{REL})\s+)?(?P<num>{NUM})\s+(?:(?P<mid>{REL_POST})\s+)?(?:[\w-]+\s+){{0,3}}?(?:{_BULLET_UNIT})\b"
    rf"(?:,?\s+(?P<post>{REL_POST})\b)?"
    rf"|\bbullet(?:ed)?[\s-]*(?:point\s+)?list\s+(?:with|of|containing)\s+(?:(?P<pre2>{REL})\s+)?(?P<num2>{NUM})\s+(?:items|points|entries|elements)",
    _F,
)
_BULLET_RE = re.compile(r"\bbullet(?:ed)?[\s-]*(?:points?|lists?|format|form|style)\b|\bbullets\b", _F)


def _d_bullets(text: str, low: str, out: _Out, claimed: _Claims) -> None:
    if "bullet" not in low:
        return
    for m in _finditer(_BULLET_NUM_RE, text, _windows(low, ("bullet",), 70, 60)):
        if _overlaps(m.span(), claimed) or _per_unit(text, m.start()):
            continue
        n = parse_number(m.group("num") or m.group("num2"))
        if n is None:
            continue
        rel, n = _relation(m.group("pre") or m.group("pre2"), m.group("mid") or m.group("post"), None, n, "exactly")
        _emit(out, claimed, "detectable_format:number_bullet_lists", m.span(), {"relation": rel, "num_bullets": n})
        for extra in _BULLET_RE.finditer(text):
            claimed.append(extra.span())
        return
    m = _BULLET_RE.search(text)
    if m and not _overlaps(m.span(), claimed):
        _emit(out, claimed, "detectable_format:number_bullet_lists", m.span(), {"relation": None, "num_bullets": None})


_NUMBERED_RE = re.compile(
    r"\bnumbered\s+(?:list|lists|points?|items?|steps?|format|bullets?|form)\b|\benumerated\s+(?:list|points|steps)\b"
    r"|\b(?:as|in)\s+a\s+numbered\b|\bnumber\s+(?:each|the|your)\s+(?:items?|steps?|points?|lines?)\b",
    _F,
)


def _d_numbered(text: str, low: str, out: _Out, claimed: _Claims) -> None:
    if "number" in low or "enumerat" in low:
        m = _NUMBERED_RE.search(text)
        if m and not _overlaps(m.span(), claimed):
            _emit(out, claimed, "detectable_format:numbered_list", m.span())


_TABLE_RE = re.compile(
    r"\b(?:in|as|into|using|with|create|make|use|produce|draw|build|give\s+me|provide|format\w*\s+(?:\w+\s+){0,3}?as)\s+"
    r"(?:a\s+|the\s+|one\s+)?(?:markdown\s+|simple\s+|single\s+|comparison\s+|two[\s-]column\s+)?tables?\b|\btabular\s+(?:form|format)\b",
    _F,
)


def _d_table(text: str, low: str, out: _Out, claimed: _Claims) -> None:
    if "table" in low or "tabular" in low:
        m = _TABLE_RE.search(text)
        if m and not _overlaps(m.span(), claimed):
            _emit(out, claimed, "detectable_format:table", m.span())


_MARKDOWN_RE = re.compile(r"\bmarkdown\b(?!\s+(?:divider|separator|ticks|code\s+ticks))", _F)
_MARKDOWN_SIBLINGS = frozenset({
    "detectable_format:number_highlighted_sections", "detectable_format:number_bullet_lists",
    "detectable_format:table", "detectable_format:numbered_list",
})


def _d_markdown(text: str, low: str, out: _Out, claimed: _Claims) -> None:
    if "markdown" not in low or any(d.kind in _MARKDOWN_SIBLINGS for d in out):
        return
    for m in _MARKDOWN_RE.finditer(text):
        if not _overlaps(m.span(), claimed):
            _emit(out, claimed, "detectable_format:markdown", m.span())
            return


# -- change_case

_CAPS_CORE = r"(?:capital(?:i[sz]ed)?\s+letters|capitals|caps|upper[\s-]*case(?:\s+letters)?|capital\s+case)"
_CAPWORDS_SUBJ_RE = re.compile(
    rf"\b(?P<q>(?:some|a\s+few|several|certain|key|important|occasional|few)\s+)?words?\s+(?:\w+\s+){{0,2}}?"
    rf"(?:in|with|of|using|written\s+in|that\s+are(?:\s+in)?|be\s+in|are\s+in|to\s+be\s+in)\s+(?:all[\s-]*)?{_CAPS_CORE}"
    rf"|\ball[\s-]*caps\s+words?\b|\b(?:fully\s+)?capitali[sz]ed\s+words?\b|\bcapitali[sz]e\s+(?P<q2>(?:a\s+few|some|several|certain|key|important)\s+)words?\b"
    rf"|\bwords?\s+with\s+all\s+capital\s+letters\b",
    _F,
)
_CAPWORDS_NUM_RE = re.compile(
    rf"(?:(?P<pre>{REL})\s+)?(?P<num>{NUM})\s*(?P<plus>\+)?\s+(?:(?P<mid>{REL_POST})\s+)?(?:\w+\s+){{0,2}}?words?\s+(?:\w+\s+){{0,3}}?"
    rf"(?:in|with|be\s+in|are\s+in|written\s+in|using)\s+(?:all[\s-]*)?{_CAPS_CORE}",
    _F,
)
_ALL_BEFORE_RE = re.compile(r"\b(?:all|every|each|entire)\s+(?:of\s+)?(?:your\s+|the\s+|my\s+)?$", _F)


def _d_capital_frequency(text: str, low: str, out: _Out, claimed: _Claims) -> None:
    if not ("capital" in low or "caps" in low or "upper" in low):
        return
    wins = _windows(low, ("capital", "caps", "upper"), 90, 20)
    for m in _finditer(_CAPWORDS_NUM_RE, text, wins):
        if _overlaps(m.span(), claimed):
            continue
        n = parse_number(m.group("num"))
        if n is None:
            continue
        rel, n = _relation(m.group("pre"), m.group("mid"), m.group("plus"), n, "exactly")
        _emit(out, claimed, "change_case:capital_word_frequency", m.span(),
              {"capital_relation": rel, "capital_frequency": n})
    for m in _finditer(_CAPWORDS_SUBJ_RE, text, wins):
        if _overlaps(m.span(), claimed):
            continue
        if _ALL_BEFORE_RE.search(text, max(0, m.start() - 20), m.start()):
            continue  # "write all words in capital letters" is the whole-response rule
        t = _find_times(text, m.end(), 110)
        if t:
            rel, n, end = t
            span = (m.start(), end)
        elif m.group("q") or m.group("q2") or re.search(r"\bwords?\b", m.group(0), re.I):
            rel, n, span = "at least", 1, m.span()
        else:
            continue
        _emit(out, claimed, "change_case:capital_word_frequency", span,
              {"capital_relation": rel, "capital_frequency": n})


_UPPER_RE = re.compile(
    rf"\b(?:in\s+all[\s-]*|all[\s-]*|only\s+(?:use\s+|using\s+)?|entirely\s+in\s+|(?:written\s+|typed\s+)?in\s+|using\s+only\s+|solely\s+in\s+)"
    rf"(?:capital(?:s|\s+letters?)|caps(?:\s+lock)?|upper[\s-]*case(?:\s+letters?)?|block\s+capitals)\b"
    r"|\bcapitali[sz]e\s+(?:all|every|each|everything|the\s+(?:entire|whole)|your\s+(?:entire|whole))\b"
    r"|\b(?:no|without(?:\s+using)?(?:\s+any)?|zero)\s+lower[\s-]*case\b"
    r"|\blower[\s-]*case\s+(?:letters\s+)?(?:are\s+)?(?:not\s+allowed|forbidden|prohibited|banned)"
    r"|\ball\s+(?:your\s+|the\s+)?(?:words|letters)\s+(?:in|should\s+be\s+in|must\s+be\s+in|need\s+to\s+be\s+in)\s+(?:capital|upper|caps)",
    _F,
)
_LOWER_RE = re.compile(
    r"\b(?:all[\s-]*|in\s+|only\s+|entirely\s+(?:in\s+)?|using\s+only\s+|solely\s+in\s+)lower[\s-]*case\b"
    r"|\blower[\s-]*case\s+(?:letters\s+|characters\s+)?only\b"
    r"|\b(?:no|without(?:\s+using)?(?:\s+any)?|not?\s+(?:use|include|contain|have|write\s+with)\s+(?:any\s+)?|never\s+use\s+(?:any\s+)?"
    r"|avoid(?:\s+using)?(?:\s+any)?|zero)\s+(?:capital(?:s|\s+letters?|i[sz]ation)|upper[\s-]*case(?:\s+letters?)?|caps)\b"
    r"|\b(?:do\s+not|don[’']?t|never|without)\s+capitali[sz](?:e|ing)\b"
    r"|\bcapital\s+letters\s+(?:are\s+)?(?:not\s+allowed|forbidden|prohibited|banned)",
    _F,
)


def _d_case(text: str, low: str, out: _Out, claimed: _Claims) -> None:
    if "lower" in low or "capital" in low or "caps" in low or "upper" in low:
        for rx, kind in ((_LOWER_RE, "change_case:english_lowercase"), (_UPPER_RE, "change_case:english_capital")):
            for m in rx.finditer(text):
                if not _overlaps(m.span(), claimed):
                    _emit(out, claimed, kind, m.span())
                    break


# -- punctuation / letters

_PUNCT_NAMES = {
    "exclamation": "!", "question mark": "?", "hashtag": "#", "semicolon": ";", "colon": ":", "comma": ",",
    "hyphen": "-", "dash": "-", "asterisk": "*", "at sign": "@", "at-sign": "@", "dollar sign": "$",
    "ampersand": "&", "period": ".", "full stop": ".", "emoji": "emoji",
}
_PUNCT_UNIT = (
    r"exclamation\s+(?:marks?|points?)|question\s+marks?|hashtags?|semicolons?|colons?|commas?|hyphens?|dashes|dash|"
    r"asterisks?|at[\s-]signs?|dollar\s+signs?|ampersands?|periods|full\s+stops|emojis?"
)
_PUNCT_COUNT_RE = re.compile(
    rf"(?:(?P<pre>{REL})\s+)?(?P<num>{NUM})\s*(?P<plus>\+)?\s+(?:(?P<mid>{REL_POST})\s+)?(?:[\w-]+\s+)??(?P<unit>{_PUNCT_UNIT})\b"
    rf"(?:\s+(?P<post>{REL_POST})\b)?",
    _F,
)
_PUNCT_NEEDLES = ("exclamation", "question mark", "hashtag", "colon", "comma", "hyphen", "dash", "asterisk",
                  "sign", "ampersand", "period", "full stop", "emoji")
_LETTER_RE = re.compile(
    rf"\b(?:the\s+)?(?:letter|character|char|symbol)\s+(?:{_QOPEN}(?P<ql>[^\s\"“”']){_QCLOSE}|(?P<l>[a-z])(?![\w'’]))",
    _F,
)
_NEG_BEFORE_RE = re.compile(r"\b(?:not|n[’']t|never|without|avoid\w*|no|refrain\w*|zero|exclude|omit)\b", _F)
_ANYWHERE_RE = re.compile(r"^[^.!?\n]{0,40}?\b(?:anywhere|at\s+all|in\s+your\s+(?:\w+\s+)?(?:response|answer|reply))", _F)


def _d_letter_frequency(text: str, low: str, out: _Out, claimed: _Claims) -> None:
    if "letter" in low or "character" in low or "symbol" in low or "char " in low:
        for m in _LETTER_RE.finditer(text):
            if _overlaps(m.span(), claimed):
                continue
            letter = (m.group("ql") or m.group("l")).lower()
            t = _find_times(text, m.end(), 90)
            if t:
                rel, n, end = t
                _emit(out, claimed, "keywords:letter_frequency", (m.start(), end),
                      {"letter": letter, "let_relation": rel, "let_frequency": n})
                continue
            cs = _clause_start(text, m.start(), 40)
            if _NEG_BEFORE_RE.search(text, cs, m.start()):
                _emit(out, claimed, "keywords:letter_frequency", m.span(),
                      {"letter": letter, "let_relation": "less than", "let_frequency": 1})
    wins = _windows(low, _PUNCT_NEEDLES, 50, 25)
    if wins:
        for m in _finditer(_PUNCT_COUNT_RE, text, wins):
            if _overlaps(m.span(), claimed):
                continue
            n = parse_number(m.group("num"))
            if n is None:
                continue
            rel, n = _relation(m.group("pre"), m.group("mid") or m.group("post"), m.group("plus"), n, "exactly")
            unit = " ".join(m.group("unit").lower().replace("-", " ").split())
            letter = next((c for k, c in _PUNCT_NAMES.items() if unit.startswith(k)), unit)
            _emit(out, claimed, "keywords:letter_frequency", m.span(),
                  {"letter": letter, "let_relation": rel, "let_frequency": n})


_COMMA_RE = re.compile(r"\bcomma(?:s|[\s-]free|less)?\b", _F)
_COMMA_NEG_RE = re.compile(
    r"\b(?:no|not|without|avoid\w*|refrain\w*|never|zero|nor|free\s+of|devoid\s+of|omit\w*|exclud\w*|eliminat\w*|"
    r"skip\w*|ban\w*|forbid\w*|prohibit\w*|remove|removing|drop|dropping)\b|n[’']t\b",
    _F,
)
_COMMA_POST_RE = re.compile(
    r"\s*(?:are|is|will\s+be)\s+(?:(?:strictly|completely|totally)\s+)?(?:not\s+allowed|forbidden|prohibited|banned|not\s+permitted|off[\s-]limits)",
    _F,
)


def _d_no_comma(text: str, low: str, out: _Out, claimed: _Claims) -> None:
    if "comma" not in low:
        return
    for m in _COMMA_RE.finditer(text):
        if _overlaps(m.span(), claimed):
            continue
        word = m.group(0).lower()
        cs = _clause_start(text, m.start(), 45)
        if ("free" in word or "less" in word or _COMMA_NEG_RE.search(text, cs, m.start())
                or _COMMA_POST_RE.match(text, m.end())):
            _emit(out, claimed, "punctuation:no_comma", (cs if cs > m.start() - 45 else m.start(), m.end()))
            return


# -- keywords

_KW_STOP = frozenset({
    "count", "counts", "limit", "limits", "length", "in", "with", "should", "must", "that", "is", "are", "be",
    "for", "of", "the", "a", "an", "and", "or", "to", "your", "this", "it", "you", "as", "at", "on", "by",
    "per", "can", "will", "may", "list", "choice", "usage", "order",
})
_KW_TOKEN = rf"(?:{QUOTED}|(?P<bare>[^\W\d_][\w'’-]*))"
_KW_FREQ_RE = re.compile(
    rf"\b(?:the\s+)?(?:key\s*words?|words?|terms?|phrases?|names?|tokens?)\s+{_KW_TOKEN}"
    rf"|\b(?:use|using|mention|mentioning|include|including|repeat|repeating|say|saying|write|writing|feature|featuring)\s+{_QOPEN}(?P<q2>[^\"“”«»\n]{{1,60}}?){_QCLOSE}"
    rf"|(?:^|[\s(])(?P<q3>[\"“][^\"“”\n]{{1,60}}?[\"”])\s+(?:should|must|has\s+to|needs\s+to|is\s+to|will)\s+(?:appear|occur|be\s+(?:used|mentioned|included|repeated))",
    _F,
)


def _d_keyword_frequency(text: str, low: str, out: _Out, claimed: _Claims) -> None:
    if not ("time" in low or "once" in low or "twice" in low or "thrice" in low):
        return
    for m in _KW_FREQ_RE.finditer(text):
        if _overlaps(m.span(), claimed):
            continue
        kw = m.group("q") or m.group("bare") or m.group("q2") or (m.group("q3") or "").strip("\"“”")
        if not kw or kw.lower() in _KW_STOP:
            continue
        t = _find_times(text, m.end(), 70, allow_bare_relation=False)
        if not t:
            continue
        rel, n, end = t
        if _overlaps((m.start(), end), claimed):
            continue
        _emit(out, claimed, "keywords:frequency", (m.start(), end),
              {"keyword": kw.strip().lower(), "relation": rel, "frequency": n})


_NEG = r"(?:do\s+not|does\s+not|don[’']?t|doesn[’']?t|never|not|avoid|refrain\s+from|without|must\s+not|mustn[’']?t|should\s+not|shouldn[’']?t|cannot|can[’']?t|may\s+not|no\s+need\s+to)"
_VERB = r"(?:us(?:e|es|ing)|includ(?:e|es|ing)|mention(?:s|ing)?|say(?:s|ing)?|writ(?:e|es|ing)|contain(?:s|ing)?|utili[sz](?:e|ing)|put(?:ting)?|add(?:ing)?|employ(?:ing)?|feature|featuring|spell(?:ing)?|typ(?:e|ing))"
_KW_NOUN = r"(?:key[\s-]?words?|words?|terms?|phrases?|names?)"
_FORBID_RE = re.compile(
    rf"\b{_NEG}(?:\s+(?:ever|even|also|please|at\s+all|once))?\s+{_VERB}\s+(?:any\s+of\s+)?(?:the\s+|these\s+)?(?:following\s+)?{_KW_NOUN}\b\s*:?"
    rf"|\b{_NEG}(?:\s+(?:ever|even|also|please))?\s+{_VERB}\s+(?={_QOPEN})"
    rf"|\b(?:the\s+)?{_KW_NOUN}\s+(?P<kw>{QUOTED}|[^\W\d_][\w'’-]*)\s+(?:should|must|may|can|is\s+to|are\s+to)\s*(?:not|n[’']t|never)\s+(?:\w+\s+)?"
    r"(?:appear|be\s+used|be\s+mentioned|be\s+included|occur|show\s+up|be\s+said|be\s+written)"
    rf"|\b(?:banned|forbidden|prohibited|taboo|disallowed)\s+{_KW_NOUN}\b\s*(?:are|is|include|:)?",
    _F,
)


def _d_forbidden(text: str, low: str, out: _Out, claimed: _Claims) -> None:
    if not ("not" in low or "n't" in low or "n’t" in low or "never" in low or "avoid" in low or "refrain" in low
            or "without" in low or "forbid" in low or "ban" in low or "prohibit" in low or "taboo" in low):
        return
    for m in _FORBID_RE.finditer(text):
        if _overlaps(m.span(), claimed):
            continue
        if m.group("kw"):
            kw = m.group("q") or m.group("kw")
            if kw.lower() in _KW_STOP:
                continue
            _emit(out, claimed, "keywords:forbidden_words", m.span(), {"forbidden_words": [kw.strip().lower()]})
            continue
        words, end = _parse_keywords(text, m.end())
        words = [w for w in words if w.lower() not in _KW_STOP]
        if words:
            _emit(out, claimed, "keywords:forbidden_words", (m.start(), max(end, m.end())),
                  {"forbidden_words": [w.lower() for w in words]})


_EXIST_RE = re.compile(
    rf"\b(?:includ(?:e|es|ing)|contain(?:s|ing)?|us(?:e|es|ing)|mention(?:s|ing)?|incorporat(?:e|es|ing)|featur(?:e|es|ing)|"
    rf"ha(?:ve|s|ving)|add(?:s|ing)?|work\s+in|weave\s+in|put\s+in|with)\s+(?:all\s+(?:of\s+)?)?(?:the\s+|these\s+)?(?:following\s+)?"
    rf"(?:key[\s-]?words?|words?|terms?|phrases?)\b\s*:?"
    rf"|\b(?:mention|include|use|name[\s-]?drop)\s+(?={_QOPEN})"
    rf"|\b(?:key[\s-]?words?|terms?)\s*:\s*",
    _F,
)


def _d_existence(text: str, low: str, out: _Out, claimed: _Claims) -> None:
    if not ("word" in low or "term" in low or "phrase" in low or "mention" in low or "include" in low or "use" in low):
        return
    for m in _EXIST_RE.finditer(text):
        if _overlaps(m.span(), claimed):
            continue
        words, end = _parse_keywords(text, m.end())
        words = [w for w in words if w.lower() not in _KW_STOP]
        if words and not _overlaps((m.start(), max(end, m.end())), claimed):
            _emit(out, claimed, "keywords:existence", (m.start(), max(end, m.end())), {"keywords": words})


# -- length

_DIVIDER_RE = re.compile(r"(?<!\*)\*\*\*(?!\*)|\bmarkdown\s+divider\b|\bdivider\b|\bseparat\w+\s+by\s+(?:two|2|double)\s+(?:new\s*lines?|line\s*breaks)", _F)
_RANGE_TAIL = r"(?:(?P<pre>between|from)\s+)?(?P<a>{n})\s*(?:-|–|to|and)\s*(?P<b>{n})(?:\s*-\s*|\s+)(?:{unit})\b"


def _length_detector(kind: str, param: str, unit: str, triggers: tuple[str, ...], subject: str | None = None) -> Callable[..., None]:
    count_re = re.compile(_count_pattern(unit), _F)
    range_re = re.compile(_RANGE_TAIL.format(n=NUM, unit=unit), _F)
    limit_re = re.compile(
        rf"\b(?:limit|keep|restrict|cap|trim|shorten)\w*\b[^.!?\n]{{0,40}}?\bto\s+(?:(?P<pre>{REL})\s+)?(?P<num>{NUM})(?:\s*-\s*|\s+){unit}\b", _F
    )
    subj_re = (
        re.compile(
            rf"\b{subject}\s+(?:\w+\s+){{0,5}}?(?:(?:should|must|has\s+to|needs\s+to|will|shall)\s+(?:\w+\s+)?be|is|of|:|=)\s*"
            rf"(?:(?P<pre>{REL})\s+)?(?P<num>{NUM})\b(?:\s*(?:{unit}))?(?:,?\s+(?P<post>{REL_POST})\b)?",
            _F,
        )
        if subject
        else None
    )

    def detect(text: str, low: str, out: _Out, claimed: _Claims) -> None:
        wins = _windows(low, triggers, 90, 30)
        if not wins:
            return
        for m in _finditer(range_re, text, wins):
            if _overlaps(m.span(), claimed) or _per_unit(text, m.start()):
                continue
            a, b = parse_number(m.group("a")), parse_number(m.group("b"))
            if a is None or b is None or a >= b:
                continue
            _emit(out, claimed, kind, m.span(), {"relation": "at least", param: a})
            out.append(DetectedConstraint(kind, m.span(), {"relation": "at most", param: b}))
        for rx, default in ((limit_re, "at most"), (count_re, "exactly"), (subj_re, "exactly")):
            if rx is None:
                continue
            for m in _finditer(rx, text, wins):
                if _overlaps(m.span(), claimed) or _per_unit(text, m.start()):
                    continue
                c = _count_from(m, default)
                if c is None:
                    continue
                _emit(out, claimed, kind, m.span(), {"relation": c[0], param: c[1]})

    detect.__name__ = f"_d_{param}"
    return detect


_d_words = _length_detector(
    "length_constraints:number_words", "num_words", r"words?", ("word",), r"(?:number\s+of\s+words|word\s+(?:count|limit))"
)
_d_sentences = _length_detector(
    "length_constraints:number_sentences", "num_sentences", r"sentences?", ("sentence",), r"number\s+of\s+sentences"
)
_d_characters = _length_detector(
    "length_constraints:number_characters", "num_characters", r"(?:characters?|chars)(?!\s+(?:before|after))",
    ("character", "chars"), r"(?:number\s+of\s+characters|character\s+(?:count|limit))",
)
_d_paragraphs_plain = _length_detector(
    "length_constraints:number_paragraphs", "num_paragraphs", r"paragraphs?", ("paragraph",), r"number\s+of\s+paragraphs"
)
_d_paragraphs_divided = _length_detector(
    "length_constraints:number_paragraphs", "num_paragraphs", r"(?:sections?|parts?|stanzas?|blocks?|chunks?)",
    ("section", "part", "stanza", "block", "chunk"),
)


def _d_paragraphs(text: str, low: str, out: _Out, claimed: _Claims) -> None:
    _d_paragraphs_plain(text, low, out, claimed)
    # Sections separated by a divider ("4 sections separated by ***") are paragraphs in IFEval's sense.
    if ("***" in low or "divider" in low) and _DIVIDER_RE.search(text):
        _d_paragraphs_divided(text, low, out, claimed)


# -- language

LANGUAGES: dict[str, str] = {
    "afrikaans": "af", "albanian": "sq", "amharic": "am", "arabic": "ar", "armenian": "hy", "azerbaijani": "az",
    "basque": "eu", "belarusian": "be", "bengali": "bn", "bangla": "bn", "bosnian": "bs", "bulgarian": "bg",
    "burmese": "my", "catalan": "ca", "chinese": "zh", "mandarin": "zh", "cantonese": "zh", "croatian": "hr",
    "czech": "cs", "danish": "da", "dutch": "nl", "english": "en", "esperanto": "eo", "estonian": "et",
    "farsi": "fa", "filipino": "tl", "tagalog": "tl", "finnish": "fi", "french": "fr", "galician": "gl",
    "georgian": "ka", "german": "de", "greek": "el", "gujarati": "gu", "hausa": "ha", "hebrew": "he",
    "hindi": "hi", "hungarian": "hu", "icelandic": "is", "indonesian": "id", "irish": "ga", "italian": "it",
    "japanese": "ja", "kannada": "kn", "kazakh": "kk", "khmer": "km", "korean": "ko", "kurdish": "ku",
    "lao": "lo", "latin": "la", "latvian": "lv", "lithuanian": "lt", "macedonian": "mk", "malay": "ms",
    "malayalam": "ml", "maltese": "mt", "marathi": "mr", "mongolian": "mn", "nepali": "ne", "norwegian": "no",
    "pashto": "ps", "persian": "fa", "polish": "pl", "portuguese": "pt", "punjabi": "pa", "romanian": "ro",
    "russian": "ru", "serbian": "sr", "sinhala": "si", "slovak": "sk", "slovenian": "sl", "somali": "so",
    "spanish": "es", "swahili": "sw", "swedish": "sv", "tamil": "ta", "telugu": "te", "thai": "th",
    "turkish": "tr", "ukrainian": "uk", "urdu": "ur", "uzbek": "uz", "vietnamese": "vi", "welsh": "cy",
    "xhosa": "xh", "yiddish": "yi", "yoruba": "yo", "zulu": "zu",
}
_LANG_ALT = "|".join(sorted(LANGUAGES, key=len, reverse=True))
_LANG_RE = re.compile(
    rf"\b(?:in|into|using|use|to)\s+(?:(?:only|the|entirely|fluent|pure|proper|plain|simple|formal|informal|native|standard)\s+)*"
    rf"(?P<lang>{_LANG_ALT})\b(?!\s*-)(?!\s+(?:history|literature|culture|food|cuisine|style|people|movies?|films?|music|poetry|poets?|songs?|"
    r"names?|dishes|restaurants?|cities|city|government|economy|wars?|empire|revolution|translation|speakers?|grammar|class(?:es)?|"
    r"course|lessons?|teachers?|words?|expressions?|idioms?|dictionary|dialects?|alphabet|script|characters|art|team|league|market))"
    rf"|\b(?P<lang2>{_LANG_ALT})\s+(?:language\s+)?only\b|\bonly\s+(?:the\s+)?(?P<lang3>{_LANG_ALT})\b",
    _F,
)
_LANG_NAMES = frozenset(LANGUAGES)
_ALPHA_RE = re.compile(r"[a-z]+")
_LANG_CONTEXT_RE = re.compile(
    r"\b(?:respond\w*|response|answer\w*|repl\w*|writ\w*|explain\w*|rewrite|translat\w*|say|speak|tell|describe|entire\w*|only|"
    r"completely|exclusively|solely|output|text|letter|email|essay|poem|story|haiku|joke|review|summary|summari[sz]e|document|"
    r"compose|language|draft|create|generate|give|provide|list|make)\b",
    _F,
)


def _d_language(text: str, low: str, out: _Out, claimed: _Claims) -> None:
    names = _LANG_NAMES.intersection(_ALPHA_RE.findall(low))
    if not names:
        return
    seen: set[str] = set()
    for m in _finditer(_LANG_RE, text, _windows(low, names, 70, 30)):
        name = (m.group("lang") or m.group("lang2") or m.group("lang3")).lower()
        code = LANGUAGES[name]
        if code in seen or _overlaps(m.span(), claimed):
            continue
        if m.group("lang"):
            cs = _clause_start(text, m.start(), 80)
            after = text[m.end():m.end() + 25].lower()
            if not (_LANG_CONTEXT_RE.search(text, cs, m.start()) or "language" in after or "only" in after):
                continue
        seen.add(code)
        _emit(out, claimed, "language:response_language", m.span(), {"language": code})


# --------------------------------------------------------------------------------------------- driver

_DETECTORS: tuple[Callable[[str, str, _Out, _Claims], None], ...] = (
    _d_repeat,
    _d_two_responses,
    _d_postscript,
    _d_title,
    _d_json,
    _d_quotation,
    _d_constrained,
    _d_end,
    _d_nth_paragraph,
    _d_start,
    _d_sections,
    _d_highlights,
    _d_bullets,
    _d_placeholders,
    _d_capital_frequency,
    _d_case,
    _d_letter_frequency,
    _d_no_comma,
    _d_keyword_frequency,
    _d_forbidden,
    _d_existence,
    _d_paragraphs,
    _d_sentences,
    _d_words,
    _d_characters,
    _d_language,
    _d_numbered,
    _d_table,
    _d_markdown,
)


def _postprocess(out: _Out) -> _Out:
    kinds = {d.kind for d in out}
    if "change_case:english_capital" in kinds or "change_case:english_lowercase" in kinds:
        # IFEval's case ids mean "English, in all capitals/lowercase"; "in English" there is part of that rule.
        out = [d for d in out if not (d.kind == "language:response_language" and d.params.get("language") == "en")]
    if "length_constraints:nth_paragraph_first_word" in kinds:
        paras = next((d.params["num_paragraphs"] for d in out if d.kind == "length_constraints:number_paragraphs"), None)
        fixed = []
        for d in out:
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
    low = text.lower()
    out: _Out = []
    claimed: _Claims = []
    for detector in _DETECTORS:
        detector(text, low, out, claimed)
    return _postprocess(out)


def constraint_counts(text: str | Iterable[DetectedConstraint]) -> dict[str, int]:
    """How many constraints of each kind a prompt carries (only kinds that occur). Accepts detections too."""
    found = detect_constraints(text) if isinstance(text, str) else text
    counts: dict[str, int] = {}
    for d in found:
        counts[d.kind] = counts.get(d.kind, 0) + 1
    return counts
