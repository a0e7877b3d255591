"""The suite's check that an optional compiled part (classifiers/optional_build.py) is built and in use."""

from __future__ import annotations

import os

import pytest

from classifiers.optional_build import PURE_PYTHON_ENV, pure_python_forced

NATIVE_OPTIONAL_ENV = "THINKGATE_NATIVE_OPTIONAL"


def assert_built_and_used(what: str, status: str) -> None:
    """Fail unless `status` is 'loaded'; skip where the Python path is forced or the build is not expected."""
    if pure_python_forced():
        pytest.skip(f"{PURE_PYTHON_ENV} is set: the suite tests the Python path")
    if os.environ.get(NATIVE_OPTIONAL_ENV, "") not in ("", "0"):
        pytest.skip(f"{NATIVE_OPTIONAL_ENV} is set: a build without the {what} is expected")
    assert status == "loaded", (
        f"the {what} is not used ({status}): build it with `make native` (or `pip install -e .` with a C "
        f"compiler), or set {NATIVE_OPTIONAL_ENV}=1 where it cannot be built")
