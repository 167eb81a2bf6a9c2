"""The kernel side of the lab extension's comm (codeact_kernel/labcomm.py).

In-process tests drive `LabBridge` with a fake comm manager and comms; the last tests
open the comm on a real `codeact` kernel subprocess the way JupyterLab does and check
the messages one natural-language cell produces (docs/protocol.md).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest
from jupyter_client.blocking.client import BlockingKernelClient
from kernel_harness import install_kernelspec, kernel_env, running_kernel
from model_server import ScriptedModelServer, text

from codeact_kernel.errors import ApprovalUnavailable, CodeActError
from codeact_kernel.events import (
    ActionObserved,
    ActionSkipped,
    CodeAction,
    Event,
    Failed,
    Finished,
    ModelText,
    Observation,
    Progress,
    RequestRecorded,
    RequestStarted,
    StepStarted,
    Usage,
    UsageReport,
)
from codeact_kernel.frontend import (
    APPROVAL_PATTERN,
    Approval,
    Approved,
    approval_question,
    read_reply,
)
from codeact_kernel.labcomm import (
    PROTOCOL,
    REPLAY_PROMPT,
    TARGET,
    LabBridge,
    LabFrontend,
)

SESSION = "client-session-1"
T = TypeVar("T")


class FakeComm:
    def __init__(self, comm_id: str, journal: list[Any]) -> None:
        self.comm_id = comm_id
        self.journal = journal
        self.sent: list[dict[str, Any]] = []
        self.closed = False
        self.msg_callback: Callable[[dict[str, Any]], None] | None = None
        self.close_callback: Callable[[dict[str, Any]], None] | None = None

    def send(self, data: dict[str, Any]) -> None:
        if self.closed:
            raise RuntimeError("comm closed")
        self.sent.append(data)
        self.journal.append(("comm", data["type"]))

    def close(self, data: dict[str, Any] | None = None) -> None:
        self.closed = True

    def on_msg(self, callback: Callable[[dict[str, Any]], None] | None) -> None:
        self.msg_callback = callback

    def on_close(self, callback: Callable[[dict[str, Any]], None] | None) -> None:
        self.close_callback = callback

    def receive(self, data: dict[str, Any]) -> None:
        assert self.msg_callback is not None
        self.msg_callback({"content": {"comm_id": self.comm_id, "data": data}})

    def types(self) -> list[str]:
        return [message["type"] for message in self.sent]


class FakeCommManager:
    def __init__(self) -> None:
        self.targets: dict[str, Callable[[Any, dict[str, Any]], None]] = {}

    def register_target(self, name: str, callback: Callable[[Any, dict[str, Any]], None]) -> None:
        self.targets[name] = callback


class FakeKernel:
    def __init__(self) -> None:
        self.comm_manager = FakeCommManager()
        self.log = logging.getLogger("fake-kernel")


class Narrative:
    """Records what the prompt cell would be asked to render."""

    def __init__(self, journal: list[Any]) -> None:
        self.journal = journal
        self.events: list[Event] = []
        self.cleared: list[int] = []

    def render(self, event: Event) -> None:
        self.events.append(event)
        self.journal.append(("narrative", type(event).__name__))

    def clear_step(self) -> None:
        step = next((e.step for e in reversed(self.events) if isinstance(e, CodeAction)), 0)
        self.cleared.append(step)

    async def approve(self, step: int, code: str) -> Approval:
        raise AssertionError("the lab frontend asks for approval itself")


@pytest.fixture
def journal() -> list[Any]:
    return []


@pytest.fixture
def published() -> list[Any]:
    return []


@pytest.fixture
def bridge(published: list[Any]) -> tuple[LabBridge, FakeKernel]:
    kernel = FakeKernel()
    return LabBridge(kernel, publish=published.append), kernel


def open_comm(
    kernel: FakeKernel,
    journal: list[Any],
    data: Any,
    *,
    session: str = SESSION,
    comm_id: str = "comm-1",
) -> FakeComm:
    comm = FakeComm(comm_id, journal)
    message = {
        "header": {"session": session, "msg_type": "comm_open"},
        "content": {"comm_id": comm_id, "target_name": TARGET, "data": data},
    }
    kernel.comm_manager.targets[TARGET](comm, message)
    return comm


def complete(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends (no event loop: playwright may own this thread's)."""
    try:
        coroutine.send(None)
    except StopIteration as stop:
        return cast(T, stop.value)
    coroutine.close()
    raise AssertionError("the coroutine suspended")


def parent(session: str = SESSION) -> dict[str, Any]:
    return {"header": {"session": session, "msg_id": "exec-1", "msg_type": "execute_request"}}


def hello() -> dict[str, Any]:
    return {"protocol": PROTOCOL, "extension": "0.1.0"}


# --- handshake ---------------------------------------------------------------------


def test_registers_the_comm_target(bridge: tuple[LabBridge, FakeKernel]) -> None:
    lab, kernel = bridge
    assert TARGET in kernel.comm_manager.targets
    assert not lab.connected


def test_known_protocol_is_welcomed(
    bridge: tuple[LabBridge, FakeKernel], journal: list[Any]
) -> None:
    lab, kernel = bridge
    comm = open_comm(kernel, journal, hello())
    assert lab.connected
    assert comm.sent == [
        {"type": "welcome", "protocol": PROTOCOL, "kernel": comm.sent[0]["kernel"]}
    ]
    assert lab.link_for(parent()) is not None
    assert not comm.closed


@pytest.mark.parametrize(
    "data", [{"protocol": 99, "extension": "9.0.0"}, {"protocol": "1"}, {}, "hello", None]
)
def test_unknown_protocol_is_ignored_with_a_warning(
    bridge: tuple[LabBridge, FakeKernel],
    journal: list[Any],
    data: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    lab, kernel = bridge
    with caplog.at_level(logging.WARNING):
        comm = open_comm(kernel, journal, data)
    assert not lab.connected
    assert comm.closed
    assert comm.sent[0]["type"] == "unsupported"
    assert comm.sent[0]["supported"] == [PROTOCOL]
    assert "protocol" in caplog.text
    assert "cells render inline" in caplog.text
    assert lab.frontend(cell_id="c", parent=parent(), model="m") is None


def test_closing_the_comm_disconnects(
    bridge: tuple[LabBridge, FakeKernel], journal: list[Any]
) -> None:
    lab, kernel = bridge
    comm = open_comm(kernel, journal, hello())
    assert comm.close_callback is not None
    comm.close_callback({})
    assert not lab.connected
    assert lab.frontend(cell_id="c", parent=parent(), model="m") is None


def test_frontend_only_for_the_client_that_ran_the_cell(
    bridge: tuple[LabBridge, FakeKernel], journal: list[Any]
) -> None:
    lab, kernel = bridge
    open_comm(kernel, journal, hello())
    assert isinstance(
        lab.frontend(cell_id="c", parent=parent(), model="m", narrative=Narrative(journal)),
        LabFrontend,
    )
    # Another client (a console, nbclient, a second browser) renders inline.
    assert lab.frontend(cell_id="c", parent=parent("other"), model="m") is None
    # Without a cell id the extension could not place the cells.
    assert lab.frontend(cell_id=None, parent=parent(), model="m") is None
    assert lab.frontend(cell_id="", parent=parent(), model="m") is None


def test_the_latest_comm_of_a_session_wins(
    bridge: tuple[LabBridge, FakeKernel], journal: list[Any]
) -> None:
    lab, kernel = bridge
    first = open_comm(kernel, journal, hello(), comm_id="first")
    second = open_comm(kernel, journal, hello(), comm_id="second")
    link = lab.link_for(parent())
    assert link is not None and link.comm is second
    assert second.close_callback is not None
    second.close_callback({})
    link = lab.link_for(parent())
    assert link is not None and link.comm is first


def test_a_comm_that_fails_to_send_is_dropped(
    bridge: tuple[LabBridge, FakeKernel], journal: list[Any]
) -> None:
    lab, kernel = bridge
    comm = open_comm(kernel, journal, hello())
    frontend = lab.frontend(cell_id="c", parent=parent(), model="m", narrative=Narrative(journal))
    assert frontend is not None
    comm.closed = True  # the page went away without closing the comm
    frontend.render(RequestStarted("hi", "m"))  # does not raise
    assert not lab.connected


# --- one request -------------------------------------------------------------------


def observation(**overrides: Any) -> Observation:
    values: dict[str, Any] = {
        "text": "2",
        "ok": True,
        "execution_count": 7,
        "outputs": ({"output_type": "stream", "name": "stdout", "text": "2\n"},),
    }
    values.update(overrides)
    return Observation(**values)


@pytest.fixture
def frontend(
    bridge: tuple[LabBridge, FakeKernel], journal: list[Any]
) -> tuple[LabFrontend, FakeComm, Narrative]:
    lab, kernel = bridge
    comm = open_comm(kernel, journal, hello())
    comm.sent.clear()
    journal.clear()
    narrative = Narrative(journal)
    made = lab.frontend(
        cell_id="prompt-cell",
        parent=parent(),
        model="openai:m",
        narrative=narrative,
        ask=lambda prompt: "y",
    )
    assert made is not None
    return made, comm, narrative


def test_a_request_produces_the_documented_messages(
    frontend: tuple[LabFrontend, FakeComm, Narrative], journal: list[Any]
) -> None:
    lab, comm, narrative = frontend
    usage = Usage(100, 20)
    events: list[Event] = [
        RequestStarted("add one and one", "openai:m"),
        StepStarted(1),
        ModelText(1, "Sure.\n```python\nprint(1 + 1)\n```"),
        UsageReport(1, usage, usage),
        CodeAction(1, "print(1 + 1)"),
        ActionObserved(1, "print(1 + 1)", observation()),
        StepStarted(2),
        Progress(2, "rate-limited, retrying in 1 s"),
        ModelText(2, "It is 2."),
        UsageReport(2, usage, usage + usage),
        Finished("It is 2.", 1, usage + usage, 1.23456),
        RequestRecorded({"version": 1, "final": "It is 2."}),
    ]
    for event in events:
        lab.render(event)

    assert narrative.events == events
    # The step's prose left the prompt cell when its action started, and the final
    # answer when it ended (it goes to a cell after the steps).
    assert narrative.cleared == [1, 1]
    assert comm.types() == [
        "request_start",
        "progress",
        "progress",
        "progress",
        "action_start",
        "action_end",
        "progress",
        "progress",
        "progress",
        "progress",
        "request_end",
    ]
    for message in comm.sent:
        assert message["request_id"] == lab.request_id
        assert message["cell_id"] == "prompt-cell"
    start, action, end, final = (
        comm.sent[0],
        comm.sent[4],
        comm.sent[5],
        comm.sent[-1],
    )
    assert start["model"] == "openai:m"
    assert start["approval"] == "auto"
    assert isinstance(start["started"], float)
    assert action == {
        "type": "action_start",
        "request_id": lab.request_id,
        "cell_id": "prompt-cell",
        "step": 1,
        "code": "print(1 + 1)",
        "model": "openai:m",
        "explanation": "Sure.",
    }
    assert end["status"] == "ok"
    assert end["execution_count"] == 7
    assert end["outputs"] == [{"output_type": "stream", "name": "stdout", "text": "2\n"}]
    assert end["error_name"] is None
    # While text streams the progress line counts it (estimated), then the real usage.
    assert comm.sent[2]["state"] == "writing"
    assert comm.sent[2]["tokens"] == 8
    assert comm.sent[2]["estimated"] is True
    assert comm.sent[3]["tokens"] == 120
    assert comm.sent[7]["message"] == "rate-limited, retrying in 1 s"
    assert comm.sent[8]["tokens"] == 120 + 2
    assert final["status"] == "ok"
    assert final["steps"] == 1
    assert final["tokens"] == 240
    assert final["seconds"] == 1.235
    assert final["error"] is None
    assert final["answer_cell"] == "It is 2."
    assert final["record"] == {"version": 1, "final": "It is 2."}


def test_prompt_cell_output_never_falls_inside_an_action_window(
    frontend: tuple[LabFrontend, FakeComm, Narrative], journal: list[Any]
) -> None:
    lab, _comm, _narrative = frontend
    lab.render(CodeAction(1, "x"))
    lab.render(ActionSkipped(1, "x"))
    lab.render(CodeAction(2, "y"))
    lab.render(ActionObserved(2, "y", observation()))
    # The narrative flushes before action_start and speaks only after action_end.
    assert journal == [
        ("narrative", "CodeAction"),
        ("comm", "action_start"),
        ("comm", "action_end"),
        ("narrative", "ActionSkipped"),
        ("narrative", "CodeAction"),
        ("comm", "action_start"),
        ("comm", "action_end"),
        ("narrative", "ActionObserved"),
    ]


@pytest.mark.parametrize(
    ("obs", "status", "error_name"),
    [
        (observation(ok=False, error_name="ZeroDivisionError"), "error", "ZeroDivisionError"),
        (observation(ok=False, error_name="TimeoutError", timed_out=True), "error", "TimeoutError"),
        (
            observation(ok=False, error_name="KeyboardInterrupt", interrupted=True),
            "interrupted",
            "KeyboardInterrupt",
        ),
    ],
)
def test_action_status(
    frontend: tuple[LabFrontend, FakeComm, Narrative],
    obs: Observation,
    status: str,
    error_name: str,
) -> None:
    lab, comm, _ = frontend
    lab.render(ActionObserved(1, "1/0", obs))
    assert comm.sent[-1]["status"] == status
    assert comm.sent[-1]["error_name"] == error_name


def test_skipped_action(frontend: tuple[LabFrontend, FakeComm, Narrative]) -> None:
    lab, comm, _ = frontend
    lab.render(ActionSkipped(3, "rm -rf /"))
    assert comm.sent[-1]["type"] == "action_end"
    assert comm.sent[-1]["status"] == "skipped"
    assert comm.sent[-1]["outputs"] == []
    assert comm.sent[-1]["step"] == 3


def test_failed_request_reports_the_error(
    frontend: tuple[LabFrontend, FakeComm, Narrative],
) -> None:
    lab, comm, _ = frontend
    lab.render(Failed(CodeActError("boom"), 3, Usage(1, 2), 0.5))
    assert comm.sent == [], "request_end waits for the record"
    lab.end()
    assert comm.sent[-1]["record"] is None
    assert comm.sent[-1]["answer_cell"] is None
    assert comm.sent[-1]["type"] == "request_end"
    assert comm.sent[-1]["status"] == "error"
    assert comm.sent[-1]["error"] == {"ename": "CodeActError", "evalue": "boom"}


# --- approval ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "approved"),
    [
        ("y", Approval.RUN),
        ("", Approval.RUN),
        ("YES", Approval.RUN),
        ("n", Approval.SKIP),
        ("no", Approval.SKIP),
        ("what?", Approval.SKIP),
        ("s", Approval.STOP),
        (" Stop ", Approval.STOP),
    ],
)
def test_approval_is_announced_then_asked_on_stdin(
    bridge: tuple[LabBridge, FakeKernel], journal: list[Any], answer: str, approved: Approval
) -> None:
    lab, kernel = bridge
    comm = open_comm(kernel, journal, hello())
    asked: list[str] = []

    def ask(prompt: str) -> str:
        journal.append(("stdin", prompt))
        asked.append(prompt)
        return answer

    frontend = lab.frontend(
        cell_id="p", parent=parent(), model="m", ask=ask, narrative=Narrative(journal)
    )
    assert frontend is not None
    assert complete(frontend.approve(2, "print(2)")) is approved
    request = next(message for message in comm.sent if message["type"] == "approval_request")
    assert request["type"] == "approval_request"
    assert request["step"] == 2
    # The extension recognises the stdin request by its prompt.
    assert request["prompt"] == asked[0] == approval_question(2)
    assert APPROVAL_PATTERN.match(request["prompt"])
    asking = journal.index(("comm", "approval_request"))
    assert journal[asking + 1] == ("stdin", asked[0])
    if approved is Approval.STOP:
        # A stopped action never ran: its window closes before the interrupt notice.
        assert comm.sent[-1]["type"] == "action_end"
        assert comm.sent[-1]["status"] == "skipped"


def test_stop_during_approval_interrupts(
    bridge: tuple[LabBridge, FakeKernel], journal: list[Any]
) -> None:
    lab, kernel = bridge
    open_comm(kernel, journal, hello())
    frontend = lab.frontend(
        cell_id="p", parent=parent(), model="m", ask=lambda _: "s", narrative=Narrative(journal)
    )
    assert frontend is not None
    assert complete(frontend.approve(1, "x")) is Approval.STOP

    def interrupted(prompt: str) -> str:
        raise KeyboardInterrupt

    frontend.ask = interrupted
    assert complete(frontend.approve(1, "x")) is Approval.STOP


def test_approval_without_stdin_fails_clearly(
    bridge: tuple[LabBridge, FakeKernel], journal: list[Any]
) -> None:
    lab, kernel = bridge
    comm = open_comm(kernel, journal, hello())
    frontend = lab.frontend(cell_id="p", parent=parent(), model="m", narrative=Narrative(journal))
    assert frontend is not None
    with pytest.raises(ApprovalUnavailable, match="approval auto"):
        complete(frontend.approve(1, "x"))
    assert comm.types() == ["welcome"]


# --- replay ------------------------------------------------------------------------

NOTE = {
    "output_type": "display_data",
    "data": {"text/plain": "old note"},
    "metadata": {"codeact": {"replay_note": True}},
}
NARRATIVE = {
    "output_type": "display_data",
    "data": {"text/markdown": ["Sure", ", done."], "text/plain": "Sure, done."},
    "metadata": {},
}


def offer(comm: FakeComm, source: str = "add one and one", **extra: Any) -> None:
    comm.receive(
        {
            "type": "replay_offer",
            "cell_id": "p",
            "source": source,
            "outputs": [NARRATIVE, NOTE],
            "steps": [
                {"step": 1, "code": "x = 1", "status": "ok"},
                {"step": 2, "code": "x + 1", "status": "error"},
                {"step": "bad"},
            ],
            **extra,
        }
    )


def replaying_frontend(
    lab: LabBridge, journal: list[Any], answer: str
) -> tuple[LabFrontend, list[str]]:
    asked: list[str] = []

    def ask(prompt: str) -> str:
        asked.append(prompt)
        return answer

    frontend = lab.frontend(
        cell_id="p", parent=parent(), model="m", ask=ask, narrative=Narrative(journal)
    )
    assert frontend is not None
    return frontend, asked


def test_replay_when_the_extension_says_so(
    bridge: tuple[LabBridge, FakeKernel], journal: list[Any], published: list[Any]
) -> None:
    lab, kernel = bridge
    comm = open_comm(kernel, journal, hello())
    offer(comm)
    frontend, asked = replaying_frontend(lab, journal, "replay")
    assert frontend.replay("add one and one")
    assert asked == [REPLAY_PROMPT]
    assert comm.sent[-1] == {
        "type": "replay_query",
        "request_id": frontend.request_id,
        "cell_id": "p",
        "prompt": REPLAY_PROMPT,
    }
    # The earlier narrative comes back; earlier replay notes do not pile up.
    assert published[0] == NARRATIVE
    assert len(published) == 2
    assert published[1]["metadata"] == {"codeact": {"replay_note": True}}
    # An offer is good for one run only.
    assert not frontend.replay("add one and one")


def test_no_replay_when_the_user_asks_the_model(
    bridge: tuple[LabBridge, FakeKernel], journal: list[Any], published: list[Any]
) -> None:
    lab, kernel = bridge
    comm = open_comm(kernel, journal, hello())
    offer(comm)
    frontend, asked = replaying_frontend(lab, journal, "model")
    assert not frontend.replay("add one and one")
    assert asked == [REPLAY_PROMPT]
    assert published == []


def test_no_replay_without_a_matching_offer(
    bridge: tuple[LabBridge, FakeKernel], journal: list[Any]
) -> None:
    lab, kernel = bridge
    comm = open_comm(kernel, journal, hello())
    frontend, asked = replaying_frontend(lab, journal, "replay")
    assert not frontend.replay("add one and one")
    offer(comm, source="an older text of the prompt")
    assert not frontend.replay("add one and one")
    offer(comm, cell_id=5)
    assert not frontend.replay("add one and one")
    assert asked == []


def test_unknown_extension_messages_are_ignored(
    bridge: tuple[LabBridge, FakeKernel], journal: list[Any]
) -> None:
    lab, kernel = bridge
    comm = open_comm(kernel, journal, hello())
    comm.receive({"type": "from_the_future", "x": 1})
    comm.receive({"no": "type"})
    assert lab.connected


# --- a real kernel -----------------------------------------------------------------


@pytest.fixture(scope="module")
def jupyter_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install_kernelspec(tmp_path_factory.mktemp("prefix"))


@pytest.fixture(scope="module")
def kernel_client(
    jupyter_path: Path, _model_server_session: ScriptedModelServer
) -> Iterator[BlockingKernelClient]:
    with running_kernel(jupyter_path, kernel_env(_model_server_session.url)) as (_, client):
        yield client


def shell_request(
    client: BlockingKernelClient, msg_type: str, content: dict[str, Any], **metadata: Any
) -> str:
    message = client.session.msg(msg_type, content, metadata=metadata)
    client.shell_channel.send(message)
    return str(message["header"]["msg_id"])


def collect(
    client: BlockingKernelClient,
    msg_id: str,
    *,
    timeout: float = 30,
    on_stdin: Callable[[dict[str, Any]], str] | None = None,
) -> list[dict[str, Any]]:
    """IOPub messages with parent `msg_id` until it is idle again."""
    deadline = time.monotonic() + timeout
    messages: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        if on_stdin is not None:
            with contextlib.suppress(queue.Empty):
                client.input(on_stdin(client.get_stdin_msg(timeout=0.01)))
        try:
            message = client.get_iopub_msg(timeout=0.05)
        except queue.Empty:
            continue
        if message["parent_header"].get("msg_id") != msg_id:
            continue
        if message["msg_type"] == "status" and message["content"]["execution_state"] == "idle":
            return messages
        messages.append(message)
    raise TimeoutError(f"no idle for {msg_id}; got {messages!r}")


def comm_data(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m["content"]["data"] for m in messages if m["msg_type"] == "comm_msg"]


def test_real_kernel_handshake_and_one_request(
    kernel_client: BlockingKernelClient, model_server: ScriptedModelServer
) -> None:
    client = kernel_client
    open_id = shell_request(
        client,
        "comm_open",
        {"comm_id": "lab-comm", "target_name": TARGET, "data": hello()},
    )
    welcome = comm_data(collect(client, open_id))
    assert welcome[0]["type"] == "welcome"
    assert welcome[0]["protocol"] == PROTOCOL

    model_server.script(
        text("I will compute it.\n```python\nprint(6 * 7)\n```"),
        text("The answer is 42."),
    )
    content = {"code": "multiply six by seven", "silent": False, "allow_stdin": True}
    exec_id = shell_request(client, "execute_request", content, cellId="the-prompt")
    messages = collect(client, exec_id)
    data = comm_data(messages)
    kinds = [d["type"] for d in data]
    assert kinds[0] == "request_start"
    assert kinds[-1] == "request_end"
    assert "action_start" in kinds and "action_end" in kinds
    assert all(d["cell_id"] == "the-prompt" for d in data)
    assert len({d["request_id"] for d in data}) == 1
    end = next(d for d in data if d["type"] == "action_end")
    assert end["status"] == "ok"
    assert end["outputs"] == [{"output_type": "stream", "name": "stdout", "text": "42\n"}]

    # Between action_start and action_end come exactly the action's own outputs,
    # on the prompt's request: that is what the extension diverts.
    types = [
        m["content"]["data"]["type"] if m["msg_type"] == "comm_msg" else m["msg_type"]
        for m in messages
    ]
    window = types[types.index("action_start") + 1 : types.index("action_end")]
    assert window == ["stream"]
    # The code is never rendered in the prompt cell itself.
    markdown = [
        m["content"]["data"].get("text/markdown", "")
        for m in messages
        if m["msg_type"] in ("display_data", "update_display_data")
    ]
    assert not any("print(6 * 7)" in md for md in markdown)
    assert any("The answer is 42." in md for md in markdown)
    # The step's prose leaves the prompt cell as its action starts (it is the step's
    # explanation), and so does the final answer that follows it (the answer cell).
    assert types[types.index("action_start") - 1] == "update_display_data"
    emptied = [
        m for m in messages if m["msg_type"] == "update_display_data" and m["content"]["data"] == {}
    ]
    assert len(emptied) == 2
    start = next(d for d in data if d["type"] == "action_start")
    assert start["explanation"] == "I will compute it."
    end_of_request = data[-1]
    assert end_of_request["answer_cell"] == "The answer is 42."
    assert end_of_request["steps"] == 1
    assert end_of_request["record"]["final"] == "The answer is 42."

    # Another client of the same kernel (no extension) gets inline rendering.
    other = client.session.session
    client.session.session = "some-other-client"
    try:
        model_server.script(text("Just text."))
        exec_id = shell_request(client, "execute_request", content | {"code": "say hi"}, cellId="x")
        assert comm_data(collect(client, exec_id)) == []
    finally:
        client.session.session = other


def test_real_kernel_replays_when_asked(
    kernel_client: BlockingKernelClient, model_server: ScriptedModelServer
) -> None:
    client = kernel_client
    open_id = shell_request(
        client, "comm_open", {"comm_id": "lab-comm-2", "target_name": TARGET, "data": hello()}
    )
    collect(client, open_id)
    source = "tell me the answer"
    shell_request(
        client,
        "comm_msg",
        {
            "comm_id": "lab-comm-2",
            "data": {
                "type": "replay_offer",
                "cell_id": "replayed",
                "source": source,
                "outputs": [NARRATIVE],
                "steps": [{"step": 1, "code": "answer = 42", "status": "ok"}],
            },
        },
    )
    content = {"code": source, "silent": False, "allow_stdin": True}
    exec_id = shell_request(client, "execute_request", content, cellId="replayed")
    prompts: list[str] = []

    def answer(request: dict[str, Any]) -> str:
        prompts.append(request["content"]["prompt"])
        return "replay"

    messages = collect(client, exec_id, on_stdin=answer)
    assert prompts == [REPLAY_PROMPT]
    assert model_server.requests == []
    shown = [m["content"]["data"] for m in messages if m["msg_type"] == "display_data"]
    assert shown[0]["text/markdown"] == "Sure, done."
    assert "replayed without the model" in shown[-1]["text/plain"]


def test_real_kernel_replays_twice_in_a_row(
    kernel_client: BlockingKernelClient, model_server: ScriptedModelServer
) -> None:
    # Run All over two answered prompts: each replay is its own complete execution,
    # ending with an idle status of its own (kernel.CodeActKernel.set_parent).
    client = kernel_client
    open_id = shell_request(
        client, "comm_open", {"comm_id": "lab-comm-3", "target_name": TARGET, "data": hello()}
    )
    collect(client, open_id)
    # As JupyterLab sends them: each offer just before its cell, all at once, so the
    # second offer arrives while the first cell runs (ipykernel 7 handles it at once).
    executions = []
    for cell_id in ("first", "second"):
        source = f"answer the {cell_id} question"
        offer = {"type": "replay_offer", "cell_id": cell_id, "source": source}
        shell_request(
            client,
            "comm_msg",
            {"comm_id": "lab-comm-3", "data": offer | {"outputs": [NARRATIVE], "steps": []}},
        )
        content = {"code": source, "silent": False, "allow_stdin": True}
        executions.append(shell_request(client, "execute_request", content, cellId=cell_id))
    idle: list[str] = []
    shown: dict[str, int] = {}
    deadline = time.monotonic() + 30
    while len(idle) < len(executions) and time.monotonic() < deadline:
        with contextlib.suppress(queue.Empty):
            client.get_stdin_msg(timeout=0.01)
            client.input("replay")
        with contextlib.suppress(queue.Empty):
            message = client.get_iopub_msg(timeout=0.05)
            parent_id = message["parent_header"].get("msg_id", "")
            if message["msg_type"] == "display_data":
                shown[parent_id] = shown.get(parent_id, 0) + 1
            if (
                message["msg_type"] == "status"
                and message["content"]["execution_state"] == "idle"
                and parent_id in executions
            ):
                idle.append(parent_id)
    # Each execution ends with an idle status of its own (JupyterLab waits for it).
    assert idle == executions
    assert all(shown.get(exec_id) for exec_id in executions)
    assert model_server.requests == []


# --- approval carries the code the user approved -------------------------------------


@pytest.mark.parametrize(
    ("reply", "decision"),
    [
        ('{"answer": "y", "code": "print(2)"}', Approval.RUN),
        ('{"answer": "y", "code": "print(3)"}', Approved("print(3)")),
        ('{"answer": "y"}', Approval.RUN),
        ('{"answer": "n", "code": "print(3)"}', Approval.SKIP),
        ('{"answer": "s", "code": "print(3)"}', Approval.STOP),
        ('{"answer": "y", "code": "   "}', Approval.SKIP),
        ('{"answer": "y", "code": ', Approval.SKIP),
        ("[1]", Approval.SKIP),
        ("y", Approval.RUN),
    ],
)
def test_an_approval_reply_may_carry_the_approved_code(reply: str, decision: object) -> None:
    assert read_reply(reply, "print(2)") == decision


def test_edited_code_is_what_the_lab_frontend_approves(
    bridge: tuple[LabBridge, FakeKernel], journal: list[Any]
) -> None:
    lab, kernel = bridge
    open_comm(kernel, journal, hello())
    reply = '{"answer": "y", "code": "print(\\"edited\\")"}'
    frontend = lab.frontend(
        cell_id="p", parent=parent(), model="m", ask=lambda _: reply, narrative=Narrative(journal)
    )
    assert frontend is not None
    decision = complete(frontend.approve(1, 'print("proposed")'))
    assert decision == Approved('print("edited")')
    assert isinstance(decision, Approved)
    # The model reads what ran.
    assert 'print("edited")' in decision.note


def test_every_request_ends_with_request_end(
    frontend: tuple[LabFrontend, FakeComm, Narrative],
) -> None:
    lab, comm, _ = frontend
    lab.render(RequestStarted("r", "openai:m"))
    lab.render(StepStarted(1))
    lab.render(UsageReport(1, Usage(5, 6), Usage(5, 6)))
    # Interrupted: no Finished, no record; the host ends the request.
    lab.end()
    lab.end()
    ends = [m for m in comm.sent if m["type"] == "request_end"]
    assert len(ends) == 1
    assert ends[0]["status"] == "interrupted"
    assert ends[0]["tokens"] == 11
    assert ends[0]["record"] is None
    assert ends[0]["answer_cell"] is None


def test_a_prose_answer_stays_in_the_prompt_cell(
    frontend: tuple[LabFrontend, FakeComm, Narrative],
) -> None:
    lab, comm, narrative = frontend
    lab.render(Finished("Just prose.", 1, Usage(1, 1), 0.1))
    lab.render(RequestRecorded({"version": 1}))
    assert comm.sent[-1]["answer_cell"] is None
    assert comm.sent[-1]["steps"] == 0
    assert narrative.cleared == []
