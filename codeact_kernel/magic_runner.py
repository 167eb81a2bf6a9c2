"""How `%%codeact` runs the agent from inside a cell that is already running.

A magic is called synchronously, in the middle of a cell. In a Jupyter kernel the
kernel's asyncio loop runs in this very thread and stays blocked until the cell ends,
so nothing can be awaited on it; in terminal IPython no loop runs at all. So:

- the request (`Session.run`, with the model's HTTP traffic) runs on the session's
  background loop (background.py), which keeps the HTTP client and its connections
  alive from cell to cell;
- everything that touches the user's world runs on the main thread, in order:
  actions (`shell.run_cell`, so they behave as typed code does), rendering and
  approval prompts. ipykernel attaches displays and `input()` to the cell through
  the main thread's context, not a background thread's. The background coroutine
  hands these jobs over through a `Bridge`, which the main thread pumps until the
  request ends;
- SIGINT (Ctrl-C, a kernel interrupt, a step timeout) follows the one policy of
  interrupts.py: `KeyboardInterrupt` where IPython would raise it, inside an action or
  a prompt; anywhere else it cancels the background task, and the cell ends with
  `KeyboardInterrupt` within a second.
"""

from __future__ import annotations

import asyncio
import builtins
import concurrent.futures
import queue
import sys
import time
from collections.abc import Callable, Collection, Coroutine, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from IPython.core.error import StdinNotImplementedError, UsageError
from IPython.core.interactiveshell import ExecutionResult, InteractiveShell

from .capture import patched
from .errors import ApprovalUnavailable
from .events import Event, Observation
from .executor import (
    Executor,
    ShellExecutor,
    acting,
    drain_payloads,
    failed,
    failed_in_ipython,
    refusing_exit,
)
from .frontend import Decision, Frontend
from .interrupts import RequestInterrupts, StepTimer
from .options import CellOptions
from .render_inline import InlineFrontend
from .render_terminal import TerminalFrontend
from .session import Outcome, Session
from .settings import Settings

T = TypeVar("T")

# How long an interrupted request may take to unwind before the cell gives up on it.
GRACE_SECONDS = 0.5

NO_AWAIT = (
    "This action uses top-level `await`, which %%codeact cannot run inside a Jupyter "
    "kernel: the kernel's event loop is busy running this very cell. Write synchronous "
    "code instead; to run a coroutine, run it on a worker thread, e.g. "
    "`concurrent.futures.ThreadPoolExecutor(1).submit(asyncio.run, main()).result()`."
)
SESSION_CLOSED = (
    "The CodeAct session was closed while this request ran, so the request stopped; "
    "run %unload_ext codeact_kernel, then %load_ext codeact_kernel, for a new session."
)
NO_STDIN = (
    "approval is 'ask' but this frontend cannot take input, so the action was not run. "
    "Use a frontend with stdin, or `%codeact approval auto` to run actions without review."
)


@dataclass
class _Result(Generic[T]):
    value: T | None = None
    error: Exception | None = None
    cancelled: bool = False


_Job = tuple[Callable[[], Any], "concurrent.futures.Future[Any] | None"]
_DONE = object()


class Bridge:
    """One background coroutine and the main thread that serves it.

    The coroutine calls `call()` (wait for the result) or `post()` (fire and forget)
    to have functions run on the main thread; `run()`, on the main thread, starts the
    coroutine and runs those functions in order until it ends. While it runs, SIGINT
    follows the policy of interrupts.py, which cancels the background task.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._jobs: queue.SimpleQueue[_Job | object] = queue.SimpleQueue()
        self._future: concurrent.futures.Future[None] | None = None
        self._deadline: float | None = None
        self._failure: Exception | None = None
        self.cancelled = False
        self.interrupts = RequestInterrupts(self._cancel)

    # --- the background side ----------------------------------------------------------

    async def call(self, function: Callable[[], T]) -> T:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._jobs.put((function, future))
        return await asyncio.wrap_future(future)

    def post(self, function: Callable[[], object]) -> None:
        self._jobs.put((function, None))

    # --- the main thread's side ---------------------------------------------------------

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` in the background, serving it here; `KeyboardInterrupt` if interrupted."""
        result: _Result[T] = _Result()

        async def supervised() -> None:
            try:
                result.value = await coro
            except asyncio.CancelledError:
                result.cancelled = True
            except Exception as error:
                result.error = error
            finally:
                self._jobs.put(_DONE)

        self._future = asyncio.run_coroutine_threadsafe(supervised(), self._loop)
        finished = False
        try:
            with self.interrupts:
                finished = self._pump()
        finally:
            if not finished:
                self._cancel()
        if self._failure is not None:
            raise self._failure
        if self.cancelled or result.cancelled or not finished:
            raise KeyboardInterrupt
        if result.error is not None:
            raise result.error
        return result.value  # type: ignore[return-value]

    def _pump(self) -> bool:
        """Serve jobs until the coroutine ends (True), or give up after an interrupt."""
        while True:
            if self._deadline is not None and time.monotonic() > self._deadline:
                return False
            try:
                # A short timeout so that an interrupt's deadline is noticed even when
                # the background task has stopped talking.
                job = self._jobs.get(timeout=0.05 if self._deadline else 0.25)
            except queue.Empty:
                if not self._loop.is_running() and self._failure is None:
                    # The session was closed under its own request: nothing will answer.
                    self._failure = UsageError(SESSION_CLOSED)
                    return False
                continue
            if job is _DONE:
                return True
            self._serve(job)  # type: ignore[arg-type]

    def _serve(self, job: _Job) -> None:
        function, future = job
        if future is None:
            if self._failure is None:
                try:
                    function()
                except Exception as error:
                    # A bug in rendering: stop the request and show the traceback.
                    self._failure = error
                    self._cancel()
            return
        if self.cancelled:
            future.cancel()
            return
        if not future.set_running_or_notify_cancel():
            return
        try:
            value = function()
        except KeyboardInterrupt:
            # Ctrl-C between an action's statements: end the request.
            self._cancel()
            future.set_exception(concurrent.futures.CancelledError())
        except Exception as error:
            future.set_exception(error)
        else:
            future.set_result(value)

    def _cancel(self) -> None:
        if not self.cancelled:
            self.cancelled = True
            self._deadline = time.monotonic() + GRACE_SECONDS
        if self._future is not None:
            self._future.cancel()


class MainThreadExecutor(ShellExecutor):
    """Runs each action on the main thread through `shell.run_cell`, as typed code runs.

    Actions run with `store_history=False`, as `%%capture` runs its cell: the
    `%%codeact` cell owns its execution count and history entry, so actions cannot
    collide with them in IPython's history database.
    """

    def __init__(
        self,
        shell: InteractiveShell,
        bridge: Bridge,
        *,
        observation_chars: int = 4000,
        step_timeout: float = 0.0,
        hide: Collection[str] = (),
        errors_as_text: bool = False,
    ) -> None:
        super().__init__(
            shell,
            observation_chars=observation_chars,
            step_timeout=step_timeout,
            watch=bridge.interrupts.action,
            hide=hide,
            errors_as_text=errors_as_text,
        )
        self.bridge = bridge

    async def run(self, code: str) -> Observation:
        return await self.bridge.call(lambda: self.run_here(code))

    def run_here(self, code: str) -> Observation:
        shell = self.shell
        count = shell.execution_count
        result: ExecutionResult | None = None
        try:
            busy = _needs_the_busy_loop(shell, code)
        except Exception as error:
            # Found before `run_cell`, which would raise it with its coroutine unawaited.
            with self.outputs(fds=False) as capture:
                result = failed_in_ipython(shell, capture, error)
            return self._observe(capture, result, count, False)
        if busy:
            with self.outputs(fds=False) as capture:
                print(f"RuntimeError: {NO_AWAIT}", file=sys.stderr)
            return self._observe(capture, failed(RuntimeError(NO_AWAIT)), count, False)
        # No `stop` for `watch`: the action runs right here, where a SIGINT raises.
        with (
            self.outputs() as capture,
            refusing_exit(shell),
            _history_teed_once(shell),
            StepTimer(self.step_timeout) as timer,
            self.watch(None) as signals,
            acting(),
        ):
            try:
                result = shell.run_cell(code, store_history=False)
            except KeyboardInterrupt:
                # Between IPython's own statements rather than in the user's code.
                result = failed(KeyboardInterrupt())
            except Exception as error:
                result = failed_in_ipython(shell, capture, error)
            finally:
                # `%load` and help pages leave payloads, as they do in the kernel.
                drain_payloads(shell)
        return self._observe(capture, result, count, timer.fired, signals.interrupted)


@contextmanager
def _history_teed_once(shell: InteractiveShell) -> Iterator[None]:
    """IPython 9's `run_cell` tees what a cell writes into its history outputs
    (`_tee`). The `%%codeact` cell's own tee already records what its actions write,
    under the cell's execution count; a second tee around each action would record it
    again, under the count of the user's next cell, and double the cost of a write."""
    if not hasattr(shell, "_tee"):
        yield
        return

    def no_tee(channel: str) -> AbstractContextManager[None]:
        return nullcontext()

    with patched(shell, "_tee", no_tee):
        yield


def _needs_the_busy_loop(shell: InteractiveShell, code: str) -> bool:
    """Top-level `await` while this thread's event loop runs (a Jupyter kernel).

    IPython would run such code on that loop, which the current cell is blocking.
    Without a running loop (terminal IPython) IPython runs it on a loop of its own.
    Raises what Python's compiler raises on code it cannot compile at all (nested too
    deeply: RecursionError), as `run_cell` would.
    """
    try:
        transformed = shell.transform_cell(code)
    except Exception:
        return False
    if not shell.should_run_async(code, transformed_cell=transformed):
        return False
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class MainThreadFrontend:
    """Forwards a frontend's calls to the main thread, in order."""

    def __init__(self, inner: Frontend, bridge: Bridge) -> None:
        self.inner = inner
        self.bridge = bridge

    def render(self, event: Event) -> None:
        self.bridge.post(lambda: self.inner.render(event))

    async def approve(self, step: int, code: str) -> Decision:
        return await self.bridge.call(lambda: finish_now(self.inner.approve(step, code)))


def finish_now(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends (a frontend's `approve`) to its end.

    The main thread cannot await: in a kernel its loop is blocked by this cell.
    """
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise RuntimeError("a frontend's approve() suspended; %%codeact needs it to answer at once")


@dataclass
class MagicHost:
    """The `%%codeact` cell as a host: actions and rendering on the main thread."""

    shell: InteractiveShell
    bridge: Bridge

    def frontend(self, settings: Settings) -> Frontend:
        """Inline displays in a Jupyter kernel, plain text anywhere else (a terminal)."""
        interrupts = self.bridge.interrupts

        def ask(prompt: str) -> str:
            with interrupts.blocking():
                try:
                    return str(builtins.input(prompt))
                except (StdinNotImplementedError, EOFError):
                    raise ApprovalUnavailable(NO_STDIN) from None

        shell = self.shell
        if getattr(shell, "kernel", None) is not None:
            inner: Frontend = InlineFrontend(settings.model, ask=ask)
        else:
            plain = str(getattr(shell, "colors", "")).lower() == "nocolor"
            color = not plain and sys.stdout.isatty()
            inner = TerminalFrontend(settings.model, ask=ask, color=color)
        return MainThreadFrontend(inner, self.bridge)

    def executor(self, settings: Settings) -> Executor:
        return MainThreadExecutor(
            self.shell,
            self.bridge,
            observation_chars=settings.observation_chars,
            step_timeout=settings.step_timeout,
            hide=(settings.api_key,) if settings.api_key else (),
            # Rendered inline in a notebook: a fixed error must not fail papermill.
            errors_as_text=getattr(self.shell, "kernel", None) is not None,
        )


def answer(
    shell: InteractiveShell, session: Session, request: str, options: CellOptions
) -> Outcome:
    """Answer one `%%codeact` request; `KeyboardInterrupt` when interrupted."""
    bridge = Bridge(session.background.loop)
    return bridge.run(session.run(request, options, MagicHost(shell, bridge)))
