"""How a frontend plugs into a request: it renders events and may be asked to approve."""

from __future__ import annotations

from typing import Protocol

from .events import Event


class Frontend(Protocol):
    """Shows one request's events to the user (inline displays, the lab comm, a terminal)."""

    def render(self, event: Event) -> None:
        """Show `event`; called in order, on the thread that runs the user's code."""
        ...

    async def approve(self, step: int, code: str) -> bool:
        """With `approval = ask`: whether the user lets `code` run.

        Raises `ApprovalUnavailable` when this frontend has no way to ask.
        """
        ...
