"""Builds the optional compiled parts of the classifier; the rest of the project is in pyproject.toml.

1. The C extension `classifiers._native_tfidf` (the fast path's TF-IDF dot products). `optional=True`: without a
   C compiler (or Python headers) the build only warns and the install succeeds; the fast path then computes the
   same numbers in Python (classifiers/native.py says how the two are told apart). The SHA-256 of the C source is
   compiled in, so a build older than its source is detected and not used.

2. The constraint detector (`classifiers/_detectors.py` and `_phrasing.py`) compiled with mypyc, as the private
   subpackage `classifiers._compiled` (never under the modules' own names: Python would then load a stale `.so`
   in preference to the edited `.py`). The two sources are copied to build/mypyc/src/ as `classifiers/_compiled/`,
   with a constant `SOURCE_SHA256` (their digest, `classifiers._compiled.source_digest`) appended to the copy of
   `_detectors.py`, and compiled as one group: `classifiers/_compiled/_detectors*.so` and `_phrasing*.so` (thin
   shims) and `classifiers/_compiled/detector__mypyc*.so` (the code and mypyc's runtime), all inside the package.
   classifiers/compiled.py uses it only while that digest is the current sources' one. It is generated only when
   build_ext runs (not for egg_info and the like) and is optional too: without mypyc, or when mypyc or the C
   compiler fails, the build prints one line and goes on without it, and the Python detector gives the same
   detections. mypy is a build requirement (pyproject.toml's [build-system]), so `pip install .` and `pip install
   -e .` download it into their isolated build environment from the package index, like setuptools, and build
   the detector (about 20 s); `pip install --no-build-isolation` uses the environment's mypy if there is one, and
   `python setup.py build_ext --inplace` (what `make native` runs) the mypy of the Python running it.
"""

import hashlib
import importlib.util
import os
import shutil
import sys
from pathlib import Path
from types import ModuleType

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
SOURCE = "classifiers/_native_tfidf.c"
digest = hashlib.sha256((ROOT / SOURCE).read_bytes()).hexdigest()

DETECTOR_GROUP = "classifiers._compiled.detector"  # the shared library: classifiers/_compiled/detector__mypyc*.so
STAGE = ROOT / "build" / "mypyc"


def detector_digest_module() -> ModuleType:
    """classifiers/_compiled/__init__.py (COMPILED_SOURCES, source_digest), loaded by path: the one definition of
    the digest, shared with classifiers/compiled.py, without importing the package (or numpy)."""
    spec = importlib.util.spec_from_file_location("_thinkgate_compiled", ROOT / "classifiers" / "_compiled" / "__init__.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def skip_detector(why: str) -> list[Extension]:
    print(f"thinkgate: the compiled constraint detector is not built ({why}); the Python detector is used",
          file=sys.stderr)
    return []


def detector_extensions() -> list[Extension]:
    """mypyc's extensions for the staged copies of the detector, or [] when mypyc is missing or fails."""
    try:
        from mypyc.build import mypycify
    except ImportError as exc:
        return skip_detector(f"mypyc is not installed: {exc}")
    package = STAGE / "src" / "classifiers" / "_compiled"
    shutil.rmtree(STAGE, ignore_errors=True)
    package.mkdir(parents=True)
    for init in (package.parent / "__init__.py", package / "__init__.py"):
        init.write_text("")
    shared = detector_digest_module()
    sources = shared.COMPILED_SOURCES
    for name in sources:
        text = (ROOT / "classifiers" / name).read_text(encoding="utf-8")
        if name == "_detectors.py":
            text += f'\n\nSOURCE_SHA256 = "{shared.source_digest(ROOT / "classifiers")}"  # appended by setup.py\n'
        (package / name).write_text(text, encoding="utf-8")
    # relative to the working directory, as setuptools wants extension sources; mypyc names the modules after the
    # package directories above the staged files: classifiers._compiled._detectors and ._phrasing
    paths = [os.path.relpath(package / name) for name in sources]
    try:
        return list(mypycify(paths, group_name=DETECTOR_GROUP, target_dir=os.path.relpath(STAGE / "c")))
    except (Exception, SystemExit) as exc:  # mypyc reports type errors with sys.exit
        return skip_detector(f"mypyc failed: {exc!r}")


class BuildExt(build_ext):
    """build_ext plus the compiled detector, generated only when extensions are built (not for egg_info & co).
    Its extensions are optional like the C one: one that fails to compile is reported and skipped."""

    def finalize_options(self) -> None:
        modules = self.distribution.ext_modules
        if modules is not None and not any(e.name.startswith("classifiers._compiled.") for e in modules):
            for ext in detector_extensions():
                ext.optional = True
                modules.append(ext)
        super().finalize_options()


setup(ext_modules=[Extension("classifiers._native_tfidf", [SOURCE], optional=True,
                             define_macros=[("THINKGATE_SOURCE_SHA256", f'"{digest}"')])],
      cmdclass={"build_ext": BuildExt})
