"""A durable cache of accepted judge replies, so a judge prompt is never paid for twice.

Keyed by the judge model and the exact judge prompt (which is made of the instruction, the response, the
scoring question and the prompt template), so re-scoring, a crashed run or a second policy that produced
the same answer reuse earlier verdicts, and a different judge model or a changed template does not.
SQLite in WAL mode with `synchronous=FULL`: each reply is on disk when `put` returns, so a crash loses at
most the calls in flight. Only replies the scorer accepted are stored; failed questions are asked again.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path

Messages = list[dict[str, str]]


def cache_key(model: str, messages: Messages) -> str:
    data = json.dumps([model, messages], ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


class JudgeCache:
    """`get(messages)` / `put(messages, reply)` for one judge model; `hits` counts replies served."""

    def __init__(self, path: str | Path, model: str) -> None:
        self.path = Path(path)
        self.model = model
        self.hits = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("CREATE TABLE IF NOT EXISTS replies (key TEXT PRIMARY KEY, model TEXT NOT NULL, "
                             "reply TEXT NOT NULL, created REAL NOT NULL)")
            self._db.commit()
        except sqlite3.DatabaseError as exc:
            raise ValueError(f"judge cache {self.path}: {exc}") from None

    def get(self, messages: Messages) -> str | None:
        row = self._db.execute("SELECT reply FROM replies WHERE key = ?",
                               (cache_key(self.model, messages),)).fetchone()
        if row is None:
            return None
        self.hits += 1
        return str(row[0])

    def put(self, messages: Messages, reply: str) -> None:
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO replies VALUES (?, ?, ?, ?)",
                             (cache_key(self.model, messages), self.model, reply, time.time()))

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM replies WHERE model = ?", (self.model,)).fetchone()[0])

    def close(self) -> None:
        self._db.close()
