"""mypyc's build of the constraint detector (`_detectors.py`, `_phrasing.py`), made by setup.py from staged copies.

Nothing here is imported directly: classifiers/compiled.py imports `_detectors` from this package only after
checking that it was compiled from the current sources (`source_digest`), and uses the Python modules otherwise.
This file is plain Python and imports nothing of the project: setup.py loads it by path for the two names below.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

COMPILED_SOURCES = ("_detectors.py", "_phrasing.py")
"""The modules compiled, in classifiers/ (the copies keep their names inside this package)."""


def source_digest(directory: Path | None = None) -> str:
    """SHA-256 over each source's name and SHA-256: setup.py compiles it in as `SOURCE_SHA256`, and the build is
    used only while it equals the digest of the sources in classifiers/ (`directory`)."""
    directory = Path(__file__).resolve().parent.parent if directory is None else directory
    h = hashlib.sha256()
    for name in COMPILED_SOURCES:
        h.update(name.encode() + b"\0" + hashlib.sha256((directory / name).read_bytes()).digest())
    return h.hexdigest()
