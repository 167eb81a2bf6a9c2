"""Run a code action through the user's IPython shell and observe what it did.

The action runs exactly as if the user had typed it (`run_cell_async`, so magics,
`!shell`, display hooks, history and tracebacks behave as usual) and its outputs
reach the frontend live. While it runs, the shell's output paths are teed into a
`Capture`, from which the model's `Observation` and the nbformat outputs are built.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO

from IPython.core.interactiveshell import ExecutionResult, InteractiveShell

from .events import Observation
from .interrupts import ActionSignals, ActionWatch, StepTimer, without_handler_frames

EMPTY_OUTPUT = "[executed successfully with no output]"
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07")
_IMAGE_TYPES = ("image/png", "image/jpeg", "image/svg+xml", "image/gif")
# What a vision model can be sent (every provider takes base64 PNG and JPEG).
_MODEL_IMAGE_TYPES = ("image/png", "image/jpeg")


# Set while an action's code runs, in the context that runs it (a task or the main
# thread), so that code can tell it runs inside a request (`%%codeact` refuses to nest).
_acting: ContextVar[bool] = ContextVar("codeact_acting", default=False)


def in_action() -> bool:
    """Whether the code running now is a code action, of any host."""
    return _acting.get()


@contextmanager
def acting() -> Iterator[None]:
    token = _acting.set(True)
    try:
        yield
    finally:
        _acting.reset(token)


class Executor(Protocol):
    """Runs one code action and reports what the model should see."""

    async def run(self, code: str) -> Observation: ...


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def cut_middle(text: str, limit: int) -> str:
    """Keep the head and tail of `text` within `limit` characters, marking the cut."""
    if len(text) <= limit:
        return text
    half = max(limit // 2, 1)
    omitted = len(text) - 2 * half
    return f"{text[:half]}\n[... {omitted} characters truncated ...]\n{text[-half:]}"


@dataclass
class Capture:
    """Everything one action sent to the frontend, as nbformat outputs, in order."""

    outputs: list[dict[str, Any]] = field(default_factory=list)

    def stream(self, name: str, text: str) -> None:
        if not text:
            return
        last = self.outputs[-1] if self.outputs else None
        if last is not None and last["output_type"] == "stream" and last["name"] == name:
            last["text"] += text
        else:
            self.outputs.append({"output_type": "stream", "name": name, "text": text})

    def display(self, data: dict[str, Any], metadata: dict[str, Any] | None) -> None:
        self.outputs.append(
            {"output_type": "display_data", "data": dict(data), "metadata": dict(metadata or {})}
        )

    def result(self, data: dict[str, Any], metadata: dict[str, Any] | None, count: int) -> None:
        self.outputs.append(
            {
                "output_type": "execute_result",
                "data": dict(data),
                "metadata": dict(metadata or {}),
                "execution_count": count,
            }
        )

    def error(self, ename: str, evalue: str, traceback: list[str]) -> None:
        self.outputs.append(
            {"output_type": "error", "ename": ename, "evalue": evalue, "traceback": traceback}
        )

    def clear(self) -> None:
        self.outputs.clear()

    def text_for_model(self) -> tuple[str, tuple[str, ...]]:
        """The outputs as the model reads them, and the PNG or JPEG images (base64) seen."""
        parts: list[str] = []
        images: list[str] = []
        for output in self.outputs:
            kind = output["output_type"]
            if kind == "stream":
                parts.append(strip_ansi(output["text"]))
            elif kind == "error":
                parts.append(strip_ansi("\n".join(output["traceback"])) + "\n")
            else:
                data = output["data"]
                image = next((t for t in _IMAGE_TYPES if t in data), None)
                if image is not None:
                    parts.append(f"[{image} image shown to the user]\n")
                    if image in _MODEL_IMAGE_TYPES and isinstance(data[image], str):
                        images.append(data[image])
                elif "text/plain" in data:
                    prefix = (
                        f"Out[{output['execution_count']}]: " if kind == "execute_result" else ""
                    )
                    parts.append(prefix + strip_ansi(str(data["text/plain"])) + "\n")
        return "".join(parts), tuple(images)


# The recorder of the action running now. A `_Tee` can outlive its action (a logging
# handler made in step 1 keeps it), so it records into whichever action is current.
_recorders: list[Callable[[str, str], None]] = []


class _Tee:
    """A stand-in for sys.stdout/sys.stderr that records writes and passes them on."""

    def __init__(self, stream: TextIO, name: str) -> None:
        self._stream = stream
        self._name = name

    def write(self, text: str) -> int:
        if _recorders:
            _recorders[-1](self._name, text)
        return self._stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextmanager
def tee_outputs(shell: InteractiveShell) -> Iterator[Capture]:
    """Record what the shell shows while the block runs, without changing what it shows."""
    capture = Capture()
    display_pub: Any = shell.display_pub
    displayhook: Any = shell.displayhook
    original_publish = display_pub.publish
    original_clear = display_pub.clear_output
    original_format = displayhook.write_format_data
    original_prompt = displayhook.write_output_prompt
    original_traceback = shell._showtraceback
    original_show = shell.showtraceback
    # A terminal shell prints results and tracebacks to stdout; each is recorded once,
    # as the result or the error, not again as a stream.
    printing = False

    @contextmanager
    def recorded_already() -> Iterator[None]:
        nonlocal printing
        printing = True
        try:
            yield
        finally:
            printing = False

    def publish(
        data: dict[str, Any], metadata: dict[str, Any] | None = None, *args: Any, **kw: Any
    ) -> Any:
        if not kw.get("update"):
            capture.display(data, metadata)
        return original_publish(data, metadata, *args, **kw)

    def clear_output(wait: bool = False) -> Any:
        capture.clear()
        return original_clear(wait)

    def write_output_prompt() -> Any:
        with recorded_already():
            return original_prompt()

    def write_format_data(format_dict: dict[str, Any], md_dict: Any = None) -> Any:
        # prompt_count is the number the user sees in Out[...].
        capture.result(format_dict, md_dict, displayhook.prompt_count)
        with recorded_already():
            return original_format(format_dict, md_dict)

    def show_user_traceback(exc_tuple: Any = None, *args: Any, **kw: Any) -> Any:
        if exc_tuple is None:
            # An interrupt's traceback ends in the user's code, as in IPython.
            without_handler_frames(sys.exc_info()[2])
        return original_show(exc_tuple, *args, **kw)

    def showtraceback(etype: type, evalue: BaseException, stb: list[str]) -> Any:
        capture.error(etype.__name__, str(evalue), list(stb))
        with recorded_already():
            return original_traceback(etype, evalue, stb)

    def record(name: str, text: str) -> None:
        if not printing:
            capture.stream(name, text)

    with ExitStack() as patches:
        patches.enter_context(_patched(display_pub, "publish", publish))
        patches.enter_context(_patched(display_pub, "clear_output", clear_output))
        patches.enter_context(_patched(displayhook, "write_format_data", write_format_data))
        patches.enter_context(_patched(displayhook, "write_output_prompt", write_output_prompt))
        patches.enter_context(_patched(shell, "_showtraceback", showtraceback))
        patches.enter_context(_patched(shell, "showtraceback", show_user_traceback))
        patches.enter_context(_patched(sys, "stdout", _Tee(sys.stdout, "stdout")))
        patches.enter_context(_patched(sys, "stderr", _Tee(sys.stderr, "stderr")))
        _recorders.append(record)
        try:
            yield capture
        finally:
            _recorders.remove(record)


@contextmanager
def _patched(owner: Any, name: str, value: Any) -> Iterator[None]:
    """Set `owner.name` for the block, then restore exactly what was there before.

    Methods are patched on the instance, so restoring means removing the instance
    attribute again, unless the instance had one of its own to begin with.
    """
    missing = object()
    before = vars(owner).get(name, missing) if hasattr(owner, "__dict__") else missing
    setattr(owner, name, value)
    try:
        yield
    finally:
        if before is missing:
            delattr(owner, name)
        else:
            setattr(owner, name, before)


@contextmanager
def _unwatched(stop: Callable[[], None] | None = None) -> Iterator[ActionSignals]:
    """No host policy (tests, a bare shell): SIGINT raises where it lands, as in IPython."""
    yield ActionSignals()


def _drain_payloads(shell: InteractiveShell) -> None:
    """Take the action's payloads before they ride on the reply to the user's next cell.

    A help page (`obj?`) is shown here instead; `set_next_input` (from `%load`) and
    `ask_exit` are dropped: they would replace or end the user's own cells.
    """
    payloads = shell.payload_manager
    if payloads is None:
        return
    for payload in payloads.read_payload():
        if payload.get("source") == "page" and isinstance(payload.get("data"), dict):
            shell.display_pub.publish(data=payload["data"])
    payloads.clear_payload()


class ShellExecutor:
    """Runs actions in the kernel's shell on the kernel's event loop.

    `watch` is the host's interrupt policy for actions (`RequestInterrupts.action`):
    through it a step timeout that fires while an async action awaits stops only that
    action, and an interrupt the action swallowed still stops the request.
    """

    def __init__(
        self,
        shell: InteractiveShell,
        *,
        observation_chars: int = 4000,
        step_timeout: float = 0.0,
        watch: ActionWatch | None = None,
    ) -> None:
        self.shell = shell
        self.observation_chars = observation_chars
        self.step_timeout = step_timeout
        self.watch: ActionWatch = watch or _unwatched

    async def run(self, code: str) -> Observation:
        shell = self.shell
        count = shell.execution_count
        result: ExecutionResult | None = None
        loop = asyncio.get_running_loop()
        with tee_outputs(shell) as capture, StepTimer(self.step_timeout) as timer:
            task = asyncio.ensure_future(self._run_cell(code))

            def stop() -> None:
                loop.call_soon_threadsafe(task.cancel)

            try:
                with self.watch(stop) as signals:
                    result = await task
            except asyncio.CancelledError:
                if not timer.fired:
                    raise
            finally:
                # IPython's run_cell fires these; run_cell_async leaves them to the
                # caller. Inline plots are flushed on post_execute.
                shell.events.trigger("post_execute")
                _drain_payloads(shell)
        if result is not None:
            shell.events.trigger("post_run_cell", result)
        return self._observe(capture, result, count, timer.fired, signals.interrupted)

    async def _run_cell(self, code: str) -> ExecutionResult:
        # This coroutine runs as a task of its own: the flag stays in its context.
        _acting.set(True)
        preprocessing_error = None
        try:
            transformed = self.shell.transform_cell(code)
        except Exception:
            transformed, preprocessing_error = code, sys.exc_info()
        try:
            return await self.shell.run_cell_async(
                code,
                store_history=True,
                transformed_cell=transformed,
                preprocessing_exc_tuple=preprocessing_error,
            )
        except KeyboardInterrupt:
            # A SIGINT between IPython's own statements, outside `run_code`: treat it
            # like one inside, so the action ends as interrupted instead of escaping.
            result = ExecutionResult(None)
            result.error_in_exec = KeyboardInterrupt()
            return result

    def _observe(
        self,
        capture: Capture,
        result: ExecutionResult | None,
        count: int,
        timed_out: bool,
        stopped: bool = False,
    ) -> Observation:
        text, images = capture.text_for_model()
        error = None
        if result is not None:
            error = result.error_before_exec or result.error_in_exec
        # An async action swallows the cancellation of an interrupt into its
        # traceback; it still means the user asked to stop.
        interrupted = not timed_out and (
            stopped or isinstance(error, (KeyboardInterrupt, asyncio.CancelledError))
        )
        if timed_out:
            text += (
                f"\n[The action ran longer than step_timeout = {self.step_timeout:g} s "
                "and was interrupted.]"
            )
        text = cut_middle(text.strip("\n"), self.observation_chars) or EMPTY_OUTPUT
        return Observation(
            text=text,
            ok=error is None and not timed_out,
            error_name="TimeoutError" if timed_out else (type(error).__name__ if error else None),
            execution_count=count,
            images=images,
            outputs=tuple(capture.outputs),
            timed_out=timed_out,
            interrupted=interrupted,
        )
