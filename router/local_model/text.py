"""Text plumbing for the local model: chat rendering, incremental detokenisation, stop strings.

Pure Python (no torch), so it is cheap to import and easy to test. The engine and the backend share it.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

THINK_OPEN = "<think>\n"
THINK_CLOSE = "</think>"


def message_text(content: Any) -> str:
    """An OpenAI message `content` as plain text (a string, a list of parts, or null)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and part.get("type") in ("text", "input_text", None):
                text = part.get("text")
                if isinstance(text, str):
                    parts.append(text)
            else:
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise ValueError(f"the local model only takes text message parts, not {kind!r}")
        return "".join(parts)
    raise ValueError(f"message content must be a string or a list of parts, not {type(content).__name__}")


def normalise_messages(messages: Any) -> list[dict[str, str]]:
    """`[{"role", "content"}]` with text content; `developer` becomes `system` (what small models know)."""
    if not isinstance(messages, list) or not messages:
        raise ValueError("messages must be a non-empty list")
    out: list[dict[str, str]] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise ValueError(f"messages[{i}] must be an object with a string role")
        role = "system" if message["role"] == "developer" else message["role"]
        out.append({"role": role, "content": message_text(message.get("content"))})
    return out


def render_prompt(tokenizer: Any, messages: Any, *, prefill: bool = False, suffix: str = "") -> str:
    """The prompt text for a chat request, with the model's own chat template.

    `prefill=True`: the last message is an assistant message the model continues. The preceding messages are
    rendered with the generation prompt and the assistant's text is appended without an end-of-turn, so the
    model's next token continues it. `suffix` is appended after that (e.g. the opening `<think>` tag).
    """
    msgs = normalise_messages(messages)
    prefix = ""
    if prefill:
        if msgs[-1]["role"] != "assistant":
            raise ValueError("prefill needs the last message to be an assistant message")
        prefix = msgs[-1]["content"]
        msgs = msgs[:-1]
    if msgs:
        text = tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        text += prefix
    else:  # only an assistant message: templates refuse an empty conversation, so let the template continue it
        text = tokenizer.apply_chat_template([{"role": "assistant", "content": prefix}], tokenize=False,
                                             continue_final_message=True)
    if not isinstance(text, str):
        raise ValueError("the chat template did not render to text")
    return text + suffix


class IncrementalDecoder:
    """Turns a token stream into text deltas that are always whole characters.

    Byte-level BPE tokens can end in the middle of a UTF-8 sequence, and some tokenizers only render a token
    correctly next to its neighbour, so each delta is the difference between decoding a short window with and
    without the newest tokens; a delta ending in U+FFFD (incomplete bytes) is held back until it completes.
    """

    __slots__ = ("_decode", "_ids", "_prefix", "_read")

    def __init__(self, decode: Callable[[Sequence[int]], str]) -> None:
        self._decode = decode
        self._ids: list[int] = []
        self._prefix = 0
        self._read = 0

    def push(self, token: int) -> str:
        self._ids.append(token)
        before = self._decode(self._ids[self._prefix:self._read])
        after = self._decode(self._ids[self._prefix:])
        if len(after) > len(before) and not after.endswith("\ufffd"):
            self._prefix, self._read = self._read, len(self._ids)
            return after[len(before):]
        return ""

    def flush(self) -> str:
        """Whatever is held back (incomplete bytes render as U+FFFD)."""
        before = self._decode(self._ids[self._prefix:self._read])
        after = self._decode(self._ids[self._prefix:])
        self._prefix = self._read = len(self._ids)
        return after[len(before):]


def find_stop(text: str, stops: Iterable[str], start: int = 0) -> int:
    """Index of the earliest stop string in `text[start:]` (as an index into `text`), or -1."""
    best = -1
    for stop in stops:
        i = text.find(stop, start)
        if i >= 0 and (best < 0 or i < best):
            best = i
    return best


def held_back(text: str, stops: Iterable[str]) -> int:
    """How many trailing characters of `text` could be the start of a stop string (so must not be sent yet)."""
    keep = 0
    for stop in stops:
        for n in range(min(len(stop) - 1, len(text)), keep, -1):
            if text.endswith(stop[:n]):
                keep = n
                break
    return keep


def normalise_stop(stop: Any) -> tuple[str, ...]:
    """The request's `stop` (null, a string or a list of strings) as a tuple of non-empty strings."""
    if stop is None:
        return ()
    if isinstance(stop, str):
        return (stop,) if stop else ()
    if isinstance(stop, (list, tuple)) and all(isinstance(s, str) for s in stop):
        return tuple(s for s in stop if s)
    raise ValueError("stop must be a string or a list of strings")
