"""Shared plumbing for the name -> class registries (profiles, policies) and their validated options."""

from __future__ import annotations

import difflib
from typing import Any, Mapping, TypeVar

from pydantic import BaseModel, ValidationError

from .errors import ConfigError

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


def lookup(kind: str, name: str, registry: Mapping[str, T]) -> T:
    """`registry[name]`, or a `ConfigError` that suggests close matches and lists the known names."""
    try:
        return registry[name]
    except KeyError:
        close = difflib.get_close_matches(name, registry, n=3)
        hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
        raise ConfigError(f"unknown {kind} '{name}'{hint}; known: {', '.join(sorted(registry))}") from None


def validate_options(model: type[M], options: Mapping[str, Any] | None, owner: str) -> M:
    """Validate a component's options; the error names the component and the bad key."""
    try:
        return model.model_validate(options or {})
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{owner}: option '{key}': {first['msg']}") from None
