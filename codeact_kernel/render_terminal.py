"""Plain-text rendering for terminal IPython: no HTML, no display messages.

The model's answer is written as it streams (its code actions are in it, fenced), a
rule announces each action just before the shell prints the action's own output,
notes about the answer (cut at the output limit, actions dropped) follow it in
brackets, and a one-line footer closes the request. Colours only when asked for (a TTY).
"""

from __future__ import annotations

import sys
from typing import TextIO

from .events import (
    ActionObserved,
    ActionsDropped,
    ActionSkipped,
    AnswerTruncated,
    CodeAction,
    Event,
    Failed,
    Finished,
    ModelText,
    Progress,
    StepStarted,
)
from .frontend import Approval, Ask, ask_approval
from .render_inline import footer_text

_DIM = "\x1b[2m"
_ACTION = "\x1b[1;36m"
_RESET = "\x1b[0m"


NO_INPUT = (
    "approval is 'ask' but nothing can read an answer here, so the action was not run. "
    "Use `%codeact approval auto` to run actions without review."
)


class TerminalFrontend:
    """Renders a request's events as text on `stream` (default: `sys.stdout` at the time).

    `ask` reads a line from the user for `approval = ask`; None when nobody can answer.
    """

    def __init__(
        self,
        model: str,
        *,
        ask: Ask | None = None,
        stream: TextIO | None = None,
        color: bool = False,
    ) -> None:
        self.model = model
        self.ask = ask
        self.color = color
        self._stream = stream
        self._at_line_start = True

    def render(self, event: Event) -> None:
        if isinstance(event, StepStarted):
            if event.step > 1:
                self._newline()
                self._write("\n")
        elif isinstance(event, ModelText):
            self._write(event.text.replace("\x00", "\u2400"))  # a NUL, visible
        elif isinstance(event, Progress):
            self._line(f"[{event.message}]", _DIM)
        elif isinstance(event, (AnswerTruncated, ActionsDropped)):
            # What streamed cannot be taken back from a terminal: the note says what of
            # it does not count.
            self._line(f"[{event.message}]", _DIM)
        elif isinstance(event, CodeAction):
            self._line(f"--- step {event.step}: running the action above ---", _ACTION)
        elif isinstance(event, ActionObserved):
            self._after_action(event)
        elif isinstance(event, ActionSkipped):
            self._line(f"--- step {event.step}: skipped ---", _ACTION)
        elif isinstance(event, Finished):
            self._line(footer_text(event.steps, event.usage, event.seconds, self.model), _DIM)
        elif isinstance(event, Failed):
            status = f"stopped: {type(event.error).__name__}"
            footer = footer_text(event.steps, event.usage, event.seconds, self.model, status)
            self._line(footer, _DIM)

    async def approve(self, step: int, code: str) -> Approval:
        self._newline()
        try:
            return ask_approval(self.ask, step, unavailable=NO_INPUT)
        finally:
            # The prompt's own newline came from the user's Enter key.
            self._at_line_start = True

    # --- output -------------------------------------------------------------------

    def _after_action(self, event: ActionObserved) -> None:
        # The shell printed the action's output itself; only its last stream can have
        # left the cursor mid-line (tracebacks and displays end their lines).
        outputs = event.observation.outputs
        last = outputs[-1] if outputs else None
        self._at_line_start = not (
            last is not None
            and last["output_type"] == "stream"
            and not str(last["text"]).endswith("\n")
        )
        if event.observation.timed_out:
            self._line(f"--- step {event.step}: stopped by step_timeout ---", _ACTION)

    def _line(self, text: str, style: str) -> None:
        self._newline()
        self._write(f"{style}{text}{_RESET}\n" if self.color else f"{text}\n")

    def _newline(self) -> None:
        if not self._at_line_start:
            self._write("\n")

    def _write(self, text: str) -> None:
        if not text:
            return
        stream = self._stream or sys.stdout
        encoding = getattr(stream, "encoding", None) or "utf-8"
        # A model may answer in any script; a terminal in an ASCII locale must not
        # turn that into a UnicodeEncodeError in the middle of the request.
        stream.write(text.encode(encoding, "replace").decode(encoding))
        stream.flush()
        self._at_line_start = text.endswith("\n")
