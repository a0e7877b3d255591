"""A real Hugging Face fast tokenizer small enough to build in a test: one token per word or punctuation mark
(spaces too; plus ChatML special tokens and a ChatML chat template), so offsets and token boundaries are predictable."""

from __future__ import annotations

import re
from typing import Any, Iterable

CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
PATTERN = r"\w+|[^\w\s]|\s"
SPECIAL = ["<unk>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"]


def tiny_tokenizer(texts: Iterable[str], chat_template: str = CHATML) -> Any:
    """A word-level tokenizer whose vocabulary holds every word of `texts` (and newline)."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = sorted({w for t in texts for w in re.findall(PATTERN, t)} | {" ", "\n"})
    vocab = {tok: i for i, tok in enumerate(SPECIAL + [w for w in words if w not in SPECIAL])}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(PATTERN), behavior="isolated")
    core.add_special_tokens(SPECIAL[1:])
    tok = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>")
    tok.chat_template = chat_template
    return tok
