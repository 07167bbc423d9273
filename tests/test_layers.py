"""Imports point down the layers only (docs/architecture.md, "Layers").

Every module of the package is parsed (``ast``, nothing is imported) and each import of
another surestream module is checked against the order

    io  <-  model  <-  semantics  <-  connectors  <-  runners  <-  ops  <-  apps  <-  interfaces

``io`` imports nothing else of surestream, so every layer may use it; a module may import
its own layer and the layers to its left, never one to its right. The semantics layer is
pure besides: it opens no file and reads none.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "surestream"

#: top-level package or module -> its rank; a module imports ranks <= its own
LAYERS = {
    "io": 0,
    "model": 1,
    "semantics": 2,
    "connectors": 3,
    "runners": 4,
    "ops": 5,
    "apps": 6,
    # interfaces, and the examples that use them as a user would
    "cli": 7, "api": 7, "testing": 7, "__main__": 7, "examples": 7,
    "__init__": 0,  # the package itself: the version only
}


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def layer_of(module: str) -> str:
    """``surestream.runners.local.runner`` -> ``runners``; ``surestream`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def imported(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every surestream import in the file, at any depth (imports
    inside functions count: they are imports all the same)."""
    tree = ast.parse(path.read_text(), str(path))
    found = []
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the module's own package
                base = package[: len(package) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.append((node.lineno, name))
    return [(line, m) for line, m in found if m == "surestream" or m.startswith("surestream.")]


def test_every_module_has_a_layer():
    unknown = {layer_of(module_name(p)) for p in modules()} - set(LAYERS)
    assert not unknown, f"add these packages to LAYERS and docs/architecture.md: {unknown}"


def test_imports_point_down_the_layers():
    upward = []
    for path in modules():
        me = layer_of(module_name(path))
        for line, target in imported(path):
            them = layer_of(target)
            if LAYERS[them] > LAYERS[me] or (me == "io" and them != "io"):
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line} ({me}) imports "
                              f"{target} ({them})")
    assert not upward, "imports that point up the layers:\n" + "\n".join(upward)


#: what reads or writes files; a semantics module calls none of them
FILE_IO_CALLS = {"open", "read_parquet", "read_csv", "read_ndjson", "read_json",
                 "scan_parquet", "scan_csv", "scan_ndjson", "read_text", "read_bytes",
                 "write_text", "write_bytes"}
FILE_IO_MODULES = {"os", "pathlib", "shutil", "glob", "tempfile"}


@pytest.mark.parametrize("path", [p for p in modules()
                                  if layer_of(module_name(p)) == "semantics"],
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_semantics_does_no_file_io(path: Path):
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] in FILE_IO_MODULES]
        elif isinstance(node, ast.ImportFrom) and not node.level \
                and (node.module or "").split(".")[0] in FILE_IO_MODULES:
            found.append(node.module)
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else \
                func.attr if isinstance(func, ast.Attribute) else None
            # ``self.function.open(params)`` is a user function's hook, not a file
            if name in FILE_IO_CALLS and not (name == "open" and isinstance(func, ast.Attribute)):
                found.append(f"{name}() at line {node.lineno}")
    assert not found, f"{path.name} does I/O: {found}"
