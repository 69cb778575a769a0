"""The layering holds: only seats_core/models/ knows transformers; seats_core/method/ is torch + stdlib only.

Walks the AST of every module (imports at any depth, including those inside functions).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "seats_core"
MODELS = PACKAGE / "models"
METHOD = PACKAGE / "method"
OUTSIDE_MODELS = [
    p
    for p in [
        *PACKAGE.rglob("*.py"),
        *(ROOT / "app").rglob("*.py"),
        ROOT / "app.py",
        *(ROOT / "scripts").glob("*.py"),
    ]
    if MODELS not in p.parents
]


def imported_modules(path: Path) -> list[tuple[str, int]]:
    """(top-level name, level) of every import in a file; level > 0 for relative imports."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [(alias.name, 0) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            out.append((node.module or "", node.level))
    return out


@pytest.mark.parametrize("path", OUTSIDE_MODELS, ids=lambda p: str(p.relative_to(ROOT)))
def test_nothing_outside_models_imports_transformers(path):
    bad = [m for m, level in imported_modules(path) if level == 0 and m.split(".")[0] == "transformers"]
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}: go through seats_core.models (an adapter)"


@pytest.mark.parametrize("path", sorted(METHOD.glob("*.py")), ids=lambda p: p.name)
def test_method_imports_only_torch_and_the_standard_library(path):
    allowed = set(sys.stdlib_module_names) | {"torch"}
    for module, level in imported_modules(path):
        if level > 0:  # relative: must stay inside seats_core.method
            assert level == 1, f"{path.name} reaches outside method/ with a relative import of {module!r}"
            continue
        assert module.split(".")[0] in allowed, f"{path.name} imports {module!r}"


def test_the_walk_sees_imports_inside_functions(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("def g():\n    from transformers import AutoModel\n")
    assert ("transformers", 0) in imported_modules(f)


# The folders of seats_core and what each may import (docs/ARCHITECTURE.md): imports only go up this list.
LAYERS = {
    "method": set(),
    "models": {"method"},
    "prune": {"method", "models"},
    "run": {"method", "models", "prune"},
    "speed": {"method", "models", "prune", "run"},
    "evaluation": {"method", "models", "prune", "run"},
    "data": {"run", "evaluation"},
}


def seats_core_targets(path: Path, where: Path | None = None) -> set[str]:
    """The seats_core folders (or top-level modules) a file imports, relative imports resolved from its place in
    the tree (`where`, default the file itself)."""
    package = (where or path).relative_to(ROOT).with_suffix("").parts[:-1]  # e.g. ("seats_core", "run")
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[: len(package) - node.level + 1])
                target = ".".join(base + ([node.module] if node.module else []))
                names = [target] if node.module else [f"{target}.{alias.name}" for alias in node.names]
            else:
                names = [node.module or ""]
        for name in names:
            parts = name.split(".")
            if parts[0] == "seats_core" and len(parts) > 1:
                out.add(parts[1])
    return out


@pytest.mark.parametrize(
    "path",
    [p for folder in LAYERS for p in sorted((PACKAGE / folder).rglob("*.py"))],
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_folders_import_only_the_layers_below(path):
    folder = path.relative_to(PACKAGE).parts[0]
    reached = seats_core_targets(path) - {folder}
    assert reached <= LAYERS[folder], f"{path.relative_to(ROOT)} imports {sorted(reached - LAYERS[folder])}"


def test_every_seats_core_folder_has_a_layer():
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))}
    assert folders == set(LAYERS)


def test_the_layer_walk_resolves_relative_imports(tmp_path):
    g = tmp_path / "g.py"
    g.write_text("from ..models.family import get_adapter\nfrom . import media\nfrom .. import method as M\n")
    assert seats_core_targets(g, where=PACKAGE / "run" / "g.py") == {"models", "run", "method"}
