"""Tools: the functions the model is told about in full, not just named in the namespace.

The namespace summary shows a function's first docstring line. A tool is shown to the
model whole, in the system prompt's Tools section: its signature and its entire
docstring. Two kinds (DESIGN.md §7):

- **Python tools**: `from codeact_kernel import tool`, then `@tool` on a function (or
  `tool(callable)`, `tool(callable, name="...")`). A tool is found in the user namespace
  under its name (or any other name bound to it); one that is no longer there is not
  shown, since the model could not call it.
- **MCP servers' tools**, at `mcp.<server>.<tool>` (mcp_client/).

`%codeact tools` lists both; `%codeact tools remove NAME` unmarks a Python tool or hides
an MCP tool (`mcp.git.git_reset`) from the model.

Marks are process-wide, like the user namespace they point into: one kernel, one shell.
This module imports only the standard library until a Tools section is written, so
`from codeact_kernel import tool` costs nothing.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar, overload

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from .background import BackgroundLoop
    from .mcp_client.servers import McpServers
    from .settings import CodeAct, Settings

F = TypeVar("F", bound=Callable[..., Any])

_marked: dict[str, Callable[..., Any]] = {}
DOC_CHARS = 4000


@overload
def tool(function: F, *, name: str | None = None) -> F: ...


@overload
def tool(function: None = None, *, name: str | None = None) -> Callable[[F], F]: ...


def tool(function: Any = None, *, name: str | None = None) -> Any:
    """Tell the model about `function`: its full signature and docstring.

    Use as `@tool`, `@tool(name="search")`, or `tool(callable)` for any callable (a
    bound method, a `functools.partial` with a `name`). Returns the callable unchanged.
    Marking another callable under the same name replaces the first.
    """

    def mark(target: F) -> F:
        if not callable(target):
            raise TypeError(f"tool() marks callables, not {type(target).__name__}")
        label = name if name is not None else getattr(target, "__name__", None)
        if not isinstance(label, str) or not label.isidentifier():
            raise ValueError(
                f"tool() needs a name for {target!r}: the name the model calls it by, "
                "e.g. tool(fn, name='search')"
            )
        _marked[label] = target
        return target

    return mark if function is None else mark(function)


def untool(name: str) -> bool:
    """Unmark the Python tool `name`; False if there was none."""
    return _marked.pop(name, None) is not None


class PythonTool(NamedTuple):
    """A marked callable, and the name the model can call it by (None: not in the
    namespace). A named tuple: cheaper to define than a dataclass, at `%load_ext`."""

    name: str
    function: Callable[..., Any]
    bound_as: str | None


def python_tools(user_ns: Mapping[str, Any]) -> list[PythonTool]:
    """The marked callables, in the order they were marked, found in `user_ns`."""
    found = []
    for name, function in list(_marked.items()):
        found.append(PythonTool(name, function, _bound_as(name, function, user_ns)))
    return found


def _bound_as(name: str, function: Callable[..., Any], user_ns: Mapping[str, Any]) -> str | None:
    if _same(user_ns.get(name), function):
        return name
    for other, value in list(user_ns.items()):
        if type(other) is str and not other.startswith("_") and _same(value, function):
            return other
    return None


def _same(value: object, function: Callable[..., Any]) -> bool:
    if value is function:
        return True
    # A bound method is made anew at each attribute access: equal, not identical.
    return (
        type(value) is types.MethodType
        and type(function) is types.MethodType
        and (value.__func__ is function.__func__ and value.__self__ is function.__self__)
    )


def python_stub(name: str, function: Callable[..., Any]) -> str:
    """`def name(signature):` and the whole docstring, as the model reads it.

    The signature is rendered as the namespace summary renders it: defaults are shown
    only when they are short builtin values, so no `repr` of the user's objects runs.
    """
    from .namespace import signature_text

    prefix = "async def" if inspect.iscoroutinefunction(function) else "def"
    doc = inspect.getdoc(function) or ""
    if len(doc) > DOC_CHARS:
        doc = doc[: DOC_CHARS - 1] + "…"
    doc = doc.replace('"""', r"\"\"\"")
    body = '    """' + doc.replace("\n", "\n    ") + '"""' if doc.strip() else "    ..."
    body = "\n".join(line.rstrip() for line in body.splitlines())
    return f"{prefix} {name}{signature_text(function)}:\n{body}"


class Toolbox:
    """The tools of one session: the user's marked functions and the MCP servers.

    The MCP side (mcp_client/) loads only once servers are configured or asked about,
    so a session without them pays nothing for it.
    """

    def __init__(
        self,
        shell: InteractiveShell,
        background: BackgroundLoop,
        environ: Callable[[], Mapping[str, str]],
    ) -> None:
        self.shell = shell
        self._background = background
        self._environ = environ
        self._mcp: McpServers | None = None

    @property
    def mcp(self) -> McpServers:
        if self._mcp is None:
            from .mcp_client.servers import McpServers

            self._mcp = McpServers(self.shell, self._background, self._environ)
        return self._mcp

    @staticmethod
    def mcp_configured(configurable: CodeAct, environ: Mapping[str, str]) -> bool:
        """Whether MCP servers are configured at all (a cheap look before settings are
        resolved, so that a session without them costs nothing more to make)."""
        return bool(
            environ.get("CODEACT_MCP_CONFIG") or configurable.mcp_config or configurable.mcp_servers
        )

    def configure(self, settings: Settings) -> None:
        """Read the MCP servers' configuration (`mcp_config`, `mcp_servers`)."""
        if self._mcp is None and not settings.mcp_config and not settings.mcp_servers:
            return
        self.mcp.configure(
            settings.mcp_config,
            str(settings.sources.get("mcp_config", "default")),
            settings.mcp_servers,
        )

    def needs_start(self) -> bool:
        return self._mcp is not None and self._mcp.needs_start()

    async def start(self) -> None:
        """Start the MCP servers whose tools are not known yet (on the background loop)."""
        if self._mcp is not None:
            await self._mcp.start_all()

    def section(self) -> str:
        """The Tools section's content: Python tools, then MCP servers' tools."""
        stubs = [
            python_stub(tool.bound_as, tool.function)
            for tool in python_tools(self.shell.user_ns)
            if tool.bound_as is not None
        ]
        mcp = self._mcp.section() if self._mcp is not None else ""
        parts = [*stubs, mcp] if mcp else stubs
        if not parts:
            return ""
        return "```python\n" + "\n\n".join(parts) + "\n```"

    def secret_values(self) -> set[str]:
        return self._mcp.secret_values() if self._mcp is not None else set()

    def remove(self, name: str) -> str:
        """Unmark a Python tool, or hide an MCP tool from the model; what was done."""
        if untool(name):
            return f"{name} is no longer a tool (the function itself is untouched)."
        if self._mcp is not None:
            qualname = name if name.startswith("mcp.") else f"mcp.{name}"
            for server in self._mcp.configs:
                for spec in self._mcp.listed_tools(server) or []:
                    if spec.qualname == qualname:
                        self._mcp.hidden.add(qualname)
                        return f"{qualname} is hidden from the model (it can still be called)."
        raise KeyError(name)

    def close(self) -> None:
        if self._mcp is not None:
            self._mcp.close()
