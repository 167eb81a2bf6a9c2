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
    with pytest.raises(ValueError, match="needs a name"):
        tool(lambda x: x)
    with pytest.raises(TypeError, match="marks callables"):
        tool(42)  # type: ignore[call-overload]
    found = {t.name: t.bound_as for t in python_tools(shell.user_ns)}
    assert found == {"lookup": "lookup", "find": "find"}


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
