"""Tools: the functions the model is told about in full, not just named in the namespace.

The namespace summary shows a function's first docstring line. A tool is shown to the
model whole, in the system prompt's Tools section: its signature and its entire
docstring. Two kinds (DESIGN.md §7):

- **Python tools**: `from codeact_kernel import tool`, then `@tool` on a function (or
  `tool(callable)`, `tool(callable, name="...")`). A tool is found in the user namespace
  under its name, or any other name bound to it (a lambda's only name), or as a method
  of an instance there (`shop.search`); one that is no longer there is not shown, since
  the model could not call it.
- **MCP servers' tools**, at `mcp.<server>.<tool>` (mcp_client/).

`%codeact tools` lists both; `%codeact tools remove NAME` unmarks a Python tool or hides
an MCP tool (`mcp.git.git_reset`) from the model.

Marks are process-wide, like the user namespace they point into: one kernel, one shell.
This module imports only the standard library until a Tools section is written, so
`from codeact_kernel import tool` costs nothing.
"""

from __future__ import annotations

import builtins
import functools
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

# Marked callables, in the order they were marked: under the name the model calls them
# by, or, for a callable without a usable name (a lambda, a partial, an instance with
# `__call__`), under its id until the namespace gives it one.
_marked: dict[str | int, Callable[..., Any]] = {}
DOC_CHARS = 4000
FULL_DOCS_CHARS = 16000


@overload
def tool(function: F, *, name: str | None = None) -> F: ...


@overload
def tool(function: None = None, *, name: str | None = None) -> Callable[[F], F]: ...


def tool(function: Any = None, *, name: str | None = None) -> Any:
    """Tell the model about `function`: its full signature and docstring.

    Use as `@tool`, `@tool(name="search")`, or `tool(callable)` for any callable (a
    lambda, a bound method, a `functools.partial`, an object with `__call__`). Returns
    the callable unchanged. The model calls it by the name it has in the namespace
    (`double = tool(lambda x: 2 * x)` is `double`); marking another callable under the
    same name replaces the first, so the latest definition of a cell wins.
    """
    if name is not None and (not isinstance(name, str) or not name.isidentifier()):
        raise ValueError(f"tool(name=...) must be a Python identifier, not {name!r}")

    def mark(target: F) -> F:
        if not callable(target):
            raise TypeError(f"tool() marks callables, not {type(target).__name__}")
        label = name if name is not None else getattr(target, "__name__", None)
        if not isinstance(label, str) or not label.isidentifier():
            _marked[id(target)] = target
            return target
        # Marked again (a cell run twice): the latest mark goes last, as if new.
        _marked.pop(label, None)
        _marked[label] = target
        return target

    return mark if function is None else mark(function)


def untool(name: str, user_ns: Mapping[str, Any] | None = None) -> bool:
    """Unmark the Python tool `name` (or the one bound to `name` in `user_ns`); False
    if there was none."""
    if _marked.pop(name, None) is not None:
        return True
    for key, function in list(_marked.items()):
        if user_ns is not None and _bound_as(key, function, user_ns) == name:
            del _marked[key]
            return True
    return False


class PythonTool(NamedTuple):
    """A marked callable, and the name the model can call it by (None: not in the
    namespace). A named tuple: cheaper to define than a dataclass, at `%load_ext`."""

    name: str
    function: Callable[..., Any]
    bound_as: str | None


def python_tools(user_ns: Mapping[str, Any]) -> list[PythonTool]:
    """The marked callables found in `user_ns`, in the order they were marked. A
    nameless one no name of the namespace is bound to is forgotten: it was replaced
    (`double = tool(lambda …)` run again) or never kept, and nothing can call it."""
    found = []
    for key, function in list(_marked.items()):
        bound_as = _bound_as(key, function, user_ns)
        if isinstance(key, str):
            found.append(PythonTool(key, function, bound_as))
        elif bound_as is not None:
            found.append(PythonTool(bound_as, function, bound_as))
        else:
            del _marked[key]
    return found


def _bound_as(
    key: str | int, function: Callable[..., Any], user_ns: Mapping[str, Any]
) -> str | None:
    """The name the model can call `function` by in `user_ns`: a name bound to it, a
    builtin's own name, or `instance.method` / `module.function`."""
    if isinstance(key, str) and _same(user_ns.get(key), function):
        return key
    names = [n for n in list(user_ns) if type(n) is str and not n.startswith("_")]
    for other in names:
        if _same(user_ns.get(other), function):
            return other
    attribute = getattr(function, "__name__", None)
    if not isinstance(attribute, str) or not attribute.isidentifier():
        return None
    if key == attribute and vars(builtins).get(key) is function:  # `tool(len)`
        return key
    # `tool(shop.search)`, `@tool` on `def search(self, ...)` in a class, `tool(np.mean)`.
    owner = function.__self__ if type(function) is types.MethodType else None
    for other in names:
        value = user_ns.get(other)
        if (owner is not None and value is owner) or (
            owner is None and _member(value, attribute) is function
        ):
            return f"{other}.{attribute}"
    return None


def _member(value: object, attribute: str) -> object:
    """`value.attribute` found without running any of the user's code: a module's
    global, or a function defined on an instance's class."""
    # type(), not isinstance(): isinstance asks a proxy for its `__class__`, which runs
    # its code (an unconfigured lazy settings object raises).
    kind = type(value)
    if issubclass(kind, types.ModuleType):
        return vars(value).get(attribute)
    if issubclass(kind, type):
        return None
    return _defined_on(kind, attribute)


def _defined_on(cls: type, attribute: str) -> object:
    # Static lookup: a user object's `__getattr__` or properties never run.
    for klass in getattr(cls, "__mro__", ()):
        found = vars(klass).get(attribute)
        if found is not None:
            return found
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


def callable_of(tool: PythonTool, user_ns: Mapping[str, Any]) -> Callable[..., Any]:
    """What the model calls: for `instance.method`, the bound method (no `self`)."""
    if tool.bound_as is None or "." not in tool.bound_as:
        return tool.function
    owner, _, attribute = tool.bound_as.partition(".")
    bound = getattr(user_ns.get(owner), attribute, None)
    return bound if callable(bound) else tool.function


def python_stub(name: str, function: Callable[..., Any], *, full: bool = True) -> str:
    """`def name(signature):` and the whole docstring (or its first line), as the model
    reads it.

    The signature is rendered as the namespace summary renders it: defaults are shown
    only when they are short builtin values, so no `repr` of the user's objects runs.
    """
    from .namespace import signature_text

    if inspect.isclass(function):
        prefix = "class"
    elif inspect.iscoroutinefunction(function):
        prefix = "async def"
    else:
        prefix = "def"
    doc = tool_doc(function)
    if not full:
        doc = (doc.strip().splitlines() or [""])[0]
    if len(doc) > DOC_CHARS:
        doc = doc[: DOC_CHARS - 1] + "…"
    doc = doc.replace('"""', r"\"\"\"")
    body = '    """' + doc.replace("\n", "\n    ") + '"""' if doc.strip() else "    ..."
    body = "\n".join(line.rstrip() for line in body.splitlines())
    signature = signature_text(function)
    if prefix == "class":
        signature = signature.removesuffix(" -> None")  # __init__'s, as a string annotation
    return f"{prefix} {name}{signature}:\n{body}"


def tool_doc(function: Callable[..., Any]) -> str:
    """The docstring the user wrote: a partial's is its function's (not `partial`'s own),
    an object's with `__call__` its class's or else its `__call__`'s."""
    if isinstance(function, functools.partial):
        return tool_doc(function.func)
    doc = inspect.getdoc(function)
    if not doc and not inspect.isroutine(function) and not inspect.isclass(function):
        doc = inspect.getdoc(_defined_on(type(function), "__call__"))
    return doc or ""


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
        """Read the MCP servers' configuration (`mcp_config`, `mcp_servers`).

        A file that cannot be read, or a mapping of the wrong shape, raises
        `ConfigurationError` naming it, so a request says so rather than running without
        the servers the user expects (`%codeact mcp` reports it and goes on).
        """
        if self._mcp is None and not settings.mcp_config and not settings.mcp_servers:
            return
        self.mcp.configure(
            settings.mcp_config,
            str(settings.sources.get("mcp_config", "default")),
            settings.mcp_servers,
        )
        if self.mcp.config_error:
            from .errors import ConfigurationError

            raise ConfigurationError(
                f"{self.mcp.config_error} Fix it and run the cell again "
                "(`%codeact mcp` shows the MCP servers)."
            )

    def needs_start(self) -> bool:
        return self._mcp is not None and self._mcp.needs_start()

    async def start(self) -> None:
        """Start the MCP servers whose tools are not known yet (on the background loop)."""
        if self._mcp is not None:
            await self._mcp.start_all()

    def section(self) -> str:
        """The Tools section's content: Python tools, then MCP servers' tools."""
        user_ns = self.shell.user_ns
        stubs: list[str] = []
        # Past a budget, tools are listed with their first docstring line only: the system
        # prompt is never cut, so it must not crowd out the conversation.
        budget = FULL_DOCS_CHARS
        for tool in python_tools(user_ns):
            if tool.bound_as is not None:
                stubs.append(
                    python_stub(tool.bound_as, callable_of(tool, user_ns), full=budget > 0)
                )
                budget -= len(stubs[-1])
        mcp = self._mcp.section() if self._mcp is not None else ""
        parts = [*stubs, mcp] if mcp else stubs
        if not parts:
            return ""
        return "```python\n" + "\n\n".join(parts) + "\n```"

    def secret_values(self) -> set[str]:
        return self._mcp.secret_values() if self._mcp is not None else set()

    def remove(self, name: str) -> str:
        """Unmark a Python tool, or hide an MCP tool from the model; what was done."""
        if untool(name, self.shell.user_ns):
            return f"{name} is no longer a tool (the function itself is untouched)."
        if self._mcp is not None:
            qualname = name if name.startswith("mcp.") else f"mcp.{name}"
            if self._mcp.is_tool(qualname):
                self._mcp.hidden.add(qualname)
                return f"{qualname} is hidden from the model (it can still be called)."
        raise KeyError(name)

    def close(self) -> None:
        if self._mcp is not None:
            self._mcp.close()
