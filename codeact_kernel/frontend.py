"""How a frontend plugs into a request: it renders events and may be asked to approve.

The approval question is asked one way for every frontend: the same words
(`approval_question`), read the same way (`read_answer`), so that an extension or a
script answering it only needs to know this one prompt.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from .errors import ApprovalUnavailable
from .events import Event

Ask = Callable[[str], str]
"""Reads one line from the user after showing a prompt (`input`, the kernel's stdin)."""

# The capital Y says what an empty Enter does, as prompts conventionally do.
APPROVAL_QUESTION = "Run step {step}? [Y]es / [n]o (skip) / [s]top: "
APPROVAL_PATTERN = re.compile(r"^Run step (\d+)\? \[Y\]es / \[n\]o \(skip\) / \[s\]top: $")


class Approval(enum.Enum):
    """The user's answer to "run this action?"."""

    RUN = "run"
    SKIP = "skip"
    STOP = "stop"


@dataclass(frozen=True)
class Approved:
    """RUN, with code the user changed before approving it (edited in its cell).

    What the user saw and approved is what runs, and the model is told (`note`),
    since its own answer holds the code it proposed.
    """

    code: str

    @property
    def note(self) -> str:
        return (
            "[The user edited your code before approving it; this is the code that ran:]\n"
            f"```python\n{self.code}\n```\n"
        )


Decision = Approval | Approved
"""A frontend's answer to "run this action?"."""


class Frontend(Protocol):
    """Shows one request's events to the user (inline displays, the lab comm, a terminal)."""

    def render(self, event: Event) -> None:
        """Show `event`; called in order, on the thread that runs the user's code."""
        ...

    async def approve(self, step: int, code: str) -> Decision:
        """With `approval = ask`: whether the user lets `code` run (maybe edited),
        skips it or stops.

        Raises `ApprovalUnavailable` when this frontend has no way to ask.
        """
        ...


def approval_question(step: int) -> str:
    return APPROVAL_QUESTION.format(step=step)


def read_answer(answer: str) -> Approval:
    """Enter or yes runs, stop stops, anything else skips (the safe reading)."""
    word = answer.strip().lower()
    if word in ("", "y", "yes"):
        return Approval.RUN
    if word in ("s", "stop"):
        return Approval.STOP
    return Approval.SKIP


def read_reply(reply: str, proposed: str) -> Decision:
    """Read an approval reply that may carry the approved code.

    A person types a word (`read_answer`); the JupyterLab extension answers with a JSON
    object `{"answer": "y" | "n" | "s", "code": "<the cell's source>"}` so that code
    edited in the pending cell is what runs. Code equal to the proposal is a plain RUN.
    """
    if reply.lstrip().startswith("{"):
        try:
            data = json.loads(reply)
        except ValueError:
            return Approval.SKIP
        if not isinstance(data, dict):
            return Approval.SKIP
        decision = read_answer(str(data.get("answer", "n")))
        code = data.get("code")
        if decision is Approval.RUN and isinstance(code, str) and code != proposed:
            return Approved(code) if code.strip() else Approval.SKIP
        return decision
    return read_answer(reply)


def ask_approval(ask: Ask | None, step: int, *, unavailable: str) -> Approval:
    """Ask the approval question through `ask`; Ctrl-C at the prompt means stop.

    `unavailable` says what to do instead when nothing can ask (`ask` is None).
    """
    if ask is None:
        raise ApprovalUnavailable(unavailable)
    try:
        return read_answer(ask(approval_question(step)))
    except KeyboardInterrupt:
        return Approval.STOP
