"""The torch part: load a local model with eager attention and teacher-force one sequence (one forward pass).

Only this module imports torch (lazily, inside functions), so the rest of the analysis and its tests run
without it.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .measure import alpha
from .sequences import TeacherForced


def load(path: str | None, *, dtype: str = "float32", num_threads: int | None = None,
         cache_dir: str | None = None) -> tuple[Any, Any]:
    """The model as the project loads it (`router.local_model.loader`), switched to eager attention, which is
    the implementation that returns attention weights (sdpa and flash kernels never materialise them)."""
    from router.local_model.loader import load_model

    model, tokenizer = load_model(path, dtype=dtype, num_threads=num_threads, cache_dir=cache_dir)
    model.set_attn_implementation("eager")
    return model, tokenizer


def default_cache_dir() -> str:
    return os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "thinkgate", "models")


def run_alpha(model: Any, seq: TeacherForced) -> dict[str, np.ndarray]:
    """alpha(l, t) for every generated step of `seq` (rows from `seq.prompt_len` on), shape (layers, steps):
    over the constraint tokens (`"constraint"`) and, when the prompt has any, over the user message's other
    tokens (`"control"`), from the same forward pass."""
    import torch

    if not seq.constraint_idx:
        raise ValueError("no constraint tokens")
    columns = {"constraint": seq.constraint_idx, "control": seq.control_idx}
    ids = torch.tensor([seq.ids], dtype=torch.long)
    with torch.inference_mode():
        out = model(input_ids=ids, output_attentions=True, use_cache=False, logits_to_keep=1)
    rows = [layer[0, :, seq.prompt_len:, :] for layer in out.attentions]
    result = {}
    for name, idx in columns.items():
        if idx:
            cols = torch.tensor(list(idx), dtype=torch.long)
            result[name] = alpha([r.index_select(-1, cols).float().numpy() for r in rows])
    return result
