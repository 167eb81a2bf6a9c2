"""The `mcp` object in the user namespace, and the tool functions under it.

`mcp.<server>` is there for every configured server; `mcp.<server>.<tool>` is a plain
synchronous function whose `__signature__` and `__doc__` come from the tool's schemas
(schema.py), so `help()`, `?` and tab completion work. Asking a server for its tools
starts it (first use). Names starting with `_` are never tools: IPython and `inspect`
probe objects for `_repr_html_`, `__wrapped__` and the like, which must not start a
server.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .schema import ToolSpec
    from .servers import McpServers


class McpNamespace:
    """`mcp`: one attribute per MCP server of the session (`mcp.time`, `mcp.git`).

    The servers are plain instance attributes, not a `__getattr__`: IPython completes
    `mcp.<TAB>` and `mcp.time.<TAB>` only through objects whose attribute access it
    knows to be safe.
    """

    def __init__(self, servers: McpServers) -> None:
        object.__setattr__(self, "_servers", servers)

    def _refresh(self, attributes: Mapping[str, str]) -> None:
        """Make the attributes match the servers: attribute → server name."""
        servers: McpServers = object.__getattribute__(self, "_servers")
        for key in [k for k in vars(self) if not k.startswith("_")]:
            if key not in attributes:
                object.__delattr__(self, key)
        for attribute, name in attributes.items():
            current = vars(self).get(attribute)
            if not isinstance(current, ServerTools) or current._server != name:
                object.__setattr__(self, attribute, ServerTools(servers, name, attribute))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("mcp is managed by %codeact mcp; its servers cannot be assigned")

    def __dir__(self) -> list[str]:
        return [k for k in vars(self) if not k.startswith("_")]

    def __repr__(self) -> str:
        servers: McpServers = object.__getattribute__(self, "_servers")
        states = [f"{attr} ({servers.state_text(attr)})" for attr in self.__dir__()]
        return "<MCP servers: " + (", ".join(states) or "none") + ">"


class ServerTools:
    """`mcp.<server>`: that server's tools, as functions."""

    def __init__(self, servers: McpServers, server: str, attribute: str) -> None:
        self._servers = servers
        self._server = server
        self._attribute = attribute

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_"):
            raise AttributeError(name)
        specs = self._servers.tools_of(self._server)
        for spec in specs:
            if spec.attribute == name:
                return self._servers.function(spec)
        listed = ", ".join(spec.attribute for spec in specs) or "none"
        raise AttributeError(
            f"MCP server {self._server!r} has no tool {name!r} (its tools: {listed})."
        )

    def __dir__(self) -> list[str]:
        return [spec.attribute for spec in self._servers.tools_of(self._server)]

    def __repr__(self) -> str:
        listed = self._servers.listed_tools(self._server)
        if listed is None:
            return f"<MCP server {self._server} ({self._servers.state_text(self._attribute)})>"
        return f"<MCP server {self._server}: " + ", ".join(s.attribute for s in listed) + ">"


Caller = Callable[["ToolSpec", tuple[Any, ...], dict[str, Any]], Any]


def tool_function(spec: ToolSpec, call: Caller) -> Callable[..., Any]:
    """A plain function that calls `spec`'s tool through `call`."""

    def function(*args: Any, **kwargs: Any) -> Any:
        return call(spec, args, kwargs)

    function.__name__ = spec.attribute
    function.__qualname__ = spec.attribute
    function.__module__ = f"mcp.{spec.server_attribute}"
    function.__doc__ = spec.docstring()
    function.__signature__ = spec.signature  # type: ignore[attr-defined]
    return function
