"""The kernel side of the JupyterLab extension's comm (the schema is in docs/protocol.md).

The extension opens a comm on target `codeact.lab` for every notebook connected to a
codeact kernel. When a natural-language cell of that notebook runs, the kernel asks
`LabBridge.frontend()` for a `LabFrontend`: the model's narrative and final answer stay
inline in the prompt cell (composed from `InlineFrontend`, without code blocks), and each
code action is announced over the comm so that the extension turns it into a real code
cell below the prompt. The action's live outputs are ordinary IOPub messages of the
prompt cell's request; the extension diverts those between `action_start` and
`action_end` into the generated cell, so the kernel never forges parent headers.

Questions that need an answer while a cell runs (approve this action? replay instead of
asking the model?) go through the kernel's stdin channel, which ipykernel serves during
an execution, announced by a comm message so the extension can answer them itself; in
a frontend without the extension they are ordinary, readable input prompts.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from .actions import split_answer
from .errors import ApprovalUnavailable
from .events import (
    ActionObserved,
    ActionsDropped,
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
    UsageReport,
)
from .frontend import Approval, Ask, Decision, Frontend, approval_question, read_reply
from .provenance import source_hash
from .routing import route_cell
from .version import __version__

TARGET = "codeact.lab"
PROTOCOL = 1
SUPPORTED_PROTOCOLS = frozenset({PROTOCOL})

REPLAY_PROMPT = "CodeAct: replay the generated cells instead of asking the model? [replay/model]: "
REPLAY_NOTE = (
    "CodeAct · replayed without the model: the generated cells below re-run its actions. "
    "Run this cell on its own to ask the model again."
)

NO_INPUT = (
    "approval is 'ask' but this notebook cannot take input, so the action was not run. "
    "Run the cell from JupyterLab, or `%codeact approval auto` to run actions without review."
)
# Routing a cell takes ~8 ms per 1,000 characters of prose, on the kernel's thread: a
# longer text (a pasted log, a data dump) is not worth holding the kernel up as you type.
CLASSIFY_LIMIT = 20_000
Publish = Callable[[Mapping[str, Any]], None]


class Comm(Protocol):
    """What the bridge needs of an ipykernel comm (and what the tests fake)."""

    comm_id: str

    def send(self, data: dict[str, Any]) -> None: ...

    def close(self, data: dict[str, Any] | None = None) -> None: ...

    def on_msg(self, callback: Callable[[dict[str, Any]], None] | None) -> None: ...

    def on_close(self, callback: Callable[[dict[str, Any]], None] | None) -> None: ...


@dataclass(frozen=True)
class ReplayOffer:
    """Sent by the extension just before a prompt cell that has generated cells runs."""

    cell_id: str
    source: str
    outputs: tuple[Mapping[str, Any], ...]


@dataclass
class Link:
    """One open comm: one notebook connection (a JupyterLab kernel client session)."""

    comm: Comm
    session: str
    protocol: int
    extension: str
    offers: dict[str, ReplayOffer] = field(default_factory=dict)
    closed: bool = False

    def send(self, message: dict[str, Any]) -> None:
        if self.closed:
            return
        try:
            self.comm.send(message)
        except Exception:
            # A comm the page dropped without closing it; the request goes on inline.
            logging.getLogger(__name__).debug("codeact.lab comm send failed", exc_info=True)
            self.closed = True


class LabBridge:
    """Registers the comm target and hands out a `LabFrontend` per prompt cell run."""

    def __init__(
        self,
        kernel: Any,
        *,
        log: logging.Logger | None = None,
        publish: Publish | None = None,
    ) -> None:
        self._log: logging.Logger = (
            log or getattr(kernel, "log", None) or logging.getLogger(__name__)
        )
        self._publish = publish or publish_output
        self._links: dict[str, Link] = {}
        # The shell whose settings and names decide what is prose (`classify`).
        self._shell: Any = getattr(kernel, "shell", None)
        kernel.comm_manager.register_target(TARGET, self._open)

    @property
    def connected(self) -> bool:
        """Whether any extension speaking a known protocol is connected."""
        return any(not link.closed for link in self._links.values())

    def link_for(self, parent: Mapping[str, Any]) -> Link | None:
        """The comm of the client that sent `parent`: only it inserts the cells."""
        session = (parent.get("header") or {}).get("session")
        for link in reversed(list(self._links.values())):
            if not link.closed and link.session == session:
                return link
        return None

    def frontend(
        self,
        *,
        cell_id: str | None,
        parent: Mapping[str, Any],
        model: str,
        ask: Ask | None = None,
        narrative: Frontend | None = None,
        approval: str = "auto",
    ) -> LabFrontend | None:
        """A frontend for this run, or None when the client that ran it has no extension."""
        link = self.link_for(parent)
        if link is None or not cell_id:
            return None
        return LabFrontend(
            link,
            cell_id=cell_id,
            model=model,
            ask=ask,
            narrative=narrative,
            publish=self._publish,
            approval=approval,
        )

    # --- comm lifecycle ---------------------------------------------------------------

    def _open(self, comm: Comm, msg: Mapping[str, Any]) -> None:
        data = (msg.get("content") or {}).get("data") or {}
        protocol = data.get("protocol") if isinstance(data, Mapping) else None
        if not isinstance(protocol, int) or protocol not in SUPPORTED_PROTOCOLS:
            self._log.warning(
                "codeact: ignoring the JupyterLab extension (codeact-kernel-lab %s): it speaks "
                "protocol %r, this kernel speaks %s. Install matching versions of "
                "codeact-kernel and its extension; until then cells render inline.",
                data.get("extension", "?") if isinstance(data, Mapping) else "?",
                protocol,
                " or ".join(str(p) for p in sorted(SUPPORTED_PROTOCOLS)),
            )
            comm.send(
                {
                    "type": "unsupported",
                    "protocol": protocol,
                    "supported": sorted(SUPPORTED_PROTOCOLS),
                }
            )
            comm.close()
            return
        session = str((msg.get("header") or {}).get("session", ""))
        link = Link(comm, session, protocol, str(data.get("extension", "")))
        self._links[comm.comm_id] = link
        comm.on_msg(lambda message: self._receive(link, message))
        comm.on_close(lambda _message: self._close(comm.comm_id))
        link.send({"type": "welcome", "protocol": protocol, "kernel": __version__})

    def _close(self, comm_id: str) -> None:
        link = self._links.pop(comm_id, None)
        if link is not None:
            link.closed = True

    def _receive(self, link: Link, msg: Mapping[str, Any]) -> None:
        data = (msg.get("content") or {}).get("data") or {}
        kind = data.get("type") if isinstance(data, Mapping) else None
        if kind == "replay_offer":
            offer = _replay_offer(data)
            if offer is not None:
                link.offers[offer.cell_id] = offer
                return
        if kind == "classify" and self._classify(link, data):
            return
        # Unknown types are newer minor additions: ignore them (docs/protocol.md).
        self._log.debug("codeact: ignored lab message %r", kind)

    def _classify(self, link: Link, data: Mapping[str, Any]) -> bool:
        """Tell the extension whether a cell the user is typing would go to the model.

        The kernel's own routing decides (with this shell's automagic, magics and
        names), so the editor marks exactly the cells that will run as prompts. The
        answer echoes the source's hash: the extension drops answers about a source
        that has changed since it asked.
        """
        cell_id, source = data.get("cell_id"), data.get("source")
        if not isinstance(cell_id, str) or not isinstance(source, str):
            return False
        if len(source) > CLASSIFY_LIMIT:
            return True
        shell = self._shell
        if shell is None:
            route = route_cell(source)
        else:
            route = route_cell(
                source,
                automagic=bool(shell.automagic),
                line_magics=shell.magics_manager.magics["line"],
                namespace=shell.user_ns,
            )
        link.send(
            {
                "type": "classified",
                "cell_id": cell_id,
                "source_hash": source_hash(source),
                "kind": route.kind,
            }
        )
        return True


class LabFrontend:
    """Renders one request for a notebook whose view has the extension.

    The prompt cell gets the narrative (through `narrative`, by default a
    `LabNarrative`: the inline rendering without code blocks, whose step prose moves to
    the step cells); the extension gets one message per phase and builds the generated
    cells from them.
    """

    progress_seconds = 0.25
    """At most one `progress` message per this while text streams."""

    def __init__(
        self,
        link: Link,
        *,
        cell_id: str,
        model: str,
        ask: Ask | None = None,
        narrative: Frontend | None = None,
        publish: Publish | None = None,
        clock: Callable[[], float] = time.time,
        approval: str = "auto",
    ) -> None:
        if narrative is None:
            from .lab_narrative import LabNarrative

            narrative = LabNarrative(model)
        self.link = link
        self.cell_id = cell_id
        self.model = model
        self.ask = ask
        self.narrative = narrative
        self.approval = approval
        self.request_id = uuid.uuid4().hex
        self._publish = publish or publish_output
        self._clock = clock
        self._tally = _Tally(started=clock())

    # --- Frontend -------------------------------------------------------------------

    def render(self, event: Event) -> None:
        # Everything the prompt cell shows must fall outside an action's window
        # (action_start .. action_end), or the extension would divert it into the
        # generated cell: the narrative renders before a window opens, after it closes.
        closes_window = isinstance(event, (ActionSkipped, ActionObserved))
        if not closes_window:
            self.narrative.render(event)
        if isinstance(event, CodeAction) or (isinstance(event, Finished) and self._tally.actions):
            # The step's prose goes with its cell (`explanation`), and a final answer
            # after actions to a cell after them (`answer_cell`), in reading order.
            clear = getattr(self.narrative, "clear_step", None)
            if clear is not None:
                clear()
        if isinstance(event, (CodeAction, ActionSkipped, ActionObserved)):
            # ipykernel buffers stdout/stderr and sends them later; what was printed
            # must be on IOPub before the window opens or closes around it.
            _flush_streams()
        self._announce(event)
        if closes_window:
            self.narrative.render(event)

    def _announce(self, event: Event) -> None:
        tally = self._tally
        if isinstance(event, RequestStarted):
            self._send(
                "request_start",
                model=event.model or self.model,
                started=self._clock(),
                approval=self.approval,
            )
        elif isinstance(event, StepStarted):
            # A new step's first text is reported at once.
            tally.text, tally.streamed, tally.last_progress = [], 0, 0.0
            self._send("progress", step=event.step, state="thinking")
        elif isinstance(event, ModelText):
            tally.text.append(event.text)
            tally.streamed += len(event.text)
            self._streaming(event.step)
        elif isinstance(event, ActionsDropped):
            tally.text = [event.answer]
        elif isinstance(event, Progress):
            self._send("progress", step=event.step, state="thinking", message=event.message)
        elif isinstance(event, UsageReport):
            tally.tokens, tally.estimated, tally.streamed = (
                event.request.total,
                event.request.estimated,
                0,
            )
            self._send(
                "progress",
                step=event.step,
                tokens=event.request.total,
                estimated=event.request.estimated,
            )
        elif isinstance(event, CodeAction):
            tally.actions += 1
            self._send(
                "action_start",
                step=event.step,
                code=event.code,
                model=self.model,
                explanation=split_answer("".join(tally.text))[0],
            )
        elif isinstance(event, ActionSkipped):
            self._action_end(
                event.step, event.code, "skipped", answer=event.answer, observed=event.observed
            )
        elif isinstance(event, ActionObserved):
            observation = event.observation
            self._action_end(
                event.step,
                event.code,
                action_status(observation),
                outputs=[dict(output) for output in observation.outputs],
                execution_count=observation.execution_count,
                error_name=observation.error_name,
                answer=event.answer,
                observed=event.observed,
            )
        elif isinstance(event, Finished):
            tally.ending = self._ending(
                "ok", event.usage.total, event.seconds, answer_cell=event.answer
            )
        elif isinstance(event, Failed):
            error = {"ename": type(event.error).__name__, "evalue": str(event.error)}
            tally.ending = self._ending("error", event.usage.total, event.seconds, error=error)
        elif isinstance(event, RequestRecorded):
            self.end(event.record)

    def _streaming(self, step: int) -> None:
        """Tell the progress line that text streams, with an estimate of its tokens."""
        now = self._clock()
        if now - self._tally.last_progress < self.progress_seconds:
            return
        self._tally.last_progress = now
        self._send(
            "progress",
            step=step,
            state="writing",
            tokens=self._tally.tokens + estimate_tokens(self._tally.streamed),
            estimated=True,
        )

    def _action_end(
        self,
        step: int,
        code: str,
        status: str,
        *,
        outputs: list[dict[str, Any]] | None = None,
        execution_count: int | None = None,
        error_name: str | None = None,
        answer: str = "",
        observed: str = "",
    ) -> None:
        self._send(
            "action_end",
            step=step,
            code=code,
            model=self.model,
            status=status,
            outputs=outputs or [],
            execution_count=execution_count,
            error_name=error_name,
            answer=answer,
            observed=observed,
        )

    def _ending(
        self,
        status: str,
        tokens: int,
        seconds: float,
        *,
        error: dict[str, str] | None = None,
        answer_cell: str | None = None,
    ) -> dict[str, Any]:
        return {
            "status": status,
            "steps": self._tally.actions,
            "tokens": tokens,
            "seconds": round(seconds, 3),
            "error": error,
            # A prose-only answer stays in the prompt cell; after actions it reads
            # after them, in a Markdown cell of its own.
            "answer_cell": answer_cell if self._tally.actions else None,
        }

    def end(self, record: Mapping[str, Any] | None = None) -> None:
        """Send `request_end` once: with the trajectory record (`RequestRecorded`), or,
        when the host ends the request without one, with what is known."""
        tally = self._tally
        if tally.ended:
            return
        tally.ended = True
        ending = tally.ending or self._ending(
            "interrupted", tally.tokens, self._clock() - tally.started
        )
        self._send("request_end", **ending, record=dict(record) if record is not None else None)

    async def approve(self, step: int, code: str) -> Decision:
        if self.ask is None:
            raise ApprovalUnavailable(NO_INPUT)
        question = approval_question(step)
        # The extension answers the question itself: it shows Run / Skip instead, and
        # answers with the cell's source, so code edited in the cell is what runs.
        self._send("approval_request", step=step, prompt=question)
        # The announcement and the step's end (IOPub) must leave before the question
        # (stdin): an extension that still sees the last action running would take the
        # question for that action's own input().
        _flush_streams()
        try:
            decision = read_reply(self.ask(question), code)
        except KeyboardInterrupt:
            decision = Approval.STOP
        if decision is Approval.STOP:
            # Never approved, never run: the cell becomes a raw cell that no Run All
            # executes, and the interrupt notice falls outside its window.
            _flush_streams()
            self._action_end(step, code, "skipped")
        return decision

    # --- replay ---------------------------------------------------------------------

    def replay(self, source: str) -> bool:
        """Answer from the notebook instead of the model when the extension says so.

        The extension offers a replay for a prompt cell that already has generated cells
        and, once it has seen everything the user scheduled, answers `replay` when those
        cells run in the same batch (Run All after a restart), `model` otherwise. Then
        the prompt's earlier outputs are shown again and no model is called.
        """
        offer = self.link.offers.pop(self.cell_id, None)
        if offer is None or offer.source != source or self.ask is None:
            return False
        self._send("replay_query", prompt=REPLAY_PROMPT)
        _flush_streams()  # the announcement leaves first (see `approve`)
        if self.ask(REPLAY_PROMPT).strip().lower() != "replay":
            return False
        for output in offer.outputs:
            if not _is_replay_note(output):
                self._publish(output)
        self._publish(
            {
                "output_type": "display_data",
                "data": {"text/markdown": f"<sub>{REPLAY_NOTE}</sub>", "text/plain": REPLAY_NOTE},
                "metadata": {"codeact": {"replay_note": True}},
            }
        )
        return True

    def _send(self, kind: str, **fields: Any) -> None:
        self.link.send(
            {"type": kind, "request_id": self.request_id, "cell_id": self.cell_id, **fields}
        )


@dataclass
class _Tally:
    """What one request's messages need to know of it so far."""

    started: float
    actions: int = 0
    tokens: int = 0
    estimated: bool = False
    text: list[str] = field(default_factory=list)
    """The current step's streamed answer, in pieces."""
    streamed: int = 0
    """Characters streamed since the latest usage report."""
    last_progress: float = 0.0
    ending: dict[str, Any] | None = None
    ended: bool = False


def estimate_tokens(characters: int) -> int:
    """Tokens of streamed text before the server reports usage (about 4 characters each)."""
    return (characters + 3) // 4


def action_status(observation: Observation) -> str:
    """The `status` of a generated cell: ok, error or interrupted."""
    if observation.interrupted:
        return "interrupted"
    return "ok" if observation.ok else "error"


def publish_output(output: Mapping[str, Any]) -> None:
    """Show an nbformat output again in the current cell (used by replays)."""
    from IPython.display import publish_display_data

    kind = output.get("output_type")
    if kind in ("display_data", "execute_result"):
        data = {key: _text(value) for key, value in dict(output.get("data") or {}).items()}
        publish_display_data(data=data, metadata=dict(output.get("metadata") or {}))
    elif kind == "stream":
        stream = sys.stderr if output.get("name") == "stderr" else sys.stdout
        stream.write(_text(output.get("text", "")))
        stream.flush()


def _flush_streams() -> None:
    """Flush the kernel's streams: ipykernel's `flush` waits until its IOPub thread has
    sent everything queued before, comm messages included."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def _text(value: Any) -> Any:
    """nbformat allows multi-line strings as lists of lines."""
    if isinstance(value, list) and all(isinstance(line, str) for line in value):
        return "".join(value)
    return value


def _is_replay_note(output: Mapping[str, Any]) -> bool:
    codeact = (output.get("metadata") or {}).get("codeact")
    return isinstance(codeact, Mapping) and bool(codeact.get("replay_note"))


def _replay_offer(data: Mapping[str, Any]) -> ReplayOffer | None:
    # `steps` (the generated cells) is not needed here: they re-run as cells of their own.
    cell_id, source, outputs = data.get("cell_id"), data.get("source"), data.get("outputs", [])
    if not isinstance(cell_id, str) or not isinstance(source, str) or not isinstance(outputs, list):
        return None
    return ReplayOffer(
        cell_id=cell_id,
        source=source,
        outputs=tuple(o for o in outputs if isinstance(o, Mapping)),
    )
