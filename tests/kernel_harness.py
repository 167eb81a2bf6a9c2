"""Drive real kernel subprocesses through jupyter_client, as JupyterLab does.

Two hosts run a request (DESIGN.md §3): the `codeact` kernel, where a natural-language
cell is the request, and the stock `python3` kernel after `%load_ext codeact_kernel`,
where a `%%codeact` cell is. `Host` is either, with the cell text that asks it.

Test modules that use the fixtures below load this module as a plugin
(`pytest_plugins = ("kernel_harness",)`), so the shared kernels are started once
per test session, whichever modules use them:

- `kernel_host`, `magic_host`: the two hosts, pointed at the scripted model server,
  reading `c.CodeAct.*` from `ipython_dir`'s kernel config (CONFIG);
- `host`: each of them in turn (tests that hold for both);
- `jupyter_path`: a data dir with both kernelspecs, for tests that start their own
  kernel (`start_host`, `running_kernel`).
- `headless`: this process's environment set for papermill and nbclient, which start
  their own kernels (`host_notebook` builds a notebook for either host).

Those modules import this one before pytest loads it as a plugin, too late for
pytest to rewrite its asserts, so it asks pytest not to try: PYTEST_DONT_REWRITE.
"""

from __future__ import annotations

import json
import os
import queue
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import nbformat
import pytest
from ipykernel.kernelspec import install as install_ipykernel_spec
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager
from model_server import ScriptedModelServer

from codeact_kernel.install import install

TEST_KEY = "sk-test-SECRET-0123456789abcdef"

# What the shared hosts' kernel config sets (`%codeact config` shows where it came from).
CONFIG = "c.CodeAct.observation_chars = 1234\n"


def install_kernelspec(prefix: Path) -> Path:
    """Install the `codeact` kernelspec under `prefix` and return its Jupyter data dir."""
    install(prefix=str(prefix))
    return prefix / "share" / "jupyter"


def install_stock_kernelspec(prefix: Path) -> Path:
    """Install ipykernel's own `python3` kernelspec under `prefix`; return its data dir."""
    install_ipykernel_spec(prefix=str(prefix))
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
    jupyter_path: Path, env: Mapping[str, str], kernel_name: str = "codeact"
) -> Iterator[tuple[KernelManager, BlockingKernelClient]]:
    """A kernel of the kernelspec `kernel_name` found in `jupyter_path`, ready."""
    os.environ["JUPYTER_PATH"] = str(jupyter_path)
    manager = KernelManager(kernel_name=kernel_name)
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
    stop_on_error: bool = False,
) -> Execution:
    """Run `code`, answering stdin with `on_stdin`; `during` sees IOPub as it arrives."""
    started = time.monotonic()
    msg_id = client.execute(
        code, allow_stdin=allow_stdin or on_stdin is not None, stop_on_error=stop_on_error
    )
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


def shell_reply(client: BlockingKernelClient, msg_id: str, timeout: float = 10) -> dict[str, Any]:
    """The reply to request `msg_id`, skipping replies to earlier requests."""
    deadline = time.monotonic() + timeout
    while True:
        reply = client.get_shell_msg(timeout=max(deadline - time.monotonic(), 0.01))
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply


def user_messages(request: dict[str, Any]) -> list[str]:
    """The user-role texts of one logged model request."""
    return [m["content"] for m in request["body"]["messages"] if m["role"] == "user"]


def all_text(request: dict[str, Any]) -> str:
    """Every message of one logged model request, as JSON text."""
    return json.dumps(request["body"]["messages"])


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


# --- hosts ---------------------------------------------------------------------------

HostName = Literal["kernel", "magic"]
HOSTS: tuple[HostName, ...] = ("kernel", "magic")


@dataclass(frozen=True)
class Host:
    """A kernel that answers requests: `kernel` is the `codeact` kernel (a request is a
    natural-language cell), `magic` the stock `python3` kernel with `%load_ext
    codeact_kernel` (a request is a `%%codeact` cell)."""

    name: HostName
    manager: KernelManager
    client: BlockingKernelClient

    def cell(self, request: str, options: str = "") -> str:
        """The cell that asks this host `request`, with `%%codeact` options if any."""
        if self.name == "kernel" and not options:
            return request
        return f"%%codeact {options}".rstrip() + "\n" + request

    def request(self, text: str, options: str = "", **kwargs: Any) -> Execution:
        """Run the cell that asks for `text` (keywords as for `execute`)."""
        return self.execute(self.cell(text, options), **kwargs)

    def execute(self, code: str, **kwargs: Any) -> Execution:
        """Run a cell as it is: code, or a `%codeact`/`%%codeact` magic.

        Without `stop_on_error`: ipykernel 7 starts aborting queued requests only after
        it sent an error reply, so it may abort a request sent the moment that reply
        arrives (a race of its own, the stock kernel's too); a test's next cell must run.
        """
        kwargs.setdefault("stop_on_error", False)
        return execute(self.client, code, **kwargs)

    def request_interrupted(self, text: str, *, once_shown: str) -> tuple[Execution, float | None]:
        """Ask for `text` and interrupt the kernel once an output shows `once_shown`: the
        execution, and the seconds from the interrupt to the reply (None: never shown)."""
        during, fired = interrupt_when(
            self.manager, lambda ms: any(once_shown in m["content"].get("text", "") for m in ms)
        )
        result = self.request(text, during=during)
        return result, (time.monotonic() - fired[0] if fired else None)

    @contextmanager
    def settings(self, **values: str) -> Iterator[None]:
        """Session settings (`%codeact NAME VALUE`) for the duration, unset after."""
        try:
            for name, value in values.items():
                done = self.execute(f"%codeact {name} {value}")
                assert done.status == "ok", done.content
            yield
        finally:
            for name in values:
                self.execute(f"%codeact unset {name}")


@contextmanager
def start_host(name: HostName, jupyter_path: Path, env: Mapping[str, str]) -> Iterator[Host]:
    """A fresh host of kind `name`, its kernel started with `env`."""
    kernel_name = "codeact" if name == "kernel" else "python3"
    with running_kernel(jupyter_path, env, kernel_name) as (manager, client):
        if name == "magic":
            loaded = execute(client, "%load_ext codeact_kernel")
            assert loaded.status == "ok", loaded.content
        yield Host(name, manager, client)


@pytest.fixture(scope="session")
def jupyter_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Jupyter data dir with the `codeact` kernelspec and ipykernel's `python3`."""
    prefix = tmp_path_factory.mktemp("prefix")
    install_stock_kernelspec(prefix)
    return install_kernelspec(prefix)


@pytest.fixture(scope="session")
def ipython_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An IPython directory whose kernel config sets `c.CodeAct.*` (CONFIG)."""
    path = tmp_path_factory.mktemp("ipython")
    profile = path / "profile_default"
    profile.mkdir()
    (profile / "ipython_kernel_config.py").write_text(CONFIG)
    return path


def _shared_host(
    name: HostName, jupyter_path: Path, ipython_dir: Path, server: ScriptedModelServer
) -> Iterator[Host]:
    env = kernel_env(server.url, IPYTHONDIR=str(ipython_dir))
    with start_host(name, jupyter_path, env) as host:
        yield host


@pytest.fixture(scope="session")
def kernel_host(
    jupyter_path: Path, ipython_dir: Path, _model_server_session: ScriptedModelServer
) -> Iterator[Host]:
    """The `codeact` kernel, shared by every test that uses it."""
    yield from _shared_host("kernel", jupyter_path, ipython_dir, _model_server_session)


@pytest.fixture(scope="session")
def magic_host(
    jupyter_path: Path, ipython_dir: Path, _model_server_session: ScriptedModelServer
) -> Iterator[Host]:
    """The stock `python3` kernel with `%load_ext codeact_kernel`, shared likewise."""
    yield from _shared_host("magic", jupyter_path, ipython_dir, _model_server_session)


@pytest.fixture(params=HOSTS)
def host(request: pytest.FixtureRequest) -> Host:
    """Each shared host in turn."""
    shared: Host = request.getfixturevalue(f"{request.param}_host")
    return shared


# --- notebooks run headless (papermill, nbclient, nbconvert) ----------------------------


def host_notebook(
    name: HostName, code: str, prompt: str, *after: str, options: str = ""
) -> nbformat.NotebookNode:
    """A notebook for host `name`: a code cell, a request in the host's form, more cells."""
    nb = nbformat.v4.new_notebook()
    kernel = "codeact" if name == "kernel" else "python3"
    nb.metadata["kernelspec"] = {"name": kernel, "display_name": kernel, "language": "python"}
    if name == "magic":
        code = f"%load_ext codeact_kernel\n{code}"
    if name == "magic" or options:
        prompt = f"%%codeact {options}".rstrip() + f"\n{prompt}"
    nb.cells = [nbformat.v4.new_code_cell(source) for source in (code, prompt, *after)]
    return nb


@pytest.fixture
def headless(
    jupyter_path: Path, model_server: ScriptedModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """papermill and nbclient start their kernels from this process's environment."""
    for variable, value in kernel_env(model_server.url, JUPYTER_PATH=str(jupyter_path)).items():
        monkeypatch.setenv(variable, value)
