"""Inline rendering with standard display messages, so every Jupyter frontend shows it.

Per step, the model's text streams into one Markdown display that is updated in place;
its code action therefore appears highlighted before it runs, and the action's own
outputs follow live. Notes about the answer (cut at the output limit, actions dropped)
stay under it. A one-line footer closes the request, however it ended; it carries the
request's trajectory record in its output metadata (`metadata["codeact"]["trajectory"]`),
so every frontend that saves outputs (nbclient, papermill, VS Code) keeps it.

Every update re-sends the whole text (as Markdown and as plain text), so updates are
throttled by size: at most ten a second, no more often than keeps what is sent under
`bytes_per_second` (a runaway model's 100 KB answer is updated every two seconds, not
ten times a second), and only once the text has grown by a `growth`-th since the last
update once it is past `small` characters. The last rule bounds a step's updates by its
length however slowly the model streams: they add up to about 2 × (growth + 1) times
the text (a slow model's 200 KB answer sends under 7 MB, not 100 KB a second for as
long as it streams), while the text on screen lags the model by at most that fraction.
Whenever the step moves on (an action, a note, the end, an interrupt) the text is
shown whole at once.
"""

from __future__ import annotations

import re
import time
from typing import Any

from IPython.display import DisplayHandle, display

from .actions import split_answer
from .events import (
    ActionObserved,
    ActionsDropped,
    ActionSkipped,
    AnswerTruncated,
    CodeAction,
    Event,
    Failed,
    Finished,
    Interrupted,
    ModelText,
    Progress,
    RequestRecorded,
    StepStarted,
    Usage,
)
from .frontend import Approval, Ask, ask_approval
from .provenance import METADATA_KEY

NO_INPUT = (
    "approval is 'ask' but this frontend cannot take input, so the action was not run. "
    "Use a frontend with stdin, or `%codeact approval auto` to run actions without review."
)
_EXECUTE_OPEN = re.compile(r"<execute>\s*\n?")
_EXECUTE_CLOSE = re.compile(r"\n?\s*</execute>")


def as_markdown(text: str) -> str:
    """Model text as Markdown: `<execute>` blocks become fenced Python (even unclosed)."""
    if "<execute>" not in text:
        return text
    text = _EXECUTE_OPEN.sub("\n```python\n", text)
    text = _EXECUTE_CLOSE.sub("\n```\n", text)
    if text.count("```") % 2:
        text += "\n```"
    return text


def footer_text(steps: int, usage: Usage, seconds: float, model: str, status: str = "") -> str:
    estimated = " (estimated)" if usage.estimated else ""
    parts = [
        f"{steps} step{'s' if steps != 1 else ''}",
        f"{usage.total:,} tokens{estimated}",
        f"{seconds:.1f} s",
        model,
    ]
    if status:
        parts.insert(0, status)
    return "CodeAct · " + " · ".join(parts)


class InlineFrontend:
    """Renders a request's events into the cell's own output area.

    `ask` reads a line from the user (the kernel's stdin) for `approval = ask`; None
    when the frontend cannot take input.
    """

    throttle_seconds = 0.1
    bytes_per_second = 100_000
    growth = 16
    small = 1024

    def __init__(
        self,
        model: str,
        *,
        ask: Ask | None = None,
        show_code: bool = True,
    ) -> None:
        self.model = model
        self.ask = ask
        self.show_code = show_code
        self._handle: DisplayHandle | None = None
        # Deltas are kept as pieces: joining a long answer at every delta is quadratic.
        self._pieces: list[str] = []
        self._length = 0
        self._notes: list[str] = []
        self._status = ""
        self._last_update = 0.0
        self._sent = ""
        self._sent_length = 0
        self._footer_text: str | None = None
        # Counted here for an interrupted request's footer (Finished/Failed count too).
        self._actions = 0

    def render(self, event: Event) -> None:
        if isinstance(event, StepStarted):
            self._flush()
            self._handle, self._pieces, self._length = None, [], 0
            self._notes, self._status, self._sent, self._sent_length = [], "", "", 0
        elif isinstance(event, ModelText):
            self._pieces.append(event.text)
            self._length += len(event.text)
            self._status = ""
            self._refresh()
        elif isinstance(event, Progress):
            self._status = event.message
            self._refresh(force=True)
        elif isinstance(event, AnswerTruncated):
            self._notes.append(event.message)
            self._flush()
        elif isinstance(event, ActionsDropped):
            # What the user sees is what counts: the answer as kept, and why.
            self._pieces, self._length = [event.answer], len(event.answer)
            self._notes.append(event.message)
            self._flush()
        elif isinstance(event, (CodeAction, Interrupted)):
            self._flush()
        elif isinstance(event, ActionSkipped):
            self._actions += 1
            self._publish_markdown("_Action skipped._")
        elif isinstance(event, ActionObserved):
            self._actions += 1
        elif isinstance(event, Finished):
            self._flush()
            self._footer_text = footer_text(event.steps, event.usage, event.seconds, self.model)
        elif isinstance(event, Failed):
            self._flush()
            status = f"stopped: {type(event.error).__name__}"
            self._footer_text = footer_text(
                event.steps, event.usage, event.seconds, self.model, status
            )
        elif isinstance(event, RequestRecorded):
            # The record comes last, whatever ended the request: the footer waits for
            # it, so that one output carries both.
            self._flush()
            text = self._footer_text or interrupted_footer(event.record, self.model, self._actions)
            self._footer(text, event.record)

    async def approve(self, step: int, code: str) -> Approval:
        return ask_approval(self.ask, step, unavailable=NO_INPUT)

    # --- display ------------------------------------------------------------------

    def _answer(self) -> str:
        text = "".join(self._pieces)
        self._pieces = [text]
        return text

    def _markdown(self) -> str:
        text = self._answer()
        markdown = as_markdown(text if self.show_code else split_answer(text)[0])
        # A NUL (which Python refuses in code) would show as a space: make it visible.
        markdown = markdown.replace("\x00", "\u2400")
        for note in self._notes:
            markdown += f"\n\n_{note}_"
        if self._status:
            markdown += f"\n\n_{self._status}_"
        return markdown

    def _refresh(self, force: bool = False) -> None:
        interval = max(self.throttle_seconds, 2 * self._length / self.bytes_per_second)
        grown = (
            self._sent_length < self.small
            or self._length - self._sent_length >= self._sent_length / self.growth
        )
        if force or (grown and time.monotonic() - self._last_update >= interval):
            self._flush()

    def _flush(self) -> None:
        markdown = self._markdown()
        if not markdown.strip() or markdown == self._sent:
            return
        self._sent = markdown
        self._sent_length = self._length
        self._last_update = time.monotonic()
        bundle = {"text/markdown": markdown, "text/plain": markdown}
        if self._handle is None:
            self._handle = _display(bundle)
        else:
            self._handle.update(bundle, raw=True)

    def _publish_markdown(self, markdown: str) -> None:
        _display({"text/markdown": markdown, "text/plain": markdown})

    def _footer(self, text: str, record: dict[str, Any]) -> None:
        _display(
            {"text/markdown": f"<sub>{text}</sub>", "text/plain": text},
            {METADATA_KEY: {"trajectory": record}},
        )


def interrupted_footer(record: dict[str, Any], model: str, actions: int) -> str:
    """The footer of a request that ended without `Finished` or `Failed`, from its record."""
    usage = record.get("usage") or {}
    tokens = Usage(
        int(usage.get("input_tokens", 0)),
        int(usage.get("output_tokens", 0)),
        bool(usage.get("estimated", False)),
    )
    status = "interrupted" if record.get("status") == "interrupted" else "stopped"
    return footer_text(actions, tokens, float(record.get("seconds", 0.0)), model, status)


def _display(bundle: dict[str, Any], metadata: dict[str, Any] | None = None) -> DisplayHandle:
    handle = display(bundle, raw=True, display_id=True, metadata=metadata)
    assert isinstance(handle, DisplayHandle)
    return handle
