"""Drive a real `codeact` kernel subprocess through jupyter_client, as JupyterLab does."""

from __future__ import annotations

import os
import queue
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager

from codeact_kernel.install import install

TEST_KEY = "sk-test-SECRET-0123456789abcdef"


def install_kernelspec(prefix: Path) -> Path:
    """Install the `codeact` kernelspec under `prefix` and return its Jupyter data dir."""
    install(prefix=str(prefix))
    return prefix / "share" / "jupyter"


def kernel_env(model_url: str | None, **extra: str) -> dict[str, str]:
    """The environment of a kernel pointed at the scripted server (or at no model)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CODEACT_", "OPENAI_", "ANTHROPIC_", "OLLAMA_"))
    }
    if model_url is not None:
        env.update(
            CODEACT_MODEL="openai:test-model", CODEACT_BASE_URL=model_url, CODEACT_API_KEY=TEST_KEY
        )
    env.update(extra)
    return env


@contextmanager
def running_kernel(
    jupyter_path: Path, env: Mapping[str, str]
) -> Iterator[tuple[KernelManager, BlockingKernelClient]]:
    os.environ["JUPYTER_PATH"] = str(jupyter_path)
    manager = KernelManager(kernel_name="codeact")
    manager.start_kernel(env=dict(env))
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        yield manager, client
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


@dataclass
class Execution:
    """An execute request's reply and every IOPub message it caused."""

    reply: dict[str, Any]
    messages: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def content(self) -> dict[str, Any]:
        return dict(self.reply["content"])

    @property
    def status(self) -> str:
        return str(self.content["status"])

    def of_type(self, *types: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["msg_type"] in types]

    @property
    def stdout(self) -> str:
        return "".join(
            m["content"]["text"] for m in self.of_type("stream") if m["content"]["name"] == "stdout"
        )

    @property
    def markdown(self) -> str:
        """The latest text of every Markdown display, joined."""
        latest: dict[str, str] = {}
        for message in self.of_type("display_data", "update_display_data"):
            data = message["content"]["data"]
            display_id = message["content"].get("transient", {}).get("display_id", id(message))
            if "text/markdown" in data:
                latest[display_id] = data["text/markdown"]
        return "\n".join(latest.values())

    def everything(self) -> str:
        """Every message and the reply as text, to search for leaks."""
        return repr(self.messages) + repr(self.reply)


def execute(
    client: BlockingKernelClient,
    code: str,
    *,
    timeout: float = 30,
    allow_stdin: bool = False,
    on_stdin: Callable[[dict[str, Any]], str] | None = None,
    during: Callable[[list[dict[str, Any]]], None] | None = None,
) -> Execution:
    """Run `code`, answering stdin with `on_stdin`; `during` sees IOPub as it arrives."""
    started = time.monotonic()
    msg_id = client.execute(code, allow_stdin=allow_stdin or on_stdin is not None)
    messages: list[dict[str, Any]] = []
    deadline = started + timeout
    idle = False
    reply: dict[str, Any] | None = None
    while not (idle and reply is not None):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no reply to {code!r} within {timeout} s; got {messages!r}")
        if on_stdin is not None:
            try:
                request = client.get_stdin_msg(timeout=0.01)
                client.input(on_stdin(request))
            except queue.Empty:
                pass
        if reply is None:
            try:
                candidate = client.get_shell_msg(timeout=0.01)
                if candidate["parent_header"].get("msg_id") == msg_id:
                    reply = candidate
            except queue.Empty:
                pass
        try:
            message = client.get_iopub_msg(timeout=0.02)
        except queue.Empty:
            continue
        if message["parent_header"].get("msg_id") != msg_id:
            continue
        if message["msg_type"] == "status":
            idle = message["content"]["execution_state"] == "idle"
            continue
        messages.append(message)
        if during is not None:
            during(messages)
    assert reply is not None
    return Execution(reply, messages, time.monotonic() - started)


def user_messages(request: dict[str, Any]) -> list[str]:
    """The user-role texts of one logged model request."""
    return [m["content"] for m in request["body"]["messages"] if m["role"] == "user"]


Messages = list[dict[str, Any]]


def interrupt_when(
    manager: KernelManager, condition: Callable[[Messages], bool]
) -> tuple[Callable[[Messages], None], list[float]]:
    """An `execute(during=...)` hook that interrupts the kernel once `condition` holds,
    and the list that receives the moment it did."""
    fired: list[float] = []

    def during(messages: Messages) -> None:
        if not fired and condition(messages):
            fired.append(time.monotonic())
            manager.interrupt_kernel()

    return during, fired
