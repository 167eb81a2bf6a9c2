"""Kernels for benchmark episodes: local ones through jupyter_client, or remote ones on a
Jupyter Kernel Gateway / Enterprise Gateway (DESIGN.md §9, §10).

Both are a `KernelHandle`: run a cell, get its reply and every IOPub message it
caused, shut down. A local kernel is jupyter_client's `AsyncKernelManager`; a gateway
kernel is started with the gateway's REST API (`POST /api/kernels`) and driven over its
websocket (`/api/kernels/<id>/channels`, one JSON message per frame with a `channel`
field), with tornado's websocket client, which comes with Jupyter.

Settings reach a kernel as environment variables: a local kernel is started with them;
a gateway passes those the client sends in `POST /api/kernels` only if their names
start with `KERNEL_` or are in its allow-list (Kernel Gateway: `KG_ENV_WHITELIST`), and
gives such a kernel little else of its own environment, so `GatewayKernels.start`
checks that they arrived and says how to start the gateway when they did not.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import httpx
from jupyter_client.jsonutil import json_default
from jupyter_client.manager import AsyncKernelManager
from jupyter_client.session import Session

KERNEL_NAME = "codeact"
START_TIMEOUT = 60.0
START_ATTEMPTS = 3
LIVENESS_SECONDS = 1.0
# Jupyter's own gateway client reads the token from this variable; so do we.
TOKEN_VARIABLE = "JUPYTER_GATEWAY_AUTH_TOKEN"

Message = dict[str, Any]


class KernelFailure(RuntimeError):
    """A kernel could not be started, died, or did not answer in time: a failure of the
    harness, not of the model (the episode is not recorded and runs again on --resume)."""


@dataclass
class Execution:
    """An execute request's reply content and every IOPub message it caused."""

    reply: dict[str, Any]
    messages: list[Message] = field(default_factory=list)

    @property
    def status(self) -> str:
        return str(self.reply.get("status", "error"))


class KernelHandle(Protocol):
    """One running kernel that runs one cell at a time."""

    async def execute(
        self,
        code: str,
        *,
        timeout: float,
        store_history: bool = True,
        user_expressions: Mapping[str, str] | None = None,
    ) -> Execution: ...

    async def shutdown(self) -> None: ...


class KernelFactory(Protocol):
    """Starts kernels of the `codeact` kernelspec with the given environment."""

    @property
    def where(self) -> str:
        """Where kernels run, for messages ("local", the gateway's URL)."""
        ...

    async def start(self, env: Mapping[str, str]) -> KernelHandle: ...


# --- local kernels ------------------------------------------------------------------


class LocalKernels:
    """Kernels started on this machine by jupyter_client, as JupyterLab starts them.

    Each works in a temporary directory of its own, removed at shutdown: what a task's
    code writes (a scenario's CSV, the model's files) neither litters the user's
    directory nor leaks into another episode. What kernels print on their own stdout and
    stderr (warnings, a crash) goes to `log`, not over the progress bar.
    """

    where = "local"

    def __init__(self, kernel_name: str = KERNEL_NAME, *, log: Path | None = None) -> None:
        self.kernel_name = kernel_name
        self.log = log

    async def start(self, env: Mapping[str, str]) -> KernelHandle:
        # A kernel binds ports that were free a moment before; another process (another
        # episode's kernel, anything on the machine) may take one first. Such a start
        # fails at once, and a second one gets other ports.
        for _ in range(START_ATTEMPTS - 1):
            with contextlib.suppress(KernelFailure):
                return await self._start(env)
        return await self._start(env)

    async def _start(self, env: Mapping[str, str]) -> KernelHandle:
        manager = AsyncKernelManager(kernel_name=self.kernel_name)
        workdir = tempfile.TemporaryDirectory(prefix="codeact-bench-")
        client = None
        try:
            with self._output() as output:
                await manager.start_kernel(
                    env={**os.environ, **env}, cwd=workdir.name, stdout=output, stderr=output
                )
            client = manager.client()
            client.start_channels()
            await client.wait_for_ready(timeout=START_TIMEOUT)
        except Exception as error:
            if client is not None:
                client.stop_channels()
            await _quietly(manager.shutdown_kernel(now=True))
            workdir.cleanup()
            raise KernelFailure(
                f"the {self.kernel_name!r} kernel did not start: {error}"
            ) from error
        return LocalKernel(manager, client, workdir)

    @contextlib.contextmanager
    def _output(self) -> Iterator[int | IO[str]]:
        # The kernel process keeps its own copy of the descriptor: ours closes at once.
        if self.log is None:
            yield subprocess.DEVNULL
            return
        with self.log.open("a", encoding="utf-8") as log:
            yield log


class LocalKernel:
    def __init__(
        self, manager: AsyncKernelManager, client: Any, workdir: tempfile.TemporaryDirectory[str]
    ) -> None:
        self.manager = manager
        self.client = client
        self.workdir = workdir

    async def execute(
        self,
        code: str,
        *,
        timeout: float,
        store_history: bool = True,
        user_expressions: Mapping[str, str] | None = None,
    ) -> Execution:
        messages: list[Message] = []
        running = asyncio.ensure_future(
            self.client.execute_interactive(
                code,
                store_history=store_history,
                user_expressions=dict(user_expressions or {}),
                allow_stdin=False,
                timeout=timeout,
                output_hook=lambda message: _keep_output(messages, message),
            )
        )
        try:
            # A kernel that dies (an action calling os._exit, say) never replies: watch it.
            while not running.done():
                await asyncio.wait({running}, timeout=LIVENESS_SECONDS)
                if not running.done() and not await self.manager.is_alive():
                    raise KernelFailure("the kernel died while it ran the task")
            reply = running.result()
        except TimeoutError as error:
            await _quietly(self.manager.interrupt_kernel())
            raise KernelFailure(f"the kernel did not answer within {timeout:.0f} s") from error
        finally:
            running.cancel()
        return Execution(dict(reply["content"]), messages)

    async def shutdown(self) -> None:
        self.client.stop_channels()
        await _quietly(self.manager.shutdown_kernel(now=True))
        self.workdir.cleanup()


# --- gateway kernels ----------------------------------------------------------------


class GatewayKernels:
    """Kernels on a Jupyter Kernel Gateway or Enterprise Gateway at `url`."""

    def __init__(
        self, url: str, *, token: str | None = None, kernel_name: str = KERNEL_NAME
    ) -> None:
        self.url = url.rstrip("/")
        self.token = token if token is not None else os.environ.get(TOKEN_VARIABLE, "")
        self.kernel_name = kernel_name

    @property
    def where(self) -> str:
        return self.url

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"} if self.token else {}

    async def start(self, env: Mapping[str, str]) -> KernelHandle:
        body = {"name": self.kernel_name, "env": dict(env)}
        try:
            async with httpx.AsyncClient(timeout=START_TIMEOUT, headers=self._headers()) as http:
                response = await http.post(f"{self.url}/api/kernels", json=body)
                response.raise_for_status()
                kernel_id = str(response.json()["id"])
        except (httpx.HTTPError, KeyError, ValueError) as error:
            raise KernelFailure(
                f"the gateway at {self.url} did not start a kernel: {error}"
            ) from error
        kernel = GatewayKernel(self, kernel_id)
        try:
            await kernel.connect()
            await kernel.check_environment(env)
        except BaseException:
            await kernel.shutdown()
            raise
        return kernel


class GatewayKernel:
    """One gateway kernel, driven over its channels websocket."""

    def __init__(self, gateway: GatewayKernels, kernel_id: str) -> None:
        self.gateway = gateway
        self.kernel_id = kernel_id
        self.session = Session(key=b"", username="codeact-bench")
        self._socket: Any = None

    async def connect(self) -> None:
        from tornado.httpclient import HTTPRequest
        from tornado.websocket import websocket_connect

        scheme, netloc, path, _, _ = urlsplit(self.gateway.url)
        ws_scheme = "wss" if scheme == "https" else "ws"
        url = urlunsplit(
            (
                ws_scheme,
                netloc,
                f"{path}/api/kernels/{self.kernel_id}/channels",
                f"session_id={self.session.session}",
                "",
            )
        )
        request = HTTPRequest(url, headers=self.gateway._headers(), request_timeout=START_TIMEOUT)
        try:
            self._socket = await websocket_connect(request, max_message_size=1 << 30)
        except Exception as error:
            raise KernelFailure(
                f"no websocket to the gateway's kernel at {url}: {error}"
            ) from error
        # The kernel may still be starting: kernel_info is answered once it is ready.
        await self._request("kernel_info_request", {}, timeout=START_TIMEOUT)

    async def check_environment(self, env: Mapping[str, str]) -> None:
        """Fail clearly when the gateway did not pass the settings on to the kernel."""
        probe = {name: f"__import__('os').environ.get({name!r}, '')" for name in env}
        done = await self.execute(
            "", timeout=START_TIMEOUT, store_history=False, user_expressions=probe
        )
        expressions = done.reply.get("user_expressions", {})
        missing = [
            name
            for name, value in env.items()
            if expressions.get(name, {}).get("data", {}).get("text/plain") != repr(value)
        ]
        if missing:
            names = ",".join(sorted(env))
            raise KernelFailure(
                f"the gateway at {self.gateway.url} did not pass {', '.join(sorted(missing))} to "
                f"the kernel: start it with KG_ENV_WHITELIST={names} (Enterprise Gateway: "
                "its allow-list of client environment variables)."
            )

    async def execute(
        self,
        code: str,
        *,
        timeout: float,
        store_history: bool = True,
        user_expressions: Mapping[str, str] | None = None,
    ) -> Execution:
        content = {
            "code": code,
            "silent": False,
            "store_history": store_history,
            "user_expressions": dict(user_expressions or {}),
            "allow_stdin": False,
            # Each request stands alone: a failed one must not abort the next, which
            # ipykernel does to a request that comes in right after an error reply.
            "stop_on_error": False,
        }
        messages: list[Message] = []
        reply = await self._request(
            "execute_request", content, timeout=timeout, on_iopub=messages.append
        )
        return Execution(reply, messages)

    async def _request(
        self,
        msg_type: str,
        content: dict[str, Any],
        *,
        timeout: float,
        on_iopub: Callable[[Message], None] | None = None,
    ) -> dict[str, Any]:
        """Send one shell request; its reply's content once the kernel is idle again."""
        message = self.session.msg(msg_type, content)
        message["channel"] = "shell"
        message["buffers"] = []
        msg_id = message["header"]["msg_id"]
        await self._socket.write_message(json.dumps(message, default=json_default))
        deadline = time.monotonic() + timeout
        reply: dict[str, Any] | None = None
        idle = False
        while reply is None or not idle:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                await self._interrupt()
                raise KernelFailure(f"the gateway's kernel did not answer within {timeout:.0f} s")
            try:
                frame = await asyncio.wait_for(self._socket.read_message(), remaining)
            except asyncio.TimeoutError:
                continue
            if frame is None:
                raise KernelFailure(f"the gateway closed the kernel's websocket ({self.kernel_id})")
            if isinstance(frame, bytes):
                continue  # binary frames carry buffers, which nothing here asks for
            incoming = json.loads(frame)
            if incoming.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            channel = incoming.get("channel")
            if channel == "shell":
                reply = dict(incoming["content"])
            elif channel == "iopub":
                if incoming["msg_type"] == "status":
                    idle = incoming["content"].get("execution_state") == "idle"
                elif on_iopub is not None:
                    on_iopub(incoming)
        return reply

    async def _interrupt(self) -> None:
        url = f"{self.gateway.url}/api/kernels/{self.kernel_id}/interrupt"
        async with httpx.AsyncClient(timeout=10, headers=self.gateway._headers()) as http:
            await _quietly(http.post(url))

    async def shutdown(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        async with httpx.AsyncClient(timeout=30, headers=self.gateway._headers()) as http:
            await _quietly(http.delete(f"{self.gateway.url}/api/kernels/{self.kernel_id}"))


def _keep_output(messages: list[Message], message: Message) -> None:
    # Busy/idle says nothing about the cell; the gateway's kernels report it the same way.
    if message["msg_type"] != "status":
        messages.append(message)


async def _quietly(awaitable: Any) -> None:
    """Await cleanup whose failure must not hide the error being reported (the kernel
    may already be gone)."""
    with contextlib.suppress(Exception):
        await awaitable
