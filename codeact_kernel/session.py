"""A CodeAct session: the conversation memory, settings and token counts of one shell.

The kernel and the magic each own one `Session` per shell; `run()` answers one
request with the agent and feeds its events to a frontend.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from IPython.core.interactiveshell import InteractiveShell

from .agent import Agent
from .errors import CodeActError
from .events import Failed, Turn
from .executor import Executor
from .frontend import Frontend
from .namespace import secret_values, summarize_namespace
from .providers import create_model
from .providers.base import Usage
from .settings import CodeAct, Settings, resolve, with_detected_model

if TYPE_CHECKING:  # httpx loads with the first request: kernel start stays fast
    import httpx


@dataclass(frozen=True)
class Outcome:
    """How a request ended: `error` is None when the model gave its final answer."""

    turn: Turn
    usage: Usage
    error: CodeActError | None = None


class Session:
    """Conversation memory and settings shared by every request in one shell."""

    def __init__(
        self,
        shell: InteractiveShell,
        configurable: CodeAct | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.shell = shell
        self.configurable = configurable or CodeAct(parent=shell)
        self.environ = environ
        self.overrides: dict[str, Any] = {}
        self.turns: list[Turn] = []
        self.pending_cells: list[str] = []
        self.usage = Usage()
        self.requests = 0
        self._client: httpx.AsyncClient | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        self._detected: str | None = None

    def settings(self, **cell_overrides: Any) -> Settings:
        """Effective settings: config files < environment < session < this cell."""
        environ = os.environ if self.environ is None else self.environ
        return resolve(self.configurable, environ, {**self.overrides, **cell_overrides})

    def record_user_cell(self, code: str) -> None:
        """Remember a cell the user ran, to tell the model at the next request."""
        if code.strip():
            self.pending_cells.append(code)

    def reset(self) -> None:
        """Forget the conversation (the namespace is untouched)."""
        self.turns.clear()
        self.pending_cells.clear()

    def client(self) -> httpx.AsyncClient:
        """The HTTP client of the running event loop (a client cannot change loops)."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            import httpx

            self._client = httpx.AsyncClient()
            self._client_loop = loop
        return self._client

    async def _detect_model(self, settings: Settings) -> Settings:
        """No model configured: pick one from the keys and local servers (once a session)."""
        environ = os.environ if self.environ is None else self.environ
        if self._detected is None:
            from .providers.detect import detect_default_model

            self._detected = await detect_default_model(environ, self.client())
        return with_detected_model(settings, self._detected, environ)

    def secrets(self, settings: Settings) -> set[str]:
        """Values that must never reach the model: the key and secret-looking variables."""
        environ = os.environ if self.environ is None else self.environ
        found = set(secret_values(self.shell.user_ns, self.shell.user_ns_hidden, environ))
        if settings.api_key:
            found.add(settings.api_key)
        return found

    def namespace_summary(self) -> str:
        return summarize_namespace(self.shell.user_ns, hidden=self.shell.user_ns_hidden)

    async def run(
        self,
        request: str,
        *,
        settings: Settings,
        frontend: Frontend,
        executor: Executor,
        remember: bool = True,
    ) -> Outcome:
        """Answer `request`; an interrupt propagates as `asyncio.CancelledError`.

        Raises `ConfigurationError` before anything is recorded when no usable model
        is configured.
        """
        if not settings.model:
            settings = await self._detect_model(settings)
        model = create_model(settings, self.client())
        turn = Turn(request=request, user_cells=tuple(self.pending_cells))
        self.pending_cells.clear()
        history = tuple(self.turns) if remember else ()
        if remember:
            self.turns.append(turn)
        self.requests += 1
        agent = Agent(
            model=model,
            executor=executor,
            settings=settings,
            approve=frontend.approve,
            namespace=self.namespace_summary,
            secrets=lambda: self.secrets(settings),
        )
        error: CodeActError | None = None
        try:
            # aclosing: if rendering fails, the model's stream is still closed.
            async with contextlib.aclosing(agent.run(turn, history)) as events:
                async for event in events:
                    if isinstance(event, Failed):
                        error = event.error
                    frontend.render(event)
        except asyncio.CancelledError:
            turn.error = "interrupted by the user"
            raise
        finally:
            self.usage += turn.usage
        return Outcome(turn, turn.usage, error)
