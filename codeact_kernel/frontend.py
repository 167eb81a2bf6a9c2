"""How a frontend plugs into a request: it renders events and may be asked to approve.

The approval question is asked one way for every frontend: the same words
(`approval_question`), read the same way (`read_answer`), so that an extension or a
script answering it only needs to know this one prompt.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from typing import Protocol

from .errors import ApprovalUnavailable
from .events import Event

Ask = Callable[[str], str]
"""Reads one line from the user after showing a prompt (`input`, the kernel's stdin)."""

APPROVAL_QUESTION = "Run step {step}? [y]es / [n]o (skip) / [s]top: "
APPROVAL_PATTERN = re.compile(r"^Run step (\d+)\? \[y\]es / \[n\]o \(skip\) / \[s\]top: $")


class Approval(enum.Enum):
    """The user's answer to "run this action?"."""

    RUN = "run"
    SKIP = "skip"
    STOP = "stop"


class Frontend(Protocol):
    """Shows one request's events to the user (inline displays, the lab comm, a terminal)."""

    def render(self, event: Event) -> None:
        """Show `event`; called in order, on the thread that runs the user's code."""
        ...

    async def approve(self, step: int, code: str) -> Approval:
        """With `approval = ask`: whether the user lets `code` run, skips it or stops.

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
