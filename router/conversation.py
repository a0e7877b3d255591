"""Pure helpers over a request body: what the decision reads, what the client asked for, what to strip."""

from __future__ import annotations

import re
from typing import Any

Body = dict[str, Any]

_THINK_BLOCK = re.compile(r"<think>.*?</think>\s*", re.DOTALL)
# Request fields through which a client asks for (or against) reasoning itself.
CLIENT_REASONING_FIELDS = ("reasoning_effort", "thinking", "reasoning")


def content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p["text"] for p in content
                         if isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str))
    return ""


def decision_text(messages: list[dict[str, Any]]) -> str:
    """The system/developer prompts plus the latest user turn: constraints often live in the system prompt."""
    system = [content_text(m.get("content")) for m in messages if m.get("role") in ("system", "developer")]
    users = [content_text(m.get("content")) for m in messages if m.get("role") == "user"]
    return "\n\n".join([s for s in system if s] + users[-1:])


def strip_history_reasoning(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop reasoning from earlier assistant turns (fields and inline `<think>` blocks); tool calls untouched."""
    out = []
    for m in messages:
        if m.get("role") == "assistant":
            if "reasoning_content" in m or "reasoning" in m or (
                    isinstance(m.get("content"), str) and "<think>" in m["content"]):
                m = {k: v for k, v in m.items() if k not in ("reasoning_content", "reasoning")}
                if isinstance(m.get("content"), str):
                    m["content"] = _THINK_BLOCK.sub("", m["content"])
        out.append(m)
    return out


def client_reasoning_choice(body: Body) -> bool | None:
    """Whether the request itself asks for thinking (True), against it (False), or says nothing (None)."""
    effort = body.get("reasoning_effort")
    if isinstance(effort, str):
        return effort.lower() not in ("none", "off", "disabled")
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") in ("enabled", "disabled"):
        return thinking["type"] == "enabled"
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict):
        if "enabled" in reasoning:
            return bool(reasoning["enabled"])
        if isinstance(reasoning.get("effort"), str):
            return reasoning["effort"].lower() not in ("none", "off", "disabled")
    kwargs = body.get("chat_template_kwargs")
    if isinstance(kwargs, dict) and isinstance(kwargs.get("enable_thinking"), bool):
        return kwargs["enable_thinking"]
    return None


def strip_client_reasoning(body: Body) -> Body:
    """Remove every client reasoning field, so the profile's own settings are the only ones sent."""
    out = {k: v for k, v in body.items() if k not in CLIENT_REASONING_FIELDS}
    kwargs = out.get("chat_template_kwargs")
    if isinstance(kwargs, dict) and "enable_thinking" in kwargs:
        rest = {k: v for k, v in kwargs.items() if k != "enable_thinking"}
        if rest:
            out["chat_template_kwargs"] = rest
        else:
            out.pop("chat_template_kwargs")
    return out
