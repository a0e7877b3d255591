"""What the load sends: one fixed body, or the IFEval prompts in rotation with a unique suffix each.

With one fixed body the classifier policy's LRU score cache answers every decision after the first, so the
decision path is not measured. `ifeval` cycles through the IFEval prompts and appends " (request TAG.N)" to
each user message (TAG unique per probe run and per wrk thread, N a counter), so every decision text is new
and every decision is computed.

Bodies are built from precomputed JSON pieces: `head` ends inside the user message's JSON string and the
suffix needs no escaping, so `head + suffix + tail` is the JSON of the body with the suffixed prompt; the
per-request cost on the load generator is one concatenation, the same for every target.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from .probes import MODEL, PROMPT

MAX_TOKENS = 64
_SUFFIX_OK = re.compile(r"^[ -~]*$")  # printable ASCII without escapes needed: no quote, no backslash


def body_dict(model: str, prompt: str, *, stream: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": prompt}],
                            "max_tokens": MAX_TOKENS}
    if stream:
        body["stream"] = True
    return body


def split_body(model: str, prompt: str, *, stream: bool = False) -> tuple[str, str]:
    """(head, tail) with head + json_escaped(extra) + tail == json.dumps(body with prompt + extra)."""
    marker = "\x00THINKGATE-SUFFIX\x00"
    text = json.dumps(body_dict(model, prompt + marker, stream=stream))
    escaped = json.dumps(marker)[1:-1]
    head, tail = text.split(escaped)
    return head, tail


def suffix(tag: str, n: int) -> str:
    s = f" (request {tag}.{n})"
    assert _SUFFIX_OK.match(s) and '"' not in s and "\\" not in s
    return s


@dataclass
class Bodies:
    """The request bodies of a run: `kind` is "fixed" or "ifeval"."""

    kind: str
    prompts: list[str] = field(default_factory=lambda: [PROMPT])
    note: str = ""

    @classmethod
    def fixed(cls, note: str = "") -> "Bodies":
        return cls("fixed", [PROMPT], note)

    @classmethod
    def ifeval(cls, prompts: list[str], note: str = "") -> "Bodies":
        if not prompts:
            raise ValueError("no IFEval prompts")
        return cls("ifeval", list(prompts), note)

    @property
    def unique(self) -> bool:
        return self.kind == "ifeval"

    def describe(self) -> str:
        if self.kind == "fixed":
            return (f"fixed: one user message (an IFEval-style instruction, {len(PROMPT)} characters), "
                    f"`max_tokens` {MAX_TOKENS}, the same bytes every request (the classifier's score cache "
                    "answers every decision after the first)")
        lengths = sorted(len(p) for p in self.prompts)
        return (f"ifeval: the {len(self.prompts)} IFEval prompts in rotation (prompt length median "
                f"{lengths[len(lengths) // 2]} characters, max {lengths[-1]}), each user message with a unique "
                f"suffix \" (request TAG.N)\" so no decision is a score-cache hit, `max_tokens` {MAX_TOKENS}")

    def iter_bytes(self, model: str, tag: str, *, stream: bool = False) -> Iterator[bytes]:
        """Endless request bodies for the sequential/streamed probes."""
        if not self.unique:
            body = json.dumps(body_dict(model, self.prompts[0], stream=stream)).encode()
            while True:
                yield body
        pieces = [tuple(s.encode() for s in split_body(model, p, stream=stream)) for p in self.prompts]
        for n in itertools.count():
            head, tail = pieces[n % len(pieces)]
            yield head + suffix(tag, n).encode() + tail


# --------------------------------------------------------------------------------------------------
# wrk's Lua script

def long_bracket_level(strings: list[str]) -> int:
    """The smallest level L ≥ 1 such that no string contains the closing long bracket `]` + L×`=` + `]`
    (nor ends with `]` + L×`=`, which the closing bracket would complete)."""
    level = 1
    while True:
        close = "]" + "=" * level + "]"
        if not any(close in s or s.endswith(close[:-1]) for s in strings):
            return level
        level += 1


def lua_long_string(s: str, level: int) -> str:
    """A Lua long-bracket literal of `s`. Lua drops a newline right after the opening bracket, so one is
    added when `s` starts with one; no escape is interpreted inside."""
    eq = "=" * level
    return f"[{eq}[{chr(10) if s.startswith(chr(10)) else ''}{s}]{eq}]"


DONE_LUA = """\
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "THINKGATE_WRK {\\"requests\\":%d,\\"duration_us\\":%d,\\"connect\\":%d,\\"read\\":%d," ..
    "\\"write\\":%d,\\"status\\":%d,\\"timeout\\":%d,\\"p50_us\\":%d,\\"p90_us\\":%d,\\"p99_us\\":%d," ..
    "\\"mean_us\\":%.1f,\\"max_us\\":%d}\\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max))
end
"""


def wrk_lua(bodies: Bodies, model: str, tag: str) -> str:
    """The wrk script: a static body (fixed), or the rotation with a per-thread counter (ifeval)."""
    lines = ['wrk.method = "POST"', 'wrk.headers["Content-Type"] = "application/json"']
    if not bodies.unique:
        text = json.dumps(body_dict(model, bodies.prompts[0]))
        level = long_bracket_level([text])
        lines.append(f"wrk.body = {lua_long_string(text, level)}")
        return "\n".join(lines) + "\n\n" + DONE_LUA
    parts = [split_body(model, p) for p in bodies.prompts]
    tails = {tail for _, tail in parts}
    assert len(tails) == 1, "every body ends the same way"
    tail = tails.pop()
    heads = [head for head, _ in parts]
    level = long_bracket_level([*heads, tail])
    lines += [
        "local heads = {",
        *[f"  {lua_long_string(h, level)}," for h in heads],
        "}",
        f"local tail = {lua_long_string(tail, level)}",
        f'local tag = "{tag}"',
        "local counter = 0",
        "local nthreads = 0",
        "tid = 0  -- set per thread by setup()",
        "",
        "function setup(thread)",
        "  nthreads = nthreads + 1",
        "  thread:set(\"tid\", nthreads)",
        "end",
        "",
        "function request()",
        "  counter = counter + 1",
        "  local head = heads[(counter + tid * 97) % #heads + 1]",
        "  local extra = \" (request \" .. tag .. \".t\" .. tid .. \".\" .. counter .. \")\"",
        "  return wrk.format(nil, nil, nil, head .. extra .. tail)",
        "end",
    ]
    return "\n".join(lines) + "\n\n" + DONE_LUA


def load_bodies(kind: str | None, data: Path) -> Bodies:
    """`--bodies`: None picks ifeval when the data file exists, else fixed (with a note)."""
    from .decisions import load_prompts

    if kind in (None, "ifeval"):
        if data.is_file():
            return Bodies.ifeval(load_prompts(data))
        if kind == "ifeval":
            raise FileNotFoundError(f"--bodies ifeval: IFEval data not found at {data}")
        return Bodies.fixed(f"IFEval data not found at {data}: the load sends one fixed body, so the classifier's "
                            "score cache answers every decision after the first")
    if kind == "fixed":
        return Bodies.fixed()
    raise ValueError(f"--bodies {kind!r}: expected fixed or ifeval")


__all__ = ["Bodies", "MODEL", "body_dict", "load_bodies", "long_bracket_level", "lua_long_string", "split_body",
           "suffix", "wrk_lua"]
