"""A bounded LRU cache of decision scores, keyed by a hash of the decision text and the model's identity.

Production traffic repeats itself (templated system prompts, retries, the same instruction from many users),
and a score depends only on the text and the model. A hit costs one BLAKE2b hash of the text and a dict
lookup instead of the detector and the feature computation. The key is a keyed 128-bit BLAKE2b digest (the
model's id is the hash key), so two texts, or one text under two models, never share an entry by accident,
and the cache holds no prompt text. Memory is bounded by `size` entries (about 150 bytes each).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Callable


class ScoreCache:
    def __init__(self, size: int, model_id: str) -> None:
        if size < 0:
            raise ValueError("cache size must be >= 0")
        self.size = size
        self._hash_key = hashlib.sha256(model_id.encode("utf-8")).digest()[:64]
        self._scores: OrderedDict[bytes, float] = OrderedDict()
        self._lock = threading.Lock()  # deciders may run on worker threads too
        self.hits = 0
        self.misses = 0

    def key(self, text: str) -> bytes:
        return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16, key=self._hash_key).digest()

    def get(self, text: str) -> float | None:
        """The cached score of `text` (a hit, counted), or None (not counted: `score` counts the miss)."""
        return self._hit(self.key(text)) if self.size else None

    def _hit(self, key: bytes) -> float | None:
        with self._lock:
            found = self._scores.get(key)
            if found is not None:
                self._scores.move_to_end(key)
                self.hits += 1
            return found

    def score(self, text: str, compute: Callable[[str], float]) -> float:
        """The cached score of `text`, or `compute(text)` (then cached). Errors are not cached."""
        if not self.size:
            return compute(text)
        key = self.key(text)
        found = self._hit(key)
        if found is not None:
            return found
        value = compute(text)
        with self._lock:
            self.misses += 1
            self._scores[key] = value
            if len(self._scores) > self.size:
                self._scores.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._scores)
