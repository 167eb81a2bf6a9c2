"""The headless frontend: runs cells in a real `codeact` kernel and builds the notebook.

It is what JupyterLab with the extension is, without a browser: it starts a kernel
through jupyter_client, opens the `codeact.lab` comm (docs/protocol.md), sends each
cell as an `execute_request` with its cell id, diverts an action's IOPub outputs into
the action's own cell between `action_start` and `action_end`, answers the kernel's
stdin questions (replay? approve?) and writes everything into the notebook through
`NotebookBuilder` (headless_notebook.py). The kernel decides; this only follows.

Everything runs on the calling thread: the three channels are polled in turn, so an
interrupt (Ctrl-C, or the run's deadline) is noticed between messages, sent to the
kernel as a Jupyter interrupt, and the cell's reply is still awaited for a while, so
the notebook records what happened up to the interrupt.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from jupyter_client.kernelspec import KernelSpec, KernelSpecManager, NoSuchKernel
from jupyter_client.manager import KernelManager
from nbformat import NotebookNode

from .frontend import APPROVAL_PATTERN
from .headless_notebook import (
    OUTPUT_MESSAGES,
    NotebookBuilder,
    OutputCollector,
    generated_by,
    is_answered,
    is_edited,
    provenance,
    replay_steps,
    role,
    source_of,
)
from .headless_progress import Reporter
from .install import KERNEL_NAME, kernel_json
from .labcomm import PROTOCOL, REPLAY_PROMPT, TARGET
from .provenance import METADATA_KEY, RAISES_EXCEPTION
from .version import __version__

INTERRUPT_GRACE = 15.0
"""Seconds an interrupted cell may take to reply before it is given up."""
STARTUP_TIMEOUT = 60.0
COMM_TIMEOUT = 30.0
_POLL = 0.02

Ask = Callable[[str], str | None]
"""Reads a line from the user's terminal after a prompt; None when there is none."""


class HeadlessError(Exception):
    """The run cannot go on: the kernel would not start, died, or is not a codeact kernel."""


@dataclass(frozen=True)
class CellResult:
    """How one executed cell ended."""

    status: str
    """ok, error, or interrupted."""
    request: bool = False
    """The cell was a request (it asked the model, or was replayed)."""
    ename: str = ""
    evalue: str = ""


@dataclass
class Interrupts:
    """Ctrl-C and the run's deadline, noticed between messages."""

    deadline: float | None = None
    count: int = 0
    timed_out: bool = False
    terminated: bool = False
    """SIGTERM (`kill`, `timeout`, a CI job cancelled): handled as a Ctrl-C, so the
    partial notebook is still written."""

    def due(self) -> bool:
        if self.deadline is not None and time.monotonic() >= self.deadline and not self.timed_out:
            self.timed_out = True
            self.count += 1
        return self.count > 0

    @contextlib.contextmanager
    def catching(self) -> Iterator[None]:
        """SIGINT (and SIGTERM) count an interrupt instead of raising, while the run is
        in charge."""

        def count(signum: int, _frame: FrameType | None) -> None:
            self.count += 1
            self.terminated = self.terminated or signum == signal.SIGTERM

        previous = signal.signal(signal.SIGINT, count)
        previous_term = signal.signal(signal.SIGTERM, count)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)
            signal.signal(signal.SIGTERM, previous_term)

    @contextlib.contextmanager
    def raising(self) -> Iterator[None]:
        """SIGINT raises KeyboardInterrupt (while a prompt waits for the user's line)."""
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)


class _Specs(KernelSpecManager):
    """Installed kernelspecs, plus this package's own `codeact` when none is installed
    (a fresh `pip install` has the console script but no kernelspec yet)."""

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        try:
            return super().get_kernel_spec(kernel_name)
        except NoSuchKernel:
            if kernel_name != KERNEL_NAME:
                raise
            return KernelSpec(resource_dir="", **kernel_json())


@dataclass
class _Execution:
    """The state of one cell's execute request while its messages arrive."""

    cell: NotebookNode
    msg_id: str
    outputs: OutputCollector
    offered: bool
    reply: dict[str, Any] | None = None
    idle: bool = False
    request_id: str | None = None
    request_ended: bool = False
    replayed: bool = False
    step: int = 0
    action: int | None = None
    narrative: dict[str, str] = field(default_factory=dict)


class HeadlessKernel:
    """One `codeact` kernel, its client and the comm, for the cells of one notebook."""

    def __init__(
        self,
        builder: NotebookBuilder,
        reporter: Reporter,
        *,
        kernel_name: str = KERNEL_NAME,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        replay: bool = False,
        ask: Ask | None = None,
        interrupts: Interrupts | None = None,
    ) -> None:
        self.builder = builder
        self.reporter = reporter
        self.kernel_name = kernel_name
        self.cwd = cwd
        self.env = dict(os.environ if env is None else env)
        self.replay = replay
        self.ask = ask
        self.interrupts = interrupts or Interrupts()
        self.manager: KernelManager | None = None
        self.client: Any = None
        self.comm_id = uuid.uuid4().hex
        self.language_info: dict[str, Any] = {}
        # Open as long as the kernel runs; closed by shutdown().
        self._log = tempfile.TemporaryFile()  # noqa: SIM115

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        try:
            self.manager = KernelManager(kernel_name=self.kernel_name, kernel_spec_manager=_Specs())
            # The kernel's own log (warnings, a crash) is kept apart from the progress and
            # shown only when the kernel fails.
            self.manager.start_kernel(
                env=self.env, cwd=self.cwd, stdout=self._log, stderr=self._log
            )
        except NoSuchKernel:
            raise HeadlessError(
                f"No kernelspec named {self.kernel_name!r}: `jupyter kernelspec list` shows "
                "the installed ones."
            ) from None
        except Exception as error:
            raise HeadlessError(
                f"The kernel {self.kernel_name!r} did not start: {error}{self.log_tail()}"
            ) from error
        self.client = self.manager.client()
        self.client.start_channels()
        try:
            self.client.wait_for_ready(timeout=STARTUP_TIMEOUT)
        except RuntimeError as error:
            message = f"The kernel {self.kernel_name!r} did not start: {error}{self.log_tail()}"
            raise HeadlessError(message) from None
        info = self.client.kernel_info(reply=True, timeout=STARTUP_TIMEOUT)
        self.language_info = dict(info["content"].get("language_info") or {})
        self._open_comm()

    def log_tail(self, lines: int = 20) -> str:
        """The end of the kernel's log, to explain a failure ("" when it is empty)."""
        with contextlib.suppress(Exception):
            self._log.flush()
            self._log.seek(0)
            text = self._log.read().decode("utf-8", "replace").strip()
            if text:
                return "\nThe kernel's log ends with:\n" + "\n".join(text.splitlines()[-lines:])
        return ""

    def shutdown(self) -> None:
        if self.client is not None:
            with contextlib.suppress(Exception):
                self.client.stop_channels()
        if self.manager is not None:
            with contextlib.suppress(Exception):
                self.manager.shutdown_kernel(now=not self.manager.is_alive())
            if self.manager.has_kernel:
                with contextlib.suppress(Exception):
                    self.manager.shutdown_kernel(now=True)
        self._log.close()

    def _open_comm(self) -> None:
        """Open `codeact.lab` as the extension does and wait for the kernel's welcome."""
        session = self.client.session
        message = session.msg(
            "comm_open",
            {
                "comm_id": self.comm_id,
                "target_name": TARGET,
                "data": {"protocol": PROTOCOL, "extension": f"codeact-headless {__version__}"},
            },
        )
        self.client.shell_channel.send(message)
        deadline = time.monotonic() + COMM_TIMEOUT
        while time.monotonic() < deadline:
            try:
                msg = self.client.get_iopub_msg(timeout=0.2)
            except queue.Empty:
                continue
            kind = msg["header"]["msg_type"]
            content = msg["content"]
            if content.get("comm_id") != self.comm_id:
                continue
            if kind == "comm_msg" and content["data"].get("type") == "welcome":
                return
            if kind == "comm_close" or content.get("data", {}).get("type") == "unsupported":
                break
        raise HeadlessError(
            f"The kernel {self.kernel_name!r} is not a codeact kernel (it did not answer the "
            f"{TARGET!r} comm): run with `--kernel codeact`, or install the kernelspec with "
            "`python -m codeact_kernel install --sys-prefix`."
        )

    # --- cells -------------------------------------------------------------------------

    def run_cell(self, cell: NotebookNode, index: int) -> CellResult:
        """Execute one code cell as Lab would and write what happened into the notebook."""
        offered = self._offer_replay(cell)  # with the outputs the replay shows again
        cell.outputs = []
        cell.execution_count = None
        content = {
            "code": source_of(cell),
            "silent": False,
            "store_history": True,
            "user_expressions": {},
            "allow_stdin": True,
            # As nbclient does: a cell expected to fail does not abort the ones after it
            # (the kernel would also abort the next cell if it came in right away).
            "stop_on_error": not expected_to_fail(cell),
        }
        message = self.client.session.msg("execute_request", content, metadata={"cellId": cell.id})
        self.client.shell_channel.send(message)
        execution = _Execution(
            cell=cell,
            msg_id=message["header"]["msg_id"],
            outputs=OutputCollector(cell.outputs),
            offered=offered,
        )
        self.reporter.emit(
            {"event": "cell_started", "cell": index, "cell_id": cell.id, "source": content["code"]}
        )
        try:
            self._wait(execution)
        except HeadlessError as error:
            self._kernel_lost(execution, error)
            raise
        return self._result(execution, index)

    def _kernel_lost(self, execution: _Execution, error: HeadlessError) -> None:
        """The kernel died mid-request: no request_end will come, so the prompt cell is
        marked failed here (as Lab marks it) and the request reported as failed."""
        request_id = execution.request_id
        if request_id is None or execution.request_ended:
            return
        cell = execution.cell
        model = self.builder.models.get(request_id, "")
        self.builder.mark_prompt(cell.id, request_id, model=model, status="error", record=None)
        self.builder.finish(request_id)
        evalue = str(error).splitlines()[0]
        self.reporter.emit(
            {
                "event": "failed",
                "request_id": request_id,
                "cell_id": cell.id,
                "status": "error",
                "error": {"ename": "DeadKernelError", "evalue": evalue},
            }
        )

    def _offer_replay(self, cell: NotebookNode) -> bool:
        """With --replay, offer the prompt's earlier run, as the extension does before Run
        All runs a prompt cell that has generated cells (they run next, as cells of their
        own) or that was answered in prose."""
        if not self.replay:
            return False
        if not generated_by(self.builder.cells, cell.id) and not is_answered(cell):
            return False
        data = {
            "type": "replay_offer",
            "cell_id": cell.id,
            "source": source_of(cell),
            "outputs": [dict(output) for output in cell.outputs],
            "steps": replay_steps(self.builder.cells, cell.id),
        }
        message = self.client.session.msg("comm_msg", {"comm_id": self.comm_id, "data": data})
        self.client.shell_channel.send(message)
        return True

    def _wait(self, execution: _Execution) -> None:
        interrupted_at: float | None = None
        checked = time.monotonic()
        while execution.reply is None or not execution.idle:
            if self.interrupts.due():
                if interrupted_at is None:
                    interrupted_at = time.monotonic()
                    assert self.manager is not None
                    with contextlib.suppress(Exception):
                        self.manager.interrupt_kernel()
                elif (
                    self.interrupts.count > 1 or time.monotonic() - interrupted_at > INTERRUPT_GRACE
                ):
                    return  # a second Ctrl-C, or a kernel that does not answer: give up
            handled = self._poll_stdin(execution)
            handled = self._poll_iopub(execution) or handled
            handled = self._poll_shell(execution) or handled
            if not handled:
                time.sleep(_POLL)
            if time.monotonic() - checked > 1.0:
                checked = time.monotonic()
                assert self.manager is not None
                if not self.manager.is_alive():
                    raise HeadlessError(f"The kernel died while it ran a cell.{self.log_tail()}")

    def _poll_shell(self, execution: _Execution) -> bool:
        try:
            msg = self.client.get_shell_msg(timeout=0)
        except queue.Empty:
            return False
        if msg["parent_header"].get("msg_id") == execution.msg_id:
            execution.reply = msg["content"]
        return True

    def _poll_stdin(self, execution: _Execution) -> bool:
        try:
            msg = self.client.get_stdin_msg(timeout=0)
        except queue.Empty:
            return False
        if msg["header"]["msg_type"] == "input_request":
            self.client.input(self._answer(execution, str(msg["content"].get("prompt", ""))))
        return True

    def _answer(self, execution: _Execution, prompt: str) -> str:
        """The reply to the kernel's question on stdin, or to `input()` in the code."""
        if prompt == REPLAY_PROMPT:
            execution.replayed = execution.offered and self.replay
            return "replay" if execution.replayed else "model"
        if APPROVAL_PATTERN.match(prompt):
            answer = self._ask(prompt)
            if answer is None:
                self.reporter.emit(
                    {
                        "event": "notice",
                        "message": "approval is 'ask' but there is no terminal to ask on: "
                        "the request is stopped. Use --approval auto to run without review.",
                    }
                )
                return "stop"
            return answer
        answer = self._ask(prompt)
        if answer is None:
            self.reporter.emit(
                {
                    "event": "notice",
                    "message": f"the code asked for input ({prompt.strip()!r}) but there is no "
                    "terminal to ask on: it got an empty line.",
                }
            )
            return ""
        return answer

    def _ask(self, prompt: str) -> str | None:
        if self.ask is None:
            return None
        try:
            with self.interrupts.raising():
                return self.ask(prompt)
        except (KeyboardInterrupt, EOFError):
            self.interrupts.count += 1
            return "stop" if APPROVAL_PATTERN.match(prompt) else ""

    # --- IOPub -------------------------------------------------------------------------

    def _poll_iopub(self, execution: _Execution) -> bool:
        try:
            msg = self.client.get_iopub_msg(timeout=0)
        except queue.Empty:
            return False
        if msg["parent_header"].get("msg_id") != execution.msg_id:
            return True
        kind = msg["header"]["msg_type"]
        content = msg["content"]
        if kind == "status":
            execution.idle = content.get("execution_state") == "idle"
        elif kind == "execute_input":
            execution.cell.execution_count = content.get("execution_count")
        elif kind == "comm_msg" and content.get("comm_id") == self.comm_id:
            self._comm(execution, content.get("data") or {})
        elif kind in OUTPUT_MESSAGES:
            self._output(execution, kind, content)
        return True

    def _comm(self, execution: _Execution, data: Mapping[str, Any]) -> None:
        kind = data.get("type")
        if data.get("cell_id") != execution.cell.id or not isinstance(data.get("request_id"), str):
            return
        request_id = str(data["request_id"])
        base = {"request_id": request_id, "cell_id": execution.cell.id}
        if kind == "request_start":
            execution.request_id = request_id
            self.builder.request_start(data)
            self.reporter.emit(
                {
                    "event": "request_started",
                    **base,
                    "request": source_of(execution.cell),
                    "model": data.get("model", ""),
                }
            )
        elif kind == "progress":
            execution.step = int(data.get("step") or execution.step)
            if isinstance(data.get("tokens"), int):
                self.reporter.emit(
                    {
                        "event": "usage",
                        **base,
                        "step": execution.step,
                        "tokens": data["tokens"],
                        "estimated": bool(data.get("estimated")),
                    }
                )
            if data.get("message"):
                self.reporter.emit(
                    {"event": "notice", **base, "step": execution.step, "message": data["message"]}
                )
        elif kind == "action_start":
            cell = self.builder.action_start(data)
            execution.action = int(data["step"])
            self.reporter.emit(
                {
                    "event": "action",
                    **base,
                    "step": execution.action,
                    "code": data.get("code", ""),
                    "explanation": data.get("explanation", ""),
                    "action_cell_id": cell.id if cell is not None else None,
                }
            )
        elif kind == "approval_request":
            self.builder.approval_request(data)
        elif kind == "action_end":
            cell = self.builder.action_end(data)
            execution.action = None
            self.reporter.emit(
                {
                    "event": "observation",
                    **base,
                    "step": data.get("step"),
                    "status": data.get("status"),
                    "execution_count": data.get("execution_count"),
                    "error_name": data.get("error_name"),
                    "observed": data.get("observed", ""),
                    "action_cell_id": cell.id if cell is not None else None,
                }
            )
        elif kind == "request_end":
            execution.request_ended = True
            self.builder.request_end(data)
            self._report_end(execution, data)

    def _report_end(self, execution: _Execution, data: Mapping[str, Any]) -> None:
        record = data.get("record") if isinstance(data.get("record"), Mapping) else {}
        assert isinstance(record, Mapping)
        status = str(record.get("status") or data.get("status") or "error")
        event: dict[str, Any] = {
            "event": "finished" if status == "ok" else "failed",
            "request_id": data["request_id"],
            "cell_id": execution.cell.id,
            "status": status,
            "steps": data.get("steps", 0),
            "tokens": data.get("tokens", 0),
            "seconds": data.get("seconds", 0.0),
        }
        if status == "ok":
            event["answer"] = record.get("final", data.get("answer_cell"))
        else:
            event["error"] = data.get("error")
        self.reporter.emit(event)

    def _output(self, execution: _Execution, kind: str, content: Mapping[str, Any]) -> None:
        request_id = execution.request_id
        if kind == "update_display_data":
            if request_id and self.builder.update_display(request_id, content):
                return
            if execution.outputs.update(content):
                self._narrate(execution, content)
            return
        if request_id is not None and execution.action is not None:
            collector = self.builder.collector(request_id, execution.action)
            if collector is not None:
                collector.apply(kind, content)
            self.reporter.output(kind, content)
            return
        execution.outputs.apply(kind, content)
        if kind == "display_data" and self._narrative(content):
            self._narrate(execution, content)
        else:
            self.reporter.output(kind, content)

    @staticmethod
    def _narrative(content: Mapping[str, Any]) -> bool:
        """The model's prose in the prompt cell: a Markdown display updated in place (the
        footer and notes are displays too, but small and never updated: `<sub>`)."""
        data = content.get("data") or {}
        markdown = data.get("text/markdown")
        return (
            isinstance(markdown, str)
            and (content.get("transient") or {}).get("display_id") is not None
            and not markdown.startswith("<sub>")
        )

    def _narrate(self, execution: _Execution, content: Mapping[str, Any]) -> None:
        """Turn the narrative's in-place updates into text deltas."""
        identifier = str((content.get("transient") or {}).get("display_id"))
        text = str((content.get("data") or {}).get("text/plain", ""))
        shown = execution.narrative.get(identifier, "")
        execution.narrative[identifier] = text
        if text.startswith(shown):
            delta = text[len(shown) :]
        else:
            # The display was rewritten, not extended (a cut action dropped, a note added):
            # what was printed stays printed, and what is new after the common start
            # follows it on a line of its own.
            same = next(
                (i for i, (a, b) in enumerate(zip(shown, text, strict=False)) if a != b),
                min(len(shown), len(text)),
            )
            new = text[same:]
            delta = "\n" + new if new.strip() else ""
        if delta:
            self.reporter.emit(
                {
                    "event": "text_delta",
                    "request_id": execution.request_id,
                    "cell_id": execution.cell.id,
                    "step": execution.step,
                    "text": delta,
                }
            )

    # --- the cell's end ----------------------------------------------------------------

    def _result(self, execution: _Execution, index: int) -> CellResult:
        cell = execution.cell
        reply = execution.reply or {}
        interrupted = execution.reply is None or reply.get("ename") == "KeyboardInterrupt"
        if reply.get("execution_count") is not None:
            cell.execution_count = reply["execution_count"]
        status = "ok" if reply.get("status") == "ok" else "error"
        if interrupted and status != "ok":
            status = "interrupted"
        if execution.request_id is not None and not execution.request_ended:
            # No request_end: interrupted, or the kernel gave up; the record may still be
            # in the footer's metadata (contract: every request's footer carries it).
            record = _footer_record(cell.outputs)
            self.builder.mark_prompt(
                cell.id,
                execution.request_id,
                model=self.builder.models.get(execution.request_id, ""),
                status=str((record or {}).get("status") or status),
                record=record,
            )
            self.builder.finish(execution.request_id)
            self.reporter.emit(
                {
                    "event": "failed",
                    "request_id": execution.request_id,
                    "cell_id": cell.id,
                    "status": "interrupted" if interrupted else "error",
                    "error": {"ename": reply.get("ename", ""), "evalue": reply.get("evalue", "")},
                }
            )
        elif execution.request_id is not None:
            record = (cell.metadata.get(METADATA_KEY) or {}).get("trajectory")
            if record is None and (found := _footer_record(cell.outputs)) is not None:
                cell.metadata[METADATA_KEY]["trajectory"] = found
        if execution.request_id is None and not execution.replayed:
            self.builder.record_execution(cell, status == "ok", reply.get("ename"))
        if execution.replayed:
            self.reporter.emit({"event": "replayed", "cell": index, "cell_id": cell.id})
        self.reporter.emit(
            {
                "event": "cell",
                "cell": index,
                "cell_id": cell.id,
                "status": status,
                "execution_count": cell.execution_count,
                "request": execution.request_id is not None or execution.replayed,
                "ename": reply.get("ename"),
                "evalue": reply.get("evalue"),
            }
        )
        return CellResult(
            status=status,
            request=execution.request_id is not None or execution.replayed,
            ename=str(reply.get("ename") or ""),
            evalue=str(reply.get("evalue") or ""),
        )


def _footer_record(outputs: list[Any]) -> dict[str, Any] | None:
    for output in reversed(outputs):
        codeact = (output.get("metadata") or {}).get(METADATA_KEY)
        if isinstance(codeact, Mapping) and isinstance(codeact.get("trajectory"), Mapping):
            return dict(codeact["trajectory"])
    return None


def cells_to_run(notebook: NotebookNode, *, replay: bool) -> list[str]:
    """Ids of the code cells a run executes, in order, decided before it starts: cells the
    model adds on the way are its results, not cells to run. A prompt's generated cells
    run only with --replay; without it the prompt asks the model and they are replaced."""
    present = {cell.id for cell in notebook.cells}
    ids = []
    for cell in notebook.cells:
        if cell.cell_type != "code" or role(cell) == "answer":
            continue
        record = provenance(cell)
        # An edited generated cell is the user's now, and so is one whose prompt is gone.
        replaced = record is not None and record["prompt_cell_id"] in present
        if replaced and not replay and not is_edited(cell):
            continue
        ids.append(cell.id)
    return ids


def expected_to_fail(cell: NotebookNode) -> bool:
    """`raises-exception`: a failure there does not stop the run (as in nbclient)."""
    return RAISES_EXCEPTION in (cell.metadata.get("tags") or [])


def tty_asker() -> Ask | None:
    """A prompt on the controlling terminal (/dev/tty), or None when there is none."""
    try:
        os.close(os.open("/dev/tty", os.O_RDWR))
    except OSError:
        return None

    def ask(prompt: str) -> str:
        # Two streams: a terminal cannot seek, which a text file opened "r+" requires.
        with (
            open("/dev/tty", "w", encoding="utf-8") as out,
            open("/dev/tty", encoding="utf-8") as tty,
        ):
            out.write(prompt)
            out.flush()
            line = tty.readline()
        if not line:
            raise EOFError
        return line.rstrip("\n")

    return ask
