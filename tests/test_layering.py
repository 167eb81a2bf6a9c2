"""The package's module layering (DESIGN.md §3), read from the source with `ast`: import
arrows point down, none into the package `__init__`, no import cycle, and the kernel
apart from the magic's host.

Every import counts, also those inside functions and under TYPE_CHECKING: a late import
still ties the modules together, it only defers the cost.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "codeact_kernel"

# Lowest first. A module may import its own layer and those below it. A subpackage's
# modules sit with the subpackage ("providers" is every module of providers/).
LAYERS: tuple[tuple[str, frozenset[str]], ...] = (
    (
        "settings/secrets/errors/events",
        frozenset(
            {
                "settings", "secrets", "errors", "events", "version", "options",
                "interrupts", "background", "provenance",
            }
        ),
    ),
    ("providers", frozenset({"providers"})),
    (
        "context/actions/executor/tools",
        frozenset(
            {
                "context", "actions", "executor", "capture", "frontend", "tools",
                "mcp_client", "namespace",
            }
        ),
    ),
    ("agent", frozenset({"agent", "trajectory"})),
    ("session", frozenset({"session", "export"})),
    (
        "hosts",
        frozenset(
            {
                "kernel", "magics", "magic_runner", "commands", "tool_commands", "labcomm",
                "lab_narrative", "render_inline", "render_terminal", "routing", "cli",
                "cli_export", "headless", "headless_notebook", "headless_progress",
                "install", "bench", "__main__",
            }
        ),
    ),
)  # fmt: skip


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> int:
    top = module.split(".")[0]
    for rank, (_, members) in enumerate(LAYERS):
        if top in members:
            return rank
    raise AssertionError(f"{module} is in no layer: place it in LAYERS")


@functools.cache
def imports(module: str, *, top_level_only: bool = False) -> frozenset[str]:
    """The package modules `module` imports ("" is the package `__init__`)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "codeact_kernel":
                    found.add(alias.name.removeprefix("codeact_kernel").lstrip("."))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            elif (node.module or "").split(".")[0] == "codeact_kernel":
                target = (node.module or "").removeprefix("codeact_kernel").lstrip(".")
            else:
                continue
            for alias in node.names:
                # `from . import x` names a module when there is one, else the package's.
                submodule = f"{target}.{alias.name}".lstrip(".")
                found.add(submodule if submodule in MODULES else target)
    return frozenset(found)


def test_every_module_has_a_layer() -> None:
    unplaced = []
    for module in MODULES:
        if module:
            try:
                layer_of(module)
            except AssertionError:
                unplaced.append(module)
    assert not unplaced


@pytest.mark.parametrize("module", [m for m in MODULES if m])
def test_imports_point_down(module: str) -> None:
    rank = layer_of(module)
    upward = {
        imported: LAYERS[layer_of(imported)][0]
        for imported in imports(module)
        if imported and layer_of(imported) > rank
    }
    assert not upward, f"{module} ({LAYERS[rank][0]}) imports a higher layer: {upward}"


def test_every_import_names_a_module_of_the_package() -> None:
    unknown = {
        module: sorted(imported for imported in imports(module) if imported not in MODULES)
        for module in MODULES
    }
    assert not {module: names for module, names in unknown.items() if names}


def test_no_module_imports_the_package_init() -> None:
    offenders = [module for module in MODULES if module and "" in imports(module)]
    assert not offenders


def test_module_level_imports_have_no_cycle() -> None:
    # A cycle makes the import order matter: whichever module loads first sees the other
    # half-made.
    def visit(module: str, path: tuple[str, ...]) -> None:
        if module in path:
            raise AssertionError(" -> ".join([*path[path.index(module) :], module]))
        for imported in imports(module, top_level_only=True):
            if imported in MODULES:
                visit(imported, (*path, module))

    for module in MODULES:
        if module:
            visit(module, ())


def closure(module: str) -> set[str]:
    """What importing `module` loads of the package (its module-level imports, onward)."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(m for m in imports(current, top_level_only=True) if m in MODULES)
    return seen


def test_the_kernel_does_not_import_the_magic_host() -> None:
    # The `%codeact` commands live in commands.py, which kernel and magic both use.
    assert "magic_runner" not in imports("kernel")
    assert "magic_runner" not in closure("kernel")
    assert "commands" in imports("kernel")
    assert "commands" in imports("magics")


def test_the_version_has_its_own_module_that_imports_nothing() -> None:
    assert imports("version") == frozenset()
    users = {module for module in MODULES if "version" in imports(module)}
    assert {"kernel", "cli"} <= users


def test_the_reader_sees_imports_inside_functions_and_from_the_package() -> None:
    # The checks above are only as good as this reader.
    assert "agent" in imports("session")  # inside `Session.run`
    assert "agent" not in imports("session", top_level_only=True)
    assert "providers.detect" in imports("session")
    assert "providers" in imports("providers.detect")  # `from . import …` of the registry
    assert "mcp_client.servers" in imports("tools")  # under TYPE_CHECKING too
