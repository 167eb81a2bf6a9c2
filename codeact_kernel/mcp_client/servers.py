"""A session's MCP servers: which are configured, their connections, their tools as
functions, what the model is told about them, and stopping them all at the end.

Nothing here imports the SDK: configuring servers costs a JSON read at kernel start,
and connection.py (with the SDK) loads when the first server starts, at first use:
the first request (the model must see the tools' signatures), the first
`mcp.<server>.<tool>` a user reaches for, or `%codeact mcp add`. Servers start in
parallel; one that fails is reported and left out, and the others go on. A failed
server is tried again when it is used, or with `%codeact mcp restart NAME`.

Calls are synchronous for the caller (an action or a user cell, on the main thread)
and run on the session's background loop, which is free while the kernel's own loop
is busy running the cell. Waiting for one answers Ctrl-C within a tenth of a second.

A call made by a code action prints one line (`[mcp] time.get_current_time(...) → ok
in 12 ms`), so tool calls are in the observation the model reads and in `%codeact
history`; the user's own cells stay quiet.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import reprlib
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError, McpServerError, McpToolError
from .config import ServerConfig, parse_servers, read_config_file, servers_mapping
from .functions import McpNamespace, tool_function
from .names import attribute_name

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from ..background import BackgroundLoop
    from .connection import Connection
    from .schema import ToolSpec

NAME = "mcp"
INSTALL = 'pip install "codeact-kernel[mcp]"'
SDK_MISSING = (
    "MCP servers need the MCP Python SDK (mcp 2.x), an optional extra: "
    f"{INSTALL}, then restart the kernel."
)
# Past this many characters of tool descriptions, tools are listed with their first
# line only: the system prompt is never cut, so it must not crowd out the conversation.
FULL_DOCS_CHARS = 8000
DOC_CHARS = 2000
_STOP_SECONDS = 10.0
_SHORT = reprlib.Repr()
_SHORT.maxstring = 40
_SHORT.maxother = 40
_SHORT.maxlist = _SHORT.maxdict = 4


class McpServers:
    """The MCP servers of one session (one shell)."""

    def __init__(
        self,
        shell: InteractiveShell,
        background: BackgroundLoop,
        environ: Callable[[], Mapping[str, str]],
    ) -> None:
        self.shell = shell
        self.background = background
        self._environ = environ
        self.namespace = McpNamespace(self)
        self.hidden: set[str] = set()
        self.config_error = ""
        self._configured: dict[str, ServerConfig] = {}
        self._added: dict[str, ServerConfig] = {}
        self._removed: set[str] = set()
        self._configs: dict[str, ServerConfig] = {}
        self._attributes: dict[str, str] = {}
        self._connections: dict[str, Connection] = {}
        self._functions: dict[tuple[str, str], tuple[ToolSpec, Callable[..., Any]]] = {}
        self._file: tuple[str, float, dict[str, ServerConfig]] | None = None
        self._lock = threading.Lock()

    # --- configuration ----------------------------------------------------------------

    def configure(self, path: str, path_source: str, mapping: Mapping[str, Any]) -> None:
        """The configured servers: the file at `path` and the `mapping` (`mcp_servers`)."""
        self.config_error = ""
        from_file: dict[str, ServerConfig] = {}
        if path:
            try:
                from_file = self._read_file(path)
            except ConfigurationError as error:
                self.config_error = str(error)
        from_mapping: dict[str, ServerConfig] = {}
        if mapping:
            try:
                from_mapping = parse_servers(
                    servers_mapping(mapping, "c.CodeAct.mcp_servers"), "c.CodeAct.mcp_servers"
                )
            except ConfigurationError as error:
                self.config_error = str(error)
        # The environment outranks config files; within config files the mapping, being
        # more specific, outranks the file it sits beside.
        if path_source == "environment":
            self._configured = {**from_mapping, **from_file}
        else:
            self._configured = {**from_file, **from_mapping}
        self._update()

    def _read_file(self, path: str) -> dict[str, ServerConfig]:
        full = os.path.expanduser(path)
        try:
            mtime = os.stat(full).st_mtime
        except OSError:
            mtime = -1.0
        if self._file is not None and self._file[:2] == (full, mtime):
            return self._file[2]
        servers = parse_servers(read_config_file(full), f"config file {path}")
        self._file = (full, mtime, servers)
        return servers

    def add(self, config: ServerConfig) -> None:
        """A server for this session (replacing one of that name)."""
        self._removed.discard(config.name)
        self._added[config.name] = config
        self._update()

    def remove(self, name: str) -> bool:
        """Stop and forget server `name` for this session; False if there is none."""
        if name not in self._configs:
            return False
        self._added.pop(name, None)
        self._removed.add(name)
        self._update()
        return True

    def _update(self) -> None:
        merged = {**self._configured, **self._added}
        self._configs = {n: c for n, c in merged.items() if n not in self._removed}
        taken: set[str] = set()
        self._attributes = {attribute_name(name, taken): name for name in self._configs}
        with self._lock:
            for name, connection in list(self._connections.items()):
                if self._configs.get(name) != connection.config:
                    del self._connections[name]
                    self._stop_later(connection)
        self.namespace._refresh(self._attributes)
        if self._configs:
            self._inject()

    def _inject(self) -> None:
        # Never over a variable of the user's: `section` and `report` say so instead.
        if NAME not in self.shell.user_ns:
            self.shell.push({NAME: self.namespace}, interactive=False)

    @property
    def configs(self) -> dict[str, ServerConfig]:
        return dict(self._configs)

    @property
    def in_namespace(self) -> bool:
        return self.shell.user_ns.get(NAME) is self.namespace

    # --- lookups ---------------------------------------------------------------------

    def attribute_of(self, name: str) -> str:
        return next((a for a, n in self._attributes.items() if n == name), name)

    def state_text(self, attribute: str) -> str:
        name = self._attributes.get(attribute, attribute)
        connection = self._connections.get(name)
        if connection is None:
            return "not started"
        if connection.state == "running" and connection.tools is not None:
            return f"running, {len(connection.tools)} tools"
        return connection.state

    def listed_tools(self, name: str) -> list[ToolSpec] | None:
        connection = self._connections.get(name)
        return connection.tools if connection is not None else None

    def tools_of(self, name: str) -> list[ToolSpec]:
        """Server `name`'s tools, starting it if they are not known yet (blocking)."""
        connection = self._connection(name)
        if connection.tools is not None and connection.state != "failed":
            return connection.tools
        return self._wait(connection.start())

    def is_tool(self, qualname: str) -> bool:
        """Whether `mcp.SERVER.TOOL` names a tool (its server started if need be)."""
        prefix, _, rest = qualname.partition(".")
        attribute, _, tool = rest.partition(".")
        name = self._attributes.get(attribute)
        if prefix != NAME or name is None or not tool:
            return False
        try:
            tools = self.tools_of(name)
        except McpServerError:
            tools = self.listed_tools(name) or []
        return any(spec.attribute == tool for spec in tools)

    def function(self, spec: ToolSpec) -> Callable[..., Any]:
        """The function for `spec` (one per tool and listing, so `is` holds)."""
        key = (spec.server, spec.name)
        known = self._functions.get(key)
        if known is None or known[0] is not spec:
            known = self._functions[key] = (spec, tool_function(spec, self.call))
        return known[1]

    # --- connections -----------------------------------------------------------------

    def _connection(self, name: str) -> Connection:
        config = self._configs.get(name)
        if config is None:
            raise McpToolError(f"MCP server {name!r} was removed from this session.", server=name)
        with self._lock:
            connection = self._connections.get(name)
            if connection is None:
                module = _connection_module()
                connection = module.Connection(config, self.attribute_of(name), self._environ)
                self._connections[name] = connection
                _stop_at_exit(self)
            return connection

    def needs_start(self) -> bool:
        """Whether some configured server has not been started to list its tools."""
        for name in self._configs:
            connection = self._connections.get(name)
            if connection is None or (
                connection.tools is None and connection.state == "not started"
            ):
                return True
        return False

    async def start_all(self) -> None:
        """Start every server whose tools are not known yet, in parallel (on the
        background loop). A server that fails keeps its error; the others go on."""
        try:
            _connection_module()
        except McpServerError:
            return  # reported in the Tools section and by %codeact mcp
        pending = []
        for name in self._configs:
            connection = self._connection(name)
            if connection.tools is None and connection.state == "not started":
                pending.append(connection.start())
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    def restart(self, name: str) -> list[ToolSpec]:
        """Stop server `name` if it runs and start it again (blocking)."""
        connection = self._connection(name)
        self._wait(connection.stop())
        return self._wait(connection.start())

    def stop(self, name: str) -> None:
        connection = self._connections.get(name)
        if connection is not None:
            self._wait(connection.stop())

    async def aclose(self) -> None:
        with self._lock:
            connections = list(self._connections.values())
        await asyncio.gather(*(c.stop() for c in connections), return_exceptions=True)

    def close(self) -> None:
        """Stop every server this session started (waits for them, a few seconds at most)."""
        if self._connections and self.background.started:
            with contextlib.suppress(Exception):
                self.background.submit(self.aclose(), timeout=_STOP_SECONDS)

    def _stop_later(self, connection: Connection) -> None:
        if self.background.started:
            asyncio.run_coroutine_threadsafe(connection.stop(), self.background.loop)

    def _wait(self, coro: Any) -> Any:
        loop = self.background.loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            coro.close()
            raise RuntimeError(
                "MCP tools are synchronous functions: call them from code, not from a "
                "coroutine on the session's own loop."
            )
        return self.background.wait(coro)

    # --- calls -----------------------------------------------------------------------

    def call(self, spec: ToolSpec, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Call `spec`'s tool: what `mcp.<server>.<tool>(...)` does."""
        from ..executor import in_action

        arguments = spec.arguments(args, kwargs)
        logged = in_action()
        started = time.perf_counter()
        try:
            connection = self._connection(spec.server)
            result = self._wait(connection.call(spec, arguments))
            value = self._value(spec, result)
        except McpToolError as error:
            if logged:
                self._log(spec, arguments, type(error).__name__, started)
            # Raised again here, so the traceback ends in the caller's code rather than
            # in the background thread's frames.
            raise type(error)(str(error), server=error.server, tool=error.tool) from None
        if logged:
            self._log(spec, arguments, "ok", started)
        return value

    def _value(self, spec: ToolSpec, result: Any) -> Any:
        texts: list[str] = []
        for block in result.content:
            kind = getattr(block, "type", "")
            if kind == "text":
                texts.append(block.text)
            elif kind in ("image", "audio"):
                _display(block.mime_type, block.data)
            elif kind == "resource":
                resource = block.resource
                text = getattr(resource, "text", None)
                blob = getattr(resource, "blob", None)
                mime = getattr(resource, "mime_type", None) or ""
                if isinstance(text, str):
                    texts.append(text)
                elif isinstance(blob, str) and mime.startswith("image/"):
                    _display(mime, blob)
                else:
                    texts.append(f"[resource {resource.uri}]")
            elif kind == "resource_link":
                texts.append(f"[resource {block.uri}]")
        text = "\n".join(texts)
        if result.is_error:
            raise McpToolError(
                f"{spec.qualname}(): {text or 'the tool reported an error'}",
                server=spec.server,
                tool=spec.name,
            )
        if result.structured_content is not None:
            return spec.result(result.structured_content)
        return text if texts else None

    def _log(self, spec: ToolSpec, arguments: dict[str, Any], outcome: str, started: float) -> None:
        names = {p.wire: p.name for p in spec.parameters}
        shown = ", ".join(f"{names.get(k, k)}={_SHORT.repr(v)}" for k, v in arguments.items())
        elapsed = (time.perf_counter() - started) * 1000
        name = f"{spec.server_attribute}.{spec.attribute}"
        print(f"[mcp] {name}({shown}) → {outcome} in {elapsed:.0f} ms")

    # --- what the model and the user are told -------------------------------------------

    def secret_values(self) -> set[str]:
        environ = self._environ()
        found: set[str] = set()
        for config in self._configs.values():
            found |= config.secret_values(environ)
        return found

    def section(self) -> str:
        """The MCP part of the system prompt's Tools section."""
        if not self._configs:
            return ""
        if not self.in_namespace:
            return (
                "# MCP servers are configured, but `mcp` in the namespace is a variable of the "
                "user's, so their tools are not available."
            )
        try:
            _connection_module()
        except McpServerError:
            return "# MCP servers are configured, but the MCP SDK is not installed."
        lines = [
            "# MCP servers' tools: synchronous functions at mcp.<server>.<tool>(...). Each\n"
            "# returns the tool's structured result (often a dict) or its text, shows the images\n"
            "# it returns, and raises McpToolError (from codeact_kernel) when the tool fails."
        ]
        budget = FULL_DOCS_CHARS
        for name in self._configs:
            connection = self._connections.get(name)
            attribute = self.attribute_of(name)
            tools = connection.tools if connection is not None else None
            if tools is None:
                state = connection.state if connection is not None else "not started"
                lines.append(f"\n# MCP server {name!r} (mcp.{attribute}) is unavailable ({state}).")
                continue
            shown = [spec for spec in tools if spec.qualname not in self.hidden]
            lines.append(f"\n# MCP server {name!r}: {len(shown)} tools")
            for spec in shown:
                stub = tool_stub(spec, full=budget > 0)
                budget -= len(stub)
                lines.append(stub)
        return "\n".join(lines)

    def report(self) -> str:
        """`%codeact mcp`: each server, where it comes from, its state and tools."""
        lines: list[str] = []
        if self.config_error:
            lines.append(f"The MCP configuration has a problem: {self.config_error}")
        if not self._configs:
            lines.append(
                "No MCP servers. Name a JSON file of them (the common mcpServers shape) with "
                "CODEACT_MCP_CONFIG or c.CodeAct.mcp_config, set c.CodeAct.mcp_servers, or add "
                "one for this session:\n  %codeact mcp add NAME -- COMMAND [ARGS...]\n"
                "  %codeact mcp add NAME URL [--header NAME=VALUE]"
            )
            return "\n".join(lines)
        try:
            _connection_module()
        except McpServerError as error:
            lines.append(str(error))
        if not self.in_namespace:
            lines.append(
                f"`{NAME}` in your namespace is a variable of yours, so the MCP tools are not "
                f"there and the model is not told about them: `del {NAME}` (or rename yours) "
                "and run this again."
            )
        lines.append(f"MCP servers ({len(self._configs)}), as mcp.<server>.<tool>(...):")
        for name, config in self._configs.items():
            attribute = self.attribute_of(name)
            label = name if attribute == name else f"{name} (mcp.{attribute})"
            lines.append(f"  {label}: {config.describe()}  [{config.source}]")
            connection = self._connections.get(name)
            lines.extend("    " + line for line in _state_lines(config, connection, self.hidden))
        return "\n".join(lines)


def tool_stub(spec: ToolSpec, *, full: bool = True) -> str:
    """`def mcp.server.tool(signature):` with its docstring (or its first line)."""
    doc = spec.docstring() if full else (spec.description.splitlines() or [""])[0]
    if len(doc) > DOC_CHARS:
        doc = doc[: DOC_CHARS - 1] + "…"
    doc = doc.replace('"""', r"\"\"\"")
    body = '    """' + doc.replace("\n", "\n    ").rstrip() + '"""' if doc.strip() else "    ..."
    body = "\n".join(line.rstrip() for line in body.splitlines())
    return f"def {spec.qualname}{spec.signature}:\n{body}"


def _state_lines(
    config: ServerConfig, connection: Connection | None, hidden: set[str]
) -> list[str]:
    if connection is None:
        if config.error:
            return [f"fails: {config.error}"]
        return ["not started (it starts at first use)"]
    state = connection.state
    lines: list[str] = []
    if connection.tools is not None:
        names = [
            spec.attribute + (" (hidden from the model)" if spec.qualname in hidden else "")
            for spec in connection.tools
        ]
        lines.append(f"{state}; tools: " + (", ".join(names) or "none"))
    else:
        lines.append(state)
    if connection.error and state in ("failed", "crashed"):
        lines.extend(connection.error.splitlines())
    return lines


def _display(mime: str, data: str) -> None:
    from IPython.display import display

    display({mime: data}, raw=True)


# --- the SDK ---------------------------------------------------------------------------

_module: Any = None


def _connection_module() -> Any:
    """connection.py, which imports the SDK; `McpServerError` says what to install."""
    global _module
    if _module is None:
        import importlib.metadata  # not at import: it costs more than the rest of %load_ext

        try:
            version = importlib.metadata.version("mcp")
        except importlib.metadata.PackageNotFoundError:
            raise McpServerError(SDK_MISSING) from None
        if not version.startswith("2."):
            raise McpServerError(
                f"MCP servers need the MCP Python SDK 2.x; mcp {version} is installed: "
                f"{INSTALL}, then restart the kernel."
            )
        try:
            from . import connection
        except ImportError as error:  # a broken install: say so instead of a traceback
            raise McpServerError(
                f"The MCP SDK (mcp {version}) could not be imported: {error}. {INSTALL}, "
                "then restart the kernel."
            ) from None
        _module = connection
    return _module


# --- the end of the process -----------------------------------------------------------

_live: weakref.WeakSet[McpServers] = weakref.WeakSet()
_registered = False


def _stop_at_exit(servers: McpServers) -> None:
    """Stop `servers`' processes when Python exits (a kernel shut down or restarted)."""
    global _registered
    _live.add(servers)
    if not _registered:
        atexit.register(_stop_all)
        _registered = True


def _stop_all() -> None:
    for servers in list(_live):
        servers.close()
