"""What a SIGINT means while a request runs: one policy for every host.

ipykernel installs Python's default handler during an execution, so a SIGINT raises
`KeyboardInterrupt` wherever the main thread happens to be. When that is the event
loop waiting on an HTTP stream, the exception escapes the loop and kills the kernel
(DESIGN.md §4). While a request runs, `RequestInterrupts` decides instead:

- the main thread is inside an action's code (IPython's `run_code` is on the stack,
  deeper than where the request started) or blocked
  where a user would expect Ctrl-C to act (a prompt, a synchronous action): raise
  `KeyboardInterrupt` there, exactly as IPython would;
- a step timeout fired outside user code (an async action awaiting): stop that action;
- otherwise (awaiting the model): call the host's `cancel`, which cancels the request
  from its event loop, and which httpx and asyncio turn into a clean unwind.

Every interrupt is remembered for the action it fell in, even when the action's own
code swallows the `KeyboardInterrupt` (a `!sleep`, an `except KeyboardInterrupt:`):
the request must stop all the same. The executor sees that through `action()`.

An action may change SIGINT itself (`signal.signal(SIGINT, SIG_IGN)`, a handler of its
own, `pthread_sigmask`). That is its business while it runs, as in IPython, but it
lasts only as long as the action: when the action ends the policy is back, so the
rest of the request can still be interrupted, and when the request ends the handler
from before it is back. ipykernel treats cells the same way (its `pre_handler_hook`
and `post_handler_hook` put its own handler back around every execution), so a
handler set by an action never outlives it in any host, terminal IPython included.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from types import FrameType, TracebackType
from typing import Any, TypeVar

from IPython.core.interactiveshell import InteractiveShell

T = TypeVar("T")

_RUN_CODE = InteractiveShell.run_code.__code__


def user_code_depth(frame: FrameType | None) -> int:
    """How many of IPython's `run_code` frames are on the stack: user code nesting."""
    depth = 0
    while frame is not None:
        if frame.f_code is _RUN_CODE:
            depth += 1
        frame = frame.f_back
    return depth


@dataclass
class ActionSignals:
    """What happened to one action: the user interrupted it (even if it carried on)."""

    interrupted: bool = False


ActionWatch = Callable[[Callable[[], None] | None], AbstractContextManager[ActionSignals]]
"""How an executor tells the host's interrupt policy that an action runs (`action()`)."""


class RequestInterrupts:
    """The SIGINT policy while one request runs; a context manager for the main thread.

    `cancel` stops the whole request; it is called from the signal handler, so it must
    only schedule the cancellation (`loop.call_soon_threadsafe(task.cancel)`).
    """

    def __init__(self, cancel: Callable[[], None]) -> None:
        self._cancel = cancel
        self._saved: Any = None
        self._blocked_before = True
        self._blocking = 0
        self._stop_action: Callable[[], None] | None = None
        self._action: ActionSignals | None = None
        self._outer_depth = 0
        self.interrupted = False

    def __enter__(self) -> RequestInterrupts:
        # Signals reach the main thread only; in an ipykernel subshell (another thread)
        # there is nothing to route, as for ipykernel's own async cells.
        if threading.current_thread() is threading.main_thread():
            # A request may itself run inside user code (a `%%codeact` cell): only
            # user code deeper than this counts as an action's.
            self._outer_depth = user_code_depth(sys._getframe(1))
            self._blocked_before = signal.SIGINT in _blocked_signals()
            self._saved = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._saved is not None:
            signal.signal(signal.SIGINT, self._saved)
            self._saved = None

    @contextmanager
    def blocking(self) -> Iterator[None]:
        """The main thread waits here for the user (a prompt): a SIGINT raises here."""
        self._blocking += 1
        try:
            yield
        finally:
            self._blocking -= 1

    @contextmanager
    def action(self, stop: Callable[[], None] | None = None) -> Iterator[ActionSignals]:
        """One code action runs.

        `stop` ends an action that runs on the event loop (a step timeout outside user
        code calls it); without it the action runs synchronously in this thread, where
        any SIGINT raises `KeyboardInterrupt`, as in a prompt.
        """
        signals = ActionSignals()
        self._action, self._stop_action = signals, stop
        try:
            if stop is None:
                with self.blocking():
                    yield signals
            else:
                yield signals
        finally:
            self._action, self._stop_action = None, None
            self._reinstate()

    def _reinstate(self) -> None:
        """The policy again, whatever the action did to SIGINT (module docstring)."""
        if self._saved is None:
            return
        signal.signal(signal.SIGINT, self._on_sigint)
        if not self._blocked_before and signal.SIGINT in _blocked_signals():
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        timed_out = StepTimer.consume()
        if not timed_out:
            self.interrupted = True
            if self._action is not None:
                self._action.interrupted = True
        if self._blocking or user_code_depth(frame) > self._outer_depth:
            raise KeyboardInterrupt
        if timed_out:
            # A step timeout stops the action only. A late one, after the action
            # ended, has nothing left to stop.
            if self._stop_action is not None:
                self._stop_action()
            return
        self._cancel()


def _blocked_signals() -> set[int]:
    """The signals this thread blocks (none where the platform cannot say)."""
    if not hasattr(signal, "pthread_sigmask"):
        return set()
    return set(signal.pthread_sigmask(signal.SIG_BLOCK, ()))


async def run_cancellable(
    start: Callable[[RequestInterrupts], Coroutine[Any, Any, T]],
) -> T:
    """Run a request on this thread's event loop under the SIGINT policy.

    `start` gets the policy (for the frontend's prompts and the executor's actions)
    and returns the request's coroutine. An interrupt raises `asyncio.CancelledError`.
    """
    loop = asyncio.get_running_loop()
    task: asyncio.Future[T] | None = None

    def cancel() -> None:
        if task is not None:
            loop.call_soon_threadsafe(task.cancel)

    with RequestInterrupts(cancel) as interrupts:
        task = asyncio.ensure_future(start(interrupts))
        if interrupts.interrupted:
            task.cancel()
        return await task


def without_handler_frames(tb: TracebackType | None) -> TracebackType | None:
    """`tb` without the frame of our SIGINT handler, which raised the interrupt.

    The user (and the model) must see the traceback IPython would show: it ends in
    their code, where the interrupt arrived.
    """
    if tb is None:
        return None
    if tb.tb_frame.f_code is _HANDLER_CODE:
        return None
    head = tb
    while tb.tb_next is not None:
        if tb.tb_next.tb_frame.f_code is _HANDLER_CODE:
            tb.tb_next = None
            break
        tb = tb.tb_next
    return head


_HANDLER_CODE = RequestInterrupts._on_sigint.__code__


class StepTimer:
    """Interrupts the main thread after `seconds`, the way a user's SIGINT would.

    The SIGINT handler asks `consume()` whether the signal came from a timer. The flag
    is a plain class attribute, never a lock: the handler may run while the main thread
    is anywhere, and must not wait. A timer that is being cancelled sends nothing: it
    fires under its own lock, which `__exit__` takes, so no timer signal arrives after
    its action ended (where it would pass for the user's Ctrl-C).
    """

    _pending = False

    def __init__(self, seconds: float) -> None:
        self.fired = False
        self._lock = threading.Lock()
        self._cancelled = False
        self._timer = threading.Timer(seconds, self._fire) if seconds > 0 else None

    @classmethod
    def consume(cls) -> bool:
        """Whether the SIGINT being handled came from a timer (and forget it)."""
        pending, cls._pending = cls._pending, False
        return pending

    def __enter__(self) -> StepTimer:
        StepTimer._pending = False
        if self._timer is not None:
            self._timer.daemon = True
            self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._timer is None:
            return
        with self._lock:
            self._cancelled = True
        self._timer.cancel()

    def _fire(self) -> None:
        with self._lock:
            if self._cancelled:
                return
            self.fired = True
            StepTimer._pending = True
            # A real signal, unlike `_thread.interrupt_main`, also breaks a blocking
            # call such as `time.sleep` in the main thread.
            main = threading.main_thread().ident
            assert main is not None
            signal.pthread_kill(main, signal.SIGINT)
