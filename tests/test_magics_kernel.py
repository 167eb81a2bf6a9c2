"""`%load_ext codeact_kernel` in the stock `python3` kernel, driven through jupyter_client.

The kernel is ipykernel's own kernelspec, installed into a temporary prefix; the model
is the scripted loopback server. One test runs `%codeact` inside the `codeact` kernel,
where the line magic shares the kernel's session.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from kernel_harness import (
    TEST_KEY,
    execute,
    install_kernelspec,
    interrupt_when,
    kernel_env,
    running_kernel,
    user_messages,
)
from model_server import ScriptedModelServer, error, hang, text

Kernel = tuple[KernelManager, BlockingKernelClient]

CONFIG = "c.CodeAct.observation_chars = 1234\n"


@pytest.fixture(scope="module")
def stock_kernels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    prefix = tmp_path_factory.mktemp("stock")
    subprocess.run(
        [sys.executable, "-m", "ipykernel", "install", "--prefix", str(prefix)],
        check=True,
        capture_output=True,
    )
    return prefix / "share" / "jupyter" / "kernels"


@pytest.fixture(scope="module")
def ipython_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An IPython directory whose kernel config sets `c.CodeAct.*`."""
    path = tmp_path_factory.mktemp("ipython")
    profile = path / "profile_default"
    profile.mkdir()
    (profile / "ipython_kernel_config.py").write_text(CONFIG)
    return path


@contextmanager
def stock_kernel(kernels: Path, env: dict[str, str]) -> Iterator[Kernel]:
    specs = KernelSpecManager(kernel_dirs=[str(kernels)])
    manager = KernelManager(kernel_name="python3", kernel_spec_manager=specs)
    manager.start_kernel(env=env)
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        yield manager, client
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


@pytest.fixture(scope="module")
def kernel(
    stock_kernels: Path, ipython_dir: Path, _model_server_session: ScriptedModelServer
) -> Iterator[Kernel]:
    env = kernel_env(_model_server_session.url, IPYTHONDIR=str(ipython_dir))
    with stock_kernel(stock_kernels, env) as running:
        _, client = running
        loaded = execute(client, "%load_ext codeact_kernel")
        assert loaded.status == "ok", loaded.content
        yield running


def test_the_stock_kernel_answers_a_codeact_cell(
    kernel: Kernel, model_server: ScriptedModelServer
) -> None:
    _, client = kernel
    execute(client, "data = [1, 2, 3, 6]")
    model_server.script(
        text(
            "I'll compute the mean.\n```python\nmean = sum(data) / len(data)\nprint(mean)\n```",
            chunk_size=4,
            delay=0.03,
        ),
        text("The mean of `data` is **3.0**."),
    )
    result = execute(client, "%%codeact\ncompute the mean of data")
    assert result.status == "ok", result.content
    assert result.stdout == "3.0\n", "the action's output, live, in the cell"
    assert len(result.of_type("update_display_data")) >= 3, "the answer streams in place"
    assert "I'll compute the mean." in result.markdown
    assert "The mean of `data` is **3.0**." in result.markdown
    assert "CodeAct · 2 steps" in result.everything()
    assert TEST_KEY not in result.everything()
    assert execute(client, "print(mean)").stdout == "3.0\n", "in the user's namespace"


def test_memory_across_cells(kernel: Kernel, model_server: ScriptedModelServer) -> None:
    _, client = kernel
    execute(client, "%codeact reset")
    model_server.script(text("```python\ntotal = 10 + 5\n```"), text("Total is 15."))
    assert execute(client, "%%codeact\nadd ten and five into total").status == "ok"
    execute(client, "doubled = total * 2")
    model_server.script(text("It was 15; doubled is 30."))
    assert execute(client, "%%codeact\nwhat did you compute, and what did I do?").status == "ok"
    follow_up = str(model_server.requests[-1]["body"]["messages"])
    assert "add ten and five into total" in follow_up
    assert "Total is 15." in follow_up
    assert "doubled = total * 2" in follow_up


def test_errors_are_clear_and_short(kernel: Kernel, model_server: ScriptedModelServer) -> None:
    _, client = kernel
    model_server.script(*[text("```python\n1 / 0\n```") for _ in range(4)])
    result = execute(client, "%%codeact\ndivide by zero forever")
    assert result.status == "error"
    assert result.content["ename"] == "RetryBudgetExhausted"
    assert "max_retries" in result.content["evalue"]
    assert len(result.content["traceback"]) == 1, "one line, not the magic's frames"

    model_server.script(*[error(401, "Incorrect API key provided")] * 3)
    result = execute(client, "%%codeact\nhello")
    assert result.content["ename"] == "AuthenticationFailed"
    assert TEST_KEY not in result.everything()

    for cell in ("%%codeact --bogus\nhello", "%%codeact --model nope\nhello", "%%codeact\n  \n"):
        bad = execute(client, cell)
        assert bad.status == "error" and bad.content["ename"] == "UsageError", cell
        assert "Traceback" not in bad.everything()
    assert execute(client, "print('alive')").stdout == "alive\n"


def test_status_and_config_from_the_kernel_config(
    kernel: Kernel, model_server: ScriptedModelServer
) -> None:
    _, client = kernel
    status = execute(client, "%codeact")
    assert "openai:test-model" in status.stdout and model_server.url in status.stdout
    assert TEST_KEY not in status.everything()
    config = execute(client, "%codeact config").stdout
    line = next(x for x in config.splitlines() if x.startswith("observation_chars"))
    assert line.split() == ["observation_chars", "1234", "config"]


def test_top_level_await_in_an_action(kernel: Kernel, model_server: ScriptedModelServer) -> None:
    _, client = kernel
    model_server.script(
        text("```python\nimport asyncio\nawait asyncio.sleep(0)\n```"),
        text("```python\nprint('synchronous instead')\n```"),
        text("Done."),
    )
    result = execute(client, "%%codeact\nsleep asynchronously")
    assert result.status == "ok", result.content
    assert "top-level `await`" in result.everything()
    assert "synchronous instead" in result.stdout
    assert "worker thread" in user_messages(model_server.requests[1])[-1]


def test_approval_through_stdin(kernel: Kernel, model_server: ScriptedModelServer) -> None:
    _, client = kernel
    model_server.script(text("```python\napproved = 'yes'\n```"), text("Done."))
    prompts: list[str] = []

    def answer(request: dict[str, Any]) -> str:
        prompts.append(request["content"]["prompt"])
        return "y"

    result = execute(client, "%%codeact --approval ask\nset approved", on_stdin=answer)
    assert result.status == "ok", result.content
    assert prompts == ["Run step 1? [y]es / [n]o (skip) / [s]top: "]
    assert execute(client, "print(approved)").stdout == "yes\n"

    model_server.script(text("```python\nnever = 1\n```"))
    result = execute(client, "%%codeact --approval ask\nset never")
    assert result.content["ename"] == "ApprovalUnavailable"
    assert "%codeact approval auto" in result.content["evalue"]


def test_interrupt_while_streaming_many_times(
    kernel: Kernel, model_server: ScriptedModelServer
) -> None:
    manager, client = kernel
    for _ in range(5):
        model_server.script(text("Thinking " * 200, chunk_size=4, delay=0.05))
        during, fired = interrupt_when(
            manager, lambda ms: any(m["msg_type"] == "update_display_data" for m in ms)
        )
        result = execute(client, "%%codeact\nthink out loud for a long time", during=during)
        assert fired, "the stream started"
        assert result.status == "error" and result.content["ename"] == "KeyboardInterrupt"
        assert time.monotonic() - fired[0] < 1.0
    assert manager.is_alive()
    assert execute(client, "print(1 + 1)").stdout == "2\n"


def test_interrupt_while_the_model_is_silent(
    kernel: Kernel, model_server: ScriptedModelServer
) -> None:
    manager, client = kernel
    for _ in range(3):
        model_server.script(hang(30))
        client.execute("%%codeact\nwait for a silent model")
        model_server.wait_for_requests(1)
        time.sleep(0.2)
        interrupted = time.monotonic()
        manager.interrupt_kernel()
        reply = client.get_shell_msg(timeout=10)
        assert reply["content"]["ename"] == "KeyboardInterrupt"
        assert time.monotonic() - interrupted < 1.0
        model_server.reset()
    assert execute(client, "print('alive')").stdout == "alive\n"


def test_interrupt_during_an_action_many_times(
    kernel: Kernel, model_server: ScriptedModelServer
) -> None:
    manager, client = kernel
    execute(client, "kept = 'intact'")
    for _ in range(3):
        model_server.script(
            text("```python\nimport time\nprint('sleeping', flush=True)\ntime.sleep(30)\n```")
        )
        during, fired = interrupt_when(
            manager, lambda ms: any("sleeping" in m["content"].get("text", "") for m in ms)
        )
        result = execute(client, "%%codeact\nsleep for a while", during=during)
        assert fired
        assert result.status == "error" and result.content["ename"] == "KeyboardInterrupt"
        assert time.monotonic() - fired[0] < 1.0
        assert len(model_server.requests) == 1, "an interrupt stops the loop"
        model_server.reset()
    assert manager.is_alive()
    assert execute(client, "print(kept)").stdout == "intact\n"


def test_codeact_line_magic_shares_the_codeact_kernels_session(
    tmp_path: Path, model_server: ScriptedModelServer
) -> None:
    jupyter_path = install_kernelspec(tmp_path / "prefix")
    with running_kernel(jupyter_path, kernel_env(model_server.url)) as (_, client):
        model_server.script(text("```python\nanswer = 42\n```"), text("The answer is 42."))
        assert execute(client, "compute the answer to everything").status == "ok"
        history = execute(client, "%codeact history").stdout
        assert "=== Request 1: compute the answer to everything" in history
        assert "answer = 42" in history
        assert "requests  1" in execute(client, "%codeact").stdout
        assert execute(client, "%codeact model openai:other-model").status == "ok"
        model_server.script(text("Switched."))
        assert execute(client, "and now?").status == "ok"
        assert model_server.requests[-1]["body"]["model"] == "other-model"
        assert "Forgot the conversation (2 requests)" in execute(client, "%codeact reset").stdout
        assert "No conversation yet" in execute(client, "%codeact history").stdout
        requests = len(model_server.requests)
        assert execute(client, "%codeact automagic on").status == "ok"
        assert execute(client, "pwd").status == "ok", "a bare magic name runs as a magic"
        assert len(model_server.requests) == requests
