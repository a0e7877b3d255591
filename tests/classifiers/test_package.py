"""Package-level rules: cheap lazy import, no dependency on other project packages."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import classifiers

PACKAGE = Path(classifiers.__file__).parent
PROJECT_PACKAGES = {"router", "training", "benchmarks", "tests"}
ALLOWED_THIRD_PARTY = {"numpy", "sklearn", "skops", "scipy"}


def test_import_is_lazy() -> None:
    code = "import sys, classifiers; print(sorted(m for m in ('sklearn', 'numpy', 'skops') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_public_names_resolve() -> None:
    for name in classifiers.__all__:
        assert getattr(classifiers, name) is not None
    assert "detect_constraints" in dir(classifiers)


def test_imports_no_other_project_package() -> None:
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                roots = {node.module.split(".")[0]}
            else:
                continue
            assert not roots & PROJECT_PACKAGES, f"{path.name} imports {roots & PROJECT_PACKAGES}"
            third_party = {r for r in roots if r not in sys.stdlib_module_names}
            assert third_party <= ALLOWED_THIRD_PARTY, f"{path.name} imports {third_party}"
