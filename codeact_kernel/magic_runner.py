"""How `%%codeact` runs the agent from inside a cell that is already running.

A magic is called synchronously, in the middle of a cell. In a Jupyter kernel the
kernel's asyncio loop runs in this very thread and stays blocked until the cell ends,
so nothing can be awaited on it; in terminal IPython no loop runs at all. So:

- the model's HTTP traffic runs on one persistent daemon thread with its own event
  loop (`BackgroundLoop`), which keeps the session's HTTP client and its connections
  alive from cell to cell;
- everything that touches the user's world runs on the main thread, in order:
  actions (`shell.run_cell`, so they behave as typed code does), rendering and
  approval prompts. ipykernel attaches displays and `input()` to the cell through
  the main thread's context, not a background thread's. The background coroutine
  hands these jobs over through a `Bridge`, which the main thread pumps until the
  request ends;
- SIGINT (Ctrl-C, a kernel interrupt, a step timeout) raises `KeyboardInterrupt`
  where IPython would, inside an action or a prompt; anywhere else it cancels the
  background task, and the cell ends with `KeyboardInterrupt` within a second.
"""

from __future__ import annotations

import asyncio
import builtins
import concurrent.futures
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any, Generic, TypeVar

from IPython.core.error import StdinNotImplementedError
from IPython.core.interactiveshell import ExecutionResult, InteractiveShell

from .errors import ApprovalUnavailable
from .events import Event, Observation
from .executor import ShellExecutor, tee_outputs
from .frontend import Frontend
from .interrupts import StepTimer
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
NO_STDIN = (
    "approval is 'ask' but this frontend cannot take input, so the action was not run. "
    "Use a frontend with stdin, or `%codeact approval auto` to run actions without review."
)


class BackgroundLoop:
    """A daemon thread running one asyncio loop, started on first use."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()
                self._thread = threading.Thread(
                    target=_serve, args=(loop, ready), name="codeact-magic", daemon=True
                )
                self._thread.start()
                ready.wait()
                self._loop = loop
            return self._loop

    def submit(self, coro: Coroutine[Any, Any, T], timeout: float = 5.0) -> T:
        """Run `coro` on the loop and wait for it (for short housekeeping only)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        """Stop the loop and its thread (extension unload, tests)."""
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        if not thread.is_alive():
            loop.close()


def _serve(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
    asyncio.set_event_loop(loop)
    loop.call_soon(ready.set)
    loop.run_forever()


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
    coroutine and runs those functions in order until it ends.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._jobs: queue.SimpleQueue[_Job | object] = queue.SimpleQueue()
        self._future: concurrent.futures.Future[None] | None = None
        self._routing = False
        self._deadline: float | None = None
        self._failure: Exception | None = None
        self.interrupted = False

    # --- the background side ----------------------------------------------------------

    async def call(self, function: Callable[[], T]) -> T:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._jobs.put((function, future))
        return await asyncio.wrap_future(future)

    def post(self, function: Callable[[], object]) -> None:
        self._jobs.put((function, None))

    # --- the main thread's side ---------------------------------------------------------

    @contextmanager
    def interruptible(self) -> Iterator[None]:
        """User code or a prompt runs: a SIGINT raises `KeyboardInterrupt` in it.

        Python's own handler does that, as in IPython, and, being C, leaves no frame
        of ours in the traceback of an interrupted action.
        """
        if not self._routing:
            yield
            return
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, self._on_sigint)

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
            with self._routing_sigint():
                finished = self._pump()
        finally:
            if not finished:
                self._cancel()
        if self._failure is not None:
            raise self._failure
        if self.interrupted or result.cancelled or not finished:
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
        if self.interrupted:
            future.cancel()
            return
        if not future.set_running_or_notify_cancel():
            return
        try:
            value = function()
        except KeyboardInterrupt:
            # Ctrl-C at a prompt, or "stop" answered to it: end the request.
            self._cancel()
            future.set_exception(concurrent.futures.CancelledError())
        except Exception as error:
            future.set_exception(error)
        else:
            future.set_result(value)

    def _cancel(self) -> None:
        if not self.interrupted:
            self.interrupted = True
            self._deadline = time.monotonic() + GRACE_SECONDS
        if self._future is not None:
            self._future.cancel()

    @contextmanager
    def _routing_sigint(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            # Signals reach only the main thread (not e.g. an ipykernel subshell).
            yield
            return
        previous = signal.signal(signal.SIGINT, self._on_sigint)
        self._routing = True
        try:
            yield
        finally:
            self._routing = False
            signal.signal(
                signal.SIGINT, previous if previous is not None else signal.default_int_handler
            )

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        # A step timeout that fires just after its action ended has nothing to stop.
        if not StepTimer.consume():
            self._cancel()


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
    ) -> None:
        super().__init__(shell, observation_chars=observation_chars, step_timeout=step_timeout)
        self.bridge = bridge

    async def run(self, code: str) -> Observation:
        return await self.bridge.call(lambda: self.run_here(code))

    def run_here(self, code: str) -> Observation:
        shell = self.shell
        count = shell.execution_count
        result: ExecutionResult | None = None
        if _needs_the_busy_loop(shell, code):
            with tee_outputs(shell) as capture:
                print(f"RuntimeError: {NO_AWAIT}", file=sys.stderr)
            return self._observe(capture, _failed(RuntimeError(NO_AWAIT)), count, False)
        with tee_outputs(shell) as capture, StepTimer(self.step_timeout) as timer:
            try:
                with self.bridge.interruptible():
                    result = shell.run_cell(code, store_history=False)
            except KeyboardInterrupt:
                # Between IPython's own statements rather than in the user's code.
                result = _failed(KeyboardInterrupt())
        # Python's handler raised any timeout SIGINT of this action; forget it, or the
        # next Ctrl-C would pass for a late timeout.
        StepTimer.consume()
        return self._observe(capture, result, count, timer.fired)


def _failed(error: BaseException) -> ExecutionResult:
    result = ExecutionResult(None)
    result.error_in_exec = error
    return result


def _needs_the_busy_loop(shell: InteractiveShell, code: str) -> bool:
    """Top-level `await` while this thread's event loop runs (a Jupyter kernel).

    IPython would run such code on that loop, which the current cell is blocking.
    Without a running loop (terminal IPython) IPython runs it on a loop of its own.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    try:
        transformed = shell.transform_cell(code)
    except Exception:
        return False
    return bool(shell.should_run_async(code, transformed_cell=transformed))


class MainThreadFrontend:
    """Forwards a frontend's calls to the main thread, in order."""

    def __init__(self, inner: Frontend, bridge: Bridge) -> None:
        self.inner = inner
        self.bridge = bridge

    def render(self, event: Event) -> None:
        self.bridge.post(lambda: self.inner.render(event))

    async def approve(self, step: int, code: str) -> bool:
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


def make_frontend(shell: InteractiveShell, settings: Settings, bridge: Bridge) -> Frontend:
    """Inline displays in a Jupyter kernel, plain text anywhere else (a terminal)."""

    def ask(prompt: str) -> str:
        with bridge.interruptible():
            try:
                return str(builtins.input(prompt))
            except (StdinNotImplementedError, EOFError):
                raise ApprovalUnavailable(NO_STDIN) from None

    if getattr(shell, "kernel", None) is not None:
        return InlineFrontend(settings.model, ask=ask)
    plain = str(getattr(shell, "colors", "")).lower() == "nocolor"
    color = not plain and sys.stdout.isatty()
    return TerminalFrontend(settings.model, ask=ask, color=color)


def answer(
    shell: InteractiveShell,
    session: Session,
    loop: BackgroundLoop,
    request: str,
    settings: Settings,
    *,
    remember: bool = True,
) -> Outcome:
    """Answer one `%%codeact` request; `KeyboardInterrupt` when interrupted."""
    bridge = Bridge(loop.loop)
    frontend = MainThreadFrontend(make_frontend(shell, settings, bridge), bridge)
    executor = MainThreadExecutor(
        shell,
        bridge,
        observation_chars=settings.observation_chars,
        step_timeout=settings.step_timeout,
    )
    return bridge.run(
        session.run(
            request, settings=settings, frontend=frontend, executor=executor, remember=remember
        )
    )


def call(loop: BackgroundLoop, coro: Coroutine[Any, Any, T]) -> T:
    """Await `coro` on the background loop, interruptibly (`%codeact models`)."""
    return Bridge(loop.loop).run(coro)
