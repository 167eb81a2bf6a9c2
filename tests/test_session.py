"""`Session.run(request, options, host)`: the one request path every host drives.

In-process, with a real IPython shell, the loopback model server and a minimal host
of the kind a headless runner would be (it records what it is given).
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from model_server import ScriptedModelServer, text
from recording_host import RecordingHost

from codeact_kernel.commands import Commands
from codeact_kernel.errors import ConfigurationError, StepBudgetExhausted
from codeact_kernel.events import RequestStarted
from codeact_kernel.frontend import Approval
from codeact_kernel.options import CellOptions
from codeact_kernel.session import REPLAYED, Outcome, Session
from codeact_kernel.settings import CodeAct

# A 1×1 PNG, displayed by an action below.
PIXEL = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
    )
).decode()
SHOW_PIXEL = f"from IPython.display import display\ndisplay({{'image/png': '{PIXEL}'}}, raw=True)"


@pytest.fixture
def shell(ipython: InteractiveShell) -> Iterator[InteractiveShell]:
    yield ipython
    for name in ("answer", "kept"):
        ipython.user_ns.pop(name, None)


def make_session(shell: InteractiveShell, server: ScriptedModelServer, **env: str) -> Session:
    environ = {"CODEACT_BASE_URL": server.url, **env}
    return Session(shell, CodeAct(), environ=environ)


def run(session: Session, host: Any, request: str, **options: Any) -> Outcome:
    history = options.pop("history", True)
    cell = CellOptions(overrides=options, history=history)
    return asyncio.run(session.run(request, cell, host))


def test_the_host_gets_settings_with_the_detected_model(
    shell: InteractiveShell, model_server: ScriptedModelServer
) -> None:
    """No model configured: it is detected before the frontend is made, so every
    frontend (footer, Lab metadata) knows its name."""
    model_server.models = ["served-model"]
    model_server.script(text("Hello."))
    session = make_session(shell, model_server)
    host = RecordingHost(shell)
    outcome = run(session, host, "say hello")
    assert outcome.error is None
    assert [s.model for s in host.settings] == ["openai:served-model"]
    assert host.settings[0].sources["model"] == "detected"
    started = next(e for e in host.events if isinstance(e, RequestStarted))
    assert started.model == "openai:served-model"
    assert model_server.requests[-1]["body"]["model"] == "served-model"
    record = session.records[-1].to_json()
    assert record["model"] == "openai:served-model"


def test_the_detected_model_is_the_sessions_until_one_is_set(
    shell: InteractiveShell, model_server: ScriptedModelServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """`%codeact` names the model requests use, and detection runs once: a model set for
    a while and unset again brings the detected one back, without probing again."""
    model_server.models = ["served-model"]
    session = make_session(shell, model_server)
    commands = Commands(session)
    commands.run("status")
    assert "not set: the first request detects one" in capsys.readouterr().out
    model_server.script(text("One."), text("Two."), text("Three."))
    run(session, RecordingHost(shell), "first")
    assert session.settings().model == "openai:served-model"
    model_server.models = ["another-model"]  # detected once a session: not seen
    commands.run("status")
    assert "openai:served-model (detected)" in capsys.readouterr().out
    commands.run("model")
    assert capsys.readouterr().out == "model = openai:served-model (detected)\n"
    commands.run("model openai:chosen")
    host = RecordingHost(shell)
    run(session, host, "second")
    commands.run("unset model")
    assert capsys.readouterr().out.endswith("model = openai:served-model (detected)\n")
    run(session, host, "third")
    assert [s.model for s in host.settings] == ["openai:chosen", "openai:served-model"]
    sent = [r["body"]["model"] for r in model_server.requests]
    assert sent == ["served-model", "chosen", "served-model"]


def test_the_outcome_is_read_from_the_turn(
    shell: InteractiveShell, model_server: ScriptedModelServer
) -> None:
    session = make_session(shell, model_server, CODEACT_MODEL="openai:test-model")
    host = RecordingHost(shell)
    model_server.script(text("```python\nanswer = 42\n```"), text("It is 42."))
    done = run(session, host, "compute the answer")
    assert done.error is None and done.turn.final == "It is 42."
    assert done.turn is session.turns[-1]
    assert done.usage == done.turn.usage and done.usage.total == 30
    assert shell.user_ns["answer"] == 42

    model_server.script(text("```python\nanswer = 43\n```"))
    failed = run(session, host, "again", max_steps=1)
    assert isinstance(failed.error, StepBudgetExhausted)
    assert failed.error is failed.turn.failure
    assert failed.turn.error == str(failed.error) and failed.turn.final is None
    assert session.usage.total == 45 and session.requests == 2


def test_the_namespace_is_read_again_only_after_code_ran(
    shell: InteractiveShell, model_server: ScriptedModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The summary and the secrets are read once per stretch between actions (a read
    walks the whole namespace), and yet a secret an action made is redacted from what it
    printed: in the next model call and in the record."""
    reads: list[str] = []
    secrets, summary = Session.secrets, Session.namespace_summary

    def read_secrets(self: Session, settings: Any) -> set[str]:
        reads.append("secrets")
        return secrets(self, settings)

    def read_summary(self: Session) -> str:
        reads.append("summary")
        return summary(self)

    monkeypatch.setattr(Session, "secrets", read_secrets)
    monkeypatch.setattr(Session, "namespace_summary", read_summary)
    session = make_session(shell, model_server, CODEACT_MODEL="openai:test-model")
    model_server.script(
        text("```python\napi_token = 'tok-' + 'Zq8xV3mN1pL6wR'\nprint(api_token)\n```"),
        text("Printed."),
    )
    try:
        assert run(session, RecordingHost(shell), "make a token and print it").error is None
    finally:
        shell.user_ns.pop("api_token", None)
    assert sorted(reads) == ["secrets", "secrets", "summary", "summary"]
    assert "tok-Zq8xV3mN1pL6wR" not in str(model_server.requests[1]["body"]["messages"])
    assert "tok-Zq8xV3mN1pL6wR" not in str(session.records[-1].to_json())


def test_invalid_settings_fail_before_anything_is_recorded(
    shell: InteractiveShell, model_server: ScriptedModelServer
) -> None:
    session = make_session(shell, model_server, CODEACT_MODEL="nonsense:x")
    host = RecordingHost(shell)
    with pytest.raises(ConfigurationError, match="Unknown provider 'nonsense'"):
        run(session, host, "hello")
    with pytest.raises(ConfigurationError, match="max_steps must be at least 1"):
        run(session, host, "hello", model="openai:test-model", max_steps=0)
    assert host.settings == [] and session.turns == [] and session.requests == 0
    assert model_server.requests == []


def test_the_session_remembers_the_users_cells_not_its_own(
    shell: InteractiveShell, model_server: ScriptedModelServer
) -> None:
    """Every host gets the same rule: cells that manage CodeAct are not the user's work,
    and actions are part of their request."""
    session = make_session(shell, model_server, CODEACT_MODEL="openai:test-model")
    session.watch_cells()
    try:
        shell.run_cell("kept = 1", store_history=True)
        shell.run_cell("%load_ext codeact_kernel", store_history=True)
        shell.run_cell("%codeact status", store_history=True)
        shell.run_cell("hidden = 2", store_history=False)
        shell.run_cell("quiet = 3", store_history=True, silent=True)
        assert session.pending_cells == ["kept = 1"]
        model_server.script(text("```python\nanswer = kept + 1\n```"), text("Done."))
        assert run(session, RecordingHost(shell), "add one").error is None
        first_user = [
            m for m in model_server.requests[0]["body"]["messages"] if m["role"] == "user"
        ]
        assert "kept = 1" in first_user[0]["content"]
        assert "codeact" not in first_user[0]["content"]
        assert session.pending_cells == [], "the action is not a cell of the user's"
    finally:
        session.close()
        shell.run_cell("%unload_ext codeact_kernel")
    shell.run_cell("after = 1", store_history=True)
    assert session.pending_cells == [], "a closed session no longer watches"


@pytest.mark.parametrize(
    ("cell", "kept"),
    [
        ("%codeact status", []),
        ("%%codeact --no-history\nwhat is x?", []),
        ("%reload_ext codeact_kernel", []),
        ("%unload_ext codeact_kernel", []),
        ("%codeact approval ask\nsales = [1, 2]", ["sales = [1, 2]"]),
        (
            "%load_ext codeact_kernel\nimport pandas as pd\n  %codeact model openai:x\ndf = 1",
            ["import pandas as pd\ndf = 1"],
        ),
        ("%codeactual = 3", ["%codeactual = 3"]),
        ("%load_ext autoreload", ["%load_ext autoreload"]),
        ("print('%codeact')", ["print('%codeact')"]),
    ],
)
def test_only_the_lines_that_manage_codeact_are_left_out(
    shell: InteractiveShell, cell: str, kept: list[str]
) -> None:
    session = Session(shell, CodeAct(), environ={})
    session.record_user_cell(cell)
    assert session.pending_cells == kept


def test_no_history_runs_alone_and_is_not_remembered(
    shell: InteractiveShell, model_server: ScriptedModelServer
) -> None:
    session = make_session(shell, model_server, CODEACT_MODEL="openai:test-model")
    host = RecordingHost(shell)
    model_server.script(text("First."), text("Second."))
    run(session, host, "first request")
    run(session, host, "second request", history=False)
    assert [t.request for t in session.turns] == ["first request"]
    contents = [m["content"] for m in model_server.requests[1]["body"]["messages"]]
    assert not any("first request" in c for c in contents)


def test_stop_at_approval_interrupts_and_is_recorded(
    shell: InteractiveShell, model_server: ScriptedModelServer
) -> None:
    session = make_session(shell, model_server, CODEACT_MODEL="openai:test-model")
    host = RecordingHost(shell, approvals=[Approval.SKIP, Approval.STOP])
    model_server.script(text("```python\nanswer = 1\n```"), text("```python\nanswer = 2\n```"))
    with pytest.raises(asyncio.CancelledError):
        run(session, host, "set it", approval="ask")
    assert "answer" not in shell.user_ns
    turn = session.turns[-1]
    assert turn.steps[0].skipped and turn.error == "interrupted by the user"
    assert not session.running


def test_a_replayed_prompt_is_remembered_for_follow_ups(
    shell: InteractiveShell, model_server: ScriptedModelServer
) -> None:
    session = make_session(shell, model_server, CODEACT_MODEL="openai:test-model")
    session.remember_replay("plot the sales")
    model_server.script(text("Sure."))
    run(session, RecordingHost(shell), "and now the costs")
    contents = [m["content"] for m in model_server.requests[0]["body"]["messages"]]
    assert any("plot the sales" in c for c in contents)
    assert any(REPLAYED in c for c in contents)


@pytest.mark.parametrize(
    ("model", "vision", "sent"),
    [
        ("openai:gpt-4o-mini", "auto", True),
        ("openai:test-model", "auto", False),
        ("openai:test-model", "on", True),
        ("openai:gpt-4o", "off", False),
    ],
)
def test_vision_sends_displayed_images_to_models_that_read_them(
    shell: InteractiveShell,
    model_server: ScriptedModelServer,
    model: str,
    vision: str,
    sent: bool,
) -> None:
    session = make_session(shell, model_server, CODEACT_MODEL=model, CODEACT_VISION=vision)
    model_server.script(text(f"```python\n{SHOW_PIXEL}\n```"), text("A pixel."))
    outcome = run(session, RecordingHost(shell), "show a pixel")
    assert outcome.error is None
    observation = model_server.requests[1]["body"]["messages"][-1]
    if sent:
        parts = observation["content"]
        assert parts[0]["type"] == "text" and "image/png image shown" in parts[0]["text"]
        assert parts[1] == {
            "type": "image_url",
            "image_url": {"url": f"data:image/png;base64,{PIXEL}"},
        }
    else:
        assert isinstance(observation["content"], str)
        assert "image/png image shown to the user" in observation["content"]


def test_cells_wait_for_a_remembered_request(
    shell: InteractiveShell, model_server: ScriptedModelServer
) -> None:
    """A request run apart (--no-history) shows the user's cells, and leaves them for the
    next remembered request too."""
    session = make_session(shell, model_server, CODEACT_MODEL="openai:test-model")
    session.record_user_cell("sales = [1, 2, 3]")
    model_server.script(text("Apart."), text("Remembered."))
    run(session, RecordingHost(shell), "a one-off question", history=False)
    run(session, RecordingHost(shell), "now the real question")
    for request in model_server.requests:
        assert any("sales = [1, 2, 3]" in m["content"] for m in request["body"]["messages"])
    assert session.pending_cells == []


def test_a_bad_environment_value_fails_requests_by_name_but_never_locks_the_session(
    shell: InteractiveShell, model_server: ScriptedModelServer
) -> None:
    session = make_session(
        shell, model_server, CODEACT_MODEL="openai:test-model", CODEACT_IDLE_TIMEOUT="abc"
    )
    with pytest.raises(ConfigurationError, match="environment variable CODEACT_IDLE_TIMEOUT"):
        run(session, RecordingHost(shell), "hello")
    shown = session.settings(lenient=True)
    assert shown.idle_timeout == 30.0 and shown.sources["idle_timeout"] == "environment"
    assert "%codeact idle_timeout VALUE" in shown.problems["idle_timeout"].message
    # An override wins without the bad value being read; the request then runs.
    session.overrides["idle_timeout"] = 5.0
    assert session.settings().idle_timeout == 5.0 and not session.settings().problems
    model_server.script(text("Hello."))
    assert run(session, RecordingHost(shell), "hello").error is None


def test_a_bad_setting_elsewhere_does_not_hide_the_mcp_servers(
    shell: InteractiveShell, tmp_path: Path
) -> None:
    config = tmp_path / "mcp.json"
    config.write_text('{"mcpServers": {"demo": {"command": "demo-server"}}}')
    environ = {"CODEACT_MCP_CONFIG": str(config), "CODEACT_IDLE_TIMEOUT": "abc"}
    session = Session(shell, CodeAct(), environ=environ)
    try:
        assert list(session.tools.mcp.configs) == ["demo"]
        assert "mcp" in shell.user_ns
    finally:
        session.close()
        shell.user_ns.pop("mcp", None)
