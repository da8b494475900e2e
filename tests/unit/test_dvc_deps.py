"""Every dvc.yaml stage declares the code it runs, so a code change can never leave a stage
cached that should rerun. Hand-listed deps fall behind the imports; this test follows them.

A stage runs ``prodrank <stage>``, which calls one function of ``prodrank/stages.py``. Its code is
stages.py itself, the modules stages.py imports at the top, the modules that function imports,
and, transitively, every prodrank module those import (anywhere in their body: a conservative
closure). Each of those files must be a dep of the stage, itself or through a folder above it.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from tests.conftest import PROJECT_ROOT

SRC = PROJECT_ROOT / "src"


def module_file(name: str) -> Path | None:
    path = SRC / Path(*name.split("."))
    for candidate in (path / "__init__.py", path.with_suffix(".py")):
        if candidate.exists():
            return candidate
    return None


def prodrank_imports(node: ast.AST) -> set[str]:
    """Modules named by the imports under ``node`` (``from prodrank.x import y`` counts ``prodrank.x.y``
    when y is a module)."""
    found = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.ImportFrom) and sub.module and sub.module.split(".")[0] == "prodrank":
            found.add(sub.module)
            found |= {f"{sub.module}.{a.name}" for a in sub.names if module_file(f"{sub.module}.{a.name}")}
        elif isinstance(sub, ast.Import):
            found |= {a.name for a in sub.names if a.name.split(".")[0] == "prodrank"}
    return found


def closure(start: set[str]) -> set[str]:
    """``start`` and every prodrank module reachable from it, with their parent packages."""
    seen: set[str] = set()
    todo = list(start)
    while todo:
        name = todo.pop()
        path = module_file(name)
        if name in seen or path is None or name == "prodrank.stages":
            continue
        seen.add(name)
        todo += prodrank_imports(ast.parse(path.read_text()))
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
    return seen


def stage_code(function: str) -> list[str]:
    """Files (relative to the project) a stage's function runs, empty package markers left out."""
    tree = ast.parse((SRC / "prodrank" / "stages.py").read_text())
    top = set().union(*(prodrank_imports(n) for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)))
    body = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function)
    files = {module_file(m) for m in closure(top | prodrank_imports(body))} | {SRC / "prodrank" / "stages.py"}
    return sorted(str(f.relative_to(PROJECT_ROOT)) for f in files if f is not None and f.read_text().strip())


STAGES = yaml.safe_load((PROJECT_ROOT / "dvc.yaml").read_text())["stages"]


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_declares_every_module_it_runs(stage):
    command = STAGES[stage]["cmd"].split()
    assert command[:2] == ["prodrank", stage], f"{stage}: expected `prodrank {stage}`, got {command}"
    deps = [d.rstrip("/") for d in STAGES[stage].get("deps", []) if d.startswith("src/")]
    missing = [f for f in stage_code(stage) if not any(f == d or f.startswith(d + "/") for d in deps)]
    assert not missing, f"dvc.yaml stage {stage!r} runs code it does not list as deps: {missing}"


def test_the_closure_follows_imports_inside_functions():
    """The stage functions import their modules lazily; those must count."""
    assert "src/prodrank/training/finetune.py" in stage_code("train")
    assert "src/prodrank/models/ranker.py" in stage_code("evaluate")
    assert "src/prodrank/config.py" in stage_code("ingest")
