"""What a SIGINT means while the agent works, and how a step timeout fires one.

ipykernel installs Python's default handler during an execution, so a SIGINT raises
`KeyboardInterrupt` wherever the main thread happens to be. When that is the event
loop waiting on an HTTP stream, the exception escapes the loop and kills the kernel
(DESIGN.md §4). While a request runs, `SigintRouter` decides instead:

- the main thread is inside user code (IPython's `run_code` is on the stack) or in a
  blocking prompt: raise `KeyboardInterrupt` there, exactly as IPython would;
- otherwise (awaiting the model, or an async action): cancel the request's task from
  the loop, which httpx and asyncio turn into a clean unwind.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from IPython.core.interactiveshell import InteractiveShell

_RUN_CODE = InteractiveShell.run_code.__code__


def in_user_code(frame: FrameType | None) -> bool:
    """True when IPython's `run_code` is on the stack: user code is running right now."""
    while frame is not None:
        if frame.f_code is _RUN_CODE:
            return True
        frame = frame.f_back
    return False


class SigintRouter:
    """Routes SIGINT while one request runs; use as a context manager in the main thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.task: asyncio.Future[Any] | None = None
        self._saved: Any = None
        self._blocking = 0
        self._timeout_target: asyncio.Future[Any] | None = None
        self.interrupted = False

    def __enter__(self) -> SigintRouter:
        # Signals reach the main thread only; in an ipykernel subshell (another thread)
        # there is nothing to route, as for ipykernel's own async cells.
        if threading.current_thread() is threading.main_thread():
            self._saved = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._saved is not None:
            signal.signal(signal.SIGINT, self._saved)

    @contextmanager
    def blocking(self) -> Iterator[None]:
        """A blocking wait in the main thread (a stdin prompt): a SIGINT raises there."""
        self._blocking += 1
        try:
            yield
        finally:
            self._blocking -= 1

    @contextmanager
    def timeout_cancels(self, target: asyncio.Future[Any]) -> Iterator[None]:
        """While a step timeout is armed, a timeout SIGINT outside user code cancels `target`."""
        self._timeout_target = target
        try:
            yield
        finally:
            self._timeout_target = None

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        timed_out = StepTimer.consume()
        if not timed_out:
            # Remembered even when user code catches the KeyboardInterrupt (a `!sleep`,
            # an `except KeyboardInterrupt: save()`): the request must stop all the same.
            self.interrupted = True
        if self._blocking or in_user_code(frame):
            raise KeyboardInterrupt
        if timed_out:
            # A step timeout: stop the action only. A late one, after the action
            # ended, has nothing left to stop.
            if self._timeout_target is not None:
                self._loop.call_soon_threadsafe(self._timeout_target.cancel)
            return
        if self.task is not None:
            self._loop.call_soon_threadsafe(self.task.cancel)


class StepTimer:
    """Interrupts the main thread after `seconds`, the way a user's SIGINT would."""

    _firing = threading.Event()

    def __init__(self, seconds: float) -> None:
        self.fired = False
        self._timer = threading.Timer(seconds, self._fire) if seconds > 0 else None

    @classmethod
    def consume(cls) -> bool:
        """Whether the SIGINT being handled came from a timer (and forget it)."""
        fired = cls._firing.is_set()
        cls._firing.clear()
        return fired

    def __enter__(self) -> StepTimer:
        StepTimer._firing.clear()
        if self._timer is not None:
            self._timer.daemon = True
            self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _fire(self) -> None:
        self.fired = True
        StepTimer._firing.set()
        # A real signal, unlike `_thread.interrupt_main`, also breaks a blocking call
        # such as `time.sleep` in the main thread.
        main = threading.main_thread().ident
        assert main is not None
        signal.pthread_kill(main, signal.SIGINT)
