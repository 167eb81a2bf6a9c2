"""`%%codeact` in terminal IPython, typed at a real pseudo-terminal, Ctrl-C included."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kernel_harness import TEST_KEY, kernel_env
from model_server import ScriptedModelServer, text

pexpect = pytest.importorskip("pexpect")

PROMPT = re.compile(r"In \[\d+\]: ")


@pytest.fixture
def terminal(tmp_path: Path, model_server: ScriptedModelServer) -> Iterator[Any]:
    profile = tmp_path / "ipython" / "profile_default"
    profile.mkdir(parents=True)
    (profile / "ipython_config.py").write_text("c.CodeAct.observation_chars = 1234\n")
    env = kernel_env(model_server.url, IPYTHONDIR=str(tmp_path / "ipython"), TERM="dumb")
    child = pexpect.spawn(
        sys.executable,
        ["-m", "IPython", "--simple-prompt", "--no-banner", "--colors=nocolor"],
        env=env,
        encoding="utf-8",
        codec_errors="replace",
        timeout=30,
        dimensions=(50, 200),
    )
    try:
        child.expect(PROMPT)
        enter(child, "%load_ext codeact_kernel")
        yield child
        child.sendline("exit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)


def enter(child: Any, cell: str) -> str:
    """Type `cell` and return what it printed."""
    for line in cell.splitlines():
        child.sendline(line)
    if cell.startswith("%%"):
        end_cell(child)
    child.expect(PROMPT)
    return str(child.before)


def end_cell(child: Any) -> None:
    # The simple prompt takes a cell magic's body until it ends in two blank lines.
    child.sendline("")
    child.sendline("")


def test_a_request_streams_plain_text_to_the_terminal(
    terminal: Any, model_server: ScriptedModelServer
) -> None:
    enter(terminal, "data = [1, 2, 3, 6]")
    model_server.script(
        text("I'll compute the mean.\n```python\nprint(sum(data) / len(data))\n```", delay=0.01),
        text("The mean is **3.0**."),
    )
    output = enter(terminal, "%%codeact\ncompute the mean of data")
    assert "I'll compute the mean." in output
    assert "--- step 1: running the action above ---\r\n3.0\r\n" in output
    assert "The mean is **3.0**." in output
    assert "CodeAct · 1 step · " in output
    assert "<sub>" not in output and "text/markdown" not in output and "\x1b[" not in output
    status = enter(terminal, "%codeact")
    assert "openai:test-model" in status and TEST_KEY not in status
    config = enter(terminal, "%codeact config")
    line = next(x for x in config.splitlines() if x.startswith("observation_chars"))
    assert line.split() == ["observation_chars", "1234", "config"], "ipython_config.py"


@pytest.mark.timing
def test_ctrl_c_while_the_model_streams(terminal: Any, model_server: ScriptedModelServer) -> None:
    for _ in range(2):
        model_server.script(text("Thinking " * 300, chunk_size=4, delay=0.05))
        terminal.sendline("%%codeact")
        terminal.sendline("think out loud")
        end_cell(terminal)
        terminal.expect("Thinking")
        interrupted = time.monotonic()
        terminal.sendintr()
        terminal.expect("KeyboardInterrupt: The request was interrupted")
        assert time.monotonic() - interrupted < 1.0
        terminal.expect(PROMPT)
        model_server.reset()
    assert "42" in enter(terminal, "print(6 * 7)")


@pytest.mark.timing
def test_ctrl_c_during_an_action(terminal: Any, model_server: ScriptedModelServer) -> None:
    enter(terminal, "kept = 'intact'")
    model_server.script(text("```python\nimport time\nprint('sleeping')\ntime.sleep(30)\n```"))
    terminal.sendline("%%codeact")
    terminal.sendline("sleep for a while")
    end_cell(terminal)
    terminal.expect("running the action above ---\r\nsleeping")
    interrupted = time.monotonic()
    terminal.sendintr()
    terminal.expect("KeyboardInterrupt: The request was interrupted")
    assert time.monotonic() - interrupted < 1.0
    terminal.expect(PROMPT)
    output = enter(terminal, "print(kept)")
    assert "intact" in output
    assert len(model_server.requests) == 1


def test_hostile_actions_in_terminal_ipython(
    terminal: Any, model_server: ScriptedModelServer
) -> None:
    enter(terminal, "survivor = 'still here'")
    code = (
        "import os, sys\nprint('python says hi')\nos.system('echo shell says hi')\n"
        "sys.stdout.buffer.write(b'bytes \\xff on the buffer\\n')\n"
        "print(os.environ['CODEACT_API_KEY'])\nexit()"
    )
    model_server.script(text(f"```python\n{code}\n```"), text("Done."))
    shown = enter(terminal, "%%codeact\nsay hi twice and leave")
    assert shown.count("shell says hi") == 2, "once in the code shown, once as output"
    assert "python says hi" in shown
    assert TEST_KEY not in shown and "***" in shown
    told = [m["content"] for m in model_server.requests[1]["body"]["messages"]][-1]
    assert "shell says hi" in told and "python says hi" in told
    assert "bytes \ufffd on the buffer" in told
    assert "may not end the user's kernel" in told
    assert "still here" in enter(terminal, "print(survivor)"), "IPython kept running"

    model_server.reset()
    model_server.script(text("```python\nimport time\nprint('sleeping')\ntime.sleep(30)\n```"))
    terminal.sendline("%%codeact")
    terminal.sendline("sleep for a while")
    terminal.sendline("")
    terminal.sendline("")
    terminal.expect("running the action above ---\r\nsleeping")
    terminal.sendintr()
    terminal.expect(PROMPT)
    interrupted = str(terminal.before)
    assert "time.sleep(30)" in interrupted
    assert "interrupts.py" not in interrupted and "_on_sigint" not in interrupted
