"""The embedded local model: loader, continuous-batching engine, and text helpers.

    loader.load_model(path) -> (model, tokenizer)    GGUF file, HF directory, or None (bundled SmolLM2)
    engine.Engine(model, tokenizer).start()           background-thread generation with micro-batching
    generation.GenerationRequest / SamplingParams     one request; events: Delta, Finished, Failed
    rowstate.RowState                                 one row's program (thinking, stops, limits), torch-free
    text.render_prompt / IncrementalDecoder           chat template, prefill, streaming detokenisation

`router.backends.local.LocalBackend` wraps all of this in the async Backend contract. Importing this package
is cheap: torch and transformers load only when `loader` or `engine` is used.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "load_model": "loader",
    "bundled_gguf_path": "loader",
    "ModelLoadError": "loader",
    "Engine": "engine",
    "GenerationRequest": "generation",
    "SamplingParams": "generation",
    "Delta": "generation",
    "Finished": "generation",
    "Failed": "generation",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
