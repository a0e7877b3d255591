"""Secrets never leave the process: redaction of upstream keys and credential-looking strings.

What is redacted, wherever a message leaves the process (an error body or SSE error event sent to a client,
a log line, the decision log's `error` column):

- every configured upstream API key value (exact match, anywhere in the text);
- `Bearer <token>` / `Basic <token>` credentials;
- the value after an `authorization`, `api-key`, `api_key` or `x-api-key` field name (`: ` or `=`, quoted or not);
- provider-style secret keys (`sk-...`, `sk-ant-...`, `sk-proj-...`, `rk-...`) of 16 or more characters.

A redacted value becomes `[redacted]`. Redaction runs on error paths only, never on a successful answer.
"""

from __future__ import annotations

import logging
import re
import traceback
from typing import Iterable

REDACTED = "[redacted]"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=:-]{4,}"), rf"\1 {REDACTED}"),
    (re.compile(r"""(?i)((?:proxy-)?authorization|x-api-key|api[_-]?key)(["']?\s*[:=]\s*["']?)(?!\[redacted\]|(?:bearer|basic)\s)"""
                r"""[^\s"',;}]{4,}"""), rf"\1\2{REDACTED}"),
    (re.compile(r"\b(?:sk|rk)-[A-Za-z0-9_-]{16,}"), REDACTED),
)


class Redactor:
    """`redactor(text)` returns `text` with the given secrets and credential-looking strings replaced."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        # Longest first, so a key that contains another is replaced whole. Very short values are not secrets
        # anyone could match safely (they would redact ordinary words).
        self._secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return text

    def with_secrets(self, secrets: Iterable[str | None]) -> "Redactor":
        return Redactor([*self._secrets, *secrets])


def redacted_traceback(exc: BaseException, redactor: Redactor) -> str:
    """`exc`'s traceback as text, redacted: for log lines about errors whose messages may hold a secret."""
    return redactor("".join(traceback.format_exception(exc)))


class RedactingFilter(logging.Filter):
    """A logging filter that redacts a record's message and its formatted traceback before any handler sees
    them. Attach it to the handlers (or to each logger) that may log upstream errors."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg, record.args = self.redactor(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redactor(record.exc_text)
        return True
