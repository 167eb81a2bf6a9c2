"""A headless host for in-process session tests: it renders into a list and runs actions
in the shell, answering approval prompts from a script."""

from __future__ import annotations

from dataclasses import dataclass, field

from IPython.core.interactiveshell import InteractiveShell

from codeact_kernel.events import Event
from codeact_kernel.executor import ShellExecutor
from codeact_kernel.frontend import Approval
from codeact_kernel.settings import Settings


@dataclass
class RecordingFrontend:
    events: list[Event]
    approvals: list[Approval]

    def render(self, event: Event) -> None:
        self.events.append(event)

    async def approve(self, step: int, code: str) -> Approval:
        return self.approvals.pop(0)


@dataclass
class RecordingHost:
    """Keeps every event, and the settings each request's frontend was made for."""

    shell: InteractiveShell
    approvals: list[Approval] = field(default_factory=list)
    settings: list[Settings] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    def frontend(self, settings: Settings) -> RecordingFrontend:
        self.settings.append(settings)
        return RecordingFrontend(self.events, self.approvals)

    def executor(self, settings: Settings) -> ShellExecutor:
        return ShellExecutor(self.shell, observation_chars=settings.observation_chars)
