"""A daemon thread running one asyncio loop: where a session's work waits when the
thread that asked cannot await (a line magic in a busy kernel, a terminal).

The session owns one, started on first use. `%%codeact` streams the model there,
`%codeact models` lists models there, and (DESIGN.md §7) MCP clients will live there.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class BackgroundLoop:
    """A daemon thread running one asyncio loop, started on first use."""

    def __init__(self, name: str = "codeact") -> None:
        self._name = name
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
                    target=_serve, args=(loop, ready), name=self._name, daemon=True
                )
                self._thread.start()
                ready.wait()
                self._loop = loop
            return self._loop

    @property
    def started(self) -> bool:
        return self._loop is not None

    def submit(self, coro: Coroutine[Any, Any, T], timeout: float = 5.0) -> T:
        """Run `coro` on the loop and wait for it (for short housekeeping only)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def wait(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the loop; Ctrl-C here cancels it and raises `KeyboardInterrupt`."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            # A timeout, so that the main thread keeps checking for signals.
            while True:
                try:
                    return future.result(timeout=0.1)
                except concurrent.futures.TimeoutError:
                    continue
        except KeyboardInterrupt:
            future.cancel()
            raise

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
