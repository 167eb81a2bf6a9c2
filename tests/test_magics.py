"""`%%codeact` and `%codeact` in-process, in IPython's test shell, against the loopback server.

The shell is a terminal shell, so requests render as plain text on stdout (captured by
`capsys`). Kernel behaviour is in test_magics_kernel.py, terminal IPython driven as a
user drives it in test_terminal_ipython.py.
"""

from __future__ import annotations

import asyncio
import builtins
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import ExecutionResult, InteractiveShell
from model_server import ScriptedModelServer, error, hang, text

from codeact_kernel import load_ipython_extension, unload_ipython_extension
from codeact_kernel.commands import config_text
from codeact_kernel.errors import (
    ApprovalUnavailable,
    AuthenticationFailed,
    ConfigurationError,
    RetryBudgetExhausted,
    StepBudgetExhausted,
)
from codeact_kernel.events import (
    ActionObserved,
    CodeAction,
    Finished,
    ModelText,
    Observation,
    Progress,
    StepStarted,
)
from codeact_kernel.magics import register_magics
from codeact_kernel.providers.base import Usage
from codeact_kernel.render_terminal import TerminalFrontend
from codeact_kernel.secrets import mask_url
from codeact_kernel.session import Session
from codeact_kernel.settings import CodeAct, Settings

KEY = "sk-test-MAGIC-0123456789abcdef"
PROVIDER_VARS = ("CODEACT_", "OPENAI_", "ANTHROPIC_", "OLLAMA_")


@pytest.fixture
def shell(
    ipython: InteractiveShell, model_server: ScriptedModelServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[InteractiveShell]:
    for name in list(os.environ):
        if name.startswith(PROVIDER_VARS):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CODEACT_MODEL", "openai:test-model")
    monkeypatch.setenv("CODEACT_BASE_URL", model_server.url)
    monkeypatch.setenv("CODEACT_API_KEY", KEY)
    load_ipython_extension(ipython)
    yield ipython
    unload_ipython_extension(ipython)


def run(shell: InteractiveShell, cell: str, store_history: bool = False) -> ExecutionResult:
    return shell.run_cell(cell, store_history=store_history)


def user_messages(request: dict[str, Any]) -> list[str]:
    return [m["content"] for m in request["body"]["messages"] if m["role"] == "user"]


def interrupt_when(condition: Callable[[], bool], timeout: float = 10) -> list[float]:
    """SIGINT the main thread (as Ctrl-C does) once `condition()` holds; returns when."""
    fired: list[float] = []
    main = threading.main_thread().ident
    assert main is not None

    def watch() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                fired.append(time.monotonic())
                signal.pthread_kill(main, signal.SIGINT)
                return
            time.sleep(0.01)

    threading.Thread(target=watch, daemon=True).start()
    return fired


# --- %load_ext ------------------------------------------------------------------------


def test_load_ext_imports_nothing_heavy() -> None:
    script = (
        "import sys\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "shell = InteractiveShell.instance()\n"
        "shell.run_line_magic('load_ext', 'codeact_kernel')\n"
        "assert 'codeact' in shell.magics_manager.magics['cell']\n"
        "heavy = ['httpx', 'codeact_kernel.agent', 'codeact_kernel.context',\n"
        "         'codeact_kernel.providers', 'codeact_kernel.magic_runner']\n"
        "print([name for name in heavy if name in sys.modules])\n"
    )
    output = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    assert output.strip() == "[]"


# --- requests -------------------------------------------------------------------------


def test_a_request_streams_and_acts_in_the_namespace(
    shell: InteractiveShell, model_server: ScriptedModelServer, capsys: pytest.CaptureFixture[str]
) -> None:
    run(shell, "data = [1, 2, 3, 6]")
    model_server.script(
        text("I'll compute the mean.\n```python\nmean = sum(data) / len(data)\nprint(mean)\n```"),
        text("The mean of `data` is **3.0**."),
    )
    result = run(shell, "%%codeact\ncompute the mean of data")
    assert result.success, result.error_in_exec
    assert shell.user_ns["mean"] == 3.0
    out = capsys.readouterr().out
    assert out.index("I'll compute the mean.") < out.index("--- step 1: running the action")
    assert out.index("--- step 1: running the action") < out.index("3.0\n")
    assert "The mean of `data` is **3.0**." in out
    assert "CodeAct · 1 step · " in out
    assert "<sub>" not in out and "\x1b[" not in out, "plain text in a terminal"
    first, second = model_server.requests
    assert "data" in json.dumps(first["body"]["messages"]), "the namespace is summarized"
    assert "3.0" in user_messages(second)[-1], "the observation goes back to the model"
    assert first["headers"]["authorization"] == f"Bearer {KEY}"
    assert KEY not in out


def test_results_are_observed_once(
    shell: InteractiveShell, model_server: ScriptedModelServer
) -> None:
    model_server.script(text("```python\n6 * 7\n```"), text("It is 42."))
    assert run(shell, "%%codeact\nsix times seven").success
    observation = user_messages(model_server.requests[1])[-1]
    assert observation.count("42") == 1, observation


def test_memory_across_cells_and_the_users_cells(
    shell: InteractiveShell, model_server: ScriptedModelServer
) -> None:
    model_server.script(text("```python\ntotal = 10 + 5\n```"), text("Total is 15."))
    assert run(shell, "%%codeact\nadd ten and five into total", store_history=True).success
    run(shell, "doubled = total * 2", store_history=True)
    run(shell, "%codeact", store_history=True)
    model_server.script(text("It was 15; you doubled it."))
    assert run(shell, "%%codeact\nwhat did you compute, and what did I do since?").success
    follow_up = json.dumps(model_server.requests[-1]["body"]["messages"])
    assert "add ten and five into total" in follow_up
    assert "Total is 15." in follow_up
    assert "doubled = total * 2" in follow_up, "cells the user ran in between"
    assert "%codeact" not in follow_up.replace("%%codeact", "")


def test_no_history_is_a_fresh_conversation_not_remembered(
    shell: InteractiveShell, model_server: ScriptedModelServer, capsys: pytest.CaptureFixture[str]
) -> None:
    model_server.script(text("First answer."), text("Second answer."))
    assert run(shell, "%%codeact\nremember the word pineapple").success
    assert run(shell, "%%codeact --no-history\nwhich word?").success
    assert "pineapple" not in json.dumps(model_server.requests[1]["body"]["messages"])
    capsys.readouterr()
    run(shell, "%codeact history")
    history = capsys.readouterr().out
    assert "pineapple" in history and "which word?" not in history


def test_cell_options_override_settings_for_that_cell(
    shell: InteractiveShell, model_server: ScriptedModelServer
) -> None:
    model_server.script(*[text("<execute>\nprint('again')\n</execute>") for _ in range(2)])
    result = run(shell, "%%codeact --model openai:other --max-steps 2 --format execute\nloop")
    assert isinstance(result.error_in_exec, StepBudgetExhausted)
    body = model_server.requests[0]["body"]
    assert body["model"] == "other"
    assert "</execute>" in body["stop"]
    model_server.script(text("Back to normal."))
    assert run(shell, "%%codeact\nand now?").success
    assert model_server.requests[-1]["body"]["model"] == "test-model", "for that cell only"


# --- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "hint"),
    [
        ("%%codeact --bogus\nhello", "usage: %%codeact"),
        ("%%codeact --max-steps 0\nhello", "at least 1"),
        ("%%codeact --model nope\nhello", "provider:model"),
        ("%%codeact --model nosuch:model\nhello", "Unknown provider"),
        ("%%codeact --approval maybe\nhello", "usage: %%codeact"),
        ("%%codeact\n   \n", "no request"),
        ("%codeact frobnicate", "Unknown %codeact command"),
        ("%codeact model nope", "provider:model"),
        ("%codeact max_steps many", "Setting max_steps"),
        ("%codeact approval maybe", "auto or ask"),
        ("%codeact api_key sk-123", "never from a cell"),
        ("%codeact reset now", "takes no arguments"),
        ("%codeact unset nonsense", "Unknown setting 'nonsense'"),
    ],
)
def test_bad_input_gives_a_usage_message_not_a_traceback(
    shell: InteractiveShell,
    model_server: ScriptedModelServer,
    capsys: pytest.CaptureFixture[str],
    cell: str,
    hint: str,
) -> None:
    result = run(shell, cell)
    assert isinstance(result.error_in_exec, UsageError)
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert hint in output
    assert "Traceback" not in output and "magics.py" not in output
    assert model_server.requests == []


def test_failures_end_the_cell_with_a_one_line_error(
    shell: InteractiveShell, model_server: ScriptedModelServer, capsys: pytest.CaptureFixture[str]
) -> None:
    model_server.script(*[text("```python\n1 / 0\n```") for _ in range(4)])
    result = run(shell, "%%codeact\ndivide by zero forever")
    assert isinstance(result.error_in_exec, RetryBudgetExhausted)
    out = capsys.readouterr().out
    assert "stopped: RetryBudgetExhausted" in out
    assert "RetryBudgetExhausted: 4 actions in a row failed" in out
    assert "magic_runner" not in out and "run_cell_magic" not in out

    model_server.script(*[error(401, "Incorrect API key provided")] * 3)
    result = run(shell, "%%codeact\nhello")
    assert isinstance(result.error_in_exec, AuthenticationFailed)
    assert KEY not in capsys.readouterr().out
    assert run(shell, "x = 1").success


def test_no_model_configured(
    shell: InteractiveShell,
    model_server: ScriptedModelServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("CODEACT_MODEL")
    monkeypatch.delenv("CODEACT_BASE_URL")
    monkeypatch.delenv("CODEACT_API_KEY")
    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:9")
    result = run(shell, "%%codeact\nhello")
    assert isinstance(result.error_in_exec, ConfigurationError)
    out = capsys.readouterr().out
    assert "ConfigurationError: " in out and "CODEACT_MODEL" in out
    assert "Traceback" not in out


# --- %codeact --------------------------------------------------------------------------


def test_status_config_and_history(
    shell: InteractiveShell, model_server: ScriptedModelServer, capsys: pytest.CaptureFixture[str]
) -> None:
    model_server.script(
        text("```python\nprint('hi there')\n```", usage=(100, 20)), text("Done.", usage=(130, 5))
    )
    assert run(shell, "%%codeact\nsay hi").success
    capsys.readouterr()
    run(shell, "%codeact")
    status = capsys.readouterr().out
    assert "openai:test-model (environment)" in status
    assert model_server.url in status
    assert "set (from CODEACT_API_KEY)" in status
    assert "255: 230 in, 25 out" in status
    run(shell, "%codeact config")
    config = capsys.readouterr().out
    assert re.search(r"^max_steps +10 +default$", config, re.M)
    assert "environment" in config and "default" in config
    run(shell, "%codeact history")
    history = capsys.readouterr().out
    assert "=== Request 1: say hi" in history
    assert "action (ok):\n      print('hi there')" in history
    assert "observation:\n      hi there" in history
    for output in (status, config, history):
        assert KEY not in output


def test_session_settings_model_and_reset(
    shell: InteractiveShell, model_server: ScriptedModelServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(shell, "%codeact max-steps 4").success
    assert run(shell, "%codeact format execute").success
    assert run(shell, "%codeact model openai:other-model").success
    out = capsys.readouterr().out
    assert "max_steps = 4 (for this session)" in out
    assert "action_format = execute (for this session)" in out
    run(shell, "%codeact config")
    config = capsys.readouterr().out
    assert re.search(r"^max_steps +4 +session$", config, re.M)
    model_server.script(text("Hello."))
    assert run(shell, "%%codeact\nhello").success
    assert model_server.requests[-1]["body"]["model"] == "other-model"
    run(shell, "%codeact unset max_steps")
    assert "max_steps = 10 (default)" in capsys.readouterr().out
    run(shell, "%codeact reset")
    assert "Forgot the conversation (1 request)" in capsys.readouterr().out
    run(shell, "%codeact history")
    assert "No conversation yet" in capsys.readouterr().out


@pytest.mark.parametrize(
    "cells",
    [
        ("%codeact model anthropic:claude-test", "%%codeact\nhello"),
        ("%%codeact --model anthropic:claude-test\nhello",),
    ],
)
def test_a_model_of_another_provider_gets_that_providers_key(
    shell: InteractiveShell,
    model_server: ScriptedModelServer,
    monkeypatch: pytest.MonkeyPatch,
    cells: tuple[str, ...],
) -> None:
    for name in ("CODEACT_MODEL", "CODEACT_BASE_URL", "CODEACT_API_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-not-for-anthropic")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-key")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", model_server.root)
    model_server.script(text("Hello from the other provider."))
    for cell in cells:
        assert run(shell, cell).success
    (request,) = model_server.requests
    assert request["path"] == "/v1/messages"
    assert request["headers"]["x-api-key"] == "sk-ant-test-key"
    assert "sk-openai" not in json.dumps(request)


def test_models_lists_what_the_endpoint_serves(
    shell: InteractiveShell, model_server: ScriptedModelServer, capsys: pytest.CaptureFixture[str]
) -> None:
    model_server.models = ["test-model", "other-model"]
    assert run(shell, "%codeact models").success
    out = capsys.readouterr().out
    assert "* openai:test-model" in out and "  openai:other-model" in out


def test_config_files_are_honoured(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    shell.config.CodeAct.observation_chars = 1234
    try:
        unload_ipython_extension(shell)
        load_ipython_extension(shell)
        run(shell, "%codeact config")
    finally:
        shell.config.pop("CodeAct")
    line = next(x for x in capsys.readouterr().out.splitlines() if "observation_chars" in x)
    assert line.split() == ["observation_chars", "1234", "config"]


def test_a_given_session_is_shared(
    ipython: InteractiveShell, model_server: ScriptedModelServer
) -> None:
    unload_ipython_extension(ipython)
    session = Session(
        ipython,
        CodeAct(),
        environ={"CODEACT_MODEL": "openai:test-model", "CODEACT_BASE_URL": model_server.url},
    )
    register_magics(ipython, session)
    try:
        model_server.script(text("Shared."))
        assert run(ipython, "%%codeact\nhello").success
        assert [turn.request for turn in session.turns] == ["hello"]
        run(ipython, "y = 2", store_history=True)
        assert session.pending_cells == [], "the kernel that owns the session records cells"
        run(ipython, "%codeact reset")
        assert session.turns == []
    finally:
        unload_ipython_extension(ipython)


# --- interrupts and timeouts --------------------------------------------------------------


@pytest.mark.timing
def test_interrupt_while_streaming(
    shell: InteractiveShell, model_server: ScriptedModelServer
) -> None:
    for _ in range(3):
        model_server.reset()
        model_server.script(text("Thinking " * 300, chunk_size=4, delay=0.05))
        fired = interrupt_when(lambda: len(model_server.requests) == 1)
        result = run(shell, "%%codeact\nthink for a long time")
        assert fired
        assert isinstance(result.error_in_exec, KeyboardInterrupt)
        assert "interrupted" in str(result.error_in_exec)
        assert time.monotonic() - fired[0] < 1.0
    assert run(shell, "alive = True").success


@pytest.mark.timing
def test_interrupt_while_the_model_is_silent(
    shell: InteractiveShell, model_server: ScriptedModelServer
) -> None:
    model_server.script(hang(30))
    fired = interrupt_when(lambda: len(model_server.requests) == 1)
    result = run(shell, "%%codeact\nwait for a silent model")
    assert isinstance(result.error_in_exec, KeyboardInterrupt)
    assert time.monotonic() - fired[0] < 1.0


@pytest.mark.timing
def test_interrupt_during_an_action(
    shell: InteractiveShell, model_server: ScriptedModelServer
) -> None:
    shell.user_ns["kept"] = "intact"
    for _ in range(3):
        model_server.reset()
        shell.user_ns.pop("started", None)
        # Short sleeps: a signal that lands after `started = True` but before a long
        # sleep's syscall begins is only handled when that sleep returns (CPython).
        model_server.script(
            text(
                "```python\nimport time\nstarted = True\n"
                "for _ in range(600):\n    time.sleep(0.05)\n```"
            )
        )
        fired = interrupt_when(lambda: shell.user_ns.get("started") is True)
        result = run(shell, "%%codeact\nsleep for a while")
        assert fired
        assert isinstance(result.error_in_exec, KeyboardInterrupt)
        assert time.monotonic() - fired[0] < 1.0
        assert len(model_server.requests) == 1, "an interrupt stops the loop"
    assert shell.user_ns["kept"] == "intact"


def test_step_timeout_interrupts_the_action_and_tells_the_model(
    shell: InteractiveShell, model_server: ScriptedModelServer
) -> None:
    run(shell, "%codeact step_timeout 0.3")
    model_server.script(
        text("```python\nimport time\ntime.sleep(20)\n```"), text("That took too long.")
    )
    started = time.monotonic()
    result = run(shell, "%%codeact\nsleep")
    assert result.success, result.error_in_exec
    assert time.monotonic() - started < 5
    assert "step_timeout" in user_messages(model_server.requests[1])[-1]


# --- actions ----------------------------------------------------------------------------


def test_top_level_await_inside_a_running_loop_gets_a_clear_observation(
    shell: InteractiveShell, model_server: ScriptedModelServer
) -> None:
    """As in a Jupyter kernel: the magic runs while the thread's event loop is running."""
    model_server.script(
        text("```python\nimport asyncio\nawait asyncio.sleep(0)\n```"), text("I see.")
    )

    async def in_a_kernel() -> ExecutionResult:
        return run(shell, "%%codeact\nawait something")

    loop = asyncio.new_event_loop()
    try:
        result = loop.run_until_complete(in_a_kernel())
    finally:
        loop.close()
    assert result.success, result.error_in_exec
    observation = user_messages(model_server.requests[1])[-1]
    assert "top-level `await`" in observation and "worker thread" in observation


def test_top_level_await_works_without_a_running_loop(
    shell: InteractiveShell, model_server: ScriptedModelServer
) -> None:
    model_server.script(
        text("```python\nimport asyncio\nawaited = await asyncio.sleep(0, 'yes')\n```"),
        text("Done."),
    )
    assert run(shell, "%%codeact\nawait something").success
    assert shell.user_ns["awaited"] == "yes"


def test_codeact_inside_an_action_is_refused(
    shell: InteractiveShell, model_server: ScriptedModelServer
) -> None:
    model_server.script(
        text("```python\nget_ipython().run_cell_magic('codeact', '', 'again')\n```"),
        text("Fine."),
    )
    assert run(shell, "%%codeact\nrecurse").success
    assert "cannot run inside an action" in user_messages(model_server.requests[1])[-1]


@pytest.mark.parametrize(("answer", "ran"), [("y", True), ("n", False)])
def test_approval_asks_before_each_action(
    shell: InteractiveShell,
    model_server: ScriptedModelServer,
    monkeypatch: pytest.MonkeyPatch,
    answer: str,
    ran: bool,
) -> None:
    prompts: list[str] = []

    def typed(prompt: str = "") -> str:
        prompts.append(prompt)
        return answer

    monkeypatch.setattr(builtins, "input", typed)
    shell.user_ns.pop("approved", None)
    model_server.script(text("```python\napproved = True\n```"), text("Done."))
    assert run(shell, "%%codeact --approval ask\nset approved").success
    assert prompts == ["Run step 1? [Y]es / [n]o (skip) / [s]top: "]
    assert ("approved" in shell.user_ns) is ran


def test_approval_stop_and_no_stdin(
    shell: InteractiveShell, model_server: ScriptedModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(builtins, "input", lambda prompt="": "s")
    model_server.script(text("```python\nnever = True\n```"))
    result = run(shell, "%%codeact --approval ask\ndo it")
    assert isinstance(result.error_in_exec, KeyboardInterrupt)
    assert "never" not in shell.user_ns

    def no_stdin(prompt: str = "") -> str:
        raise EOFError

    monkeypatch.setattr(builtins, "input", no_stdin)
    model_server.script(text("```python\nnever = True\n```"))
    result = run(shell, "%%codeact --approval ask\ndo it")
    assert isinstance(result.error_in_exec, ApprovalUnavailable)
    assert "%codeact approval auto" in str(result.error_in_exec)
    assert "never" not in shell.user_ns


# --- the terminal frontend ---------------------------------------------------------------


def test_terminal_frontend_renders_plain_text() -> None:
    stream = io.StringIO()
    frontend = TerminalFrontend("openai:m", stream=stream)
    observation = Observation(
        text="out", ok=True, outputs=({"output_type": "stream", "name": "stdout", "text": "x"},)
    )
    for event in (
        StepStarted(1),
        ModelText(1, "Let me look.\n```python\nprint('x', end='')\n```"),
        CodeAction(1, "print('x', end='')"),
        ActionObserved(1, "print('x', end='')", observation),
        StepStarted(2),
        Progress(2, "rate-limited, retrying in 1 s"),
        ModelText(2, "All done."),
        Finished("All done.", 1, Usage(10, 5), 1.5),
    ):
        frontend.render(event)
    assert stream.getvalue() == (
        "Let me look.\n```python\nprint('x', end='')\n```\n"
        "--- step 1: running the action above ---\n"
        "\n\n"
        "[rate-limited, retrying in 1 s]\n"
        "All done.\n"
        "CodeAct · 1 step · 15 tokens · 1.5 s · openai:m\n"
    )


def test_terminal_frontend_survives_a_narrow_encoding() -> None:
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="ascii")
    frontend = TerminalFrontend("openai:m", stream=stream, color=True)
    frontend.render(ModelText(1, "Voilà ✓"))
    frontend.render(CodeAction(1, "pass"))
    assert raw.getvalue().startswith(b"Voil? ?\n\x1b[1;36m--- step 1")


def test_passwords_in_urls_are_masked() -> None:
    assert mask_url("http://user:pa55@host:8000/v1") == "http://user:***@host:8000/v1"
    assert mask_url("http://host:8000/v1") == "http://host:8000/v1"
    settings = Settings(model="openai:m", base_url="https://me:secret@proxy.example/v1")
    assert "secret" not in config_text(settings)


def test_an_action_cannot_start_another_request(
    shell: InteractiveShell, model_server: ScriptedModelServer
) -> None:
    model_server.script(text("```python\n%%codeact\nsay hi\n```"), text("Nesting is refused."))
    result = run(shell, "%%codeact\nask yourself something")
    assert result.success
    observation = user_messages(model_server.requests[1])[-1]
    assert "UsageError: %%codeact cannot run inside an action" in observation
    assert len(model_server.requests) == 2, "no nested request reached the model"


def _registered_session(shell: InteractiveShell) -> Session:
    from codeact_kernel.magics import _registered

    return _registered[shell].session


def test_automagic_belongs_to_the_codeact_kernel(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    before = shell.automagic
    result = run(shell, "%codeact automagic on")
    assert isinstance(result.error_in_exec, UsageError)
    assert "%automagic" in str(result.error_in_exec)
    assert shell.automagic == before
    assert "automagic" not in _registered_session(shell).overrides


def test_reload_ext_keeps_the_conversation_and_the_settings(
    shell: InteractiveShell, model_server: ScriptedModelServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # Loaded the way a user loads it, so that IPython reloads it (not loads it anew).
    assert run(shell, "%load_ext codeact_kernel").success
    try:
        model_server.script(text("```python\ntotal = 42\n```"), text("The total is 42."))
        assert run(shell, "%%codeact\ncompute the total").success
        assert run(shell, "%codeact observation_chars 500").success
        session = _registered_session(shell)
        shell.config.CodeAct.step_timeout = 7.0
        assert run(shell, "%reload_ext codeact_kernel").success
        assert _registered_session(shell) is session
        capsys.readouterr()
        run(shell, "%codeact config")
        config = capsys.readouterr().out.splitlines()
        assert next(x for x in config if "observation_chars" in x).split()[1:] == ["500", "session"]
        assert next(x for x in config if "step_timeout" in x).split()[1:] == ["7.0", "config"]
        run(shell, "after_reload = 1", store_history=True)
        model_server.reset()
        model_server.script(text("It was 42."))
        assert run(shell, "%%codeact\nwhat was the total?").success
        told = json.dumps(model_server.requests[0]["body"]["messages"])
        assert "The total is 42." in told, "the conversation goes on"
        assert "after_reload = 1" in told, "the session still watches the user's cells"
        # Unloading closes the session: a later load starts a new one.
        assert run(shell, "%unload_ext codeact_kernel").success
        assert run(shell, "%load_ext codeact_kernel").success
        assert _registered_session(shell) is not session
        assert _registered_session(shell).turns == []
    finally:
        shell.config.CodeAct.pop("step_timeout", None)
        run(shell, "%unload_ext codeact_kernel")


def test_a_request_whose_session_is_closed_under_it_ends(
    shell: InteractiveShell, model_server: ScriptedModelServer
) -> None:
    # Past the refusal of %unload_ext in an action: the session's loop stops mid-request.
    code = "import codeact_kernel.magics as m\nm._registered[get_ipython()].session.close()"
    model_server.script(text(f"```python\n{code}\n```"), text("Never asked."))
    started = time.monotonic()
    result = run(shell, "%%codeact\nclose your own session")
    assert time.monotonic() - started < 5
    assert isinstance(result.error_in_exec, UsageError)
    assert "closed while this request ran" in str(result.error_in_exec)
    assert run(shell, "%load_ext codeact_kernel").success
    try:
        assert run(shell, "%unload_ext codeact_kernel").success
        assert run(shell, "%load_ext codeact_kernel").success
        model_server.reset()
        model_server.script(text("A new start."))
        assert run(shell, "%%codeact\nare you there?").success
    finally:
        run(shell, "%unload_ext codeact_kernel")
