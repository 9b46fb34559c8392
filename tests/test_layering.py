"""Dependencies run one way: core <- model <- stores <- orm <- cli.

Every module of the package is given a layer, and no module imports (at module level, inside a
function, or for type checking only) a module of a higher layer. A new module must be given a
layer here, so where it sits is decided once, when it is written.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "nodellm_orm"

# Lowest first. A module belongs to the layer of the longest prefix listed for it.
LAYERS: dict[str, tuple[str, ...]] = {
    # The LLM client: knows nothing of persistence. `testing` (the fake provider) and the
    # `middlewares` facade are part of it.
    "core": ("core", "testing", "middlewares"),
    # The vocabulary: records, model keys and table names, rows, the reference schema.
    "model": ("model", "schema"),
    # Storage: the port, its backends, the SQLAlchemy tables, URLs, the migrations they run.
    "stores": ("stores", "migrations"),
    # The ORM and the library's other operations on a store.
    "orm": ("orm", "prisma", "transfer", "retention"),
    # Programs over the library.
    "cli": ("cli", "__main__", "dashboard"),
}
# The package itself re-exports the public names of every layer (lazily).
TOP = "nodellm_orm"
RANK = {layer: rank for rank, layer in enumerate(LAYERS)}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def layer_of(module: str) -> str | None:
    if module == TOP:
        return None
    rest = module.removeprefix(TOP + ".")
    best: tuple[int, str] | None = None
    for layer, prefixes in LAYERS.items():
        for prefix in prefixes:
            if (rest == prefix or rest.startswith(prefix + ".")) and (
                best is None or len(prefix) > best[0]
            ):
                best = (len(prefix), layer)
    if best is None:
        raise AssertionError(f"{module} has no layer: add it to LAYERS in {__file__}")
    return best[1]


def imported_modules(source: str, module: str, *, is_package: bool = False) -> set[str]:
    """The package's modules `source` (the text of `module`) imports, wherever the import is
    written; `from .stores import sql` names nodellm_orm.stores.sql."""
    package = module if is_package else module.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == TOP)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if target.split(".")[0] != TOP:
                continue
            found.add(target)
            for alias in node.names:
                candidate = PACKAGE.parent / Path(*target.split("."), alias.name)
                if candidate.with_suffix(".py").exists() or (candidate / "__init__.py").exists():
                    found.add(f"{target}.{alias.name}")
    return found


def imports_of(path: Path) -> set[str]:
    return imported_modules(
        path.read_text(encoding="utf-8"), module_name(path), is_package=path.name == "__init__.py"
    )


def upward_imports(module: str, targets: set[str]) -> list[str]:
    layer = layer_of(module)
    if layer is None:
        return []
    return sorted(
        f"{target} ({target_layer})"
        for target in targets
        if (target_layer := layer_of(target)) is not None and RANK[target_layer] > RANK[layer]
    )


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_a_layer() -> None:
    for path in MODULES:
        layer_of(module_name(path))


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_no_import_from_a_higher_layer(path: Path) -> None:
    module = module_name(path)
    upward = upward_imports(module, imports_of(path))
    assert not upward, f"{module} imports from a higher layer: {', '.join(upward)}"


def test_a_backwards_import_is_caught() -> None:
    """The check sees an upward import written inside a function or for type checking only
    (stores/* once imported the ORM's options and records)."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from ..orm import chat\n"
        "def f():\n"
        "    from ..orm.options import Persistence\n"
        "    from . import sql\n"
    )
    module = "nodellm_orm.stores.example"
    assert upward_imports(module, imported_modules(source, module)) == [
        "nodellm_orm.orm (orm)",
        "nodellm_orm.orm.chat (orm)",
        "nodellm_orm.orm.options (orm)",
    ]


def test_url_and_engine_helpers_have_one_home() -> None:
    """URL parsing and engine creation are imported from stores.urls, not borrowed from the
    migration runner (which only uses them)."""
    borrowers = []
    for path in MODULES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").endswith(
                "migrations.runner"
            ):
                names = {a.name for a in node.names}
                if names & {"async_url", "engine_for_url", "postgres_schema", "normalize_url"}:
                    borrowers.append(module_name(path))
    assert borrowers == []


def test_the_core_does_not_know_the_fake_provider() -> None:
    """`nodellm_orm.testing` registers the fake provider itself; the core maps no name to it."""
    source = (PACKAGE / "core" / "llm.py").read_text(encoding="utf-8")
    assert "testing" not in source
    assert '"fake"' not in source
