"""Reading the pieces instructions are made of: numbers, relations, counts, quoted phrases, keyword lists.

Helpers for the constraint detector (`_detectors.py`). All regexes here are lower case and run on a
length-preserving lower-cased copy of the prompt (`lower_preserving`); phrases are cut from the original text
at the same offsets.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, NamedTuple

# ------------------------------------------------------------------------------------------ regex helpers


def trie_alt(words: Iterable[str], *, literal_spaces: bool = False) -> str:
    """A regex matching any of `words` (longest first), compiled as a prefix trie; a space matches any \\s+
    (with `literal_spaces`, only a space)."""
    trie: dict[str, Any] = {}
    for w in words:
        node = trie
        for ch in w:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict[str, Any]) -> str:
        end = "" in node
        branches = [(r"\s+" if ch == " " and not literal_spaces else re.escape(ch)) + build(child)
                    for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if end:
            return f"(?:{body})?"
        return body

    return "(?:" + build(trie) + ")"


def lead_alt(tails: dict[str, str]) -> str:
    """A regex matching any key of `tails` followed by its value (a regex), built as a prefix trie of the keys so
    that every top-level alternative starts with a literal character: `re` then skips to the offsets where one of
    those characters occurs instead of trying the pattern at every offset. A space in a key matches any \\s+."""
    trie: dict[str, Any] = {}
    for w, tail in tails.items():
        node = trie
        for ch in w:
            node = node.setdefault(ch, {})
        node[""] = tail

    def build(node: dict[str, Any]) -> str:
        alts = [f"(?:{node['']})"] if "" in node else []
        alts += [(r"\s+" if ch == " " else re.escape(ch)) + build(child) for ch, child in sorted(node.items()) if ch]
        return alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"

    return build(trie)


def lower_preserving(text: str) -> str:
    """Lower-case `text` without changing its length, so offsets found in it are offsets into `text`."""
    low = text.lower()
    if len(low) != len(text):  # e.g. "İ" lowers to two code points
        low = "".join(c.lower() if len(c.lower()) == 1 else c for c in text)
    return low


# ------------------------------------------------------------------------------------------------ numbers

ONES = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}
_TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
    "ninety": 90,
}
_SPECIAL = {
    "single": 1, "a single": 1, "once": 1, "twice": 2, "thrice": 3, "a dozen": 12, "a couple of": 2,
    "a pair of": 2,
}
ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
    "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12,
}
ONES_T = trie_alt(ONES)
_SMALL = rf"(?:{trie_alt(_TENS)}(?:[\s-]{ONES_T})?|{ONES_T})"
NUM = (
    r"(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+(?:\.\d+)?(?:k\b)?"
    rf"|{_SMALL}(?:\s+(?:hundred|thousand)(?:\s+(?:and\s+)?{_SMALL})?)?"
    r"|a\s+(?:hundred|thousand|dozen|single|couple\s+of|pair\s+of)|single)"
)
"""Regex (lower case) for a count: digits, "1,000", "2k", number words up to thousands, "a dozen", ..."""


def parse_number(s: str) -> int | None:
    """Parse what NUM matches: "300", "1,000", "2k", "twenty-five", "two hundred and fifty", "a dozen"."""
    s = " ".join(s.lower().replace("-", " ").split())
    if not s:
        return None
    if s[0].isdigit():
        try:
            if s.endswith("k"):
                return int(float(s[:-1]) * 1000)
            return int(float(s.replace(",", "")))
        except (ValueError, OverflowError):  # OverflowError: "1e999" is a float, but infinite
            return None
    if s in _SPECIAL:
        return _SPECIAL[s]
    total, current = 0, 0
    for w in s.split():
        if w == "and":
            continue
        if w in ONES:
            current += ONES[w]
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


# ---------------------------------------------------------------------------------------------- relations

_REL_PRE_MAP = {
    "at least": "at least", "no fewer than": "at least", "no less than": "at least", "not fewer than": "at least",
    "not less than": "at least", "a minimum of": "at least", "minimum of": "at least", "minimum": "at least",
    "min": "at least", "upwards of": "at least",
    "more than": "more than", "over": "more than", "greater than": "more than", "in excess of": "more than",
    "above": "more than", "exceeding": "more than", "longer than": "more than",
    "at most": "at most", "no more than": "at most", "not more than": "at most", "up to": "at most",
    "a maximum of": "at most", "maximum of": "at most", "maximum": "at most", "max": "at most",
    "no longer than": "at most", "not exceeding": "at most", "not to exceed": "at most", "within": "at most",
    "only": "at most", "no greater than": "at most",
    "less than": "less than", "fewer than": "less than", "under": "less than", "below": "less than",
    "shorter than": "less than",
    "exactly": "exactly", "precisely": "exactly", "just": "exactly",
    "about": "about", "around": "about", "approximately": "about", "roughly": "about", "circa": "about",
}
REL = trie_alt(_REL_PRE_MAP)
REL_POST_MAP = {
    "or more": "at least", "or greater": "at least", "or above": "at least", "or longer": "at least",
    "at least": "at least", "minimum": "at least", "at minimum": "at least", "at a minimum": "at least",
    "or less": "at most", "or fewer": "at most", "or under": "at most", "or below": "at most",
    "or shorter": "at most", "at most": "at most", "maximum": "at most", "max": "at most",
    "at the most": "at most", "tops": "at most", "or so": "about",
}
REL_POST = trie_alt(REL_POST_MAP)


def norm_space(s: str | None) -> str:
    return " ".join(s.split()) if s else ""


def relation(pre: str | None, post: str | None, plus: str | None, n: int, default: str) -> tuple[str, int]:
    """Map the words around a number to (relation, number); "more than N" becomes ("at least", N + 1)."""
    if plus:
        return "at least", n
    if pre:
        rel = _REL_PRE_MAP.get(norm_space(pre), default)
        if rel == "more than":
            return "at least", n + 1
        return rel, n
    if post:
        return REL_POST_MAP.get(norm_space(post), default), n
    return default, n


_NUMBER_WORDS = frozenset(ONES) | frozenset(_TENS) | {"hundred", "thousand"}
_NUMBERISH = _NUMBER_WORDS | {"dozen", "single", "of"}  # all-letter tokens `_number_back` can read a number at
_STRIP = "([{\"'“”‘’"
_MID_POST = frozenset({"more", "less", "fewer", "greater", "above", "below", "under", "longer", "shorter"})
_NOT_ADJ = frozenset({"and", "or", "the", "than", "of", "to", "a", "an", "in", "with", "at", "by", "for", "on", "no",
                      "not", "least", "most", "from", "between", "each", "every", "per", "your", "my", "his", "her"})


class Count(NamedTuple):
    """A count read backwards from a unit word: "at least 300 [words]" -> relation "at least", n 300."""

    start: int
    relation: str | None  # normalised; None when no relation word was found
    n: int
    low_n: int | None = None  # set for a range "200-300 [words]": low_n=200, n=300
    prev: str = ""  # the token just before the count (e.g. "to" in "limit it to 50 words")


def count_before(low: str, end: int, max_adj: int = 1) -> Count | None:
    """Parse `[relation] N[+][-][ or more][ adjective]{0,max_adj}` ending right before offset `end`.

    Reading backwards from the unit word with `str.split` is much cheaper than running a "relation? number"
    regex over the text, which has to be tried at every offset. The count is read from the tokens alone; their
    offsets are located (`_token_starts`) only for a count that is found, and only as far back as it reaches."""
    if end > 0 and low[end - 1] not in " -\t\n":
        return None  # the unit is glued to something ("keywords"), not a count's unit
    lo = end - 72 if end > 72 else 0
    parts = low[lo:end].rsplit(None, 10)[-10:]  # the last 10 tokens (a first item with white space is cut off)
    # The number is one of the last 4 + max_adj tokens ("-", "or more" and max_adj adjectives may follow it), and a
    # token that is all letters can only be (the last word of) a number if it is a number word: without such a
    # token there is no count.
    tail = parts[-4 - max_adj:]
    if "".join(tail).isalpha() and _NUMBERISH.isdisjoint(tail):
        return None  # (also when there are no tokens: "" is not alpha, but then `parts` is empty)
    if not parts:
        return None
    parts.reverse()
    toks = parts[:]  # the tokens from the end backwards (`parts` keeps them as they occur, for `_token_starts`)
    size = len(toks)
    i = 0
    t0 = toks[0]
    if t0[-1] == "-":
        if len(t0) > 1:
            toks[0] = t0[:-1]
        elif size > 1:
            i = 1
    mid = None
    if size > i + 1 and toks[i] in _MID_POST and toks[i + 1] == "or":
        mid = "or " + toks[i]
        i += 2
    parsed = None
    for j in range(i, i + max_adj + 1):
        if j >= size:
            return None
        if j > i:  # an adjective between the number and the unit ("5 short paragraphs")
            adj = toks[j - 1]
            if adj in _NOT_ADJ or not adj.isalpha():
                return None
        w = toks[j]
        if w.isalpha() and w not in _NUMBERISH:
            continue  # `_number_back` reads no number at an all-letter token that is not a number word
        parsed = _number_back(toks, j)
        if parsed is not None:
            break
    if parsed is None:
        return None
    n, plus, k, low_n = parsed  # k: index of the first token after the number (going backwards)
    first = k - 1  # index of the token the count starts at
    rel = None
    if plus:
        rel = "at least"
    else:
        for width in (3, 2, 1):
            if k + width <= size:
                phrase = toks[k] if width == 1 else " ".join(reversed(toks[k:k + width]))
                r = _REL_PRE_MAP.get(phrase)
                if r:
                    rel, first = r, k + width - 1
                    k += width
                    break
        if rel == "more than":
            rel, n = "at least", n + 1
        elif rel is None and mid:
            rel = REL_POST_MAP[mid]
    prev = toks[k] if k < size else ""
    if low_n is None and rel is None and prev in ("and", "to", "-", "–") and k + 1 < size:
        other = _number_back(toks, k + 1)
        if other is not None and other[0] < n:
            low_n, first = other[0], other[2] - 1
            if other[2] < size and toks[other[2]] in ("between", "from"):
                first = other[2]
    return Count(_token_starts(low, lo, end, parts, first), rel, n, low_n, prev)


def _token_starts(low: str, lo: int, end: int, parts: list[str], upto: int) -> int:
    """The offset of `parts[upto]`, where `parts` are the white-space tokens of `low[lo:end]` from the end
    backwards: each is the last occurrence of its text before the token after it."""
    pos = end
    for w in parts[:upto + 1]:
        pos = low.rfind(w, lo, pos)
    return pos


def _number_back(toks: list[str], j: int) -> tuple[int, bool, int, int | None] | None:
    """Read a number whose last token is toks[j] (tokens run backwards). Returns (n, plus, next index, range low)."""
    raw = toks[j].strip(_STRIP)
    if not raw or raw[-1] in ".,:;!?":
        return None
    plus = raw.endswith("+")
    if plus:
        raw = raw[:-1]
    if raw[:1].isdigit():
        if "-" in raw or "–" in raw:  # "200-300"
            a, _, b = raw.replace("–", "-").partition("-")
            na, nb = parse_number(a), parse_number(b)
            if na is not None and nb is not None and na < nb:
                return nb, plus, j + 1, na
            return None
        n = parse_number(raw)
        return (n, plus, j + 1, None) if n is not None else None
    words = [raw]
    k = j + 1
    if raw in ("twice", "once", "thrice"):
        return None
    if raw == "dozen" or raw == "single":
        if k < len(toks) and toks[k] == "a":
            return (_SPECIAL["a " + raw], plus, k + 1, None)
        return (_SPECIAL.get(raw, 12), plus, k, None) if raw == "single" else None
    if raw == "of" and k + 1 < len(toks) and toks[k] in ("couple", "pair") and toks[k + 1] == "a":
        return 2, plus, k + 2, None
    if raw not in _NUMBER_WORDS and ("-" not in raw or not all(p in _NUMBER_WORDS for p in raw.split("-"))):
        return None
    while k < len(toks):
        w = toks[k]
        if w in _NUMBER_WORDS or (w == "and" and k + 1 < len(toks) and toks[k + 1] in ("hundred", "thousand")):
            words.append(w)
            k += 1
        elif w == "a" and words[-1] in ("hundred", "thousand"):
            words.append(w)
            k += 1
        else:
            break
    n = parse_number(" ".join(reversed(words)))
    return (n, plus, k, None) if n is not None else None


POST_AFTER_RE = re.compile(rf",?\s+(?P<post>{REL_POST})\b")


_TIMES_RE = re.compile(
    rf"(?:(?P<pre>{REL})\s+)?(?:(?P<num>{NUM})\s*(?P<plus>\+)?\s*(?:(?P<post>{REL_POST})\s+)?times?\b"
    rf"|(?P<word>once|twice|thrice)\b(?:\s+(?P<post2>{REL_POST})\b)?)"
)
_TIMES_REL_ONLY_RE = re.compile(rf"\b(?:to\s+)?(?P<pre>{REL})\s+(?P<num>{NUM})\b")
# Where a clause with a count ends: `[,;]|\b(?:but|while|whereas)\b|\b(?:the\s+)?(?:key)?(?:word|letter|term|name)\b`,
# written so that every alternative starts with a literal character (the \b before a word is the look-behind
# after its first letter), which lets `re` skip to candidate characters; the same match starts (a test checks it).
_TIMES_STOP_RE = re.compile(
    r",|;|b(?<!\wb)ut\b|w(?<!\ww)h(?:ile|ereas)\b|t(?<!\wt)(?:he\s+(?:key)?(?:word|letter|term|name)|erm)\b"
    r"|k(?<!\wk)ey(?:word|letter|term|name)\b|w(?<!\ww)ord\b|l(?<!\wl)etter\b|n(?<!\wn)ame\b"
)
# The words a match of _TIMES_RE (_TIMES_REL_ONLY_RE) can start with, besides digits: `re` tries those patterns at
# every offset, so they are searched for from the first offset where one of these matches (see `_times_search`).
_TIMES_FIRST_RE = re.compile(
    trie_alt([*_REL_PRE_MAP, *ONES, *_TENS, "single", "once", "twice", "thrice", "a "])
)
_REL_ONLY_FIRST_RE = re.compile(trie_alt([*_REL_PRE_MAP, "to "]))
_DIGIT_RE = re.compile(r"\d")


def _times_search(rx: re.Pattern[str], first: re.Pattern[str], low: str, start: int, end: int,
                  digits: bool) -> re.Match[str] | None:
    """`rx.search(low, start, end)`, started at the first offset where a match can start (a word of `first`, or a
    digit when `digits`): no match starts before it."""
    f = first.search(low, start, end)
    stop = f.start() if f else end
    if digits:
        d = _DIGIT_RE.search(low, start, stop)
        if d:
            stop = d.start()
    if stop >= end:
        return None
    return rx.search(low, stop, end)


def find_times(low: str, start: int, limit: int = 90, bare_relation: bool = True,
               fast: bool = True) -> tuple[str, int, int] | None:
    """An occurrence count ("at least 3 times", "twice", "10 or more times", "only once") right after `start`,
    in the same clause. Returns (relation, n, end offset). `fast=False` skips the shortcuts that only avoid
    searches which cannot match (the reference path for tests)."""
    end = _sentence_end(low, start, limit)
    # Every match of _TIMES_RE contains "time", "once", "twice" or "thrice": without one of them in the sentence
    # there is no count to search for (and, without the bare relation, nothing to return).
    find = low.find
    has_word = find("time", start, end) != -1 or find("once", start, end) != -1 or find("twice", start, end) != -1 \
        or find("thrice", start, end) != -1
    if not has_word and not bare_relation:
        return None
    stop = _TIMES_STOP_RE.search(low, start + 1, end)
    if stop:
        end = stop.start()
        if has_word and fast:  # the words must be before the stop (a match contains one)
            has_word = find("time", start, end) != -1 or find("once", start, end) != -1 \
                or find("twice", start, end) != -1 or find("thrice", start, end) != -1
    if not has_word:
        m = None
    elif fast:
        m = _times_search(_TIMES_RE, _TIMES_FIRST_RE, low, start, end, True)
    else:
        m = _TIMES_RE.search(low, start, end)
    if m:
        if m.group("word"):
            n = _SPECIAL[m.group("word")]
            pre = m.group("pre")
            if pre:
                rel, n = relation(pre, None, None, n, "exactly")
            else:
                rel = REL_POST_MAP.get(norm_space(m.group("post2")), "at least")
            return rel, n, m.end()
        parsed = parse_number(m.group("num"))
        if parsed is not None:
            rel, n = relation(m.group("pre"), m.group("post"), m.group("plus"), parsed, "exactly")
            return rel, n, m.end()
    if bare_relation:
        if fast:
            m = _times_search(_TIMES_REL_ONLY_RE, _REL_ONLY_FIRST_RE, low, start, end, False)
        else:
            m = _TIMES_REL_ONLY_RE.search(low, start, end)
        if m:
            parsed = parse_number(m.group("num"))
            if parsed is not None:
                rel, n = relation(m.group("pre"), None, None, parsed, "exactly")
                return rel, n, m.end()
    return None


# A sentence end: "." "!" "?" before white space or the end (not in "e.g." or after a lone letter), or a newline.
# Written to start with the character class, so that `re` skips to candidate characters instead of testing the
# look-behinds at every offset (same matches as `(?<![a-z]\.[a-z])(?<!\b[a-z])[.!?](?=\s|$)|\n`).
_SENT_END_RE = re.compile(r"[.!?\n](?:(?<=\n)|(?<![a-z]\.[a-z][.!?])(?<!\b[a-z][.!?])(?=\s|$))")


def _sentence_end(low: str, start: int, limit: int) -> int:
    m = _SENT_END_RE.search(low, start, start + limit)
    return m.start() if m else min(len(low), start + limit)


def clause_start(low: str, pos: int, limit: int = 60) -> int:
    lo = max(0, pos - limit)
    best = lo
    for m in _SENT_END_RE.finditer(low, lo, pos):
        best = m.end()
    return best


# ------------------------------------------------------------------------------------------------ quoting

QOPEN = r"(?:[\"“”«]|(?<!\w)['‘’])"
QCLOSE = r"(?:[\"“”»]|['‘’](?!\w))"
QUOTED = rf"{QOPEN}(?P<q>[^\"“”«»\n]{{1,200}}?){QCLOSE}"
_QUOTED_RE = re.compile(QUOTED)
_QUOTED_ITEM_RE = re.compile(rf"{QOPEN}([^\"“”«»\n]{{1,60}}?){QCLOSE}")
_ITEM_GAP_RE = re.compile(r"\s*(?:,\s*)?(?:(?:and|or|nor|&|/)\s+)?(?:the\s+)?(?:(?:key)?words?\s+)?")
_LIST_STOP_RE = re.compile(
    r"\s+(?:in|into|within|throughout|anywhere|somewhere|at\s+all|at\s+least|at\s+most|when|while|so|because|"
    r"to|for|as|if|that|which|but|since|unless|though|although|from|on|with|whatsoever|etc|should|must|can|cannot|"
    r"are|is|be|will)\b|\s*[.;!?()\n]|,\s*(?:and\s+)?(?:make|use|do|be|write|keep|include|avoid|please|also|the|etc)\b"
)
_LIST_SPLIT_RE = re.compile(r"\s*,\s*(?:and\s+|or\s+|nor\s+)?|\s+(?:and|or|nor|&)\s+|\s*/\s*")
_WORDISH_RE = re.compile(r"^[^\W\d_][\w'’-]*$")
_LEAD_CHARS = " :\t-–[("


KW_STOP = frozenset({
    "count", "counts", "limit", "limits", "length", "in", "with", "should", "must", "that", "is", "are", "be",
    "for", "of", "the", "a", "an", "and", "or", "to", "your", "this", "it", "you", "as", "at", "on", "by",
    "per", "can", "will", "may", "list", "choice", "usage", "order", "any", "such", "like", "each", "every",
    "from", "more", "less", "than", "these", "those", "following", "only", "not",
})


def parse_keywords(text: str, low: str, pos: int, limit: int = 160) -> tuple[list[str], int]:
    """Parse a keyword list starting at `pos`: quoted items when it is quoted (also `['a', 'b']`), else bare words.

    Returns the items (cut from the original text) and the end offset of the list."""
    seg_end = min(len(low), pos + limit)
    offset = pos
    while offset < seg_end and low[offset] in _LEAD_CHARS:
        offset += 1
    if offset < seg_end and low[offset] in "\"“”«'‘’":
        items: list[str] = []
        end = offset
        for m in _QUOTED_ITEM_RE.finditer(low, offset, seg_end):
            if items and _ITEM_GAP_RE.fullmatch(low, end, m.start()) is None:
                break
            items.append(text[m.start(1):m.end(1)].strip())
            end = m.end()
        if end < len(low) and low[end] == "]":
            end += 1
        return [i for i in items if i], end
    stop = _LIST_STOP_RE.search(low, offset, seg_end)
    end = stop.start() if stop else seg_end
    items = []
    for raw in _LIST_SPLIT_RE.split(text[offset:end]):
        words = raw.strip(" \"'“”‘’").split()
        if not words:
            continue
        if len(words) > 2:  # "sleep, cook, feed Mention the keyword ..." is a run-on: keep its first word, stop
            if _WORDISH_RE.match(words[0]) and words[0].lower() not in KW_STOP:
                items.append(words[0])
            break
        if not all(_WORDISH_RE.match(w) for w in words):
            break
        if words[0].lower() not in KW_STOP:
            items.append(" ".join(words))
    return items, end


_PHRASE_LEAD_RE = re.compile(
    r"\s*(?:exactly\s+)?(?:like\s*)?(?:the\s+|this\s+|that\s+|a\s+|these\s+)?"
    r"(?:(?:exact|following|specific|same|precise|closing|final)\s+)*"
    r"(?P<noun>(?:phrase|sentence|words?|line|question|text|statement|quote|greeting|sign[\s-]?off)\b)?"
    r"(?:\s+of)?\s*(?P<colon>:)?\s*"
)
_UNQUOTED_PHRASE_RE = re.compile(r"[^\n]{1,150}?(?:[.!?](?=\s|$)|(?=\n)|$)")
HAS_ALNUM_RE = re.compile(r"\w")


def phrase_after(text: str, low: str, pos: int) -> tuple[str | None, int]:
    """The phrase an instruction refers to: quoted, or after a colon / "the exact phrase", up to sentence end."""
    lead = _PHRASE_LEAD_RE.match(low, pos)
    p = lead.end() if lead else pos
    q = _QUOTED_RE.match(low, p)
    phrase = None
    end = pos
    if q:
        phrase, end = text[q.start("q"):q.end("q")].strip(), q.end()
    elif lead and (lead.group("colon") or lead.group("noun")):
        m = _UNQUOTED_PHRASE_RE.match(low, p)
        if m:
            phrase, end = text[m.start():m.end()].strip(), m.end()
    if phrase and HAS_ALNUM_RE.search(phrase):
        return phrase, end
    return None, pos
