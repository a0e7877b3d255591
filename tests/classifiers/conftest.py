"""Shared fixtures: a small synthetic, learnable prompt set (no dataset files needed)."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

_TOPICS = ["the ocean", "a lost cat", "city bikes", "solar power", "a rainy day", "chess", "bread baking",
           "the moon", "a job interview", "volcanoes", "old trains", "a birthday party"]
_TASKS = ["Write a short story about {t}.", "Explain {t} to a child.", "Write a poem about {t}.",
          "Give me tips about {t}.", "Describe {t} in detail."]
# Constraints whose presence makes "thinking helps" (label 1) vs hurts (label 0) in this synthetic world.
_HELPS = ["Wrap your entire answer in JSON format.", "Put double quotation marks around your whole response.",
          "Include exactly 3 bullet points.", "The letter q should appear at least 4 times.",
          "Your answer must contain a title wrapped in double angular brackets, like <<title>>."]
_HURTS = ["Answer in fewer than 40 words.", "Use only lowercase letters.", "Do not use any commas.",
          "First repeat the request word for word, then answer.", "End your reply with the exact phrase \"Bye now.\""]


def make_prompts(n: int = 80, seed: int = 0) -> tuple[list[str], list[int], list[float]]:
    """(prompts, labels, gains): label 1 when a 'helps' constraint is present, with gain > 0."""
    rng = random.Random(seed)
    prompts, labels, gains = [], [], []
    for i in range(n):
        base = rng.choice(_TASKS).format(t=rng.choice(_TOPICS))
        helps = i % 2 == 0
        extra = rng.choice(_HELPS if helps else _HURTS)
        prompts.append(f"{base} {extra}")
        labels.append(int(helps))
        gains.append(rng.uniform(0.05, 0.5) if helps else -rng.uniform(0.05, 0.5))
    return prompts, labels, gains


@pytest.fixture(scope="session")
def synthetic() -> tuple[list[str], list[int], list[float]]:
    return make_prompts()


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """HistGradientBoosting uses OpenMP; on a busy 2-core machine its spinning threads make tiny fits take
    seconds. One thread is plenty for the small synthetic sets here."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def python_detector() -> Iterator[None]:
    """`detect_constraints` runs the Python `_detectors.run_detectors` (not mypyc's build, classifiers/compiled.py):
    for the tests that patch `_detectors`' globals (PREFILTERS, DETECTORS) or mean the Python module. Module-scoped,
    so hypothesis tests may use it (through `pytestmark = pytest.mark.usefixtures("python_detector")`)."""
    from classifiers import _detectors, constraints

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(constraints, "run_detectors", _detectors.run_detectors)
        yield
