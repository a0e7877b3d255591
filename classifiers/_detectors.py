"""The detectors behind `constraints.detect_constraints`, one function per instruction kind.

Each detector reads a `_Ctx` (the prompt, its lower-cased twin, where every trigger needle occurs, what was found
so far) and records `Found(kind, span, params)` items. `DETECTORS` lists them from most to least specific with the
substrings that must occur for each to run at all; `constraints.py` drives them. See the design notes in
`constraints.py`.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import repeat
from typing import Any, NamedTuple

from ._phrasing import (
    HAS_ALNUM_RE,
    KW_STOP,
    NUM,
    ONES,
    ONES_T,
    ORDINALS,
    POST_AFTER_RE,
    QCLOSE,
    QOPEN,
    QUOTED,
    REL,
    REL_POST,
    REL_POST_MAP,
    Count,
    clause_start,
    count_before,
    find_times,
    lead_alt,
    lower_preserving,
    norm_space,
    parse_keywords,
    parse_number,
    phrase_after,
    relation,
    trie_alt,
)

PREFILTERS = True
"""Switch for the shortcuts that only skip work which cannot find anything (tighter candidate scans, cheap
necessary conditions). Tests turn it off to check that the output is the same without them."""


class Found(NamedTuple):
    """A detection as the detectors record it (`constraints.DetectedConstraint` is the public form)."""

    kind: str
    span: tuple[int, int]
    params: dict[str, Any]


# ------------------------------------------------------------------------------------------ detector context


class _Spans:
    """The claimed spans, kept as sorted disjoint runs so that an overlap test is a binary search.

    A span `(s, e)` overlaps a claimed `(cs, ce)` when `s < ce and cs < e` (touching is not overlapping; an empty
    claimed span counts as the point inside it). Overlapping claims merge into one run, which answers every query
    as the separate spans would. Empty claims are kept apart in `points`, because an empty query overlaps a
    non-empty claim around it but never an empty one. Adding a span costs a binary search plus a list insert, and
    `extend` merges a sorted batch in one pass, so a prompt with many claims stays n log n rather than n².
    """

    __slots__ = ("starts", "ends", "points")

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.points: list[int] = []

    def __len__(self) -> int:
        return len(self.starts) + len(self.points)

    def overlaps(self, span: tuple[int, int]) -> bool:
        s, e = span
        i = bisect_left(self.starts, e if e > s else s) - 1  # the last run starting before the query's end
        if i >= 0 and self.ends[i] > s:
            return True
        if e > s:
            j = bisect_right(self.points, s)
            return j < len(self.points) and self.points[j] < e
        return False

    def append(self, span: tuple[int, int]) -> None:
        s, e = span
        if e <= s:
            if e == s:
                insort(self.points, s)
            return
        starts, ends = self.starts, self.ends
        lo = bisect_right(ends, s)  # first run that ends after s: runs before it cannot overlap
        hi = bisect_left(starts, e)  # runs from `hi` on start at or after e
        if lo < hi:  # merge the overlapped runs lo..hi-1 with the new span
            s, e = min(s, starts[lo]), max(e, ends[hi - 1])
            del starts[lo:hi], ends[lo:hi]
        starts.insert(lo, s)
        ends.insert(lo, e)

    def extend(self, spans: Iterable[tuple[int, int]]) -> None:
        batch = sorted(spans)
        if len(batch) < 8:
            for span in batch:
                self.append(span)
            return
        runs = sorted([*zip(self.starts, self.ends), *((s, e) for s, e in batch if e > s)])
        self.starts, self.ends = [], []
        for s, e in runs:  # one merge pass over runs sorted by start
            if self.ends and s < self.ends[-1]:
                self.ends[-1] = max(self.ends[-1], e)
            else:
                self.starts.append(s)
                self.ends.append(e)
        for s, e in batch:
            if e == s:
                insort(self.points, s)



# Where every trigger needle occurs, found in one regex scan per prompt: a prefix trie of all the needles
# (`_NEEDLES`, set below the detector table) matches the longest needle starting at a position, and the needles that
# are prefixes of it start there too. A scan does not look inside its own matches; what starts inside a match is
# known from the needle matched (`_INSIDE`: needles it contains), except needles that run past its end (`_STRADDLE`,
# keyed by the character that must follow the match), which are checked with `startswith`. This finds exactly the
# occurrences `str.find` would, for all needles at once: the detector gates and `positions` read it.

_NEEDLES: tuple[str, ...] = ()
_NEEDLE_RX: re.Pattern[str] = re.compile(r"(?!)")
_PREFIXES: dict[str, tuple[str, ...]] = {}
_INSIDE: dict[str, tuple[tuple[int, str], ...]] = {}
_STRADDLE: dict[str, dict[str, tuple[tuple[int, str], ...]]] = {}
_EMPTY_INDEX: dict[str, Sequence[int]] = {}


def _set_needles(needles: Iterable[str]) -> None:
    global _NEEDLES, _NEEDLE_RX, _PREFIXES, _INSIDE, _STRADDLE, _EMPTY_INDEX
    needles = {n for n in needles if n}
    needles |= {max(n.split(), key=len) for n in needles if any(ch.isspace() for ch in n)}
    _NEEDLES = tuple(sorted(needles))
    _NEEDLE_RX = re.compile(trie_alt(_NEEDLES, literal_spaces=True))
    _PREFIXES = {a: tuple(b for b in _NEEDLES if a.startswith(b)) for a in _NEEDLES}
    _INSIDE = {a: tuple((k, b) for k in range(1, len(a)) for b in _NEEDLES if a.startswith(b, k)) for a in _NEEDLES}
    _STRADDLE = {}
    for a in _NEEDLES:
        after: dict[str, list[tuple[int, str]]] = {}
        for k in range(1, len(a)):
            rest = a[k:]
            for b in _NEEDLES:
                if len(b) > len(rest) and b.startswith(rest):
                    after.setdefault(b[len(rest)], []).append((k, b))
        _STRADDLE[a] = {ch: tuple(v) for ch, v in after.items()}
    _EMPTY_INDEX = dict.fromkeys(_NEEDLES, ())
    _CONTAINED.clear()
    _CONTAINED.update({a: frozenset(b for b in _NEEDLES if b in a) for a in _NEEDLES})
    global _WS_NEEDLES, _NEEDLE_SET, _WS_PARTS
    _WS_NEEDLES = tuple((n, max(n.split(), key=len)) for n in _NEEDLES if any(ch.isspace() for ch in n))
    _NEEDLE_SET = frozenset(_NEEDLES)
    _WS_BY_PART.clear()
    for n, part in _WS_NEEDLES:
        _WS_BY_PART[part] = _WS_BY_PART.get(part, ()) + (n,)
    _WS_PARTS = frozenset(_WS_BY_PART)
    _TOKEN_NEEDLES.clear()


def _find_all(low: str, n: str) -> list[int]:
    found = []
    i = low.find(n)
    while i != -1:
        found.append(i)
        i = low.find(n, i + 1)
    return found


def _needle_index(low: str) -> tuple[dict[str, Sequence[int]], set[str]]:
    """Every offset of every needle in `_NEEDLES` (ascending; an empty tuple for a needle that does not occur), and
    a set of needles that occur such that every needle that occurs is a substring of one of them."""
    index = _EMPTY_INDEX.copy()
    hits: set[str] = set()
    for m in _NEEDLE_RX.finditer(low):
        i = m.start()
        a = m.group()
        hits.add(a)
        for n in _PREFIXES[a]:
            found = index[n]
            if found:
                found.append(i)  # type: ignore[attr-defined]
            else:
                index[n] = [i]
        inside = _INSIDE[a]
        straddle = _STRADDLE[a]
        if straddle:
            e = m.end()
            cands = straddle.get(low[e:e + 1])
            if cands:
                extra = [(k, b) for k, b in cands if low.startswith(b, i + k)]
                if extra:
                    hits.update(b for _, b in extra)
                    inside = tuple(sorted(inside + tuple(extra)))
        for k, n in inside:  # ascending k: the offsets of each needle stay sorted
            found = index[n]
            if found:
                found.append(i + k)  # type: ignore[attr-defined]
            else:
                index[n] = [i + k]
    return index, hits


# Most prompts are made of common words, so the needles inside each white-space-free token are remembered
# (`_TOKEN_NEEDLES`, a bounded cache): a needle without white space occurs in the prompt exactly when it occurs in
# one of its `split()` tokens. Tokens not seen before are looked up together, by the trie scan over them joined by
# newlines; needles with white space (few) are checked with `in`. Offsets come from `str.find` for the needles that
# occur, which are few. The result equals `_needle_index` (a test checks it), at a fraction of its cost once the
# words of a prompt have been seen.

_TOKEN_NEEDLES: dict[str, tuple[str, ...]] = {}
_CONTAINED: dict[str, frozenset[str]] = {}  # the needles inside each needle (itself included)
_TOKEN_CACHE_SIZE = 50_000
_WS_NEEDLES: tuple[tuple[str, str], ...] = ()  # (needle with white space, its longest part: also a needle)
_NEEDLE_SET: frozenset[str] = frozenset()
_WS_BY_PART: dict[str, tuple[str, ...]] = {}  # longest part -> the needles with white space it is the longest part of
_WS_PARTS: frozenset[str] = frozenset()
_UNSEEN = object()  # what `_TOKEN_NEEDLES.get` answers for a token not seen before: truthy, and not iterable


def _learn_tokens(tokens: list[str]) -> list[tuple[str, ...]]:
    """The needles inside each token (remembered in `_TOKEN_NEEDLES`): one trie scan over the tokens joined by
    newlines (no needle contains one), each match adding the needles it contains and those running past its end."""
    joined = "\n".join(tokens)
    starts = []
    pos = 0
    for t in tokens:
        starts.append(pos)
        pos += len(t) + 1
    inside: dict[int, set[str]] = {}
    for m in _NEEDLE_RX.finditer(joined):
        i = m.start()
        a = m.group()
        j = bisect_right(starts, i) - 1
        found = inside.get(j)
        if found is None:
            found = inside[j] = set()
        found.update(_CONTAINED[a])
        straddle = _STRADDLE[a]
        if straddle:
            e = m.end()
            for k, n in straddle.get(joined[e:e + 1], ()):
                if joined.startswith(n, i + k):
                    found.update(_CONTAINED[n])
    cache = _TOKEN_NEEDLES
    if len(cache) + len(tokens) > _TOKEN_CACHE_SIZE:
        cache.clear()
    out = []
    for j, t in enumerate(tokens):
        found = inside.get(j)
        cache[t] = needles = tuple(found) if found else ()
        out.append(needles)
    return out


def _prompt_index(low: str) -> tuple[dict[str, Sequence[int]], set[str]]:
    """The needles that occur in `low` (with an empty offset cache: `_Ctx.positions` finds offsets on demand)."""
    tokens = low.split()
    found: list[Any] = list(map(_TOKEN_NEEDLES.get, tokens, repeat(_UNSEEN)))  # C loops: most of the fixed cost
    present: set[str] = set()
    try:
        present.update(*filter(None, found))  # skips the tokens without needles (empty tuples)
    except TypeError:  # `_UNSEEN` is not iterable: some tokens were not seen before
        missing = list({t for t, f in zip(tokens, found) if f is _UNSEEN})
        present.update(*(f for f in found if f is not _UNSEEN), *_learn_tokens(missing))
    if not _WS_PARTS.isdisjoint(present):  # a needle with white space occurs only if its longest part does
        for part in _WS_PARTS.intersection(present):
            for n in _WS_BY_PART[part]:
                if n in low:
                    present.add(n)
    return {}, present


class _Ctx:
    """What every detector sees: the text, its lower-cased twin, where each trigger needle occurs, the detections
    so far and the claimed spans."""

    __slots__ = ("text", "low", "out", "claimed", "_pos", "hits", "_word_starts", "_counts")

    def __init__(self, text: str) -> None:
        self.text = text
        self.low = lower_preserving(text)
        self.out: list[Found] = []
        self.claimed = _Spans()
        self._pos: dict[str, Sequence[int]]
        self._pos, self.hits = _prompt_index(self.low)  # needles that do not occur are not in `_pos`
        self._word_starts: dict[str, list[int]] = {}
        self._counts: dict[int, Count | None] = {}  # count_before(low, end, max_adj) by end * 4 + max_adj

    def free(self, span: tuple[int, int]) -> bool:
        """`not self.claimed.overlaps(span)`, inlined (it is asked for every match)."""
        s, e = span
        claimed = self.claimed
        i = bisect_left(claimed.starts, e if e > s else s) - 1
        if i >= 0 and claimed.ends[i] > s:
            return False
        points = claimed.points
        if e > s and points:
            j = bisect_right(points, s)
            return not (j < len(points) and points[j] < e)
        return True

    def emit(self, kind: str, span: tuple[int, int], params: dict[str, Any] | None = None) -> None:
        self.out.append(Found(kind, span, params or {}))
        self.claimed.append(span)

    def has(self, *needles: str) -> bool:
        hits = self.hits
        for n in needles:
            if n in hits or (n not in _NEEDLE_SET and n in self.low):
                return True
        return False

    def positions(self, needles: Iterable[str]) -> list[tuple[int, str]]:
        """(offset, needle) of every occurrence of the needles, needle by needle (from the needle index; `str.find`
        for a needle outside it, cached)."""
        out: list[tuple[int, str]] = []
        hits = self.hits
        for n in needles:
            if n in hits or n not in _NEEDLE_SET:  # else an indexed needle that does not occur
                found = self._pos.get(n)
                if found is None:
                    found = self._pos[n] = _find_all(self.low, n)
                for i in found:
                    out.append((i, n))
        return out

    def offsets(self, needles: Iterable[str]) -> list[int]:
        """The offsets of `positions(needles)` without the needles (needle by needle, each ascending)."""
        out: list[int] = []
        hits = self.hits
        for n in needles:
            if n in hits or n not in _NEEDLE_SET:
                found = self._pos.get(n)
                if found is None:
                    found = self._pos[n] = _find_all(self.low, n)
                out += found
        return out

    def word_starts(self, n: str) -> Sequence[int]:
        """The offsets of needle `n` that do not follow a letter or digit (ascending), cached."""
        found = self._word_starts.get(n)
        if found is None:
            low = self.low
            offsets = self._pos.get(n)
            if offsets is None:
                offsets = self._pos[n] = _find_all(low, n) if n in self.hits or n not in _NEEDLE_SET else []
            found = self._word_starts[n] = [i for i in offsets if not (i and low[i - 1].isalnum())]
        return found

    def starts(self, needles: Iterable[str]) -> list[int]:
        """Sorted offsets where a needle starts a word: where patterns that begin with that word can match."""
        found: set[int] = set()
        hits = self.hits
        for n in needles:
            if n in hits or n not in _NEEDLE_SET:
                if n[0].isalnum():
                    found.update(self.word_starts(n))
                else:
                    found.update(i for i, _ in self.positions((n,)))
        return sorted(found)

    def match_at(self, rx: re.Pattern[str], needles: Iterable[str],
                 before: int | None = None) -> Iterator[re.Match[str]]:
        """Matches of `rx` anchored where a needle starts a word (one `match` each instead of a scan); with `before`,
        only those starting before that offset."""
        low = self.low
        end = -1
        for i in self.starts(needles):
            if before is not None and i >= before:
                return
            if i < end:
                continue
            m = rx.match(low, i)
            if m:
                end = m.end()
                yield m

    def scan_quotes(self, rx: _Anchored, before: int) -> list[re.Match[str]]:
        """Matches of `rx` ending just after an opening quote (or "["), searched in a window before it."""
        low = self.low
        size = len(low)
        found: list[re.Match[str]] = []
        search = rx.candidates.search  # most windows have no candidate: test that before calling into rx
        for i in self.offsets(_OPENING_QUOTES):
            if i and low[i - 1].isalnum():
                continue  # an apostrophe, not a quote
            e = min(size, i + 2)
            f = search(low, max(0, i - before), e)
            if f is not None:
                found.extend(rx.matches_from(low, f, e, search))
        return found

    def windows(self, needles: Iterable[str], before: int, after: int) -> list[tuple[int, int]]:
        """Merged windows around the needles. A regex run over the whole prompt costs microseconds per hundred
        characters, so patterns only run near the words that must occur in any match."""
        size = len(self.low)
        spans: list[tuple[int, int]] = []
        hits = self.hits
        for n in needles:
            if n in hits or n not in _NEEDLE_SET:
                found = self._pos.get(n)
                if found is None:
                    found = self._pos[n] = _find_all(self.low, n)
                k = len(n) + after
                for i in found:
                    spans.append((i - before if i > before else 0, i + k if i + k < size else size))
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

    def finditer(self, rx: _Scanner, windows: list[tuple[int, int]]) -> Iterator[re.Match[str]]:
        for s, e in windows:
            yield from rx.finditer(self.low, s, e)

    def scan(self, rx: _Scanner, needles: Iterable[str], before: int = 0,
             after: int = 120) -> Iterator[re.Match[str]]:
        low = self.low
        if isinstance(rx, _Anchored):
            search = rx.candidates.search  # most windows have no candidate: test that before calling into rx
            for s, e in self.windows(needles, before, after):
                f = search(low, s, e)
                if f is not None:
                    yield from rx.matches_from(low, f, e, search)
        else:
            for s, e in self.windows(needles, before, after):
                yield from rx.finditer(low, s, e)

    def first(self, rx: _Scanner, needles: Iterable[str], before: int = 0, after: int = 120) -> re.Match[str] | None:
        """`next(self.scan(rx, needles, before, after), None)`: the first match, without scanning further."""
        low = self.low
        if isinstance(rx, _Anchored):
            search = rx.candidates.search  # most windows have no candidate: test that before calling into rx
            for s, e in self.windows(needles, before, after):
                f = search(low, s, e)
                if f is not None:
                    m = rx.first_from(low, f, e, search)
                    if m is not None:
                        return m
            return None
        for s, e in self.windows(needles, before, after):
            m = rx.search(low, s, e)
            if m is not None:
                return m
        return None

    def units(self, unit_rx: re.Pattern[str], needles: Iterable[str]) -> list[tuple[int, int]]:
        """(start, end) of each unit word ("words", "bullet points") that starts at a needle on a word start (the
        needles start with a letter)."""
        starts: list[int] = []
        hits = self.hits
        for n in needles:
            if n in hits or n not in _NEEDLE_SET:
                starts += self.word_starts(n)
        if not starts:
            return []
        starts.sort()
        low = self.low
        match = unit_rx.match
        out = []
        for i in starts:
            m = match(low, i)
            if m:
                out.append(m.span())
        return out

    def count_at(self, end: int, max_adj: int = 1) -> Count | None:
        """`count_before(low, end, max_adj)`, once per prompt and offset (several detectors read the same units)."""
        key = end * 4 + max_adj  # max_adj is 0..3
        counts = self._counts
        if key in counts:
            return counts[key]
        cnt = counts[key] = count_before(self.low, end, max_adj)
        return cnt

    def counts(self, unit_rx: re.Pattern[str], needles: Iterable[str],
               max_adj: int = 1) -> Iterator[tuple[Count, int, int]]:
        """Each count attached to a unit word: (count, span start, span end); a relation after the unit ("50 words
        or less") is folded in."""
        for us, ue in self.units(unit_rx, needles):
            cnt = self.count_at(us, max_adj)
            if cnt is None:
                continue
            end = ue
            if cnt.relation is None:
                post = POST_AFTER_RE.match(self.low, ue)
                if post:
                    cnt = Count(cnt.start, REL_POST_MAP[norm_space(post.group("post"))], cnt.n, cnt.low_n, cnt.prev)
                    end = post.end()
            yield cnt, cnt.start, end

    def cut(self, m: re.Match[str], group: str | int = 0) -> str:
        return self.text[m.start(group):m.end(group)]


ALL_ANCHORED: list[_Anchored] = []  # every anchored pattern, for the test that checks their first words


class _Anchored:
    """A regex that is tried only where one of its possible first words starts.

    Every match of `rx` begins with one of `firsts` (a property of the pattern, checked by a test), so a cheap scan
    for those words (a plain alternation of literals: `re` skips on its first characters) finds every offset where a
    match can start, and `rx.match` runs there alone. `finditer(low, s, e)` returns what `rx.finditer(low, s, e)`
    yields, at a fraction of the cost for a pattern whose alternatives `re` cannot reject on their first character.

    With `tails`, the scan is for each first word followed by its tail: a relaxed copy of what the pattern requires
    after that word (`\\b` and look-arounds dropped, so it matches wherever the pattern does), which leaves far
    fewer offsets where `rx.match` runs in Python. Each key of `tails` starts with one of the first words, so the
    offsets tried are a subset of the first words' (with or without the prefilter switch, the same matches).
    """

    __slots__ = ("rx", "firsts", "_first", "_words")

    def __init__(self, rx: re.Pattern[str], firsts: Iterable[str], first_rx: str | None = None,
                 tails: dict[str, str] | None = None) -> None:
        self.rx = rx
        self.firsts = tuple(sorted(set(firsts), key=lambda w: (-len(w), w)))
        self._words = re.compile(first_rx if first_rx is not None else trie_alt(self.firsts, literal_spaces=True))
        self._first = self._words
        if tails is not None:
            unknown = [w for w in tails if not self._words.match(w)]
            if unknown:
                raise ValueError(f"tails must start with a first word: {unknown}")
            self._first = re.compile(lead_alt(tails))
        ALL_ANCHORED.append(self)

    @property
    def candidates(self) -> re.Pattern[str]:
        """The scan for offsets where a match can start (the first words alone when the prefilters are off)."""
        return self._first if PREFILTERS else self._words

    def finditer(self, low: str, s: int = 0, e: int | None = None) -> list[re.Match[str]]:
        if e is None:
            e = len(low)
        search = self.candidates.search
        f = search(low, s, e)
        return self.matches_from(low, f, e, search) if f is not None else []

    def matches_from(self, low: str, f: re.Match[str] | None, e: int,
                     search: Callable[[str, int, int], re.Match[str] | None]) -> list[re.Match[str]]:
        """What `finditer(low, s, e)` returns, given `f`, the first candidate at or after s (callers that test a
        window for a candidate before scanning it pass it on instead of searching twice)."""
        out: list[re.Match[str]] = []
        match = self.rx.match
        while f is not None:
            p = f.start()
            m = match(low, p, e)
            if m is None:
                pos = p + 1
            else:
                out.append(m)
                pos = max(m.end(), p + 1)
            f = search(low, pos, e)
        return out

    def first(self, low: str, s: int, e: int) -> re.Match[str] | None:
        """The first match `finditer(low, s, e)` would return, without looking for the others."""
        search = self.candidates.search
        return self.first_from(low, search(low, s, e), e, search)

    def first_from(self, low: str, f: re.Match[str] | None, e: int,
                   search: Callable[[str, int, int], re.Match[str] | None]) -> re.Match[str] | None:
        """What `first(low, s, e)` returns, given `f`, the first candidate at or after s."""
        match = self.rx.match
        while f is not None:
            m = match(low, f.start(), e)
            if m is not None:
                return m
            f = search(low, f.start() + 1, e)
        return None


_Scanner = re.Pattern[str] | _Anchored


def _tails(*groups: tuple[Iterable[str], str]) -> dict[str, str]:
    """`_Anchored` tails from (words, tail) groups; a word in several groups gets the alternation of its tails."""
    out: dict[str, list[str]] = {}
    for words, tail in groups:
        for w in words:
            out.setdefault(w, []).append(tail)
    return {w: t[0] if len(t) == 1 else "(?:" + "|".join(t) + ")" for w, t in out.items()}


_Q_OPEN = "[\"“”«'‘’]"  # QOPEN without its look-behind (which holds after white space anyway)
_MODAL = r"(?:must|should|has\s+to|needs\s+to|will)"


_OPENING_QUOTES = ("\"", "“", "‘", "'", "[")
_PER_UNIT_RE = re.compile(r"\b(?:each|every|per|individual)\b")
_NEGATED_RE = re.compile(r"\b(?:not|no|never|without|avoid\w*|refrain\s+from)\s+(?:\w+\s+)?$")


def _per_unit(low: str, pos: int) -> bool:
    """True when a count is about each unit ("each bullet should be under 10 words"), not about the response."""
    return bool(_PER_UNIT_RE.search(low, clause_start(low, pos, 40), pos))


def _negated(low: str, pos: int) -> bool:
    return bool(_NEGATED_RE.search(low, max(0, pos - 20), pos))


# ------------------------------------------------------------------------------------------- combination


_REPEAT_RE = re.compile(
    r"\b(?:repeat|restate|copy|reproduce|echo|recite)\w*\s+(?:back\s+|out\s+)?(?:the|this|my|your|our|that|above|following)?\s*"
    r"(?:(?:exact|entire|original|whole|same|full|above|following|first|user'?s?)\s+)*"
    r"(?:request|prompt|question|instructions?|query|sentence|task|message|input|text|line)s?\b"
    r"|\b(?:request|prompt|question|instructions?)\b[^.\n]{0,40}\b(?:verbatim|word\s+for\s+word)"
)


_REPEAT_A = _Anchored(_REPEAT_RE, (
    "repeat", "restate", "copy", "reproduce", "echo", "recite", "request", "prompt", "question", "instruction",
), tails=_tails(
    (("repeat", "restate", "copy", "reproduce", "echo", "recite"),
     r"\w*\s+(?:back\s+|out\s+)?(?:the|this|my|your|our|that|above|following)?\s*"
     r"(?:(?:exact|entire|original|whole|same|full|above|following|first|user'?s?)\s+)*"
     r"(?:request|prompt|question|instruction|query|sentence|task|message|input|text|line)"),
    (("request", "prompt", "question", "instruction"), r"[^.\n]{0,41}(?:verbatim|word\s+for\s+word)"),
))


def _d_repeat(c: _Ctx) -> None:
    needles = ("repeat", "verbatim", "word for word", "restate", "copy", "reproduce", "recite", "echo")
    m = c.first(_REPEAT_A, needles, 60, 60)
    if m:
        c.emit("combination:repeat_prompt", m.span())


_TWO_RESP_RE = re.compile(
    r"\b(?:two|2)\s+(?:different|distinct|separate|alternative)\s+(?:responses|answers|versions|replies|drafts)\b"
    r"|\b(?:six|6)\s+asterisk(?:s|\s+symbols?|\s+marks?|\s+characters?)?"
    r"|(?<!\*)\*{6}(?!\*)"
)


_TWO_RESP_A = _Anchored(_TWO_RESP_RE, ("two", "2", "six", "6", "******"), tails=_tails(
    (("two", "2"), r"\s+(?:different|distinct|separate|alternative)\s+(?:responses|answers|versions|replies|drafts)"),
    (("six", "6"), r"\s+asterisk"),
    (("******",), ""),
))


def _d_two_responses(c: _Ctx) -> None:
    needles = ("******", "asterisk", "different", "distinct", "separate", "alternative")
    m = c.first(_TWO_RESP_A, needles, 10, 30)
    if m and c.free(m.span()):
        c.emit("combination:two_responses", m.span())


# ------------------------------------------------------------------------------------ detectable_content


_PS_RE = re.compile(r"\bpost[\s-]?scripts?\b|(?<![a-z])p\.\s?(?:p\.\s?)*s\b\.?")
_PS_MARKER_RE = re.compile(r"(?<![a-z])p\.\s?(?:p\.\s?)*s\b\.?")


_PS_A = _Anchored(_PS_RE, ("post", "p."), tails=_tails(
    (("post",), r"[\s-]?script"), (("p.",), r"\s?(?:p\.\s?)*s"),
))


def _d_postscript(c: _Ctx) -> None:
    m = c.first(_PS_A, ("p.s", "p. s", "p.p", "script"), 6, 20)
    if m and c.free(m.span()):
        mk = _PS_MARKER_RE.search(c.low, m.start(), min(len(c.low), m.end() + 60))
        marker = c.cut(mk).replace(" ", "").upper() if mk else "P.S."
        c.emit("detectable_content:postscript", (m.start(), mk.end() if mk else m.end()), {"postscript_marker": marker})


_PLACEHOLDER_RE = re.compile(r"placeholders?\b")


def _d_placeholders(c: _Ctx) -> None:
    for cnt, s, e in c.counts(_PLACEHOLDER_RE, ("placeholder",), 2):
        if c.free((s, e)):
            c.emit("detectable_content:number_placeholders", (s, e),
                   {"relation": cnt.relation or "at least", "num_placeholders": cnt.n})
            return
    spans = c.units(_PLACEHOLDER_RE, ("placeholder",))
    if spans and c.free(spans[0]):
        c.emit("detectable_content:number_placeholders", spans[0], {"relation": "at least", "num_placeholders": 1})


# -------------------------------------------------------------------------------------- detectable_format


_TITLE_RE = re.compile(r"<<[^<>\n]{0,100}>>|\b(?:double\s+)?angul?ar\s+brackets?\b|\bdouble\s+angle\s+brackets?\b")


_TITLE_A = _Anchored(_TITLE_RE, ("<<", "double", "ang"), tails=_tails(
    (("<<",), r"[^<>\n]{0,100}>>"), (("double",), r"\s+ang(?:ul?ar|le)\s+bracket"), (("ang",), r"ul?ar\s+bracket"),
))


def _d_title(c: _Ctx) -> None:
    m = c.first(_TITLE_A, ("<<", "angular", "angle bracket"), 8, 110)
    if m and c.free(m.span()):
        c.emit("detectable_format:title", m.span())


def _d_json(c: _Ctx) -> None:
    low = c.low
    for i, _ in c.positions(("json",)):
        if (i == 0 or not low[i - 1].isalnum()) and not low[i + 4:i + 5].isalnum() and c.free((i, i + 4)):
            c.emit("detectable_format:json_format", (i, i + 4))
            return


_DQ = r"(?:double[\s-]*quot\w*(?:\s+marks?)?|quotation\s+marks?|quote\s+marks?)"
_QUOTATION_RE = re.compile(
    r"\b(?:wrap|enclose|surround|put|place|encase|encapsulate|bookend|start\s+and\s+end|begin\s+and\s+end)\w*\b"
    rf"[^.!?\n]{{0,80}}?(?:\b{_DQ}|\bquotes\b|\"\s*\")"
    rf"|\b(?P<core>(?:wrapped|enclosed|surrounded|placed|put)\s+(?:with\s+|in\s+|by\s+|inside\s+|within\s+|between\s+)?(?:a\s+pair\s+of\s+)?{_DQ})"
    rf"|\b{_DQ}\s+(?:should|must|need\s+to|needs\s+to|have\s+to|has\s+to|will)\s+(?:(?:be\s+)?(?:placed|put|added|wrapped|used)?\s*"
    r"(?:around|at\s+the\s+(?:start|beginning)\s+and\s+(?:the\s+)?end)|(?:wrap|enclose|surround|bookend|go\s+around)\b)"
)
_WHOLE_RE = re.compile(r"\b(?:response|answer|reply|output|everything|entire|whole|all\s+of)\b")


_DQ_HEAD = r"(?:double[\s-]*quot|quotation\s+mark|quote\s+mark)"
_QUOTATION_A = _Anchored(_QUOTATION_RE, (
    "wrap", "enclose", "surround", "put", "place", "encase", "encapsulate", "bookend", "start", "begin", "double",
    "quot",
), tails=_tails(
    (("wrap", "enclose", "surround", "put", "place", "encase", "encapsulate", "bookend", "start and end",
      "begin and end"), rf"\w*[^.!?\n]{{0,80}}?(?:{_DQ_HEAD}|quotes|\"\s*\")"),
    (("wrapped", "enclosed", "surrounded", "placed", "put"),
     rf"\s+(?:with\s+|in\s+|by\s+|inside\s+|within\s+|between\s+)?(?:a\s+pair\s+of\s+)?{_DQ_HEAD}"),
    (("double",), r"[\s-]*quot\w*(?:\s+marks?)?\s+(?:should|must|need\s+to|needs\s+to|have\s+to|has\s+to|will)\s"),
    (("quot",), r"(?:ation|e)\s+marks?\s+(?:should|must|need\s+to|needs\s+to|have\s+to|has\s+to|will)\s"),
))


def _d_quotation(c: _Ctx) -> None:
    for m in c.scan(_QUOTATION_A, ("quot",), 110, 120):
        span = m.span("core") if m.group("core") else m.span()
        if not c.free(span):
            continue
        if _WHOLE_RE.search(c.low, max(0, m.start() - 50), min(len(c.low), m.end() + 50)):
            c.emit("startend:quotation", span)
            return


_CONSTRAINED_RE = re.compile(
    r"\b(?:answer|reply|respond|choose|pick|select|say|contain|include)\w*\s+(?:with\s+|from\s+|using\s+)?(?:exactly\s+|only\s+|just\s+)?"
    r"one\s+of\s+(?:the\s+)?(?:following|these|those|below|options|choices)"
    r"|\b(?:choose|pick|select)\s+(?:from|between|among)\b|\bone\s+of\s+the\s+following\s+(?:options|choices|phrases|answers|responses)"
    r"|\bmy\s+answer\s+is\s+(?:yes|no|maybe)\b|\b(?:options|choices)\s*:\s*\(?[\"'“(]"
)


_CONSTRAINED_A = _Anchored(_CONSTRAINED_RE, (
    "answer", "reply", "respond", "choose", "pick", "select", "say", "contain", "include", "one", "my", "options",
    "choices",
), tails=_tails(
    (("answer", "reply", "respond", "choose", "pick", "select", "say", "contain", "include"),
     r"\w*\s+(?:with\s+|from\s+|using\s+)?(?:exactly\s+|only\s+|just\s+)?one\s+of\s"),
    (("choose", "pick", "select"), r"\s+(?:from|between|among)"),
    (("one",), r"\s+of\s+the\s+following\s"),
    (("my",), r"\s+answer\s+is\s"),
    (("options", "choices"), r"\s*:"),
))


def _d_constrained(c: _Ctx) -> None:
    needles = ("one of", "choose", "pick", "select", "my answer is", "options", "choices")
    m = c.first(_CONSTRAINED_A, needles, 40, 40)
    if m and c.free(m.span()):
        c.emit("detectable_format:constrained_response", m.span())


_END_RE = re.compile(
    r"\b(?:end|finish|conclude|close|wrap\s+up|sign\s+off|terminate)(?:s|ing|ed)?\s+(?:(?:your|the|this|each|my|it)\b\s*)?"
    r"(?:(?!with\b)\w+\s+){0,3}?with\b"
    r"|\b(?:must|should|has\s+to|needs\s+to|will)\s+(?:always\s+)?end\s+with\b"
    r"|\b(?:very\s+)?(?:last|final|closing|ending)\s+(?:sentence|line|words?|phrase)\s+(?:of\s+(?:your|the)\s+(?:\w+\s+){0,2})?"
    r"(?:must|should|has\s+to|needs\s+to|will)\s+(?:be|read)\b"
    r"|\b(?:very\s+)?end\s+of\s+(?:your|the)\s+(?:\w+\s+){0,2}(?:must|should|has\s+to|needs\s+to|will)\s+(?:be|read|say)\b"
)


_END_LAST = (r"\s+(?:sentence|line|words?|phrase)\s+(?:of\s+(?:your|the)\s+(?:\w+\s+){0,2})?"
             rf"{_MODAL}\s+(?:be|read)")
_END_OF = rf"\s+of\s+(?:your|the)\s+(?:\w+\s+){{0,2}}{_MODAL}\s+(?:be|read|say)"
_END_A = _Anchored(_END_RE, (
    "end", "finish", "conclude", "clos", "wrap", "sign", "terminate", "must", "should", "has", "needs", "will",
    "very", "last", "final",
), tails=_tails(
    (("end", "finish", "conclude", "close", "wrap up", "sign off", "terminate"),
     r"(?:s|ing|ed)?\s+(?:(?:your|the|this|each|my|it)\s*)?(?:\w+\s+){0,3}?with"),
    (("must", "should", "has to", "needs to", "will"), r"\s+(?:always\s+)?end\s+with"),
    (("last", "final", "closing", "ending"), _END_LAST),
    (("end",), _END_OF),
    (("very",), rf"\s+(?:(?:last|final|closing|ending){_END_LAST}|end{_END_OF})"),
))


def _d_end(c: _Ctx) -> None:
    needles = ("end", "finish", "conclu", "close", "last", "final", "sign off", "wrap up", "terminat")
    for m in c.scan(_END_A, needles, 40, 90):
        if not c.free(m.span()):
            continue
        phrase, pe = phrase_after(c.text, c.low, m.end())
        if phrase:
            c.emit("startend:end_checker", (m.start(), pe), {"end_phrase": phrase})
            return


_START_RE = re.compile(
    r"\b(?:start|begin|open)(?:s|ing)?\s+(?:your|the)\s+(?:(?:entire|whole|very)\s+)?(?:response|answer|reply|output|essay|email|letter|story|poem|text)\s+with\b"
    r"|\b(?:response|answer|reply|output)\s+(?:must|should|has\s+to|needs\s+to|will)\s+(?:always\s+)?(?:start|begin|open)\s+with\b"
    r"|\b(?:very\s+)?first\s+(?:word|sentence|line|phrase)\s+of\s+(?:your|the)\s+(?:\w+\s+){0,2}(?:must|should|has\s+to|needs\s+to|will)\s+be\b"
)


_START_FIRST = rf"first\s+(?:word|sentence|line|phrase)\s+of\s+(?:your|the)\s+(?:\w+\s+){{0,2}}{_MODAL}\s+be"
_START_A = _Anchored(_START_RE, ("start", "begin", "open", "response", "answer", "reply", "output", "very", "first"),
                     tails=_tails(
    (("start", "begin", "open"), r"(?:s|ing)?\s+(?:your|the)\s+(?:(?:entire|whole|very)\s+)?"
                                 r"(?:response|answer|reply|output|essay|email|letter|story|poem|text)\s+with"),
    (("response", "answer", "reply", "output"), rf"\s+{_MODAL}\s+(?:always\s+)?(?:start|begin|open)\s+with"),
    (("very",), r"\s+" + _START_FIRST),
    (("first",), _START_FIRST[len("first"):]),
))


def _d_start(c: _Ctx) -> None:
    for m in c.scan(_START_A, ("start", "begin", "open", "first"), 40, 90):
        if not c.free(m.span()):
            continue
        phrase, pe = phrase_after(c.text, c.low, m.end())
        if phrase:
            c.emit("startend:start_checker", (m.start(), pe), {"start_phrase": phrase})
            return


_ORD = trie_alt(list(ORDINALS) + ["last", "final"])
_ORD_ALT = rf"(?:{_ORD}|\d+(?:st|nd|rd|th))"
_PARA_IDX = rf"(?:\d+|{ONES_T})"
_WORD_ARG = (
    rf"(?:the\s+)?(?:(?:single\s+)?word\s+)?(?:{QOPEN}(?P<q{{i}}>[^\"“”«»\n]{{{{1,60}}}}?){QCLOSE}|(?P<bare{{i}}>[^\W\d_][\w'-]*))"
)
_NTH_PARA_RE = re.compile(
    rf"\b(?:(?:the\s+)?(?:very\s+)?(?P<ord>{_ORD_ALT})\s+paragraph|paragraph\s+(?P<idx>{_PARA_IDX}))\s+"
    rf"(?:(?:must|should|has\s+to|needs\s+to|will|is\s+to|shall)\s+)?(?:always\s+)?(?:start|begin|open)s?\s+with\s+"
    + _WORD_ARG.format(i=1)
    + r"|\b(?:start|begin|open)\s+(?:the\s+)?"
    + rf"(?:(?P<ord2>{_ORD_ALT})\s+paragraph|paragraph\s+(?P<idx2>{_PARA_IDX}))\s+with\s+"
    + _WORD_ARG.format(i=2)
)


def _ordinal(s: str) -> int:
    if s in ORDINALS:
        return ORDINALS[s]
    if s in ("last", "final"):
        return -1
    digits = re.match(r"\d+", s)
    if digits:
        return int(digits.group(0))
    return ONES.get(s, -1)


_NTH_REST = r"\s+(?:(?:must|should|has\s+to|needs\s+to|will|is\s+to|shall)\s+)?(?:always\s+)?(?:start|begin|open)s?\s+with\s"
_NTH_PARA_A = _Anchored(_NTH_PARA_RE, (
    "the", "very", *ORDINALS, "last", "final", *"0123456789", "paragraph", "start", "begin", "open",
), tails=_tails(
    (("the",), rf"\s+(?:very\s+)?{_ORD_ALT}\s+paragraph{_NTH_REST}"),
    (("very",), rf"\s+{_ORD_ALT}\s+paragraph{_NTH_REST}"),
    ((*ORDINALS, "last", "final"), rf"\s+paragraph{_NTH_REST}"),
    (tuple("0123456789"), rf"\d*(?:st|nd|rd|th)\s+paragraph{_NTH_REST}"),
    (("paragraph",), rf"\s+{_PARA_IDX}{_NTH_REST}"),
    (("start", "begin", "open"), rf"\s+(?:the\s+)?(?:{_ORD_ALT}\s+paragraph|paragraph\s+{_PARA_IDX})\s+with\s"),
))


def _d_nth_paragraph(c: _Ctx) -> None:
    for m in c.scan(_NTH_PARA_A, ("paragraph",), 40, 110):
        if not c.free(m.span()):
            continue
        g = m.groupdict()
        nth = _ordinal(g["ord"] or g["idx"] or g["ord2"] or g["idx2"] or "")
        group = next(k for k in ("q1", "bare1", "q2", "bare2") if g[k])
        word = c.cut(m, group).strip().lower()
        if word in ("a", "an", "the", "word", "with"):
            continue
        c.emit("length_constraints:nth_paragraph_first_word", m.span(),
               {"first_word": word, "nth_paragraph": nth, "num_paragraphs": None})


# Case-sensitive, on the original text: the splitter's case matters ("SECTION" vs "Section").
_SECTION_MARK_CS_RE = re.compile(
    r"(?P<sp>SECTION|Section|section|PARAGRAPH|Paragraph|PART|Part|CHAPTER|Chapter|STANZA|Stanza|VERSE|Verse|"
    r"SLIDE|Slide|DAY|Day|STEP|Step)\s+(?P<x>X|N|#|\{\w*\}|\[\w*\]|\d+)(?!\w|\.\d)"
)
_SECTION_NEEDLES = ("section", "paragraph", "part", "chapter", "stanza", "verse", "slide", "day", "step")
_SECTION_UNIT_RES = {u: re.compile(rf"{u}s?\b") for u in _SECTION_NEEDLES}


def _d_sections(c: _Ctx) -> None:
    text, low = c.text, c.low
    unit_counts: dict[str, list[tuple[Count, int, int]]] = {}
    for i, needle in sorted(c.positions(_SECTION_NEEDLES)):
        if i and low[i - 1].isalnum():
            continue
        m = _SECTION_MARK_CS_RE.match(text, i)
        if m is None or not c.free(m.span()):
            continue
        sp = m.group("sp")
        counts = unit_counts.get(needle)
        if counts is None:  # the same for every marker of this unit ("Part 1 ... Part 2 ..."): read once
            counts = unit_counts[needle] = list(c.counts(_SECTION_UNIT_RES[needle], (needle,), 1))
        count = next(((cnt, s, e) for cnt, s, e in counts if c.free((s, e))), None)
        if m.group("x").isdigit() and count is None:
            continue  # "Section 2 of the contract" is a reference, not a format rule
        c.emit("detectable_format:multiple_sections", m.span(),
               {"section_spliter": sp, "num_sections": count[0].n if count else None,
                "relation": (count[0].relation or "exactly") if count else None})
        if count:
            c.claimed.append((count[1], count[2]))
        return


_HL_NEEDLES = ("highlight", "italic", "bold", "emphasi", "underline")
_HL_VERB_RE = re.compile(
    rf"(?:highlight|italici[sz]|bold|emphasi[sz]|underline)\w*\s+(?:(?P<pre>{REL})\s+)?(?P<num>{NUM})\s+"
)
_HL_UNIT_RE = re.compile(
    r"(?:[\w-]+\s+){0,3}?(?:sections?|parts?|phrases?|passages?|points?|areas?|words?|sentences?|key\s+\w+|things?|items?|"
    r"terms?|lines?|keywords?|names?|spots?)\b"
)
_HL_AFTER_RE = re.compile(
    r"(?:sections?|parts?|phrases?|words?|points?|sentences?|passages?)\s+"
    r"(?:(?:should|must|need\s+to|needs\s+to|have\s+to|has\s+to|will)\s+be\s+|are\s+|be\s+)?(?:highlighted|bold(?:ed)?|italici[sz]ed|emphasi[sz]ed)"
)
_HL_ADJ_UNIT_RE = re.compile(
    r"(?:highlighted|italic|bold|bolded|italicized|italicised)\s+(?:text\s+)?(?:sections?|parts?|phrases?|words?|passages?)\b"
)
_HIGHLIGHT_RE = re.compile(
    r"\*(?:highlighted|italic|bold|emphasi[sz]ed)\s*(?:section|part|text|phrase|word)?[^*\n]{0,20}\*"
    r"|\b(?:highlight|italici[sz]|bold|emphasi[sz]|underline)\w*\b[^.!?\n]{0,50}?\b(?:with|in|using|by)\s+(?:markdown|asterisks?|\*)"
    r"|\bhighlighted\s+sections?\b|\bitalic\s+text\b"
)


_HL_TAIL = r"\w*[^.!?\n]{0,50}?(?:with|in|using|by)\s+(?:markdown|asterisk|\*)"
_HIGHLIGHT_A = _Anchored(_HIGHLIGHT_RE, ("*", "highlight", "italic", "bold", "emphasi", "underline"), tails=_tails(
    (("*",), r"(?:highlighted|italic|bold|emphasi[sz]ed)\s*(?:section|part|text|phrase|word)?[^*\n]{0,20}\*"),
    (("highlight", "bold", "underline"), _HL_TAIL),
    (("italici", "emphasi"), "[sz]" + _HL_TAIL),
    (("highlighted",), r"\s+section"),
    (("italic",), r"\s+text"),
))


def _d_highlights(c: _Ctx) -> None:
    low = c.low
    found: tuple[int, int, str, int] | None = None  # (start, end, relation, n)
    for i, _ in sorted(c.positions(_HL_NEEDLES)):
        m = _HL_VERB_RE.match(low, i)  # "highlight at least 3 sections"
        if m:
            unit = _HL_UNIT_RE.match(low, m.end())
            n = parse_number(m.group("num"))
            if unit and n is not None:
                rel, n = relation(m.group("pre"), None, None, n, "at least")
                found = (i, unit.end(), rel, n)
                break
        unit = _HL_ADJ_UNIT_RE.match(low, i)  # "at least 3 italic text sections"
        if unit:
            cnt = c.count_at(i, 0)
            if cnt is not None:
                found = (cnt.start, unit.end(), cnt.relation or "at least", cnt.n)
                break
    if found is None:  # "3 sections should be highlighted"
        units = ("section", "part", "phrase", "word", "point", "sentence", "passage")
        for cnt, s, e in c.counts(_HL_AFTER_RE, units, 2):
            found = (s, e, cnt.relation or "at least", cnt.n)
            break
    wins = c.windows(_HL_NEEDLES, 60, 60)
    if found is not None and c.free(found[:2]):
        c.emit("detectable_format:number_highlighted_sections", found[:2],
               {"relation": found[2], "num_highlights": found[3]})
        c.claimed.extend(x.span() for x in c.finditer(_HIGHLIGHT_A, wins))  # its "*italic text*" example
        return
    m = next(c.finditer(_HIGHLIGHT_A, wins), None)
    if m and c.free(m.span()):
        c.emit("detectable_format:number_highlighted_sections", m.span(), {"relation": "at least", "num_highlights": 1})


_BULLET_UNIT_RE = re.compile(
    r"bullet(?:ed)?[\s-]*points?\b|bullets\b|bullet[\s-]*items?\b|bullet(?:ed)?[\s-]*list\s+items\b|bulleted\s+items\b"
)
_BULLET_LIST_RE = re.compile(
    rf"bullet(?:ed)?[\s-]*(?:point\s+)?list\s+(?:with|of|containing)\s+(?:(?P<pre>{REL})\s+)?(?P<num>{NUM})\s+(?:items|points|entries|elements)"
)
_BULLET_RE = re.compile(r"bullet(?:ed)?[\s-]*(?:points?|lists?|format|form|style)\b|bullets\b")
_NO_BULLETS_RE = re.compile(r"\b(?:no|not|without|avoid|never)\b[^.!?\n]{0,20}$|n[’']t\b[^.!?\n]{0,20}$")


def _d_bullets(c: _Ctx) -> None:
    for cnt, s, e in c.counts(_BULLET_UNIT_RE, ("bullet",), 3):
        if c.free((s, e)) and not _per_unit(c.low, s):
            c.emit("detectable_format:number_bullet_lists", (s, e),
                   {"relation": cnt.relation or "exactly", "num_bullets": cnt.n})
            c.claimed.extend(x.span() for x in c.scan(_BULLET_RE, ("bullet",), 0, 20))
            return
    for m in c.scan(_BULLET_LIST_RE, ("bullet",), 0, 60):
        n = parse_number(m.group("num"))
        if n is not None and c.free(m.span()):
            rel, n = relation(m.group("pre"), None, None, n, "exactly")
            c.emit("detectable_format:number_bullet_lists", m.span(), {"relation": rel, "num_bullets": n})
            return
    bullet = c.first(_BULLET_RE, ("bullet",), 0, 20)
    if bullet and c.free(bullet.span()) and not _NO_BULLETS_RE.search(c.low, max(0, bullet.start() - 30),
                                                                      bullet.start()):
        c.emit("detectable_format:number_bullet_lists", bullet.span(), {"relation": None, "num_bullets": None})


_NUMBERED_RE = re.compile(
    r"\bnumbered\s+(?:list|lists|points?|items?|steps?|format|bullets?|form)\b|\benumerated\s+(?:list|points|steps)\b"
    r"|\b(?:as|in)\s+a\s+numbered\b|\bnumber\s+(?:each|the|your)\s+(?:items?|steps?|points?|lines?)\b"
)


_NUMBERED_A = _Anchored(_NUMBERED_RE, ("number", "enumerated", "as", "in"), tails=_tails(
    (("numbered",), r"\s+(?:list|point|item|step|format|bullet|form)"),
    (("number",), r"\s+(?:each|the|your)\s+(?:item|step|point|line)"),
    (("enumerated",), r"\s+(?:list|points|steps)"),
    (("as", "in"), r"\s+a\s+numbered"),
))


def _d_numbered(c: _Ctx) -> None:
    m = c.first(_NUMBERED_A, ("number", "enumerat"), 8, 30)
    if m and c.free(m.span()):
        c.emit("detectable_format:numbered_list", m.span())


_TABLE_RE = re.compile(
    r"\b(?:in|as|into|using|with|create|make|use|produce|draw|build|give\s+me|provide|format\w*\s+(?:\w+\s+){0,3}?as)\s+"
    r"(?:a\s+|the\s+|one\s+)?(?:markdown\s+|simple\s+|single\s+|comparison\s+|two[\s-]column\s+)?tables?\b|\btabular\s+(?:form|format)\b"
)


_TABLE_TAIL = r"\s+(?:a\s+|the\s+|one\s+)?(?:markdown\s+|simple\s+|single\s+|comparison\s+|two[\s-]column\s+)?table"
_TABLE_A = _Anchored(_TABLE_RE, (
    "in", "as", "us", "with", "create", "make", "produce", "draw", "build", "give", "provide", "format", "tabular",
), tails=_tails(
    (("in", "as", "into", "using", "with", "create", "make", "use", "produce", "draw", "build", "give me", "provide"),
     _TABLE_TAIL),
    (("format",), r"\w*\s+(?:\w+\s+){0,3}?as" + _TABLE_TAIL),
    (("tabular",), r"\s+form"),
))


def _d_table(c: _Ctx) -> None:
    m = c.first(_TABLE_A, ("table", "tabular"), 60, 12)
    if m and c.free(m.span()) and not _NO_BULLETS_RE.search(c.low, max(0, m.start() - 30), m.start()):
        c.emit("detectable_format:table", m.span())


_MARKDOWN_RE = re.compile(r"\bmarkdowns?\b(?!\s+(?:divider|separator|ticks|code\s+ticks))")
_MARKDOWN_SIBLINGS = frozenset({
    "detectable_format:number_highlighted_sections", "detectable_format:number_bullet_lists",
    "detectable_format:table", "detectable_format:numbered_list",
})


_MARKDOWN_A = _Anchored(_MARKDOWN_RE, ("markdown",))


def _d_markdown(c: _Ctx) -> None:
    if any(d.kind in _MARKDOWN_SIBLINGS for d in c.out):
        return
    for m in c.scan(_MARKDOWN_A, ("markdown",), 1, 30):
        if c.free(m.span()):
            c.emit("detectable_format:markdown", m.span())
            return


# ------------------------------------------------------------------------------------------- change_case


_CAPS_CORE = r"(?:capital(?:i[sz]ed)?\s+letters|capitals|caps|upper[\s-]*case(?:\s+letters)?|capital\s+case)"
_CAPWORDS_SUBJ_RE = re.compile(
    rf"\b(?:(?:some|a\s+few|several|certain|key|important|occasional|few|stress)\s+)?words?\s+(?:\w+\s+){{0,2}}?"
    rf"(?:in|with|of|using|written\s+in|that\s+are(?:\s+in)?|which\s+are(?:\s+in)?|be\s+in|are\s+in|to\s+be\s+in)\s+(?:all[\s-]*)?(?:{_CAPS_CORE}|capitali[sz]ed)"
    r"|\ball[\s-]*caps\s+words?\b|\b(?:fully\s+)?capitali[sz]ed\s+words?\b"
    r"|\bcapitali[sz]e\s+(?:(?:a\s+few|some|several|certain|key|important)\s+)words?\b"
)
_CAPS_AFTER_WORDS_RE = re.compile(
    rf"words?\s+(?:\w+\s+){{0,5}}?(?:in|with|be\s+in|are\s+in|written\s+in|using)\s+(?:all[\s-]*)?{_CAPS_CORE}"
)
_ALL_BEFORE_RE = re.compile(r"\b(?:all|every|each|entire|single)\s+(?:of\s+)?(?:your\s+|the\s+|my\s+)?$")


_CAPWORDS_W = (r"s?\s+(?:\w+\s+){0,2}?(?:in|with|of|using|written\s+in|that\s+are(?:\s+in)?|which\s+are(?:\s+in)?|be\s+in"
               r"|are\s+in|to\s+be\s+in)\s+(?:all[\s-]*)?(?:capital|caps|upper)")
_CAPWORDS_SUBJ_A = _Anchored(_CAPWORDS_SUBJ_RE, (), (  # "a" only as in "a few"
    r"some|a\s+few|several|certain|key|important|occasional|few|stress|word|all|fully|capitali"
), tails=_tails(
    (("word",), _CAPWORDS_W),
    (("some", "a few", "several", "certain", "key", "important", "occasional", "few", "stress"),
     r"\s+word" + _CAPWORDS_W),
    (("all",), r"[\s-]*caps\s+word"),
    (("fully",), r"\s+capitali[sz]ed\s+word"),
    (("capitali",), r"[sz]ed\s+word|[sz]e\s+(?:a\s+few|some|several|certain|key|important)\s+word"),
))


def _d_capital_frequency(c: _Ctx) -> None:
    for cnt, s, e in c.counts(_CAPS_AFTER_WORDS_RE, ("word",), 2):  # "at least 5 words in all caps"
        if c.free((s, e)):
            c.emit("change_case:capital_word_frequency", (s, e),
                   {"capital_relation": cnt.relation or "exactly", "capital_frequency": cnt.n})
    for m in c.scan(_CAPWORDS_SUBJ_A, ("capital", "caps", "upper"), 100, 20):
        if not c.free(m.span()) or _ALL_BEFORE_RE.search(c.low, max(0, m.start() - 20), m.start()):
            continue  # "write all words in capital letters" is the whole-response rule
        t = find_times(c.low, m.end(), 110, fast=PREFILTERS)
        if t:
            rel, n, end = t
            span = (m.start(), end)
        else:
            rel, n, span = "at least", 1, m.span()
        c.emit("change_case:capital_word_frequency", span, {"capital_relation": rel, "capital_frequency": n})


_UPPER_RE = re.compile(
    r"\b(?:in\s+all[\s-]*|all[\s-]*|only\s+(?:use\s+|using\s+)?|entirely\s+in\s+|(?:written\s+|typed\s+)?in\s+|using\s+only\s+|solely\s+in\s+)"
    r"(?:capital(?:s|\s+letters?)|caps(?:\s+lock)?|upper[\s-]*case(?:\s+letters?)?|block\s+capitals)\b"
    r"|\bcapitali[sz]e\s+(?:all|every|each|everything|the\s+(?:entire|whole)|your\s+(?:entire|whole))\b"
    r"|\b(?:no|without(?:\s+using)?(?:\s+any)?|zero)\s+lower[\s-]*case\b"
    r"|\blower[\s-]*case\s+(?:letters\s+)?(?:are\s+)?(?:not\s+allowed|forbidden|prohibited|banned)"
    r"|\ball\s+(?:of\s+)?(?:your\s+|the\s+)?(?:words|letters)\b[^.!?\n]{0,40}?\b(?:capitali[sz]ed|upper[\s-]*case|in\s+caps|in\s+capitals?)"
)
_LOWER_RE = re.compile(
    r"\b(?:all[\s-]*|in\s+|only\s+(?:use\s+|using\s+)?|entirely\s+(?:in\s+)?|using\s+only\s+|solely\s+in\s+)lower[\s-]*cases?\b"
    r"|\blower[\s-]*case\s+(?:letters\s+|characters\s+)?only\b"
    r"|\b(?:no|without(?:\s+using)?(?:\s+any)?|not?\s+(?:use|include|contain|have|write\s+with)(?:\s+any)?|never\s+use(?:\s+any)?"
    r"|avoid(?:\s+using)?(?:\s+any)?|zero)\s+(?:capital(?:s|\s+letters?|i[sz]ation)|upper[\s-]*case(?:\s+letters?)?|caps)\b"
    r"|\b(?:do\s+not|don[’']?t|never|without)\s+capitali[sz](?:e|ing)\b"
    r"|\bcapital\s+letters\s+(?:are\s+)?(?:not\s+allowed|forbidden|prohibited|banned)"
    r"|\bnot\s+(?:a\s+single|one|any)\s+(?:letter|word|character)\b[^.!?\n]{0,40}?\bcapitali[sz]ed"
    r"|\ball\s+(?:of\s+)?(?:your\s+|the\s+)?(?:words|letters)\b[^.!?\n]{0,40}?\blower[\s-]*case"
)


_LC = r"lower[\s-]*case"
_CAPSX = r"(?:capital(?:s|\s+letter|i[sz]ation)|upper[\s-]*case|caps)"
_LOWER_A = _Anchored(_LOWER_RE, (
    "all", "in", "only", "entirely", "using", "solely", "lower", "no", "without", "never", "avoid", "zero", "do",
    "capital",
), tails=_tails(
    (("all",), r"[\s-]*" + _LC), (("in",), r"\s+" + _LC), (("only",), r"\s+(?:use\s+|using\s+)?" + _LC),
    (("entirely",), r"\s+(?:in\s+)?" + _LC), (("using",), r"\s+only\s+" + _LC), (("solely",), r"\s+in\s+" + _LC),
    (("lower",), r"[\s-]*case\s+(?:letters\s+|characters\s+)?only"),
    (("no", "zero"), r"\s+" + _CAPSX),
    (("no",), r"t?\s+(?:use|include|contain|have|write\s+with)(?:\s+any)?\s+" + _CAPSX),
    (("without", "avoid"), r"(?:\s+using)?(?:\s+any)?\s+" + _CAPSX),
    (("never",), r"\s+use(?:\s+any)?\s+" + _CAPSX),
    (("do",), r"\s+not\s+capitali[sz]|n[’']?t\s+capitali[sz]"),
    (("never", "without"), r"\s+capitali[sz]"),
    (("capital",), r"\s+letters\s+(?:are\s+)?(?:not\s+allowed|forbidden|prohibited|banned)"),
    (("no",), r"t\s+(?:a\s+single|one|any)\s+(?:letter|word|character)[^.!?\n]{0,40}?capitali[sz]ed"),
    (("all",), r"\s+(?:of\s+)?(?:your\s+|the\s+)?(?:words|letters)[^.!?\n]{0,40}?" + _LC),
))
_UCX = r"(?:capital(?:s|\s+letter)|caps|upper[\s-]*case|block\s+capitals)"
_UPPER_A = _Anchored(_UPPER_RE, (
    "in", "all", "only", "entirely", "written", "typed", "using", "solely", "capitali", "no", "without", "zero",
    "lower",
), tails=_tails(
    (("in",), r"\s+(?:all[\s-]*)?" + _UCX), (("all",), r"[\s-]*" + _UCX),
    (("only",), r"\s+(?:use\s+|using\s+)?" + _UCX), (("entirely", "written", "typed", "solely"), r"\s+in\s+" + _UCX),
    (("using",), r"\s+only\s+" + _UCX),
    (("capitali",), r"[sz]e\s+(?:all|every|each|the\s+(?:entire|whole)|your\s+(?:entire|whole))"),
    (("no", "zero"), r"\s+" + _LC), (("without",), r"(?:\s+using)?(?:\s+any)?\s+" + _LC),
    (("lower",), r"[\s-]*case\s+(?:letters\s+)?(?:are\s+)?(?:not\s+allowed|forbidden|prohibited|banned)"),
    (("all",), r"\s+(?:of\s+)?(?:your\s+|the\s+)?(?:words|letters)[^.!?\n]{0,40}?"
               r"(?:capitali[sz]ed|upper[\s-]*case|in\s+caps|in\s+capital)"),
))


def _d_case(c: _Ctx) -> None:
    wins = c.windows(("lower", "capital", "caps", "upper"), 60, 60)
    low = c.low
    for rx, kind in ((_LOWER_A, "change_case:english_lowercase"), (_UPPER_A, "change_case:english_capital")):
        search = rx.candidates.search  # most windows have no candidate: test that before calling into rx
        for s, e in wins:
            f = search(low, s, e)
            if f is None:
                continue
            m = next((m for m in rx.matches_from(low, f, e, search) if c.free(m.span())), None)
            if m:
                c.emit(kind, m.span())
                break


# -------------------------------------------------------------------------------- punctuation and letters


_PUNCT_NAMES = {
    "exclamation": "!", "question mark": "?", "hashtag": "#", "semicolon": ";", "colon": ":", "comma": ",",
    "hyphen": "-", "dash": "-", "at sign": "@", "at-sign": "@", "dollar sign": "$", "ampersand": "&",
    "period": ".", "full stop": ".", "emoji": "emoji",
}
_PUNCT_UNIT_RE = re.compile(
    r"(?:exclamation\s+(?:marks?|points?)|question\s+marks?|hashtags?|semicolons?|colons?|commas?|hyphens?|dashes|dash|"
    r"at[\s-]signs?|dollar\s+signs?|ampersands?|periods|full\s+stops|emojis?)\b"
)
_PUNCT_NEEDLES = ("exclamation", "question mark", "hashtag", "semicolon", "colon", "comma", "hyphen", "dash",
                  "at sign", "at-sign", "dollar sign", "ampersand", "period", "full stop", "emoji")
_LETTER_RE = re.compile(
    rf"(?:letter|character|char|symbol)\s+(?:{QOPEN}(?P<ql>[^\s\"“”']){QCLOSE}|(?P<l>[a-z])(?![\w'’]))"
)
_NEG_BEFORE_RE = re.compile(r"\b(?:not|never|without|avoid\w*|no|refrain\w*|zero|exclude|omit|cannot)\b|n[’']t\b")


def _d_letter_frequency(c: _Ctx) -> None:
    for m in c.match_at(_LETTER_RE, ("letter", "character", "symbol", "char")):
        if not c.free(m.span()):
            continue
        letter = m.group("ql") or m.group("l")
        t = find_times(c.low, m.end(), 90, fast=PREFILTERS)
        if t:
            rel, n, end = t
            c.emit("keywords:letter_frequency", (m.start(), end),
                   {"letter": letter, "let_relation": rel, "let_frequency": n})
        elif _NEG_BEFORE_RE.search(c.low, clause_start(c.low, m.start(), 40), m.start()):
            c.emit("keywords:letter_frequency", m.span(),
                   {"letter": letter, "let_relation": "less than", "let_frequency": 1})
    for cnt, s, e in c.counts(_PUNCT_UNIT_RE, _PUNCT_NEEDLES, 1):
        if not c.free((s, e)) or cnt.low_n is not None or _negated(c.low, s):
            continue
        unit = " ".join(c.low[s:e].replace("-", " ").split())
        letter = next((ch for k, ch in _PUNCT_NAMES.items() if k in unit), unit)
        c.emit("keywords:letter_frequency", (s, e),
               {"letter": letter, "let_relation": cnt.relation or "exactly", "let_frequency": cnt.n})


_COMMA_RE = re.compile(r"comma(?:s|[\s-]free|less)?\b")
_COMMA_NEG_RE = re.compile(
    r"\b(?:no|not|without|avoid\w*|refrain\w*|never|zero|nor|free\s+of|devoid\s+of|omit\w*|exclud\w*|eliminat\w*|"
    r"skip\w*|ban\w*|forbid\w*|prohibit\w*|remove|removing|drop|dropping|cannot)\b|n[’']t\b"
)
_COMMA_POST_RE = re.compile(
    r"\s*(?:are|is|will\s+be)\s+(?:(?:strictly|completely|totally)\s+)?(?:not\s+allowed|forbidden|prohibited|banned|not\s+permitted|off[\s-]limits)"
)


def _d_no_comma(c: _Ctx) -> None:
    low = c.low
    for us, ue in c.units(_COMMA_RE, ("comma",)):
        if not c.free((us, ue)):
            continue
        cs = clause_start(low, us, 45)
        word = low[us:ue]
        if "free" in word or "less" in word or _COMMA_NEG_RE.search(low, cs, us) or _COMMA_POST_RE.match(low, ue):
            c.emit("punctuation:no_comma", (us, ue))
            return


# ------------------------------------------------------------------------------------------------ keywords

_KW_FREQ_RE = re.compile(
    rf"(?:key\s*words?|words?|terms?|phrases?|names?|tokens?)\s+(?:{QUOTED}|(?P<bare>[^\W\d_][\w'’-]*))"
    rf"|(?:use|using|mention|mentioning|include|including|repeat|repeating|say|saying|write|writing|feature|featuring)\s+{QOPEN}(?P<q2>[^\"“”«»\n]{{1,60}}?){QCLOSE}"
    rf"|[\"“](?P<q3>[^\"“”\n]{{1,60}}?)[\"”]\s+(?:should|must|has\s+to|needs\s+to|is\s+to|will)\s+(?:appear|occur|be\s+(?:used|mentioned|included|repeated))"
)
_KW_FREQ_NEEDLES = ("word", "keyword", "key word", "term", "phrase", "name", "token", "use", "using", "mention",
                    "includ", "repeat", "say", "writ", "featur", "\"", "“")


def _d_keyword_frequency(c: _Ctx) -> None:
    times = c.offsets(("time", "once", "twice", "thrice"))
    if not times:
        return
    # The count is read after the match (`find_times` from its end), so a match can only count if one of these
    # words starts after the match's start: matches from the last one on are not tried.
    starts = sorted(times)
    last = starts[-1]
    for m in c.match_at(_KW_FREQ_RE, _KW_FREQ_NEEDLES, last):
        if not c.free(m.span()):
            continue
        group = next((k for k in ("q", "bare", "q2", "q3") if m.group(k)), None)
        if group is None or (group == "bare" and m.group("bare") in KW_STOP):
            continue
        # `find_times` (without a bare relation) needs one of the words within 70 characters after the match.
        k = bisect_left(starts, m.end())
        if PREFILTERS and (k == len(starts) or starts[k] > m.end() + 66):
            continue
        t = find_times(c.low, m.end(), 70, bare_relation=False, fast=PREFILTERS)
        if not t:
            continue
        rel, n, end = t
        if c.free((m.start(), end)):
            c.emit("keywords:frequency", (m.start(), end),
                   {"keyword": c.cut(m, group).strip(), "relation": rel, "frequency": n})


_NEG = (
    r"(?:do\s+not|does\s+not|don[’']?t|doesn[’']?t|never|not|refrain\s+from|without|must\s+not|mustn[’']?t|should\s+not|"
    r"shouldn[’']?t|cannot|can[’']?t|may\s+not|make\s+sure\s+not\s+to)"
)
_VERB = (
    r"(?:us(?:e|es|ing)|includ(?:e|es|ing)|mention(?:s|ing)?|say(?:s|ing)?|writ(?:e|es|ing)|contain(?:s|ing)?|utili[sz](?:e|ing)|"
    r"put(?:ting)?|add(?:ing)?|employ(?:ing)?|feature|featuring|spell(?:ing)?|typ(?:e|ing))"
)
_SELF_NEG_VERB = r"(?:avoid(?:ing)?|exclud(?:e|ing)|omit(?:ting)?|ban|skip(?:ping)?|leave\s+out)"
_KW_NOUN = r"(?:key[\s-]?words?|words?|terms?|phrases?|names?)"
_FORBID_RE = re.compile(
    rf"(?:{_NEG}(?:\s+(?:ever|even|also|please|at\s+all|once))?\s+{_VERB}|{_SELF_NEG_VERB}(?:\s+{_VERB})?)\s+(?:any\s+of\s+)?(?:the\s+|these\s+)?(?:following\s+)?"
    rf"(?:(?!any\b|other\b|more\b|extra\b|additional\b|single\b)\w+\s+)?{_KW_NOUN}\b(?:\s+such\s+as)?\s*:?"
    rf"|(?:{_NEG}(?:\s+(?:ever|even|also|please))?\s+{_VERB}|{_SELF_NEG_VERB}(?:\s+{_VERB})?)\s+(?={QOPEN}|\[)"
    rf"|{_NEG}\s+mention\s+(?=[a-z])(?!any\b|anything\b|the\b|a\b|an\b|it\b|that\b|this\b|your\b|how\b|what\b|why\b)"
    rf"|(?:banned|forbidden|prohibited|taboo|disallowed)\s+{_KW_NOUN}\b\s*(?:are|is|include|:)?"
)
_FORBID_SUBJ_RE = re.compile(
    rf"{_KW_NOUN}\s+(?P<kw>(?:{QUOTED}|[^\W\d_][\w'’-]*)(?:(?:\s*,\s*|\s+(?:and|or|nor)\s+|\s*,\s*(?:and|or)\s+)(?:{QOPEN}[^\"“”«»\n]{{1,60}}?{QCLOSE}|[^\W\d_][\w'’-]*))*)\s+"
    r"(?:should|must|may|can|is\s+to|are\s+to|do|does)\s*(?:not|n[’']t|never)\s+(?:\w+\s+)?"
    r"(?:appear|be\s+used|be\s+mentioned|be\s+included|occur|show\s+up|be\s+said|be\s+written|be\s+in)"
)
_SUBJ_NEG_TAIL = re.compile(  # the end of every `_FORBID_SUBJ_RE` match, from its negation on
    r"(?:not|n[’']t|never)\s+(?:\w+\s+)?"
    r"(?:appear|be\s+used|be\s+mentioned|be\s+included|occur|show\s+up|be\s+said|be\s+written|be\s+in)"
)
_KWN_HEAD = r"(?:key[\s-]?word|word|term|phrase|name)"
_FORBID_OBJ = (rf"\s+(?:(?:any\s+of\s+)?(?:the\s+|these\s+)?(?:following\s+)?(?:\w+\s+)?{_KWN_HEAD}"
               rf"|[\"“”«'‘’\[])")  # the noun (first alternative) or an opening quote or "[" (second)
_FORBID_AFTER_NEG = (rf"(?:(?:\s+(?:ever|even|also|please|at\s+all|once))?\s+{_VERB}{_FORBID_OBJ}"
                     r"|\s+mention\s+[a-z])")
_FORBID_A = _Anchored(_FORBID_RE, (
    "do", "never", "not", "refrain", "without", "must", "should", "can", "may", "make",  # _NEG
    "avoid", "exclud", "omit", "ban", "skip", "leave",  # _SELF_NEG_VERB
    "forbidden", "prohibited", "taboo", "disallowed",
), tails=_tails(
    (("do not", "does not", "never", "not", "refrain from", "without", "must not", "should not", "cannot", "may not",
      "make sure not to"), _FORBID_AFTER_NEG),
    (("don", "doesn", "mustn", "shouldn", "can"), "[’']?t" + _FORBID_AFTER_NEG),
    (("avoid",), rf"(?:ing)?(?:\s+{_VERB})?{_FORBID_OBJ}"),
    (("exclud",), rf"(?:e|ing)(?:\s+{_VERB})?{_FORBID_OBJ}"),
    (("omit",), rf"(?:ting)?(?:\s+{_VERB})?{_FORBID_OBJ}"),
    (("skip",), rf"(?:ping)?(?:\s+{_VERB})?{_FORBID_OBJ}"),
    (("ban", "leave out"), rf"(?:\s+{_VERB})?{_FORBID_OBJ}"),
    (("banned", "forbidden", "prohibited", "taboo", "disallowed"), r"\s+" + _KWN_HEAD),
))
_FORBID_NEEDLES = ("not", "n't", "n’t", "never", "avoid", "refrain", "without", "exclud", "omit", "forbid", "ban",
                   "prohibit", "taboo", "skip", "leave out", "make sure not")
_NOUN_NEEDLES = ("word", "keyword", "key word", "key-word", "term", "phrase", "name")


def _d_forbidden(c: _Ctx) -> None:
    if not c.has("word", "term", "phrase", "name", "mention", "\"", "“", "'", "‘", "["):
        return
    # Search only windows that run from a negation to the word every match ends at (a noun, an opening quote,
    # "mention"); most prompts have few such pairs, so the expensive pattern runs on little text.
    low = c.low
    negs = sorted(c.offsets(_FORBID_NEEDLES))
    if not negs:
        return
    ends = [(i, i + len(n) + 12) for i, n in c.positions(_NOUN_NEEDLES + ("mention",))]
    ends += [(i, i + 2) for i in c.offsets(_OPENING_QUOTES) if not (i and low[i - 1].isalnum())]
    windows: list[list[int]] = []
    for i, end in sorted(ends):
        k = bisect_left(negs, i - 60)
        if k < len(negs) and negs[k] < i + 1:
            start = max(0, negs[k] - 12)
            if windows and start <= windows[-1][1]:
                windows[-1][1] = max(windows[-1][1], end)
            else:
                windows.append([start, end])
    matches: list[re.Match[str]] = []
    search = _FORBID_A.candidates.search  # most windows have no candidate: test that before calling into the scan
    for s, e in windows:
        e = min(len(low), e)
        f = search(low, s, e)
        if f is not None:
            matches += _FORBID_A.matches_from(low, f, e, search)
    subj_negs = c.offsets(("not", "n't", "n’t", "never"))
    # The negation follows the noun a match starts at (nouns from the last negation on cannot match), and what
    # follows the negation must read as `_SUBJ_NEG_TAIL`.
    if subj_negs and (not PREFILTERS or any(_SUBJ_NEG_TAIL.match(low, i) for i in subj_negs)):
        matches += c.match_at(_FORBID_SUBJ_RE, _NOUN_NEEDLES, max(subj_negs))
    matches.sort(key=lambda m: m.start())
    for m in matches:
        if not c.free(m.span()):
            continue
        if m.re is _FORBID_SUBJ_RE:  # "the words X and Y should not appear"
            words, _ = parse_keywords(c.text, c.low, m.start("kw"), m.end("kw") - m.start("kw"))
            span = m.span()
        else:
            words, end = parse_keywords(c.text, c.low, m.end())
            span = (m.start(), max(end, m.end()))
        words = [w for w in words if HAS_ALNUM_RE.search(w)]
        if words:
            c.emit("keywords:forbidden_words", span, {"forbidden_words": words})


_EXIST_RE = re.compile(
    rf"(?:includ(?:e|es|ing)|contain(?:s|ing)?|us(?:e|es|ing)|mention(?:s|ing)?|incorporat(?:e|es|ing)|featur(?:e|es|ing)|"
    rf"ha(?:ve|s|ving)|add(?:s|ing)?|work\s+in|weave\s+in|put\s+in|with)\s+(?:all\s+(?:of\s+)?)?(?:the\s+|these\s+)?(?:following\s+)?"
    rf"(?:key[\s-]?words?|words?|terms?|phrases?|items?)\b\s*:?"
    rf"|(?:mention|include|use|name[\s-]?drop)\s+(?={QOPEN})"
    rf"|(?:key[\s-]?words?|terms?)\s*:\s*"
)


_EXIST_OBJ = r"\s+(?:all\s+(?:of\s+)?)?(?:the\s+|these\s+)?(?:following\s+)?(?:key[\s-]?word|word|term|phrase|item)"
_EXIST_A = _Anchored(_EXIST_RE, (
    "includ", "contain", "us", "mention", "incorporat", "featur", "ha", "add", "work", "weave", "put", "with",
    "name", "key", "term",
), tails=_tails(
    (("includ", "us", "incorporat", "featur"), "(?:e|es|ing)" + _EXIST_OBJ),
    (("contain", "mention", "add"), "(?:s|ing)?" + _EXIST_OBJ),
    (("ha",), "(?:ve|s|ving)" + _EXIST_OBJ),
    (("work in", "weave in", "put in", "with"), _EXIST_OBJ),
    (("mention",), r"\s+" + _Q_OPEN), (("includ", "us"), r"e\s+" + _Q_OPEN), (("name",), r"[\s-]?drop\s+" + _Q_OPEN),
    (("key",), r"[\s-]?words?\s*:"), (("term",), r"s?\s*:"),
))


def _d_existence(c: _Ctx) -> None:
    if not c.has("word", "term", "phrase", "item", "\"", "“", "'", "‘"):
        return
    matches = list(c.scan(_EXIST_A, ("word", "term", "phrase", "item"), 45, 12)) + c.scan_quotes(_EXIST_A, 15)
    matches.sort(key=lambda m: m.start())
    for m in matches:
        if not c.free(m.span()):
            continue
        words, end = parse_keywords(c.text, c.low, m.end())
        words = [w for w in words if HAS_ALNUM_RE.search(w)]
        span = (m.start(), max(end, m.end()))
        if words and c.free(span):
            c.emit("keywords:existence", span, {"keywords": words})


# -------------------------------------------------------------------------------------------------- length

_LIMIT_VERB_RE = re.compile(r"\b(?:limit|keep|restrict|cap|trim|shorten|cut)\w*\b")


def _length_detector(kind: str, param: str, unit: str, needles: tuple[str, ...], subject: str | None = None,
                     default: str = "exactly", subject_firsts: tuple[str, ...] = ("number",),
                     subject_tails: dict[str, str] | None = None) -> Callable[[_Ctx], None]:
    """A detector for counts of one unit (words, sentences, ...): "[relation] N unit [relation]", ranges
    ("200-300 words", "between 3 and 5 sentences"), "limit it to N unit", and "the number of unit should be N"."""
    unit_re = re.compile(rf"(?:{unit})\b")
    subj_re = _Anchored(re.compile(
        rf"{subject}\s+(?:\w+\s+){{0,5}}?(?:(?:should|must|has\s+to|needs\s+to|will|shall)\s+(?:\w+\s+)?be|is|of|:|=)\s*"
        rf"(?:(?P<pre>{REL})\s+)?(?P<num>{NUM})\b(?:\s*(?:{unit}))?(?:,?\s+(?P<post>{REL_POST})\b)?"
    ), subject_firsts, tails=subject_tails) if subject else None
    subject_needles = ("number of", "count", "limit") if subject else ()

    def detect(c: _Ctx) -> None:
        low = c.low
        for cnt, s, e in c.counts(unit_re, needles, 1):
            if not c.free((s, e)) or _per_unit(low, s) or _negated(low, s):
                continue
            if cnt.low_n is not None:
                c.emit(kind, (s, e), {"relation": "at least", param: cnt.low_n})
                c.out.append(Found(kind, (s, e), {"relation": "at most", param: cnt.n}))
                continue
            rel = cnt.relation
            if rel is None and cnt.prev == "to" and _LIMIT_VERB_RE.search(low, clause_start(low, s, 50), s):
                rel = "at most"  # "limit your answer to 50 words"
            c.emit(kind, (s, e), {"relation": rel or default, param: cnt.n})
        if subj_re is not None:
            for m in c.scan(subj_re, subject_needles, 10, 80):
                n = parse_number(m.group("num"))
                if n is not None and c.free(m.span()):
                    rel, n = relation(m.group("pre"), m.group("post"), None, n, default)
                    c.emit(kind, m.span(), {"relation": rel, param: n})

    detect.__name__ = f"_d_{param}"
    return detect


_d_words = _length_detector(
    "length_constraints:number_words", "num_words", r"words?", ("word",),
    r"(?:number\s+of\s+words|word\s+(?:count|limit))", default="about", subject_firsts=("number", "word"),
    subject_tails={"number of words": r"\s", "word": r"\s+(?:count|limit)\s"},
)
_d_sentences = _length_detector(
    "length_constraints:number_sentences", "num_sentences", r"sentences?", ("sentence",), r"number\s+of\s+sentences",
    subject_tails={"number of sentences": r"\s"},
)
_d_characters = _length_detector(
    "length_constraints:number_characters", "num_characters", r"(?:characters?|chars)(?!\s+(?:before|after))",
    ("char",), r"(?:number\s+of\s+characters|character\s+(?:count|limit))", default="about",
    subject_firsts=("number", "character"),
    subject_tails={"number of characters": r"\s", "character": r"\s+(?:count|limit)\s"},
)
_d_paragraphs_plain = _length_detector(
    "length_constraints:number_paragraphs", "num_paragraphs", r"paragraphs?", ("paragraph",),
    r"number\s+of\s+paragraphs", subject_tails={"number of paragraphs": r"\s"},
)
_d_paragraphs_divided = _length_detector(
    "length_constraints:number_paragraphs", "num_paragraphs", r"(?:sections?|parts?|stanzas?|blocks?|chunks?|verses?)",
    ("section", "part", "stanza", "block", "chunk", "verse"),
)
_DIVIDER_RE = re.compile(
    r"(?<!\*)\*\s?\*\s?\*(?![\s*]*\*)|\bmarkdown\s+divider\b|\bdividers?\b|\bhorizontal\s+rules?\b"
)


_DIVIDER_A = _Anchored(_DIVIDER_RE, ("*", "markdown", "divider", "horizontal"), tails=_tails(
    (("*",), r"\s?\*\s?\*"), (("markdown",), r"\s+divider"), (("divider",), ""), (("horizontal",), r"\s+rule"),
))


def _d_paragraphs(c: _Ctx) -> None:
    if c.has("paragraph"):
        _d_paragraphs_plain(c)
    divider = c.first(_DIVIDER_A, ("***", "* * *", "divider", "horizontal rule"), 2, 20)
    if divider:  # sections separated by a divider ("4 sections separated by ***") are paragraphs to IFEval
        before = len(c.out)
        _d_paragraphs_divided(c)
        if len(c.out) == before and c.free(divider.span()) and not any(
                d.kind == "length_constraints:number_paragraphs" for d in c.out):
            c.emit("length_constraints:number_paragraphs", divider.span(), {"relation": None, "num_paragraphs": None})


# ------------------------------------------------------------------------------------------------ language

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
"""Language names the detector knows, mapped to ISO 639-1 codes (as IFEval's `language` kwarg uses)."""

_LANG_T = trie_alt(LANGUAGES)
_LANG_NAMES = frozenset(LANGUAGES)
_EN_CONTEXT_RE = re.compile(
    r"\b(?:respond\w*|response|answer\w*|repl\w*|writ\w*|entire\w*|only|completely|exclusively|solely|output|language)\b"
)
_NON_ALPHA_TO_SPACE = {i: " " for i in range(128) if not chr(i).isalpha()}
_LANG_RE = re.compile(
    rf"\b(?:in|into|using|use|to)\s+(?:(?:only|the|entirely|fluent|pure|proper|plain|simple|formal|informal|native|standard)\s+)*"
    rf"(?P<lang>{_LANG_T})\b(?!\s*-)(?!\s+(?:history|literature|culture|food|cuisine|style|people|movies?|films?|music|poetry|poets?|songs?|"
    r"names?|dishes|restaurants?|cities|city|government|economy|wars?|empire|revolution|translation|speakers?|grammar|class(?:es)?|"
    r"course|lessons?|teachers?|words?|expressions?|idioms?|dictionary|dialects?|alphabet|script|characters|art|team|league|market))"
    rf"|\b(?P<lang2>{_LANG_T})\s+(?:language\s+)?only\b|\bonly\s+(?:the\s+)?(?P<lang3>{_LANG_T})\b"
)
_LANG_CONTEXT_RE = re.compile(
    r"\b(?:respond\w*|response|answer\w*|repl\w*|writ\w*|explain\w*|rewrite|translat\w*|say|speak|tell|describe|entire\w*|only|"
    r"completely|exclusively|solely|output|text|letter|email|essay|poem|story|haiku|joke|review|summary|summari[sz]e|document|"
    r"compose|language|draft|create|generate|give|provide|list|make|use|using)\b"
)


_LANG_A = _Anchored(_LANG_RE, ("in", "us", "to", "only", *LANGUAGES), tails=_tails(
    (("in", "into", "using", "use", "to"), r"\s+(?:(?:only|the|entirely|fluent|pure|proper|plain|simple|formal|informal|"
                                           rf"native|standard)\s+)*{_LANG_T}"),
    (tuple(LANGUAGES), r"\s+(?:language\s+)?only"),
    (("only",), rf"\s+(?:the\s+)?{_LANG_T}"),
))


def _is_token_edge(ch: str) -> bool:
    """True for a character that ends a token of `low.translate(_NON_ALPHA_TO_SPACE).split()`."""
    return (ch < "\x80" and not ch.isalpha()) or ch.isspace()


def _d_language(c: _Ctx) -> None:
    # The names that are whole tokens of the prompt (tokens: runs between ASCII non-letters and white space). The
    # language names are in the needle index, so only the names that occur at all are looked at.
    low = c.low
    size = len(low)
    names = set()
    for a in _LANG_KEYS.intersection(c.hits):
        for name in _LANG_IN[a]:
            if name in names:
                continue
            k = len(name)
            for i, _ in c.positions((name,)):
                if (i == 0 or _is_token_edge(low[i - 1])) and (i + k == size or _is_token_edge(low[i + k])):
                    names.add(name)
                    break
    if not names:
        return
    seen: set[str] = set()
    for i, name in sorted(c.positions(names)):
        if (i and low[i - 1].isalpha()) or low[i + len(name):i + len(name) + 1].isalpha():
            continue
        for m in _LANG_A.finditer(low, max(0, i - 40), min(len(low), i + len(name) + 30)):
            code = LANGUAGES[m.group("lang") or m.group("lang2") or m.group("lang3")]
            if code in seen or not c.free(m.span()):
                continue
            if m.group("lang"):
                cs = clause_start(low, m.start(), 80)
                context = _EN_CONTEXT_RE if code == "en" else _LANG_CONTEXT_RE  # "how commas work in English"
                if not context.search(low, cs, min(len(low), m.end() + 30)):
                    continue
            seen.add(code)
            c.emit("language:response_language", m.span(), {"language": code})


# ----------------------------------------------------------------------------------------------- the table

class Detector(NamedTuple):
    """One detector: the function, the trigger needles (it runs only if one occurs in the lower-cased prompt),
    and every kind it can emit (declared, so a kind leads back to the detector that finds it; a test checks the
    declaration against what the detectors emit)."""

    run: Callable[[_Ctx], None]
    needles: tuple[str, ...]
    kinds: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.run.__name__.removeprefix("_d_")


DETECTORS: tuple[Detector, ...] = (
    Detector(_d_repeat, ("repeat", "verbatim", "word for word", "restate", "copy", "reproduce", "recite", "echo"),
             ("combination:repeat_prompt",)),
    Detector(_d_two_responses, ("******", "asterisk", "different", "distinct", "separate", "alternative"),
             ("combination:two_responses",)),
    Detector(_d_postscript, ("p.s", "p. s", "p.p", "script"),
             ("detectable_content:postscript",)),
    Detector(_d_title, ("<<", "angular", "angle bracket"),
             ("detectable_format:title",)),
    Detector(_d_json, ("json",),
             ("detectable_format:json_format",)),
    Detector(_d_quotation, ("quot",),
             ("startend:quotation",)),
    Detector(_d_constrained, ("one of", "choose", "pick", "select", "my answer is", "options", "choices"),
             ("detectable_format:constrained_response",)),
    Detector(_d_end, ("end", "finish", "conclu", "close", "last", "final", "sign off", "wrap up", "terminat"),
             ("startend:end_checker",)),
    Detector(_d_nth_paragraph, ("paragraph",),
             ("length_constraints:nth_paragraph_first_word",)),
    Detector(_d_start, ("start", "begin", "open", "first"),
             ("startend:start_checker",)),
    Detector(_d_sections, _SECTION_NEEDLES,
             ("detectable_format:multiple_sections",)),
    Detector(_d_highlights, _HL_NEEDLES,
             ("detectable_format:number_highlighted_sections",)),
    Detector(_d_bullets, ("bullet",),
             ("detectable_format:number_bullet_lists",)),
    Detector(_d_placeholders, ("placeholder",),
             ("detectable_content:number_placeholders",)),
    Detector(_d_capital_frequency, ("capital", "caps", "upper"),
             ("change_case:capital_word_frequency",)),
    Detector(_d_case, ("lower", "capital", "caps", "upper"),
             ("change_case:english_lowercase", "change_case:english_capital")),
    Detector(_d_letter_frequency, ("letter", "character", "symbol", "char") + _PUNCT_NEEDLES,
             ("keywords:letter_frequency",)),
    Detector(_d_no_comma, ("comma",),
             ("punctuation:no_comma",)),
    Detector(_d_keyword_frequency, ("time", "once", "twice", "thrice"),
             ("keywords:frequency",)),
    Detector(_d_forbidden, _FORBID_NEEDLES,
             ("keywords:forbidden_words",)),
    Detector(_d_existence, ("word", "term", "phrase", "item", "\"", "“", "'", "‘"),
             ("keywords:existence",)),
    Detector(_d_paragraphs, ("paragraph", "***", "* * *", "divider", "horizontal rule"),
             ("length_constraints:number_paragraphs",)),
    Detector(_d_sentences, ("sentence",),
             ("length_constraints:number_sentences",)),
    Detector(_d_words, ("word",),
             ("length_constraints:number_words",)),
    Detector(_d_characters, ("char",),
             ("length_constraints:number_characters",)),
    Detector(_d_language, ("",),
             ("language:response_language",)),
    Detector(_d_numbered, ("number", "enumerat"),
             ("detectable_format:numbered_list",)),
    Detector(_d_table, ("table", "tabular"),
             ("detectable_format:table",)),
    Detector(_d_markdown, ("markdown",),
             ("detectable_format:markdown",)),
)


def run_detectors(text: str) -> list[Found]:
    """Every detection in `text`, in detector order (the raw form `constraints.detect_constraints` refines)."""
    ctx = _Ctx(text)
    todo = set(_ALWAYS_RUN)  # the detectors one of whose needles occurs, from the needle index
    todo.update(*map(_RUNS.__getitem__, ctx.hits))
    detectors = DETECTORS  # read at call time (tests wrap the detectors)
    for j in sorted(todo):
        detectors[j].run(ctx)
    return ctx.out


_set_needles(
    [n for d in DETECTORS for n in d.needles] + list(_OPENING_QUOTES) + list(_KW_FREQ_NEEDLES) + list(_FORBID_NEEDLES)
    + list(_NOUN_NEEDLES) + ["mention", "[", "number of", "count", "limit", "section", "part", "phrase", "word",
                             "point", "sentence", "passage", "stanza", "block", "chunk", "verse"]
    + list(LANGUAGES)
)
_LANG_IN: dict[str, tuple[str, ...]] = {  # the language names inside each needle
    a: t for a in _NEEDLES if (t := tuple(name for name in LANGUAGES if name in a))
}
_LANG_KEYS = frozenset(_LANG_IN)
_ALWAYS_RUN = tuple(j for j, d in enumerate(DETECTORS) if "" in d.needles)
_RUNS: dict[str, tuple[int, ...]] = {  # the gated detectors with a needle inside each needle
    a: tuple(j for j, d in enumerate(DETECTORS) if any(n and n in a for n in d.needles)) for a in _NEEDLES
}
