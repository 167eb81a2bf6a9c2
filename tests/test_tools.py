"""tools.py: @tool functions, the Tools section, `%codeact tools`.

In-process, over the test shell. Tools composed by a code action in both hosts, with
MCP tools, are in test_mcp_kernel.py.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from codeact_kernel import tool
from codeact_kernel.commands import Commands
from codeact_kernel.context import system_prompt
from codeact_kernel.session import Session
from codeact_kernel.tools import Toolbox, python_stub, python_tools, untool


@pytest.fixture
def shell(ipython: InteractiveShell) -> Iterator[InteractiveShell]:
    """The test shell, with the tools and names each test made taken away after it."""
    before = set(ipython.user_ns)
    yield ipython
    for name in set(ipython.user_ns) - before:
        del ipython.user_ns[name]
    for tool_ in python_tools({}):
        untool(tool_.name)


def search(query: str, limit: int = 10, *, api_key: str = "sk-proj-abcdefghijklmnop1234") -> list:
    """Search the catalogue.

    Args:
        query: what to look for.

    Returns a list of {"title", "price"} dicts.
    """
    return []


class Catalogue:
    def lookup(self, sku: str) -> dict:
        """The item with this SKU."""
        return {}


def test_tool_marks_and_returns_the_callable_unchanged(shell: InteractiveShell) -> None:
    assert tool(search) is search
    assert [t.name for t in python_tools({})] == ["search"]
    assert untool("search") and not untool("search")


def test_as_a_decorator_with_and_without_a_name(shell: InteractiveShell) -> None:
    @tool
    def total(values: list[float]) -> float:
        """Sum of values."""
        return sum(values)

    @tool(name="mean")
    def average(values: list[float]) -> float:
        return sum(values) / len(values)

    shell.user_ns.update(total=total, mean=average)
    assert [(t.name, t.bound_as) for t in python_tools(shell.user_ns)] == [
        ("total", "total"),
        ("mean", "mean"),
    ]


def test_any_callable_with_a_name(shell: InteractiveShell) -> None:
    catalogue = Catalogue()
    shell.user_ns["lookup"] = tool(catalogue.lookup)
    shell.user_ns["find"] = tool(functools.partial(search, limit=3), name="find")
    with pytest.raises(TypeError, match="marks callables"):
        tool(42)  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="must be a Python identifier"):
        tool(search, name="my search")
    found = {t.name: t.bound_as for t in python_tools(shell.user_ns)}
    assert found == {"lookup": "lookup", "find": "find"}


class Scaler:
    def __call__(self, value: float, factor: float = 2.0) -> float:
        """Scale `value` by `factor`."""
        return value * factor


def test_callables_without_a_name_are_called_by_the_name_bound_to_them(
    shell: InteractiveShell,
) -> None:
    shell.user_ns.update(functools=functools, search=search, Scaler=Scaler)
    shell.run_cell(
        "from codeact_kernel import tool\n"
        "double = tool(lambda x: 2 * x)\n"
        "find = tool(functools.partial(search, limit=3))\n"
        "scale = tool(Scaler())\n"
        "tool(lambda y: y)  # bound to no name: the model could not call it\n"
    )
    toolbox = Toolbox(shell, None, dict)  # type: ignore[arg-type]
    section = toolbox.section()
    assert "def double(x):\n    ..." in section
    # A partial's docstring is its function's, not functools.partial's own.
    assert "def find(query: str, *, limit: int = 3, api_key: str = <str>) -> list:\n" in section
    assert '    """Search the catalogue.' in section and "partial(func" not in section
    assert 'def scale(value: float, factor: float = 2.0) -> float:\n    """Scale' in section
    assert "def y" not in section and "lambda" not in section
    assert [t.name for t in python_tools(shell.user_ns)] == ["double", "find", "scale"]
    assert toolbox.remove("scale").startswith("scale is no longer a tool")
    assert [t.name for t in python_tools(shell.user_ns)] == ["double", "find"]


def test_a_nameless_tool_replaced_or_never_kept_is_forgotten(shell: InteractiveShell) -> None:
    from codeact_kernel import tools

    for _ in range(5):
        shell.run_cell("from codeact_kernel import tool\ntriple = tool(lambda x: 3 * x)")
    shell.run_cell("kept = [tool(lambda: 'in a list')]")
    assert [t.name for t in python_tools(shell.user_ns)].count("triple") == 1
    nameless = [key for key in tools._marked if not isinstance(key, str)]
    assert nameless == [id(shell.user_ns["triple"])]


class _Proxy:
    """A lazy object whose `__class__` runs code that fails (Django's unset settings)."""

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        raise RuntimeError("settings are not configured")


def test_an_object_that_fails_when_asked_its_class_does_not_stop_the_tools(
    shell: InteractiveShell,
) -> None:
    shell.user_ns["settings"] = _Proxy()
    shell.run_cell("from codeact_kernel import tool\nhalve = tool(lambda x: x / 2)")
    shell.run_cell("@tool\ndef gone(x: int) -> int:\n    return x\ndel gone")
    assert "halve" in [t.name for t in python_tools(shell.user_ns)]
    assert "def halve(x):" in Toolbox(shell, None, dict).section()  # type: ignore[arg-type]


def test_methods_and_module_functions_are_called_through_their_owner(
    shell: InteractiveShell,
) -> None:
    shell.user_ns["Catalogue"] = Catalogue
    shell.run_cell(
        "from codeact_kernel import tool\n"
        "class Shop:\n"
        "    @tool\n"
        "    def search(self, q: str, *, limit: int = 3) -> list:\n"
        '        """Search the shop."""\n'
        "        return [q] * limit\n"
        "shop = Shop()\n"
        "catalogue = Catalogue()\n"
        "tool(catalogue.lookup)\n"
        "tool(Catalogue().lookup, name='orphan')\n"
        "import json as serial\n"
        "tool(serial.dumps)  # a module's function, by the module's name here\n"
        "tool(max)  # a builtin, by its own name\n"
        "nothing = None\n"
    )
    section = Toolbox(shell, None, dict).section()  # type: ignore[arg-type]
    assert 'def shop.search(q: str, *, limit: int = 3) -> list:\n    """Search the shop."""' in (
        section
    )
    assert 'def catalogue.lookup(sku: str) -> dict:\n    """The item' in section
    assert "orphan" not in section
    bound = {t.name: t.bound_as for t in python_tools(shell.user_ns)}
    assert bound == {
        "search": "shop.search",
        "lookup": "catalogue.lookup",
        "orphan": None,
        "dumps": "serial.dumps",
        "max": "max",
    }
    assert "def serial.dumps(obj, *, skipkeys=False" in section
    assert "def max(" in section


def test_kinds_of_callables_and_future_annotations(shell: InteractiveShell) -> None:
    shell.run_cell(
        "from __future__ import annotations\n"
        "from codeact_kernel import tool\n"
        "@tool\n"
        "def spread(*values: int, sep: str = ',', **options: bool) -> str:\n"
        '    """Join values."""\n'
        "@tool\n"
        "def only_keywords(*, table: pd.DataFrame, column: str) -> dict[str, int]: ...\n"
        "@tool\n"
        "async def fetch(url: str) -> bytes: ...\n"
        "size = tool(len)\n"
        "@tool\n"
        "class Point:\n"
        '    """A point."""\n'
        "    def __init__(self, x: int, y: int = 0) -> None: ...\n"
    )
    section = Toolbox(shell, None, dict).section()  # type: ignore[arg-type]
    assert "def spread(*values: int, sep: str = ',', **options: bool) -> str:" in section
    assert "def only_keywords(*, table: pd.DataFrame, column: str) -> dict[str, int]:" in section
    assert "async def fetch(url: str) -> bytes:" in section
    assert 'def size(obj, /):\n    """Return the number of items in a container."""' in section
    assert 'class Point(x: int, y: int = 0):\n    """A point."""' in section


AREA = 'from codeact_kernel import tool\n@tool\ndef area(w: float{}) -> float:\n    "{}"\n'


def test_the_latest_definition_wins_and_a_deleted_tool_is_not_shown(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    shell.run_cell(AREA.format("", "First."))
    shell.run_cell(AREA.format(", h: float = 1.0", "Second."))
    toolbox = Toolbox(shell, None, dict)  # type: ignore[arg-type]
    assert toolbox.section().count("def area") == 1
    assert 'def area(w: float, h: float = 1.0) -> float:\n    """Second."""' in toolbox.section()
    shell.run_cell("def area(w): return w")
    assert toolbox.section() == "", "redefined without @tool: no longer a tool"
    Commands(Session(shell)).run("tools")
    assert "area: redefined without @tool, so the model is not told" in capsys.readouterr().out
    shell.run_cell(AREA.format("", "Third."))
    shell.run_cell("del area")
    assert toolbox.section() == ""


def test_a_tool_is_found_under_any_name_or_not_at_all(shell: InteractiveShell) -> None:
    tool(search)
    assert python_tools({"other": search})[0].bound_as == "other"
    assert python_tools({"search": "rebound"})[0].bound_as is None


def test_the_stub_has_the_whole_docstring_and_no_secret_defaults() -> None:
    stub = python_stub("search", search)
    assert stub.startswith("def search(query: str, limit: int = 10, *, api_key: str = <str>)")
    assert "        query: what to look for." in stub
    assert 'Returns a list of {"title", "price"} dicts."""' in stub
    assert "sk-proj" not in stub

    async def fetch(url: str) -> bytes:
        return b""

    assert python_stub("fetch", fetch) == "async def fetch(url: str) -> bytes:\n    ..."


def test_the_tools_section_in_the_system_prompt(shell: InteractiveShell) -> None:
    toolbox = Toolbox(shell, None, dict)  # type: ignore[arg-type]
    assert toolbox.section() == ""
    assert "## Tools" not in system_prompt("markdown", "x: int = 1", toolbox.section())
    shell.user_ns["search"] = tool(search)
    prompt = system_prompt("markdown", "x: int = 1", toolbox.section())
    assert "## Tools" in prompt
    assert "```python\ndef search(query: str" in prompt
    assert "Returns a list of" in prompt


def test_percent_codeact_tools_lists_and_removes(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    commands = Commands(Session(shell))
    commands.run("tools")
    assert "No tools." in capsys.readouterr().out
    shell.user_ns["search"] = tool(search)
    tool(Catalogue().lookup)
    commands.run("tools")
    out = capsys.readouterr().out
    assert "search(query: str, limit: int = 10, *, api_key: str = <str>) -> list  # Search" in out
    assert "lookup: not in the namespace, so the model is not told" in out
    commands.run("tools remove search")
    assert "search is no longer a tool" in capsys.readouterr().out
    with pytest.raises(UsageError, match="No tool 'search'"):
        commands.run("tools remove search")
    with pytest.raises(UsageError, match="Unknown %codeact tools command"):
        commands.run("tools frobnicate")
    with pytest.raises(UsageError, match="takes one NAME"):
        commands.run("tools remove")
    with pytest.raises(UsageError, match=r"No tool 'mcp\.nowhere\.thing'"):
        commands.run("tools remove mcp.nowhere.thing")


def test_the_session_redacts_nothing_extra_without_mcp(shell: InteractiveShell) -> None:
    session = Session(shell)
    assert session.tools.secret_values() == set()
    assert session.tools._mcp is None, "no MCP machinery without MCP servers"


def test_from_codeact_kernel_import_tool_is_light() -> None:
    import subprocess
    import sys

    probe = (
        "import sys; from codeact_kernel import tool, McpToolError; "
        "print(sorted(m for m in sys.modules if m.startswith(('codeact_kernel', 'mcp'))))"
    )
    loaded: Any = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert loaded.strip() == (
        "['codeact_kernel', 'codeact_kernel.errors', 'codeact_kernel.tools', "
        "'codeact_kernel.version']"
    )


def test_past_a_budget_tools_are_listed_by_their_first_line(shell: InteractiveShell) -> None:
    long_doc = "First line.\n\n" + "More about it. " * 300

    def documented(x: int) -> int:
        return x

    documented.__doc__ = long_doc
    for index in range(8):
        shell.user_ns[f"tool{index}"] = tool(functools.partial(documented), name=f"tool{index}")
    section = Toolbox(shell, None, dict).section()  # type: ignore[arg-type]
    assert section.count("def tool") == 8
    assert section.count("More about it.") < 8 * 300
    assert 'def tool7(x: int) -> int:\n    """First line."""' in section
    assert len(section) < 30_000
