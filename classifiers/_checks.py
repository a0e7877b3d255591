"""One check per constraint kind: does an answer satisfy the parameters the detector read from the prompt?

Each check takes the detected parameters and the answer and returns `(status, reason)`, where status is "pass",
"fail" or "cannot_tell". A parameter that is missing or unreadable gives "cannot_tell", never "fail": the guard
must not pay for a second call on a guess. The checks are written here from the instructions' plain meaning
(they are not IFEval's checkers, which are the judge the guard is measured against), with pure-Python counting
only: regexes without nested quantifiers, so each check is linear in the answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

Status = str  # "pass" | "fail" | "cannot_tell"
Result = tuple[Status, str]
Check = Callable[[Mapping[str, Any], str], Result]

PASS, FAIL, CANNOT_TELL = "pass", "fail", "cannot_tell"

_WORD_RE = re.compile(r"\w+")
_SENTENCE_END_RE = re.compile(r"[.!?]+[\"')\]]*(?=\s|$)")
_BULLET_RE = re.compile(r"^[ \t]*(?:\*(?!\*)|-(?!-)|•)[ \t]*\S", re.M)
_LIST_MARK_RE = re.compile(r"^[ \t]*(?:\d{1,3}|[a-zA-Z])[.)][ \t]+", re.M)
_NUMBERED_RE = re.compile(r"^[ \t]*\d{1,3}[.)][ \t]+\S", re.M)
_HIGHLIGHT_RE = re.compile(r"\*\*[^\n*]+\*\*|\*[^\n*]+\*")
_PLACEHOLDER_RE = re.compile(r"\[[^\[\]\n]*\]")
_TITLE_RE = re.compile(r"<<[^\n<>]+>>")
_TABLE_SEP_RE = re.compile(r"^[ \t]*\|?[ \t]*:?-{3,}:?[ \t]*(?:\|[ \t]*:?-{3,}:?[ \t]*)+\|?[ \t]*$", re.M)
_MARKDOWN_RE = re.compile(r"^[ \t]*(?:#{1,6}[ \t]|[*-][ \t]|\d+[.)][ \t]|>[ \t]|\|)|\*\*[^\n*]+\*\*|`[^`\n]+`", re.M)
_FENCE_RE = re.compile(r"^```[\w-]*[ \t]*\n|\n?```[ \t]*$")
_PARAGRAPH_BREAK_RE = re.compile(r"\n[ \t]*\n")
_DIVIDER_RE = re.compile(r"\s?\*\*\*\s?")


def _relation_holds(relation: str, actual: int, n: int) -> bool | None:
    """Whether `actual` satisfies "relation n"; None for a relation this module cannot judge."""
    if relation == "at least":
        return actual >= n
    if relation == "at most":
        return actual <= n
    if relation == "less than":
        return actual < n
    if relation == "exactly":
        return actual == n
    if relation == "about":  # a hedged count ("a 300-word essay"): only a gross miss is a failure
        return n / 2 <= actual <= n * 2
    return None


def counted(params: Mapping[str, Any], answer: str, counter: Callable[[str], int], unit: str, count_key: str,
            default: str | None = None, rel_key: str = "relation") -> Result:
    """Compare a count of `unit` in the answer with the detected relation and number."""
    n = params.get(count_key)
    rel = params.get(rel_key) or default
    if not isinstance(n, int) or isinstance(n, bool) or n < 0 or rel is None:
        return CANNOT_TELL, f"the {unit} count in the prompt could not be read"
    actual = counter(answer)
    ok = _relation_holds(rel, actual, n)
    if ok is None:
        return CANNOT_TELL, f"unknown relation {rel!r}"
    return (PASS if ok else FAIL), f"{actual} {unit}; {'wanted' if ok else 'the limit is'} {rel} {n}"


# ------------------------------------------------------------------------------------------------ counters


def count_words(text: str) -> int:
    return len(_WORD_RE.findall(text))


def count_sentences(text: str) -> int:
    """Sentence ends ('.', '!', '?' before a space or the end), plus a final sentence without one."""
    text = _LIST_MARK_RE.sub("", text)  # "1. " opens an item, it does not end a sentence
    ends = list(_SENTENCE_END_RE.finditer(text))
    tail = text[ends[-1].end():] if ends else text
    return len(ends) + (1 if _WORD_RE.search(tail) else 0)


def count_paragraphs(text: str) -> int:
    """Paragraphs separated by a '***' divider if the answer uses one, else by blank lines."""
    parts = _DIVIDER_RE.split(text) if "***" in text else _PARAGRAPH_BREAK_RE.split(text)
    return sum(1 for p in parts if p.strip())


def count_bullets(text: str) -> int:
    return len(_BULLET_RE.findall(text))


def count_highlights(text: str) -> int:
    return sum(1 for m in _HIGHLIGHT_RE.findall(text) if m.strip("* "))


def count_placeholders(text: str) -> int:
    return len(_PLACEHOLDER_RE.findall(text))


def count_capital_words(text: str) -> int:
    return sum(1 for w in _WORD_RE.findall(text) if w.isupper())


# ------------------------------------------------------------------------------------------------ the checks


def _words(params: Mapping[str, Any], answer: str) -> Result:
    return counted(params, answer, count_words, "words", "num_words")


def _sentences(params: Mapping[str, Any], answer: str) -> Result:
    return counted(params, answer, count_sentences, "sentences", "num_sentences")


def _characters(params: Mapping[str, Any], answer: str) -> Result:
    return counted(params, answer, len, "characters", "num_characters")


def _paragraphs(params: Mapping[str, Any], answer: str) -> Result:
    return counted(params, answer, count_paragraphs, "paragraphs", "num_paragraphs")


def _bullets(params: Mapping[str, Any], answer: str) -> Result:
    if params.get("num_bullets") is None:  # "use bullet points": at least one
        return counted({"relation": "at least", "num_bullets": 1}, answer, count_bullets, "bullet points", "num_bullets")
    return counted(params, answer, count_bullets, "bullet points", "num_bullets", "exactly")


def _highlights(params: Mapping[str, Any], answer: str) -> Result:
    return counted(params, answer, count_highlights, "highlighted sections", "num_highlights", "at least")


def _placeholders(params: Mapping[str, Any], answer: str) -> Result:
    return counted(params, answer, count_placeholders, "placeholders", "num_placeholders", "at least")


def _capital_words(params: Mapping[str, Any], answer: str) -> Result:
    return counted(params, answer, count_capital_words, "all-capital words", "capital_frequency", "exactly",
                   rel_key="capital_relation")


def _letter_frequency(params: Mapping[str, Any], answer: str) -> Result:
    letter = params.get("letter")
    if not isinstance(letter, str) or len(letter) != 1:
        return CANNOT_TELL, "the letter in the prompt could not be read"
    low = answer.lower()
    return counted(params, low, lambda t: t.count(letter.lower()), f"'{letter}'", "let_frequency", "exactly",
                   rel_key="let_relation")


def _sections(params: Mapping[str, Any], answer: str) -> Result:
    splitter = params.get("section_spliter")
    if not isinstance(splitter, str) or not splitter.strip():
        return CANNOT_TELL, "the section marker could not be read"
    marks = len(re.findall(rf"(?:^|\s){re.escape(splitter.strip())}\s?\d+", answer))
    return counted(params, answer, lambda _t: marks, f"'{splitter} N' sections", "num_sections", "at least")


def _nth_paragraph(params: Mapping[str, Any], answer: str) -> Result:
    word, nth = params.get("first_word"), params.get("nth_paragraph")
    if not isinstance(word, str) or not word or not isinstance(nth, int) or nth < 1:
        return CANNOT_TELL, "the paragraph rule could not be read"
    paragraphs = [p for p in _PARAGRAPH_BREAK_RE.split(answer) if p.strip()]
    total = params.get("num_paragraphs")
    if isinstance(total, int) and len(paragraphs) != total:
        return FAIL, f"{len(paragraphs)} paragraphs; wanted {total}"
    if len(paragraphs) < nth:
        return FAIL, f"{len(paragraphs)} paragraphs; paragraph {nth} is missing"
    first = _WORD_RE.search(paragraphs[nth - 1])
    got = first.group(0).lower() if first else ""
    want = word.strip().lower()
    if got == want or (first and paragraphs[nth - 1].lstrip(" \"'*#").lower().startswith(want)):
        return PASS, f"paragraph {nth} starts with '{word}'"
    return FAIL, f"paragraph {nth} starts with '{got}', not '{word}'"


def _json(params: Mapping[str, Any], answer: str) -> Result:
    text = _FENCE_RE.sub("", answer.strip()).strip()
    try:
        json.loads(text)
    except json.JSONDecodeError as e:
        return FAIL, f"not valid JSON ({e.msg} at {e.pos})"
    except ValueError:  # e.g. a number too long to convert
        return FAIL, "not valid JSON"
    return PASS, "valid JSON"


def _title(params: Mapping[str, Any], answer: str) -> Result:
    return (PASS, "has a <<title>>") if _TITLE_RE.search(answer) else (FAIL, "no title in <<double angular brackets>>")


def _quotation(params: Mapping[str, Any], answer: str) -> Result:
    t = answer.strip()
    ok = len(t) > 1 and t[0] in "\"“" and t[-1] in "\"”"
    return (PASS, "wrapped in double quotes") if ok else (FAIL, "not wrapped in double quotation marks")


def _end_phrase(params: Mapping[str, Any], answer: str) -> Result:
    phrase = params.get("end_phrase")
    if not isinstance(phrase, str) or not phrase.strip():
        return CANNOT_TELL, "the closing phrase could not be read"
    want = phrase.strip().lower()
    got = answer.strip().strip("\"'*” ").lower()
    if got.endswith(want) or got.endswith(want.rstrip(".!?")):
        return PASS, f"ends with '{phrase.strip()}'"
    return FAIL, f"does not end with '{phrase.strip()}'"


def _start_phrase(params: Mapping[str, Any], answer: str) -> Result:
    phrase = params.get("start_phrase")
    if not isinstance(phrase, str) or not phrase.strip():
        return CANNOT_TELL, "the opening phrase could not be read"
    want = phrase.strip().lower().rstrip(".!?:,")
    got = answer.strip().lstrip("\"'*“# ").lower()
    return (PASS, f"starts with '{phrase.strip()}'") if got.startswith(want) else (
        FAIL, f"does not start with '{phrase.strip()}'")


def _postscript(params: Mapping[str, Any], answer: str) -> Result:
    marker = params.get("postscript_marker")
    if not isinstance(marker, str) or not marker.strip():
        return CANNOT_TELL, "the postscript marker could not be read"
    want = re.sub(r"\s+", "", marker).lower().rstrip(".")
    lines = (re.sub(r"\s+", "", line).lower().lstrip("*_") for line in answer.splitlines())
    return (PASS, f"has a {marker} postscript") if any(line.startswith(want) for line in lines) else (
        FAIL, f"no line starts with {marker}")


def _two_responses(params: Mapping[str, Any], answer: str) -> Result:
    parts = [p.strip() for p in answer.split("******")]
    if len(parts) != 2 or not all(parts):
        return FAIL, f"{len(parts)} parts separated by ******; wanted 2"
    return (FAIL, "the two responses are identical") if parts[0] == parts[1] else (PASS, "two responses")


def _no_comma(params: Mapping[str, Any], answer: str) -> Result:
    n = answer.count(",")
    return (PASS, "no commas") if n == 0 else (FAIL, f"{n} commas")


def _lowercase(params: Mapping[str, Any], answer: str) -> Result:
    upper = sum(1 for ch in answer if ch.isupper())
    return (PASS, "all lowercase") if upper == 0 and answer.strip() else (FAIL, f"{upper} capital letters")


def _uppercase(params: Mapping[str, Any], answer: str) -> Result:
    lower = sum(1 for ch in answer if ch.islower())
    return (PASS, "all capitals") if lower == 0 and answer.strip() else (FAIL, f"{lower} lowercase letters")


def _keywords(params: Mapping[str, Any], answer: str) -> Result:
    words = params.get("keywords")
    if not isinstance(words, list) or not words or not all(isinstance(w, str) and w.strip() for w in words):
        return CANNOT_TELL, "the keywords could not be read"
    low = answer.lower()
    missing = [w for w in words if w.strip().lower() not in low]
    return (FAIL, f"missing {', '.join(repr(w) for w in missing)}") if missing else (PASS, "all keywords present")


def _forbidden(params: Mapping[str, Any], answer: str) -> Result:
    words = params.get("forbidden_words")
    if not isinstance(words, list) or not words or not all(isinstance(w, str) and w.strip() for w in words):
        return CANNOT_TELL, "the forbidden words could not be read"
    low = answer.lower()
    used = [w for w in words if re.search(rf"\b{re.escape(w.strip().lower())}\b", low)]
    return (FAIL, f"uses {', '.join(repr(w) for w in used)}") if used else (PASS, "no forbidden word")


def _keyword_frequency(params: Mapping[str, Any], answer: str) -> Result:
    word = params.get("keyword")
    if not isinstance(word, str) or not word.strip():
        return CANNOT_TELL, "the keyword could not be read"
    want = word.strip().lower()  # counted as a substring: "sneakers" is a use of "sneaker"
    return counted(params, answer.lower(), lambda t: t.count(want), f"times '{word.strip()}'", "frequency",
                   "exactly")


def _numbered(params: Mapping[str, Any], answer: str) -> Result:
    n = len(_NUMBERED_RE.findall(answer))
    return (PASS, f"{n} numbered items") if n else (FAIL, "no numbered list")


def _table(params: Mapping[str, Any], answer: str) -> Result:
    return (PASS, "has a table") if _TABLE_SEP_RE.search(answer) else (FAIL, "no markdown table")


def _markdown(params: Mapping[str, Any], answer: str) -> Result:
    return (PASS, "uses markdown") if _MARKDOWN_RE.search(answer) else (FAIL, "no markdown formatting")


# -------------------------------------------------------------------------------------------------- language

# Scripts as Unicode ranges; a language written in its own script is told apart by the share of its letters.
_SCRIPTS: dict[str, tuple[tuple[int, int], ...]] = {
    "cyrillic": ((0x0400, 0x04FF),), "arabic": ((0x0600, 0x06FF), (0x0750, 0x077F)),
    "devanagari": ((0x0900, 0x097F),), "bengali": ((0x0980, 0x09FF),), "gurmukhi": ((0x0A00, 0x0A7F),),
    "gujarati": ((0x0A80, 0x0AFF),), "tamil": ((0x0B80, 0x0BFF),), "telugu": ((0x0C00, 0x0C7F),),
    "kannada": ((0x0C80, 0x0CFF),), "malayalam": ((0x0D00, 0x0D7F),), "thai": ((0x0E00, 0x0E7F),),
    "georgian": ((0x10A0, 0x10FF),), "hangul": ((0xAC00, 0xD7AF), (0x1100, 0x11FF)),
    "kana": ((0x3040, 0x30FF),), "han": ((0x4E00, 0x9FFF),), "hebrew": ((0x0590, 0x05FF),),
    "greek": ((0x0370, 0x03FF),), "armenian": ((0x0530, 0x058F),), "ethiopic": ((0x1200, 0x137F),),
    "sinhala": ((0x0D80, 0x0DFF),), "khmer": ((0x1780, 0x17FF),), "lao": ((0x0E80, 0x0EFF),),
    "myanmar": ((0x1000, 0x109F),),
}
_LANG_SCRIPT = {
    "ru": "cyrillic", "uk": "cyrillic", "bg": "cyrillic", "be": "cyrillic", "mk": "cyrillic", "sr": "cyrillic",
    "kk": "cyrillic", "mn": "cyrillic", "ar": "arabic", "fa": "arabic", "ur": "arabic", "ps": "arabic",
    "hi": "devanagari", "mr": "devanagari", "ne": "devanagari", "bn": "bengali", "pa": "gurmukhi",
    "gu": "gujarati", "ta": "tamil", "te": "telugu", "kn": "kannada", "ml": "malayalam", "th": "thai",
    "ka": "georgian", "ko": "hangul", "ja": "kana", "zh": "han", "he": "hebrew", "yi": "hebrew", "el": "greek",
    "hy": "armenian", "am": "ethiopic", "si": "sinhala", "km": "khmer", "lo": "lao", "my": "myanmar",
}
# The commonest function words: a Latin-script answer is told apart by which list its words hit most.
_STOPWORDS = {
    "en": frozenset("the and of to is in that it for was with as on are be this you have not but".split()),
    "de": frozenset("der die und das ist nicht ein eine zu den mit sich auf für ich des dem auch".split()),
    "fr": frozenset("le la les et est des une un du que pour pas dans qui sur au avec ce sont".split()),
    "es": frozenset("el la los las y es de que en un una por para con no se del su al como".split()),
    "it": frozenset("il la di che e è un una per non sono del della con gli le si al come".split()),
    "pt": frozenset("o a os as e de que um uma para com não do da em se no na por".split()),
    "nl": frozenset("de het een en is van dat niet op te voor met zijn er maar ook als".split()),
}
_MIN_LETTERS = 20


def _script_share(text: str, script: str) -> float:
    ranges = _SCRIPTS[script]
    letters = [ord(ch) for ch in text if ch.isalpha()]
    if not letters:
        return 0.0
    return sum(1 for o in letters if any(a <= o <= b for a, b in ranges)) / len(letters)


def _latin_share(text: str) -> float:
    letters = [ch for ch in text if ch.isalpha()]
    return sum(1 for ch in letters if ch < "\u0250") / len(letters) if letters else 0.0


def _language(params: Mapping[str, Any], answer: str) -> Result:
    code = params.get("language")
    if not isinstance(code, str):
        return CANNOT_TELL, "the language could not be read"
    if sum(1 for ch in answer if ch.isalpha()) < _MIN_LETTERS:
        return CANNOT_TELL, "too little text to tell the language"
    script = _LANG_SCRIPT.get(code)
    if script is not None:
        share = _script_share(answer, "kana") + _script_share(answer, "han") if code == "ja" else _script_share(
            answer, script)
        if share >= 0.5:
            return PASS, f"{share:.0%} of letters in the {script} script"
        if share < 0.1:
            return FAIL, f"{share:.0%} of letters in the {script} script expected for '{code}'"
        return CANNOT_TELL, f"{share:.0%} of letters in the {script} script"
    latin = _latin_share(answer)
    if latin < 0.5:
        return FAIL, f"mostly non-Latin letters; '{code}' is written in Latin script"
    words = [w.lower() for w in _WORD_RE.findall(answer)]
    hits = {lang: sum(1 for w in words if w in stop) for lang, stop in _STOPWORDS.items()}
    best = max(hits, key=hits.__getitem__)
    if code in _STOPWORDS and best == code:
        return PASS, f"reads as '{code}'"
    if best == "en" and hits["en"] >= max(5, 0.15 * len(words)) and hits["en"] > 3 * hits.get(code, 0):
        return FAIL, f"reads as English, not '{code}'"
    return CANNOT_TELL, f"cannot tell whether it is '{code}'"


CHECKS: dict[str, Check] = {
    "change_case:capital_word_frequency": _capital_words,
    "change_case:english_capital": _uppercase,
    "change_case:english_lowercase": _lowercase,
    "combination:two_responses": _two_responses,
    "detectable_content:number_placeholders": _placeholders,
    "detectable_content:postscript": _postscript,
    "detectable_format:json_format": _json,
    "detectable_format:multiple_sections": _sections,
    "detectable_format:number_bullet_lists": _bullets,
    "detectable_format:number_highlighted_sections": _highlights,
    "detectable_format:title": _title,
    "keywords:existence": _keywords,
    "keywords:forbidden_words": _forbidden,
    "keywords:frequency": _keyword_frequency,
    "keywords:letter_frequency": _letter_frequency,
    "language:response_language": _language,
    "length_constraints:nth_paragraph_first_word": _nth_paragraph,
    "length_constraints:number_paragraphs": _paragraphs,
    "length_constraints:number_sentences": _sentences,
    "length_constraints:number_words": _words,
    "punctuation:no_comma": _no_comma,
    "startend:end_checker": _end_phrase,
    "startend:quotation": _quotation,
    "startend:start_checker": _start_phrase,
    "length_constraints:number_characters": _characters,
    "detectable_format:numbered_list": _numbered,
    "detectable_format:table": _table,
    "detectable_format:markdown": _markdown,
}
"""kind -> check. Kinds the detector emits but that no text check can judge from the detected parameters alone
(`combination:repeat_prompt`: which part to repeat; `detectable_format:constrained_response`: which options)
are absent: their verdict is always "cannot_tell"."""
