"""The paper's constraint-attention quantities, from attention slices (pure numpy).

For one run, `slices[l]` holds layer l's attention restricted to the generated tokens (rows, in order) and the
constraint tokens (columns): shape (heads, steps, constraint tokens). Row t is the attention of the newest
token at generation step t, which is what a decoder computes when it feeds that token back in.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def alpha(slices: Sequence[np.ndarray]) -> np.ndarray:
    """alpha(l, t): mean over heads of the newest token's attention, averaged over the constraint tokens.

    Returns shape (layers, steps).
    """
    if not slices:
        raise ValueError("no layers")
    out = []
    for layer in slices:
        a = np.asarray(layer, dtype=np.float64)
        if a.ndim != 3 or a.shape[2] == 0:
            raise ValueError(f"expected (heads, steps, constraint tokens) with at least one token, got {a.shape}")
        out.append(a.mean(axis=0).mean(axis=1))
    return np.stack(out)


def trace(a: np.ndarray) -> np.ndarray:
    """The trace: alpha averaged over layers, one value per step."""
    return a.mean(axis=0)


def beta(a: np.ndarray, answer_start: int) -> np.ndarray:
    """beta(l): alpha averaged over the answer's steps (steps from `answer_start` on), one value per layer."""
    if answer_start >= a.shape[1]:
        raise ValueError("the run has no answer steps")
    return a[:, answer_start:].mean(axis=1)
