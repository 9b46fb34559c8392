"""What `import nodellm_orm` costs: names load on first use, SQLAlchemy only with the sql backend.

Checked by what a fresh interpreter has in sys.modules, never by a timing.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import nodellm_orm

INIT = Path(nodellm_orm.__file__)


def modules_after(code: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running `code`."""
    script = f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    return set(done.stdout.split())


def test_import_loads_no_backend_and_no_dependency() -> None:
    loaded = modules_after("import nodellm_orm")
    heavy = {"sqlalchemy", "pydantic", "httpx", "prisma", "nodellm_orm.stores.sql"}
    assert heavy.isdisjoint(loaded), heavy & loaded


def test_chat_entry_points_do_not_import_sqlalchemy() -> None:
    # What a user of a prisma client or of the core chat imports; a wrong db is refused
    # without pulling SQLAlchemy in to ask whether it is an engine.
    loaded = modules_after(
        "import asyncio\n"
        "from nodellm_orm import Chat, Tool, create_chat, create_llm, load_chat\n"
        "from nodellm_orm.testing import FakeProvider\n"
        "llm = create_llm(provider=FakeProvider())\n"
        "try:\n"
        "    asyncio.run(create_chat(42, llm))\n"
        "except TypeError:\n"
        "    pass\n"
        "else:\n"
        "    raise SystemExit('create_chat(42) was accepted')\n"
    )
    assert "nodellm_orm.orm.chat" in loaded
    assert not any(m == "sqlalchemy" or m.startswith("sqlalchemy.") for m in loaded)


def test_connect_brings_the_sql_backend() -> None:
    loaded = modules_after("from nodellm_orm import connect")
    assert {"sqlalchemy", "nodellm_orm.stores.sql"} <= loaded


def test_lazy_table_matches_the_type_checking_imports() -> None:
    """The names type checkers see are the names the module hands out at run time."""
    tree = ast.parse(INIT.read_text())
    block = next(
        node
        for node in tree.body
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name)
        if node.test.id == "TYPE_CHECKING"
    )
    seen = {}
    for node in block.body:
        assert isinstance(node, ast.ImportFrom)
        for alias in node.names:
            seen[alias.asname or alias.name] = ("." * node.level + (node.module or ""), alias.name)
    assert seen == nodellm_orm._EXPORTS  # type: ignore[attr-defined]
    assert sorted(seen) == sorted(nodellm_orm.__all__)
    assert len(nodellm_orm.__all__) == len(set(nodellm_orm.__all__))


def _isort_key(name: str) -> tuple[int, str]:
    # ruff's RUF022 order: CONSTANT_CASE, then CamelCase, then the rest, each alphabetical.
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


def test_all_is_sorted_so_a_reader_finds_a_name() -> None:
    assert nodellm_orm.__all__ == sorted(nodellm_orm.__all__, key=_isort_key)


def test_every_name_resolves_to_its_definition_and_unknown_names_raise() -> None:
    import importlib

    for name, (module, attr) in nodellm_orm._EXPORTS.items():  # type: ignore[attr-defined]
        assert getattr(nodellm_orm, name) is getattr(
            importlib.import_module(module, "nodellm_orm"), attr
        )
    assert set(nodellm_orm.__all__) <= set(dir(nodellm_orm))
    try:
        nodellm_orm.no_such_name  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("an unknown name was accepted")


MOVED = {
    "CoreChat": ("nodellm_orm.core.chat", "Chat"),
    "RequestMetrics": ("nodellm_orm.core.chat", "RequestMetrics"),
    "SqlStore": ("nodellm_orm.stores.sql", "SqlStore"),
    "Thinking": ("nodellm_orm.core.messages", "Thinking"),
}


@pytest.mark.parametrize("name", sorted(MOVED))
def test_a_name_dropped_from_the_surface_still_resolves_with_a_warning_naming_its_home(
    name: str,
) -> None:
    import importlib

    module, attr = MOVED[name]
    home = getattr(importlib.import_module(module), attr)
    assert name not in nodellm_orm.__all__ and name not in dir(nodellm_orm)
    for _ in range(2):  # never cached in the module: every use warns
        with pytest.warns(DeprecationWarning, match=rf"nodellm_orm\.{name} .*{module}\.{attr}"):
            assert getattr(nodellm_orm, name) is home


def test_the_old_error_names_warn_the_same_way() -> None:
    from nodellm_orm.core import errors

    for old, new in [
        ("TimeoutError", "LLMTimeoutError"),
        ("ConnectionError", "LLMConnectionError"),
    ]:
        with pytest.warns(DeprecationWarning, match=rf"errors\.{old} .*errors\.{new}$"):
            assert getattr(errors, old) is getattr(errors, new)


@pytest.mark.parametrize("module", ["nodellm_orm", "nodellm_orm.core.errors"])
def test_star_import_binds_no_builtin_name(module: str) -> None:
    import builtins

    namespace: dict[str, object] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nor does it touch a deprecated name
        exec(f"from {module} import *", namespace)
    bound = set(namespace) - {"__builtins__"}
    assert bound, "nothing was imported"
    assert not bound & set(dir(builtins)), bound & set(dir(builtins))
