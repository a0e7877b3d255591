"""The dependency rules from DESIGN.md, checked on the source, and heavy imports kept lazy."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("router", "classifiers", "training", "benchmarks")


def _imports(path: Path) -> set[str]:
    """Top-level project packages a module imports (absolute imports; relative ones stay inside)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
            if node.module == "router" or node.module.startswith("router."):
                found.add(node.module)
    return found


def _modules(package: str):
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", _modules("classifiers"), ids=str)
def test_classifiers_import_no_other_project_package(path):
    assert not _imports(path) & {"router", "training", "benchmarks", "tests"}


@pytest.mark.parametrize("path", _modules("router"), ids=str)
def test_router_uses_classifiers_only_through_its_deciders(path):
    imported = _imports(path)
    assert not imported & {"training", "benchmarks", "tests"}
    if "classifiers" in imported:  # deciders, and the guard's pure answer checks
        assert path.parent.name == "deciders" or path == ROOT / "router" / "guard.py", \
            f"{path} imports classifiers outside router/deciders and router/guard.py"


@pytest.mark.parametrize("path", _modules("training"), ids=str)
def test_training_never_imports_the_web_app(path):
    imported = _imports(path)
    assert not imported & {"benchmarks", "tests", "starlette", "uvicorn"}
    assert not {m for m in imported if m.startswith("router.")} & {"router.app", "router.chat", "router.http_io"}


@pytest.mark.parametrize("statement,forbidden", [
    ("import router.app, router.cli, router.routes", ["torch", "transformers", "litellm", "sklearn"]),
    ("import classifiers, classifiers.bundled", ["sklearn", "torch"]),
    ("import training.collect_cli, training.train_cli, training.score_cli", ["torch", "lm_eval", "sklearn"]),
])
def test_heavy_imports_are_lazy(statement, forbidden):
    code = f"import sys; {statement}; print(','.join(m for m in {forbidden!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
