"""Decision models shipped inside the package (`classifiers/artifacts/NAME/`), each with the command that made it."""

from __future__ import annotations

from pathlib import Path

ARTIFACTS_DIR = Path(__file__).resolve().parent / "artifacts"


def bundled_names() -> list[str]:
    if not ARTIFACTS_DIR.is_dir():
        return []
    return sorted(p.name for p in ARTIFACTS_DIR.iterdir() if (p / "metadata.json").is_file())


def bundled_artifact(name: str) -> Path | None:
    """The directory of a bundled artifact called `name`, or None."""
    if "/" in name or name.startswith("."):
        return None
    path = ARTIFACTS_DIR / name
    return path if (path / "metadata.json").is_file() else None
