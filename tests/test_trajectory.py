"""The trajectory record of every request (trajectory.py), as the session builds it and
frontends keep it.

In-process with the session and the loopback model server, where the record is
compared with what the model was actually sent; then through real kernels of both
hosts, where the footer output carries it and `%codeact export` writes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from kernel_harness import TEST_KEY, Host
from model_server import ScriptedModelServer, text
from recording_host import RecordingHost

from codeact_kernel.events import (
    ActionObserved,
    ActionSkipped,
    Observation,
    RequestRecorded,
    Step,
    Turn,
)
from codeact_kernel.frontend import Approval
from codeact_kernel.options import CellOptions
from codeact_kernel.render_terminal import TerminalFrontend
from codeact_kernel.session import Session
from codeact_kernel.settings import CodeAct, Settings
from codeact_kernel.trajectory import Trajectory, TrajectoryFormatError, record_turn, step_status

pytest_plugins = ("kernel_harness",)

DB_PASSWORD = "correct-horse-battery-staple-42"
ENV_KEY = "sk-envsecret-0123456789abcdefXYZ"


@pytest.fixture
def shell(ipython: InteractiveShell) -> Iterator[InteractiveShell]:
    yield ipython
    for name in ("squares", "db_password", "total"):
        ipython.user_ns.pop(name, None)


def make_session(shell: InteractiveShell, server: ScriptedModelServer) -> Session:
    environ = {
        "CODEACT_MODEL": "openai:test-model",
        "CODEACT_BASE_URL": server.url,
        "CODEACT_API_KEY": TEST_KEY,
    }
    return Session(shell, CodeAct(), environ=environ)


def run(
    session: Session,
    host: RecordingHost,
    request: str,
    *,
    cancelled: bool = False,
    **overrides: Any,
) -> None:
    """Answer `request` with cell `overrides`; `cancelled`: it must end interrupted."""
    with pytest.raises(asyncio.CancelledError) if cancelled else contextlib.nullcontext():
        asyncio.run(session.run(request, CellOptions(overrides=overrides), host))


def recorded(host: RecordingHost) -> Trajectory:
    last = host.events[-1]
    assert isinstance(last, RequestRecorded), "the record is the last event"
    assert json.loads(json.dumps(last.record)) == last.record, "the record is plain JSON"
    return Trajectory.from_json(last.record)


# --- in-process: the record is what the model saw ---------------------------------------


def test_a_record_is_the_conversation_the_model_saw(
    shell: InteractiveShell, model_server: ScriptedModelServer
) -> None:
    session = make_session(shell, model_server)
    host = RecordingHost(shell)
    session.record_user_cell("numbers = [1, 2, 3]")
    model_server.script(
        text("Squaring.\n```python\nsquares = [n * n for n in numbers]\nprint(squares)\n```"),
        text("Summing.\n```python\ntotal = sum(squares) / 0\n```"),
        text("Fixed.\n```python\ntotal = sum(squares)\ntotal\n```"),
        text("The total is 14."),
    )
    shell.user_ns["numbers"] = [1, 2, 3]
    run(session, host, "square the numbers and add them up")
    record = recorded(host)

    assert record.status == "ok" and record.error is None
    assert record.final == "The total is 14."
    assert record.request == "square the numbers and add them up"
    assert record.user_cells == ("numbers = [1, 2, 3]",)
    assert record.model == "openai:test-model"
    assert [s.status for s in record.steps] == ["ok", "error", "ok", "none"]
    assert record.steps[1].code == "total = sum(squares) / 0"
    assert "ZeroDivisionError" in record.steps[1].observed
    assert record.steps[3].answer == "The total is 14." and record.steps[3].observed == ""
    assert record.usage.input_tokens == 40 and record.usage.output_tokens == 20
    assert record.settings["max_steps"] == 10 and "api_key" not in record.settings
    assert "base_url" not in record.settings
    assert record.started.endswith("+00:00") and record.seconds >= 0

    # Exactly what was sent: the system prompt of the first call, and the last call's
    # conversation, which the final answer closes.
    first, last = model_server.requests[0]["body"], model_server.requests[-1]["body"]
    assert record.system == first["messages"][0]["content"]
    sent = [{"role": m["role"], "content": m["content"]} for m in last["messages"][1:]]
    messages = [{"role": m.role, "content": m.content} for m in record.messages]
    assert messages == [*sent, {"role": "assistant", "content": "The total is 14."}]

    # The steps are those messages, one at a time; the events said the same.
    observed = [e for e in host.events if isinstance(e, ActionObserved)]
    assert [(e.answer, e.observed) for e in observed] == [
        (s.answer, s.observed) for s in record.steps[:3]
    ]
    assert messages[1] == {"role": "assistant", "content": record.steps[0].answer}
    assert messages[2] == {"role": "user", "content": "Observation:\n" + record.steps[0].observed}
    assert session.records[-1] == record


def test_round_trip_and_schema_errors(
    shell: InteractiveShell, model_server: ScriptedModelServer
) -> None:
    session = make_session(shell, model_server)
    host = RecordingHost(shell)
    model_server.script(text("Hello."))
    run(session, host, "say hello")
    record = recorded(host)
    assert Trajectory.from_json(record.to_json()) == record
    assert record.to_json()["version"] == 1

    broken = record.to_json()
    broken["steps"][0]["status"] = "great"
    with pytest.raises(TrajectoryFormatError, match="status"):
        Trajectory.from_json(broken)
    for change, match in (
        ({"version": 2}, "version 2"),
        ({"messages": "hi"}, "messages"),
        ({"seconds": True}, "seconds"),
        ({"settings": {"action_format": ["json"]}}, "action_format"),
    ):
        with pytest.raises(TrajectoryFormatError, match=match):
            Trajectory.from_json({**record.to_json(), **change})
    missing = record.to_json()
    del missing["system"]
    with pytest.raises(TrajectoryFormatError, match="system"):
        Trajectory.from_json(missing)
    with pytest.raises(TrajectoryFormatError, match="object"):
        Trajectory.from_json([1, 2])


def test_failed_skipped_and_interrupted_requests_are_recorded(
    shell: InteractiveShell, model_server: ScriptedModelServer
) -> None:
    session = make_session(shell, model_server)
    host = RecordingHost(shell)
    model_server.script(text("```python\nx = 1\n```"))
    run(session, host, "loop forever", max_steps=1)
    failed = recorded(host)
    assert failed.status == "error" and failed.final is None
    assert failed.error is not None and failed.error.ename == "StepBudgetExhausted"
    assert failed.messages[-1].content.startswith("[This request ended without a final answer")

    host = RecordingHost(shell, approvals=[Approval.SKIP, Approval.STOP])
    model_server.script(text("```python\nrisky = 1\n```"), text("```python\nrisky = 2\n```"))
    run(session, host, "do risky things", approval="ask", cancelled=True)
    stopped = recorded(host)
    skipped = next(e for e in host.events if isinstance(e, ActionSkipped))
    assert (skipped.answer, skipped.observed) == (
        stopped.steps[0].answer,
        stopped.steps[0].observed,
    )
    assert "declined" in skipped.observed
    assert stopped.status == "interrupted"
    assert stopped.error is not None and stopped.error.ename == "KeyboardInterrupt"
    assert [s.status for s in stopped.steps] == ["skipped", "interrupted"]
    assert [r.status for r in session.records] == ["error", "interrupted"]


def test_no_secret_reaches_a_record(
    shell: InteractiveShell, model_server: ScriptedModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOME_SERVICE_API_KEY", ENV_KEY)
    session = make_session(shell, model_server)
    host = RecordingHost(shell)
    shell.user_ns["db_password"] = DB_PASSWORD
    model_server.script(
        text(
            "Printing.\n```python\nimport os\nprint(db_password, "
            "os.environ['SOME_SERVICE_API_KEY'], os.environ.get('CODEACT_API_KEY'))\n```"
        ),
        text(f"The password is {DB_PASSWORD} and the key {TEST_KEY}."),
    )
    run(session, host, f"show me {ENV_KEY}")
    kept = [(e.answer, e.observed) for e in host.events if isinstance(e, ActionObserved)]
    dumped = json.dumps([kept, recorded(host).to_json()])
    assert "[redacted]" in dumped
    for secret in (DB_PASSWORD, ENV_KEY, TEST_KEY):
        assert secret not in dumped
    # The model's own text is masked as it streams, before anything keeps it.
    assert "***" in recorded(host).final  # type: ignore[operator]


def test_step_status_covers_every_kind_of_step() -> None:
    def observed(**kwargs: Any) -> Observation:
        return Observation(text="x", ok=kwargs.pop("ok", True), **kwargs)

    assert step_status(Step(1, observation=observed())) == "ok"
    assert step_status(Step(1, observation=observed(ok=False))) == "error"
    assert step_status(Step(1, observation=observed(ok=False, interrupted=True))) == "interrupted"
    assert step_status(Step(1, observation=observed(), skipped=True)) == "skipped"
    assert step_status(Step(1, model_text="```python\nx", truncated=True)) == "error"
    assert step_status(Step(1, model_text="Hi", interrupted=True)) == "interrupted"
    assert step_status(Step(1, model_text="Done.")) == "none"


def test_a_turn_without_steps_still_makes_a_record() -> None:
    from datetime import datetime, timezone

    turn = Turn("hello", error="interrupted by the user")
    record = record_turn(
        turn,
        request_id="r1",
        system="",
        model="openai:m",
        settings=Settings(model="openai:m"),
        started=datetime(2026, 1, 2, tzinfo=timezone.utc),
        seconds=0.25,
    )
    assert record.status == "interrupted" and record.steps == ()
    assert record.started == "2026-01-02T00:00:00+00:00"
    assert [m.role for m in record.messages] == ["user", "assistant"]


def test_the_terminal_shows_nothing_of_the_record() -> None:
    stream = io.StringIO()
    TerminalFrontend("openai:m", stream=stream).render(RequestRecorded({"version": 1}))
    assert stream.getvalue() == ""


# --- real kernels: the footer carries the record; %codeact export -------------------------


def footer_records(result: Any) -> list[dict[str, Any]]:
    return [
        m["content"]["metadata"]["codeact"]["trajectory"]
        for m in result.of_type("display_data")
        if "trajectory" in m["content"].get("metadata", {}).get("codeact", {})
    ]


def test_the_footer_output_carries_the_record(
    host: Host, model_server: ScriptedModelServer
) -> None:
    model_server.script(text("Adding.\n```python\nprint(20 + 22)\n```"), text("It is 42."))
    result = host.request("add twenty and twenty-two")
    assert result.status == "ok"
    (record,) = footer_records(result)
    trajectory = Trajectory.from_json(record)
    assert trajectory.status == "ok" and trajectory.final == "It is 42."
    assert trajectory.steps[0].observed.strip() == "42"
    assert trajectory.settings["observation_chars"] == 1234  # the kernel config's
    footer = next(
        m for m in result.of_type("display_data") if m["content"]["metadata"].get("codeact")
    )
    assert footer["content"]["data"]["text/plain"].startswith("CodeAct · 1 step · ")
    assert TEST_KEY not in result.everything()


def test_a_failed_request_has_its_record_in_the_footer(
    host: Host, model_server: ScriptedModelServer
) -> None:
    model_server.script(text("```python\nx = 1\n```"))
    result = host.request("keep going", options="--max-steps 1")
    assert result.status == "error"
    (record,) = footer_records(result)
    assert record["status"] == "error"
    assert record["error"]["ename"] == "StepBudgetExhausted"


def test_percent_codeact_export_writes_the_session(
    host: Host, model_server: ScriptedModelServer, tmp_path: Path
) -> None:
    model_server.script(text("```python\nprint('hi')\n```"), text("Said hi."))
    assert host.request("say hi").status == "ok"
    target = tmp_path / f"{host.name}.jsonl"
    done = host.execute(f"%codeact export {target} --format sharegpt --only-successful")
    assert done.status == "ok", done.content
    assert "Wrote" in done.stdout
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert lines and all(set(line) == {"id", "conversations", "edited_cells"} for line in lines)
    last = lines[-1]["conversations"]
    assert [turn["from"] for turn in last] == ["system", "human", "gpt", "human", "gpt"]
    assert last[-1]["value"] == "Said hi."
    assert last[3]["value"].startswith("Observation:\n")

    bad = host.execute(f"%codeact export {target} --format yaml")
    assert bad.status == "error" and "--format takes one of" in bad.content["evalue"]
    notebook = tmp_path / "analysis.ipynb"
    notebook.write_text("{}")
    refused = host.execute(f"%codeact export {notebook}")
    assert refused.status == "error" and "name it .jsonl" in refused.content["evalue"]
    assert notebook.read_text() == "{}", "the notebook is left alone"


def test_a_stopped_request_has_its_record_in_an_interrupted_footer(
    host: Host, model_server: ScriptedModelServer
) -> None:
    model_server.script(text("Deleting.\n```python\nprint('gone')\n```"))
    result = host.request("delete everything", "--approval ask", on_stdin=lambda _: "s")
    assert result.status == "error" and result.content["ename"] == "KeyboardInterrupt"
    (record,) = footer_records(result)
    assert record["status"] == "interrupted"
    assert record["error"]["ename"] == "KeyboardInterrupt"
    footer = next(
        m for m in result.of_type("display_data") if m["content"]["metadata"].get("codeact")
    )
    # Stopped at the approval prompt: the action never ran, so no step is counted.
    assert footer["content"]["data"]["text/plain"].startswith("CodeAct · interrupted · 0 steps")
