"""A CodeAct session: one shell's conversation, settings and usage, and the one path
every request takes.

`Session.run(request, options, host)` owns a request from start to end: it resolves
the settings (the model detected when none is configured), asks the host for a
frontend and an executor made for those final settings, runs the agent, and reports
the outcome from the turn it recorded. A host (the kernel, the magic's runner, the
headless CLI, the benchmark) is only what differs between them: how events are shown,
where actions run, how an interrupt reaches the request.

Making a session is cheap (the agent, the providers and httpx load with the first
request), so every host makes one at once and the session itself remembers the cells
the user runs between requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from IPython.core.interactiveshell import ExecutionResult, InteractiveShell

from .background import BackgroundLoop
from .errors import CodeActError
from .events import Observation, RequestRecorded, Turn, Usage
from .options import CellOptions
from .settings import CodeAct, Settings, fallbacks, find_problems, resolve
from .tools import Toolbox

if TYPE_CHECKING:  # loaded with the first request: kernel start and %load_ext stay fast
    import httpx

    from .agent import Agent
    from .executor import Executor
    from .frontend import Frontend
    from .trajectory import Trajectory

INTERRUPTED = "The request was interrupted; what happened so far is kept in the conversation."
INTERRUPTED_UNREMEMBERED = "The request was interrupted (--no-history: it is not remembered)."
INTERRUPTED_BEFORE_START = (
    "The request was interrupted before it reached the model (while its settings, model or "
    "tools were being prepared); nothing of it is kept."
)
REPLAYED = "[Answered earlier in this notebook; its code cells were re-run without the model.]"

# Lines that manage CodeAct itself tell the model nothing about the user's work, and a
# `%%codeact` cell is a request, remembered as one.
_CODEACT_CELL = re.compile(r"\s*%%codeact\b")
_ABOUT_CODEACT = re.compile(
    r"^[ \t]*%(?:codeact\b|(?:re|un)?load_ext[ \t]+codeact_kernel\b)[^\n]*(?:\n|\Z)", re.M
)


class Host(Protocol):
    """What runs a request: shows its events and runs its actions.

    Both are asked for once per request, with settings that are already final (the
    model name is known), and the host decides how an interrupt reaches the request
    (interrupts.py holds the policy every host uses).
    """

    def frontend(self, settings: Settings) -> Frontend: ...

    def executor(self, settings: Settings) -> Executor: ...


@dataclass(frozen=True)
class Outcome:
    """How a request ended, read from the turn it recorded."""

    turn: Turn

    @property
    def error(self) -> CodeActError | None:
        """The error to show, or None when the model gave its final answer."""
        return self.turn.failure

    @property
    def usage(self) -> Usage:
        return self.turn.usage


class Session:
    """Conversation memory, settings and usage shared by every request in one shell."""

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
        # Every request's trajectory record, kept through `reset` (which is about what
        # the model sees next), for `%codeact export`.
        self.records: list[Trajectory] = []
        self.pending_cells: list[str] = []
        self.usage = Usage()
        self.requests = 0
        self.running = False
        self._idle = threading.Event()
        self._idle.set()
        self.background = BackgroundLoop()
        self._clients: dict[asyncio.AbstractEventLoop, httpx.AsyncClient] = {}
        self._detected: str | None = None
        self._watching = False
        # The user's @tool functions and the MCP servers. Configured now (a JSON read,
        # no SDK), so `mcp` is in the namespace from the start; servers start at first use.
        self.tools = Toolbox(shell, self.background, lambda: self.environment)
        if self.tools.mcp_configured(self.configurable, self.environment):
            # A bad setting elsewhere (a timeout) is reported at first use: it must not
            # hide the servers.
            problems = find_problems(self.configurable, self.environment)
            with contextlib.suppress(CodeActError):
                self.tools.configure(
                    resolve(self.configurable, self.environment, fallbacks(problems))
                )

    # --- settings -------------------------------------------------------------------

    @property
    def environment(self) -> Mapping[str, str]:
        return os.environ if self.environ is None else self.environ

    def settings(self, *, lenient: bool = False, **cell_overrides: Any) -> Settings:
        """Effective settings: config files < environment < session < this cell.

        Without a configured model, `model` is the one detected for an earlier request
        (so `%codeact` names the model requests use), else empty: `run` detects one.
        An environment variable or config file value that is not valid raises a
        `ConfigurationError` naming it; `lenient` (for `%codeact` itself, which must
        show the problem and let the user override it) records it in `problems` instead,
        the setting at its default.
        """
        from .providers import resolve_settings, with_detected_model

        overrides = {**self.overrides, **cell_overrides}
        problems = find_problems(self.configurable, self.environment, overrides)
        if problems and lenient:
            overrides = {**fallbacks(problems), **overrides}
        settings = resolve_settings(self.configurable, self.environment, overrides)
        if problems:
            settings = settings.with_problems(problems)
        if settings.model or self._detected is None:
            return settings
        return with_detected_model(settings, self._detected, self.environment)

    async def final_settings(self, options: CellOptions | None = None) -> Settings:
        """The settings a request runs with, the model detected if none is configured
        (detected once a session: it probes the environment and local servers)."""
        settings = self.settings(**(options.overrides if options else {}))
        if settings.model:
            return settings
        from .providers import with_detected_model
        from .providers.detect import detect_default_model

        self._detected = await detect_default_model(self.environment, self.client())
        return with_detected_model(settings, self._detected, self.environment)

    # --- what the user does between requests -------------------------------------------

    def watch_cells(self) -> None:
        """Remember every cell the user runs in the shell, to tell the model next time."""
        if not self._watching:
            self.shell.events.register("post_run_cell", self._record_cell)
            self._watching = True

    def close(self) -> None:
        """Stop watching the shell, stop the MCP servers, close the background loop's
        connections."""
        if self._watching:
            self.shell.events.unregister("post_run_cell", self._record_cell)
            self._watching = False
        self.tools.close()
        if self.background.started:
            with contextlib.suppress(Exception):
                self.background.submit(self._close_client(self.background.loop))
        self.background.close()

    def record_user_cell(self, code: str) -> None:
        """Remember a cell the user ran, without its lines that manage CodeAct itself."""
        if _CODEACT_CELL.match(code):
            return
        code = _ABOUT_CODEACT.sub("", code)
        if code.strip():
            self.pending_cells.append(code)

    def _record_cell(self, result: ExecutionResult) -> None:
        info = result.info
        # Actions are part of the request that ran them, not cells of the user's.
        if self.running or info is None:
            return
        if info.silent or not info.store_history or not info.raw_cell:
            return
        self.record_user_cell(info.raw_cell)

    def wait_idle(self, timeout: float) -> bool:
        """Wait for a request that is still unwinding (its host gave up waiting for it)."""
        return self._idle.wait(timeout)

    def reset(self) -> None:
        """Forget the conversation (the namespace is untouched)."""
        self.turns.clear()
        self.pending_cells.clear()

    def remember_replay(self, request: str) -> None:
        """A prompt answered earlier was replayed from the notebook, without the model.

        Follow-ups must know the request. Its actions reach the model as the cells the
        user ran next, since that is what re-running them is.
        """
        self.turns.append(Turn(request=request, final=REPLAYED))

    # --- the request ----------------------------------------------------------------

    def client(self) -> httpx.AsyncClient:
        """The HTTP client of the running event loop (a client cannot change loops)."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            import httpx

            client = self._clients[loop] = httpx.AsyncClient()
        return client

    async def _close_client(self, loop: asyncio.AbstractEventLoop) -> None:
        client = self._clients.pop(loop, None)
        if client is not None:
            await client.aclose()

    def secrets(self, settings: Settings) -> set[str]:
        """Values that must never reach the model: the key and secret-looking variables."""
        from .namespace import secret_values

        found = set(secret_values(self.shell.user_ns, self.shell.user_ns_hidden, self.environment))
        if settings.api_key:
            found.add(settings.api_key)
        found |= self.tools.secret_values()
        return found

    def namespace_summary(self) -> str:
        from .namespace import summarize_namespace

        return summarize_namespace(self.shell.user_ns, hidden=self.shell.user_ns_hidden)

    async def run(self, request: str, options: CellOptions, host: Host) -> Outcome:
        """Answer `request`; an interrupt propagates as `asyncio.CancelledError`.

        Raises `ConfigurationError` before anything is recorded when the settings are
        invalid or no usable model is configured.
        """
        from .agent import Agent
        from .providers import create_model
        from .providers.images import accepts_images

        settings = await self.final_settings(options)
        tools = await self.tools_section(settings)
        model = create_model(settings, self.client())
        frontend = host.frontend(settings)
        executor = host.executor(settings)
        turn = Turn(request=request, user_cells=tuple(self.pending_cells))
        history = tuple(self.turns) if options.history else ()
        if options.history:
            # A request run apart (--no-history) leaves the cells for the next one.
            self.pending_cells.clear()
            self.turns.append(turn)
        self.requests += 1
        summary = _UntilCodeRuns(self.namespace_summary)
        secrets = _UntilCodeRuns(lambda: self.secrets(settings))
        agent = Agent(
            model=model,
            executor=_Acting(executor, (summary.forget, secrets.forget)),
            settings=settings,
            approve=frontend.approve,
            namespace=summary,
            secrets=secrets,
            vision=settings.vision == "on"
            or (settings.vision == "auto" and accepts_images(settings.model)),
            tools=tools,
        )
        # The Lab comm's id when the frontend has one, so the record and the cells agree.
        request_id = str(getattr(frontend, "request_id", "") or uuid.uuid4().hex)
        recording = _Recording(request_id, settings, agent, secrets, datetime.now(timezone.utc))
        self.running = True
        self._idle.clear()
        try:
            # aclosing: if rendering fails, the model's stream is still closed.
            async with contextlib.aclosing(agent.run(turn, history)) as events:
                async for event in events:
                    frontend.render(event)
        except asyncio.CancelledError:
            turn.error = "interrupted by the user"
            # An interrupt stays an interrupt, whatever showing its record does.
            with contextlib.suppress(Exception):
                self._record(turn, recording, frontend)
            raise
        except Exception as error:
            # A bug of ours (rendering, most likely): the record says so, if it still can.
            with contextlib.suppress(Exception):
                self._record(turn, recording, frontend, error)
            raise
        finally:
            self.running = False
            self._idle.set()
            self.usage += turn.usage
        self._record(turn, recording, frontend)
        return Outcome(turn)

    def _record(
        self,
        turn: Turn,
        recording: _Recording,
        frontend: Frontend,
        error: BaseException | None = None,
    ) -> None:
        """Keep the request's trajectory record and hand it to the frontend, last."""
        from .trajectory import record_turn

        record = record_turn(
            turn,
            request_id=recording.request_id,
            system=recording.agent.system,
            model=recording.settings.model,
            settings=recording.settings,
            secrets=recording.secrets(),
            started=recording.started,
            seconds=time.monotonic() - recording.clock,
            error=error,
        )
        self.records.append(record)
        frontend.render(RequestRecorded(record.to_json()))

    async def tools_section(self, settings: Settings) -> str:
        """The Tools section for a request, MCP servers started first if their tools are
        not known yet (on the background loop, where their clients live)."""
        self.tools.configure(settings)
        if self.tools.needs_start():
            loop = self.background.loop
            start = self.tools.start()
            if asyncio.get_running_loop() is loop:  # the magic's requests run there
                await start
            else:
                await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(start, loop))
        return self.tools.section()


@dataclass(frozen=True)
class _Recording:
    """What a request's record needs beyond its turn."""

    request_id: str
    settings: Settings
    agent: Agent
    secrets: Callable[[], Collection[str]]
    started: datetime
    clock: float = field(default_factory=time.monotonic)


_T = TypeVar("_T")


class _UntilCodeRuns(Generic[_T]):
    """A view of the user's namespace (its summary, its secrets), made again only after
    code ran: a request reads each several times between two actions, and making one
    walks the whole namespace (which grows with every cell the session runs)."""

    def __init__(self, make: Callable[[], _T]) -> None:
        self._make = make
        self._made: tuple[_T] | None = None

    def __call__(self) -> _T:
        if self._made is None:
            self._made = (self._make(),)
        return self._made[0]

    def forget(self) -> None:
        self._made = None


@dataclass(frozen=True)
class _Acting:
    """The host's executor, telling the views of the namespace that code runs: as it
    starts, and as it ends however it ends (an action stopped half-way has still
    changed the namespace)."""

    executor: Executor
    ran: tuple[Callable[[], None], ...]

    async def run(self, code: str) -> Observation:
        self._forget()
        try:
            return await self.executor.run(code)
        finally:
            self._forget()

    def _forget(self) -> None:
        for forget in self.ran:
            forget()


def interrupted_message(options: CellOptions, *, started: bool = True) -> str:
    """What an interrupted request's error says; `started`: it got as far as the model."""
    if not started:
        return INTERRUPTED_BEFORE_START
    return INTERRUPTED if options.history else INTERRUPTED_UNREMEMBERED
