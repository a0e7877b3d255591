"""The constraint detector's output, kept exactly: every detection (kind, span, parameters, order) on the IFEval
prompts and on a fixed set of generated adversarial texts equals the output recorded before the detector was
last optimised (`detector_reference.json.gz`).

A speed-up of the detector must not change what it finds. If a change *means* to change the output, re-record
with `python tests/classifiers/test_detector_reference.py --record` and review the diff of the decoded file.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script (--record)
    sys.path.insert(0, str(ROOT))

from classifiers.constraints import detect_constraints  # noqa: E402

REFERENCE = Path(__file__).with_name("detector_reference.json.gz")
IFEVAL = Path(os.environ.get("THINKGATE_DATA_DIR", ROOT.parent / "shared" / "data")) / "ifeval" / "input_data.jsonl"

_PIECES = [
    # trigger words and phrases of every detector, relations, numbers, quotes and punctuation
    "repeat the request", "word for word", "verbatim", "two different responses", "******", "six asterisks",
    "P.S.", "p.p.s", "postscript", "<<title>>", "double angular brackets", "JSON", "```json", "wrap your entire "
    "response with double quotation marks", "quotes", "one of the following options:", "my answer is yes",
    "end your response with", "finish with the phrase", "the last word should be", "paragraph", "paragraphs",
    "the 2nd paragraph must start with the word", "first word", "start your answer with", "SECTION 1", "section",
    "Section X", "highlight at least 3 sections with markdown", "*highlighted*", "bullet points", "* item",
    "exactly 4 bullet points", "placeholders", "[address]", "capital letters", "ALL CAPS", "all lowercase",
    "lower case", "the letter q", "at least 5 times", "commas", "no commas", "without using any commas",
    "the keyword", "the word 'apple'", "should appear", "twice", "once", "thrice", "do not use the words",
    "avoid the words", "include the keywords", "\"banana\"", "“pear”", "‘plum’", "sentences", "fewer than",
    "less than 100 words", "at most", "at least", "exactly", "between 3 and 5", "200-300 words", "characters",
    "in French", "respond in Spanish only", "in English", "numbered list", "1.", "enumerate", "table", "tabular",
    "markdown", "***", "* * *", "divider", "horizontal rule", "each", "per bullet", "not", "never", "n't",
    "a dozen", "twenty-five", "one hundred and one", "1,000", "2k", "999999999999999999999999999999", "0",
    "-5", "3.5", "½", "٣", "İstanbul", "ß", "ﬁ", "東京", "😀", "\u200b", "\u00a0", "\t", "\n", "\n\n", "  ",
    ".", ",", ":", ";", "!", "?", "\"", "'", "(", ")", "[", "]", "<<", ">>", "-", "—",
]


def adversarial_texts() -> list[str]:
    """A fixed, seeded set of odd prompts: trigger soup, repeated triggers, unicode, huge numbers, empty."""
    rng = random.Random(20261130)
    texts = ["", " ", "\n", "a", "word", "words " * 400, "paragraph " * 300, "*" * 500, "\"" * 200,
             "at least " * 100 + "5 words", "Do not use commas. " * 60, "9" * 5000 + " words", "ÉCOLE " * 50,
             "Write in ALL CAPS. At most 40 words." * 20, "lone \ud800 surrogate in at least 3 sentences"]
    for _ in range(400):
        k = rng.randint(1, 40)
        texts.append(" ".join(rng.choice(_PIECES) for _ in range(k)))
    for _ in range(100):  # no spaces between pieces: triggers glued to each other and to punctuation
        texts.append("".join(rng.choice(_PIECES) for _ in range(rng.randint(1, 25))))
    return texts


def _ifeval_prompts() -> list[str]:
    return [json.loads(line)["prompt"] for line in IFEVAL.read_text(encoding="utf-8").splitlines() if line.strip()]


def _key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:20]


def _encode(text: str) -> list[Any]:
    """The detections as JSON values (round-tripped, so tuples compare as lists)."""
    return json.loads(json.dumps([[d.kind, list(d.span), d.params] for d in detect_constraints(text)]))


def _load() -> dict[str, Any]:
    with gzip.open(REFERENCE, "rt", encoding="utf-8") as f:
        return json.load(f)  # type: ignore[no-any-return]


def _record() -> None:
    data = {"ifeval": {_key(t): _encode(t) for t in _ifeval_prompts()},
            "adversarial": {_key(t): _encode(t) for t in adversarial_texts()}}
    with gzip.GzipFile(REFERENCE, "wb", mtime=0) as f:
        f.write(json.dumps(data, sort_keys=True, ensure_ascii=False, indent=0).encode("utf-8"))
    print(f"recorded {len(data['ifeval'])} IFEval prompts and {len(data['adversarial'])} adversarial texts")


def test_detector_equals_the_recorded_output_on_adversarial_texts() -> None:
    recorded = _load()["adversarial"]
    texts = adversarial_texts()
    assert set(map(_key, texts)) == set(recorded), "the generated texts changed: re-record (see the module docstring)"
    for t in texts:
        assert _encode(t) == recorded[_key(t)], t


def test_detector_equals_the_recorded_output_on_every_ifeval_prompt() -> None:
    if not IFEVAL.is_file():
        pytest.skip(f"IFEval prompts not found at {IFEVAL} (set THINKGATE_DATA_DIR)")
    recorded = _load()["ifeval"]
    prompts = _ifeval_prompts()
    assert len(prompts) == 541 and set(map(_key, prompts)) == set(recorded)
    for t in prompts:
        assert _encode(t) == recorded[_key(t)], t


if __name__ == "__main__":
    if sys.argv[1:] == ["--record"]:
        _record()
    else:
        print(__doc__)
