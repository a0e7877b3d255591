"""A KV-cache layer that appends in place.

transformers' `DynamicLayer` grows by `torch.cat` on every step, copying the whole cache of every layer each
token (for 16 rows x 400 tokens of SmolLM2 that is ~110 MB per step in bfloat16). `GrowingLayer` keeps spare
capacity and writes the new keys/values into it, so a step copies nothing; the cache is re-packed only when
the batch changes (rows join or leave), which the engine does by assigning `layer.keys` / `layer.values`.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer


class GrowingLayer(DynamicLayer):
    """`DynamicLayer` with amortised O(1) appends; `keys` / `values` are views of the filled part."""

    def __init__(self, headroom: int = 128, **kwargs: Any) -> None:
        self._headroom = headroom
        self._k: torch.Tensor | None = None
        self._v: torch.Tensor | None = None
        self._nk = self._nv = 0  # filled length of each buffer
        super().__init__(**kwargs)

    # `keys` / `values` stay assignable (the engine re-packs the batch through them); each setter adopts the
    # tensor as a full buffer, so the next append re-allocates with headroom.
    @property
    def keys(self) -> torch.Tensor | None:
        return None if self._k is None else self._k[:, :, :self._nk]

    @keys.setter
    def keys(self, value: torch.Tensor | None) -> None:
        self._k = value
        self._nk = value.shape[2] if value is not None and value.dim() == 4 else 0

    @property
    def values(self) -> torch.Tensor | None:
        return None if self._v is None else self._v[:, :, :self._nv]

    @values.setter
    def values(self, value: torch.Tensor | None) -> None:
        self._v = value
        self._nv = value.shape[2] if value is not None and value.dim() == 4 else 0

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        self.device = key_states.device
        self.is_initialized = True

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
               ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        if self._nk != self._nv:
            raise RuntimeError(f"KV cache out of step: {self._nk} keys, {self._nv} values")
        n = self._nk
        need = n + key_states.shape[2]
        if self._k is None or self._v is None or self._k.dim() != 4 or need > min(self._k.shape[2],
                                                                                 self._v.shape[2]):
            capacity = need + max(self._headroom, n // 2)
            self._k = self._grow(self._k, key_states, n, capacity)
            self._v = self._grow(self._v, value_states, n, capacity)
        self._k[:, :, n:need] = key_states
        self._v[:, :, n:need] = value_states
        self._nk = self._nv = need
        return self._k[:, :, :need], self._v[:, :, :need]

    @staticmethod
    def _grow(old: torch.Tensor | None, like: torch.Tensor, n: int, capacity: int) -> torch.Tensor:
        batch, heads, _, dim = like.shape
        buffer = like.new_empty((batch, heads, capacity, dim))
        if old is not None and old.dim() == 4 and n:
            buffer[:, :, :n] = old[:, :, :n]
        return buffer

    def get_seq_length(self) -> int:
        return self._nk if self.is_initialized else 0

    def reset(self) -> None:
        self._k = self._v = None
        self._nk = self._nv = 0
        self.is_initialized = False


def new_cache(config: Any) -> DynamicCache:
    """A `DynamicCache` for `config` whose layers are `GrowingLayer`s (plain attention models only)."""
    cache = DynamicCache(config=config)
    if all(type(layer) is DynamicLayer for layer in cache.layers):
        cache.layers = [GrowingLayer() for _ in cache.layers]
    return cache
