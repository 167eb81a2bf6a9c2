"""One MCP server's client session, on the session's background loop.

This is the one module that imports the `mcp` SDK (the optional extra
`codeact-kernel[mcp]`), and everything here runs on the background loop (background.py),
so the SDK's anyio task groups always live on one loop, whatever thread calls a tool.

A server's life:

- **start** at first use: an *owner* task enters the SDK's `Client` and holds it until
  asked to stop, since anyio scopes must be entered and left by one task; calls come
  from other tasks. Its tools are listed once per start. A server that does not come up
  within `startup_timeout` fails with its stderr tail; it never stops the others.
- **crash**: a stdio server's stderr closing (every process holding it has exited), or
  a call whose connection closed or broke, marks the server *crashed*; the failing call
  raises `McpServerError` with the stderr tail, and the next call starts it again.
- **hang**: a call not answered within `timeout` raises `McpServerError` and the server
  is stopped, to be started again on the next call.
- **interrupt**: a cancelled call (Ctrl-C in the waiting thread) is abandoned with a
  courtesy `notifications/cancelled`; the server stays up.
- **stop**: the SDK closes stdin, waits, then terminates the server's process group.

Orphans: stdio servers run in a session of their own (the SDK's choice, so a kernel
interrupt, which signals the kernel's process group, does not kill them). On Linux a
tiny launcher sets `PR_SET_PDEATHSIG` before it execs the server, so a kernel killed
outright (SIGKILL, as `jupyter_client` does after a shutdown timeout) still takes its
servers with it; a clean exit stops them first (servers.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, TypeVar

import mcp_types
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from ..errors import ConfigurationError, McpServerError, McpToolError
from ..version import __version__
from .config import ServerConfig
from .names import attribute_name
from .schema import ToolSpec

# The SDK logs what it also raises (a closed connection, a failed request). The errors
# reach the user as McpServerError; without a handler of their own these records would
# go to Python's last-resort handler, i.e. into whatever cell runs at the time.
logging.getLogger("mcp").addHandler(logging.NullHandler())

_STDERR_BYTES = 16_000
_STDERR_LINES = 20
# How long a crash report waits for the server's last words on stderr.
_LAST_WORDS_SECONDS = 0.5
# A server that does not stop within this long is left to the SDK's kill escalation.
_STOP_SECONDS = 8.0
_PAGES = 100

T = TypeVar("T")

# Runs the server's command with a parent-death signal (Linux), then becomes it. Plain
# Python with no imports beyond the standard library, started isolated (-I -S) so it
# costs a few milliseconds.
_LAUNCHER = """\
import ctypes, os, signal, sys
try:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
except Exception:
    pass
if os.getppid() != int(sys.argv[1]):
    sys.exit(0)  # the kernel is already gone
try:
    os.execvp(sys.argv[2], sys.argv[2:])
except OSError as error:
    sys.stderr.write(f"cannot run {sys.argv[2]!r}: {error.strerror}\\n")
    sys.exit(127)
"""


class StderrTail(asyncio.Protocol):
    """The last bytes a server wrote to stderr, and when its stderr closed."""

    def __init__(self, on_close: Callable[[], None]) -> None:
        self._data = bytearray()
        self._on_close = on_close
        self.closed = asyncio.Event()

    def data_received(self, data: bytes) -> None:
        self._data += data
        if len(self._data) > 2 * _STDERR_BYTES:
            del self._data[:-_STDERR_BYTES]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set()
        self._on_close()

    def text(self) -> str:
        lines = bytes(self._data[-_STDERR_BYTES:]).decode("utf-8", "replace").splitlines()
        return "\n".join(line for line in lines[-_STDERR_LINES:] if line.strip())


class Connection:
    """One configured server: its state, its tools once listed, and its client."""

    def __init__(
        self, config: ServerConfig, attribute: str, environ: Callable[[], Mapping[str, str]]
    ) -> None:
        self.config = config
        self.attribute = attribute
        self._environ = environ
        self.state = "not started"
        self.tools: list[ToolSpec] | None = None
        self.error = ""
        self._stderr: StderrTail | None = None
        self._client: Client | None = None
        self._owner: asyncio.Task[None] | None = None
        self._closing: asyncio.Event | None = None
        self._lock: asyncio.Lock | None = None
        self._stopping = False
        self._stopper: asyncio.Future[None] | None = None
        # The SDK reports an HTTP error status as "an error response": the status itself
        # (401, 403 …) is what tells the user what to fix.
        self._http_status = ""

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def stderr(self) -> str:
        return self._stderr.text() if self._stderr is not None else ""

    # --- start and stop ---------------------------------------------------------------

    async def start(self) -> list[ToolSpec]:
        """The server's tools, starting it first unless it runs."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self.state == "running" and self._client is not None and self.tools is not None:
                return self.tools
            await self._stop_owner()
            self.state, self.error = "starting", ""
            try:
                timeout = self.config.startup_timeout or None
                self.tools = await asyncio.wait_for(self._start(), timeout)
            except asyncio.CancelledError:
                await self._stop_owner()
                self.state = "not started"
                raise
            except BaseException as error:
                await self._stop_owner()
                self.state = "failed"
                self.error = self._start_failure(error)
                raise McpServerError(self.error, server=self.name) from None
            self.state = "running"
            return self.tools

    async def _start(self) -> list[ToolSpec]:
        if self.config.error:
            raise _Reported(self.config.error)
        try:
            config = self.config.expanded(self._environ())
        except ConfigurationError as error:  # a ${VAR} not set: the message is complete
            raise _Reported(str(error)) from None
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[Client] = loop.create_future()
        self._closing = asyncio.Event()
        self._stopping = False
        self._owner = asyncio.ensure_future(self._own(config, ready, self._closing))
        self._client = await asyncio.shield(ready)
        return await self._list_tools(self._client)

    async def _own(
        self, config: ServerConfig, ready: asyncio.Future[Client], closing: asyncio.Event
    ) -> None:
        """Hold the client open until `closing` is set (the SDK's scopes are this task's)."""
        try:
            async with contextlib.AsyncExitStack() as stack:
                transport = await self._transport(config, stack)
                client = Client(
                    transport,
                    client_info=mcp_types.Implementation(
                        name="codeact-kernel", version=__version__
                    ),
                )
                await stack.enter_async_context(client)
                if not ready.done():
                    ready.set_result(client)
                await closing.wait()
        except asyncio.CancelledError:
            if not ready.done():
                ready.cancel()
            raise
        except BaseException as error:
            if not ready.done():
                ready.set_exception(error)
            elif not self._stopping and self.state == "running":
                # The transport failed under a running server (an HTTP server went away).
                self._crashed(f"its connection failed: {_reason(error)}")
        finally:
            self._client = None

    async def _transport(self, config: ServerConfig, stack: contextlib.AsyncExitStack) -> Any:
        if config.url:
            import httpx2  # the SDK's HTTP client; a dependency of `mcp`

            self._http_status = ""

            async def note(response: httpx2.Response) -> None:
                if response.status_code >= 400:
                    self._http_status = f"HTTP {response.status_code} {response.reason_phrase}"

            http = await stack.enter_async_context(
                httpx2.AsyncClient(
                    headers=dict(config.headers),
                    timeout=httpx2.Timeout(30.0, read=300.0),
                    event_hooks={"response": [note]},
                )
            )
            return streamable_http_client(config.url, http_client=http)
        command, args = config.command, list(config.args)
        if sys.platform.startswith("linux"):
            args = ["-I", "-S", "-c", _LAUNCHER, str(os.getpid()), command, *args]
            command = sys.executable
        read_fd, write_fd = os.pipe()
        errlog = os.fdopen(write_fd, "w")
        # Closed once the server is up: the server holds its own copy, and the tail sees
        # the end of stderr only when no process holds one.
        stack.callback(errlog.close)
        loop = asyncio.get_running_loop()
        tail = StderrTail(lambda: self._stderr_closed(tail))
        self._stderr = tail
        pipe, _ = await loop.connect_read_pipe(lambda: tail, os.fdopen(read_fd, "rb", 0))
        stack.callback(pipe.close)
        params = StdioServerParameters(
            command=command,
            args=args,
            env=dict(config.env),
            cwd=config.cwd or None,
        )
        transport = stdio_client(params, errlog=errlog)

        @contextlib.asynccontextmanager
        async def spawned() -> Any:
            async with transport as streams:
                errlog.close()
                yield streams

        return spawned()

    async def _list_tools(self, client: Client) -> list[ToolSpec]:
        specs: list[ToolSpec] = []
        taken: set[str] = set()
        cursor: str | None = None
        for _ in range(_PAGES):
            page = await client.list_tools(cursor=cursor)
            for tool in page.tools:
                specs.append(
                    ToolSpec.of(
                        self.name,
                        self.attribute,
                        tool.name,
                        attribute_name(tool.name, taken),
                        tool.description,
                        tool.input_schema,
                        tool.output_schema,
                    )
                )
            cursor = page.next_cursor
            if cursor is None:
                break
        return specs

    async def stop(self) -> None:
        """Stop the server (the SDK closes stdin, then terminates its process group)."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            await self._stop_owner()
            if self.state in ("running", "starting"):
                self.state = "stopped"

    async def _stop_owner(self) -> None:
        owner, self._owner = self._owner, None
        if owner is None:
            return
        self._stopping = True
        if self._client is None:
            # Not connected (a start that failed or timed out while the server said
            # nothing): no session to close politely, and waiting would only add
            # _STOP_SECONDS to the error the user is waiting for.
            owner.cancel()
        elif self._closing is not None:
            self._closing.set()
        try:
            await asyncio.wait_for(asyncio.shield(owner), _STOP_SECONDS)
        except BaseException:
            owner.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(owner, _STOP_SECONDS)
        self._client = None

    def _stderr_closed(self, tail: StderrTail) -> None:
        # Every process holding the server's stderr exited: it is gone, whatever the
        # SDK has noticed so far. (A tail of an earlier start closes late: ignored.)
        if tail is self._stderr and not self._stopping and self.state == "running":
            self._crashed("it exited")

    def _crashed(self, how: str) -> None:
        self.state = "crashed"
        self.error = f"MCP server {self.name!r} stopped: {how}." + self._tail_text()
        if self._closing is not None:
            self._closing.set()

    # --- calls ----------------------------------------------------------------------

    async def call(self, tool: ToolSpec, arguments: dict[str, Any]) -> mcp_types.CallToolResult:
        """Call `tool`, starting the server first if needed (again, after a crash)."""
        if self.state != "running" or self._client is None:
            await self.start()
        client = self._client
        if client is None:  # stopped between the start and now
            raise McpServerError(f"MCP server {self.name!r} is not running.", server=self.name)
        started = time.monotonic()
        try:
            return await _within(self.config.timeout, client.call_tool(tool.name, arguments))
        except asyncio.CancelledError:
            raise
        except asyncio.TimeoutError:
            self.state = "crashed"
            self.error = (
                f"MCP server {self.name!r} did not answer {tool.qualname}() within "
                f"{self.config.timeout:g} s (its timeout), so it was stopped; it starts again "
                'on the next call. A slower tool needs a longer "timeout" in its config.'
            ) + self._tail_text()
            self._stopper = asyncio.ensure_future(self.stop())
            raise McpServerError(self.error, server=self.name, tool=tool.name) from None
        except MCPError as error:
            if error.code != mcp_types.CONNECTION_CLOSED:
                # The server refused the request (an unknown tool, invalid arguments).
                status = f" ({self._http_status})" if self._http_status else ""
                self._http_status = ""
                raise McpToolError(
                    f"{tool.qualname}(): {error.message}{status}", server=self.name, tool=tool.name
                ) from None
            how = f"its connection closed during {tool.qualname}()"
        except (RuntimeError, ValueError) as error:
            # The SDK checks results against the tool's outputSchema.
            raise McpToolError(
                f"{tool.qualname}() returned a result the SDK rejected: {error}",
                server=self.name,
                tool=tool.name,
            ) from None
        except Exception as error:
            how = f"{tool.qualname}() failed after {time.monotonic() - started:.1f} s: " + _reason(
                error
            )
        await self._last_words()
        self._crashed(how)
        message = self.error + "\nIt starts again on the next call."
        raise McpServerError(message, server=self.name, tool=tool.name)

    async def _last_words(self) -> None:
        if self._stderr is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stderr.closed.wait(), _LAST_WORDS_SECONDS)

    # --- reports --------------------------------------------------------------------

    def _tail_text(self) -> str:
        tail = self.stderr
        if not tail:
            return ""
        return "\nIts stderr ended with:\n" + "\n".join("    " + line for line in tail.splitlines())

    def _start_failure(self, error: BaseException) -> str:
        if isinstance(error, _Reported):
            return str(error)
        if isinstance(error, asyncio.TimeoutError):
            reason = f"it did not start within {self.config.startup_timeout:g} s (startup_timeout)"
        else:
            reason = _reason(error)
        if self._http_status:
            reason += f" (the server answered {self._http_status})"
        reason = reason.rstrip(".")
        return f"MCP server {self.name!r} could not start: {reason}." + self._tail_text()


async def _within(seconds: float, call: Coroutine[Any, Any, T]) -> T:
    """`call`, or `asyncio.TimeoutError` after `seconds` (0: no limit)."""
    if not seconds:
        return await call
    if sys.version_info >= (3, 11):
        # Unlike wait_for before 3.12, no task of its own: one loop round less per call.
        async with asyncio.timeout(seconds):
            return await call
    return await asyncio.wait_for(call, seconds)


class _Reported(Exception):
    """A start failure whose message is already complete (a configuration error)."""


def _reason(error: BaseException) -> str:
    """What went wrong, from the innermost errors of exception groups."""
    leaves: list[BaseException] = []

    def walk(e: BaseException) -> None:
        # Duck-typed: exception groups are builtins from Python 3.11 on.
        inner = getattr(e, "exceptions", None)
        if isinstance(inner, tuple) and inner:
            for each in inner:
                walk(each)
        else:
            leaves.append(e)

    walk(error)
    parts = []
    for leaf in leaves or [error]:
        if isinstance(leaf, MCPError) and leaf.code == mcp_types.CONNECTION_CLOSED:
            text = "the server closed the connection"
        else:
            text = str(leaf).strip() or type(leaf).__name__
            text = f"{type(leaf).__name__}: {text}" if type(leaf).__name__ not in text else text
        if text not in parts:
            parts.append(text)
    return "; ".join(parts)
