"""Builds the optional C extension `classifiers._native_tfidf`; the rest of the project is in pyproject.toml.

`optional=True`: without a C compiler (or Python headers) the build only warns and the install succeeds; the
fast path then computes the same numbers in Python (classifiers/native.py says how the two are told apart).
The SHA-256 of the C source is compiled in, so a build older than its source is detected and not used.
"""

import hashlib
from pathlib import Path

from setuptools import Extension, setup

SOURCE = "classifiers/_native_tfidf.c"
digest = hashlib.sha256((Path(__file__).resolve().parent / SOURCE).read_bytes()).hexdigest()

setup(ext_modules=[Extension("classifiers._native_tfidf", [SOURCE], optional=True,
                             define_macros=[("THINKGATE_SOURCE_SHA256", f'"{digest}"')])])
