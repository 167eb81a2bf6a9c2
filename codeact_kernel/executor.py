"""Run a code action through the user's IPython shell and observe what it did.

The action runs exactly as if the user had typed it (`run_cell_async`, so magics,
`!shell`, display hooks, history and tracebacks behave as usual) and its outputs
reach the frontend live. While it runs, the shell's output paths (and file
descriptors 1 and 2, capture.py) are teed into a `Capture`, from which the model's
`Observation` and the nbformat outputs are built.

What an action may not do to the user's session, it cannot: `exit()` leaves the kernel
running (`refusing_exit`), and the kernel's own key is masked in everything it shows.
The observation is the text a terminal would leave (progress bars settled), valid
Unicode whatever bytes the action printed, cut head and tail to its size.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol

from IPython.core.interactiveshell import ExecutionResult, InteractiveShell

from .capture import Capture, Masker, patched, recording, standard_streams, without_tee_frames
from .events import Observation
from .interrupts import ActionSignals, ActionWatch, StepTimer, without_handler_frames

EMPTY_OUTPUT = "[executed successfully with no output]"
EXIT_REFUSED = (
    "[exit() was not done: a code action may not end the user's kernel, which keeps "
    "running. To finish, answer without code.]"
)
# Terminal escapes: CSI (colors, cursor, erasing), OSC ended by BEL or ST (titles,
# hyperlinks as rich and `ls --hyperlink` write them), and the two-character ones.
_ANSI = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"
    r"|\x1b[()][0-9A-Za-z]|\x1b[7-9=>@-Z^_]"
)
# What rewrites a line: a carriage return, a backspace, ANSI erase-in-line.
_LINE_EDITS = re.compile(r"\r|\x08|\x1b\[([012]?)K")
# ANSI sequences other than erase-in-line, which `as_terminal_shows` applies.
_STYLE = re.compile(r"(?!\x1b\[[012]?K)(?:" + _ANSI.pattern + ")")
_SURROGATE = re.compile("[\ud800-\udfff]")
_IMAGE_TYPES = ("image/png", "image/jpeg", "image/svg+xml", "image/gif")
_BINARY_IMAGES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp"})
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


def model_text(outputs: Iterable[dict[str, Any]]) -> tuple[str, tuple[str, ...]]:
    """The outputs as the model reads them, and the PNG or JPEG images (base64) seen."""
    parts: list[str] = []
    images: list[str] = []
    for output in outputs:
        kind = output["output_type"]
        if parts and not parts[-1].endswith("\n"):
            # Each output starts on a line of its own, as the notebook shows it.
            parts[-1] += "\n"
        if kind == "stream":
            # Each stream output settles on its own: a line one leaves open (ending in
            # `\r`) is not overwritten by the next output, which shows below it.
            parts.append(as_terminal_shows(_STYLE.sub("", output["text"])))
        elif kind == "error":
            parts.append(strip_ansi("\n".join(output["traceback"])) + "\n")
        else:
            data = output["data"]
            image = next((t for t in _IMAGE_TYPES if t in data), None)
            if image is not None:
                parts.append(f"[{image} image shown to the user]\n")
                if image in _MODEL_IMAGE_TYPES and isinstance(data[image], str):
                    # Base64 as some libraries write it, in lines: data URLs want it whole.
                    images.append("".join(data[image].split()))
            elif "text/plain" in data:
                prefix = f"Out[{output['execution_count']}]: " if kind == "execute_result" else ""
                parts.append(prefix + strip_ansi(str(data["text/plain"])) + "\n")
    return "".join(parts), tuple(images)


def as_terminal_shows(text: str) -> str:
    """`text` with rewritten lines as a terminal (and JupyterLab) leaves them: progress
    bars settle on their last state.

    A carriage return moves to the start of the line and what follows overwrites what
    was there; `\r\n` is a newline; a backspace moves back one character; ANSI
    erase-in-line (`\x1b[K`, `\x1b[1K`, `\x1b[2K`) erases. Rewritten lines lose their
    trailing blanks (the padding a shorter update writes over a longer one).
    Other ANSI sequences (colors) are left for `strip_ansi`.
    """
    if "\r" not in text and "\b" not in text and "\x1b[" not in text:
        return text
    return "\n".join(_settle(line) for line in text.replace("\r\n", "\n").split("\n"))


def _settle(line: str) -> str:
    if "\b" not in line and "\x1b[" not in line:
        return _overwritten(line.split("\r")).rstrip(" ") if "\r" in line else line
    cells: list[str] = []
    column = 0
    start = 0
    for edit in _LINE_EDITS.finditer(line):
        column = _overwrite(cells, column, line[start : edit.start()])
        start = edit.end()
        if edit.group(0) == "\r":
            column = 0
        elif edit.group(0) == "\b":
            column = max(column - 1, 0)
        elif edit.group(1) == "2":
            cells[:] = [" "] * column
        elif edit.group(1) == "1":
            cells[:column] = [" "] * column
        else:
            del cells[column:]
    _overwrite(cells, column, line[start:])
    return "".join(cells).rstrip(" ")


def _overwritten(writes: list[str]) -> str:
    """The line left by `writes`, each from its start over the ones before it: the
    last write, then what longer writes before it still show past its end."""
    shown = writes[-1]
    for earlier in reversed(writes[:-1]):
        if len(earlier) > len(shown):
            shown += earlier[len(shown) :]
    return shown


def _overwrite(cells: list[str], column: int, text: str) -> int:
    """Write `text` over `cells` from `column`; the column after it."""
    cells[column : column + len(text)] = text
    return column + len(text)


def valid_text(text: str) -> str:
    """`text` as valid Unicode, which any encoder takes.

    Undecodable bytes kept as lone surrogates (`os.listdir` of a Latin-1 file name,
    `surrogateescape`) become U+FFFD, as a UTF-8 terminal shows them; surrogate pairs
    become the character they stand for.
    """
    if _SURROGATE.search(text) is None:
        return text
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _valid(value: Any) -> Any:
    """`valid_text` on every string in an nbformat output."""
    if isinstance(value, str):
        return valid_text(value)
    if isinstance(value, list):
        return [_valid(item) for item in value]
    if isinstance(value, dict):
        return {key: _valid(item) for key, item in value.items()}
    return value


@contextmanager
def tee_outputs(
    shell: InteractiveShell,
    *,
    hide: Collection[str] = (),
    errors_as_text: bool = False,
    fds: bool = True,
) -> Iterator[Capture]:
    """Record what the shell shows while the block runs, without changing what it shows,
    except that `hide` (the kernel's own key) is masked everywhere.

    `errors_as_text` shows a traceback as IPython's own colored text on stderr instead
    of an `error` output (it is still recorded as an error): a request that ends well
    must not look failed to papermill, which fails a notebook on any error output.
    `fds` also records what is written to file descriptors 1 and 2 (subprocesses).
    Whatever the action did to `sys.stdout` and `sys.stderr`, what the shell shows
    goes through the recording's own tees (`Recorder.standard_streams`).
    """
    with recording(hide, fds=fds) as recorder:
        capture = recorder.capture
        masker = Masker(hide)
        display_pub: Any = shell.display_pub
        displayhook: Any = shell.displayhook
        original_publish = display_pub.publish
        original_clear = display_pub.clear_output
        original_format = displayhook.write_format_data
        original_prompt = displayhook.write_output_prompt
        original_finish = displayhook.finish_displayhook
        original_traceback = shell._showtraceback
        original_show = shell.showtraceback
        streams = recorder.standard_streams

        def publish(
            data: dict[str, Any], metadata: dict[str, Any] | None = None, *args: Any, **kw: Any
        ) -> Any:
            data = _masked_bundle(masker, data)
            recorder.settle()
            if not kw.get("update"):
                capture.display(data, metadata)
            # A terminal shell prints a display's text: it is recorded once, as a display.
            with recorder.quiet(), streams():
                return original_publish(data, metadata, *args, **kw)

        def clear_output(wait: bool = False) -> Any:
            capture.clear()
            with streams():
                return original_clear(wait)

        def write_output_prompt() -> Any:
            # A terminal shell prints results and tracebacks to stdout too.
            with recorder.quiet(), streams():
                return original_prompt()

        def finish_displayhook() -> Any:
            # ipykernel flushes both streams before it sends the result.
            with streams():
                return original_finish()

        def write_format_data(format_dict: dict[str, Any], md_dict: Any = None) -> Any:
            format_dict = _masked_bundle(masker, format_dict)
            recorder.settle()
            # prompt_count is the number the user sees in Out[...].
            capture.result(format_dict, md_dict, displayhook.prompt_count)
            with recorder.quiet(), streams():
                return original_format(format_dict, md_dict)

        def show_user_traceback(exc_tuple: Any = None, *args: Any, **kw: Any) -> Any:
            if exc_tuple is None:
                # An interrupt's traceback ends in the user's code, as in IPython.
                without_handler_frames(sys.exc_info()[2])
            # Nor does a traceback go through our tees (`sys.stdout.buffer`).
            without_tee_frames(sys.exc_info()[1] if exc_tuple is None else exc_tuple[1])
            with streams():
                return original_show(exc_tuple, *args, **kw)

        def showtraceback(etype: type, evalue: BaseException, stb: list[str]) -> Any:
            stb = [masker.whole(line) for line in stb]
            said = _said(evalue)
            shown = masker.whole(said)
            recorder.settle()
            capture.error(etype.__name__, shown, list(stb))
            with recorder.quiet(), streams():
                if errors_as_text:
                    return _traceback_as_text(shell, stb)
                value: Any = evalue if shown == said and said is not _UNSAYABLE else _Shown(shown)
                return original_traceback(etype, value, stb)

        with ExitStack() as patches:
            patches.enter_context(patched(display_pub, "publish", publish))
            patches.enter_context(patched(display_pub, "clear_output", clear_output))
            patches.enter_context(patched(displayhook, "write_format_data", write_format_data))
            patches.enter_context(patched(displayhook, "write_output_prompt", write_output_prompt))
            patches.enter_context(patched(displayhook, "finish_displayhook", finish_displayhook))
            patches.enter_context(patched(shell, "_showtraceback", showtraceback))
            patches.enter_context(patched(shell, "showtraceback", show_user_traceback))
            yield capture


def _masked_bundle(masker: Masker, data: dict[str, Any]) -> dict[str, Any]:
    """A display's representations masked: every string in them (text, HTML, SVG,
    JSON, JavaScript …) except binary images, whose base64 hides no text."""
    if not masker.secrets:
        return data
    return {
        kind: value if kind in _BINARY_IMAGES else _masked(masker, value)
        for kind, value in data.items()
    }


def _masked(masker: Masker, value: Any) -> Any:
    if isinstance(value, str):
        return masker.whole(value)
    if isinstance(value, list):
        return [_masked(masker, item) for item in value]
    if isinstance(value, dict):
        return {_masked(masker, key): _masked(masker, item) for key, item in value.items()}
    return value


_UNSAYABLE = "<exception str() failed>"


def _said(error: BaseException) -> str:
    """`str(error)`, which an action's own exception class may make fail."""
    try:
        return str(error)
    except Exception:
        return _UNSAYABLE


@dataclass(frozen=True)
class _Shown:
    """An exception's value as the user may see it (the key masked), for `str()`."""

    text: str

    def __str__(self) -> str:
        return self.text


def _traceback_as_text(shell: InteractiveShell, stb: list[str]) -> None:
    """Show a traceback as IPython's text on stderr, not as an `error` output."""
    sys.stdout.flush()
    sys.stderr.write(shell.InteractiveTB.stb2text(stb) + "\n")
    sys.stderr.flush()


@contextmanager
def refusing_exit(shell: InteractiveShell) -> Iterator[None]:
    """`exit()`, `quit()` and `ask_exit()` in an action leave the user's kernel running.

    They all end in `shell.ask_exit`, which ends the kernel (or terminal IPython) once
    the cell is done; here it says, to the user and the model, that it was refused.
    `sys.exit()` is an ordinary `SystemExit` that IPython shows, as in a cell.
    """

    def ask_exit() -> None:
        with standard_streams():
            print(EXIT_REFUSED, file=sys.stderr)

    with ExitStack() as patches:
        patches.enter_context(patched(shell, "ask_exit", ask_exit))
        if hasattr(shell, "keepkernel_on_exit"):
            # `quit(keep_kernel=True)` sets it for every later exit of the user's.
            keep = shell.keepkernel_on_exit
            patches.enter_context(patched(shell, "keepkernel_on_exit", keep))
        yield


@contextmanager
def _unwatched(stop: Callable[[], None] | None = None) -> Iterator[ActionSignals]:
    """No host policy (tests, a bare shell): SIGINT raises where it lands, as in IPython."""
    yield ActionSignals()


def failed(error: BaseException) -> ExecutionResult:
    result = ExecutionResult(None)
    result.error_in_exec = error
    return result


def failed_in_ipython(
    shell: InteractiveShell, capture: Capture, error: Exception
) -> ExecutionResult:
    """IPython itself failed on the action: the action failed, the request goes on.

    Python's compiler gives up on code nested too deeply (`1+1+…` five thousand times:
    RecursionError), which IPython does not expect while it parses; or IPython fails
    on what a failed action left behind (it stores the failed cell's `str(exception)`
    in its history, which the action's exception class can make fail). When nothing
    was shown for it, the error is shown as Python shows a compile error: its type and
    message, without IPython's frames.
    """
    if not capture.failed:
        kind = type(error)
        shell._showtraceback(kind, error, shell.InteractiveTB.get_exception_only(kind, error))
    return failed(error)


def drain_payloads(shell: InteractiveShell) -> None:
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
    `hide` are values the user must not see in what actions show (the kernel's own
    key); `errors_as_text` shows tracebacks as stderr text (see `tee_outputs`), for
    frontends that render a request inline in its cell.
    """

    def __init__(
        self,
        shell: InteractiveShell,
        *,
        observation_chars: int = 4000,
        step_timeout: float = 0.0,
        watch: ActionWatch | None = None,
        hide: Collection[str] = (),
        errors_as_text: bool = False,
    ) -> None:
        self.shell = shell
        self.observation_chars = observation_chars
        self.step_timeout = step_timeout
        self.watch: ActionWatch = watch or _unwatched
        self.hide = tuple(hide)
        self.errors_as_text = errors_as_text

    def outputs(self, *, fds: bool = True) -> AbstractContextManager[Capture]:
        """Record what an action shows, the way this executor shows it."""
        return tee_outputs(self.shell, hide=self.hide, errors_as_text=self.errors_as_text, fds=fds)

    async def run(self, code: str) -> Observation:
        shell = self.shell
        count = shell.execution_count
        result: ExecutionResult | None = None
        loop = asyncio.get_running_loop()
        with (
            self.outputs() as capture,
            refusing_exit(shell),
            StepTimer(self.step_timeout) as timer,
        ):
            task = asyncio.ensure_future(self._run_cell(code, capture))

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
                drain_payloads(shell)
        if result is not None:
            shell.events.trigger("post_run_cell", result)
        return self._observe(capture, result, count, timer.fired, signals.interrupted)

    async def _run_cell(self, code: str, capture: Capture) -> ExecutionResult:
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
            return failed(KeyboardInterrupt())
        except Exception as error:
            return failed_in_ipython(self.shell, capture, error)

    def _observe(
        self,
        capture: Capture,
        result: ExecutionResult | None,
        count: int,
        timed_out: bool,
        stopped: bool = False,
    ) -> Observation:
        outputs = _valid(capture.outputs)
        text, images = model_text(outputs)
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
            outputs=tuple(outputs),
            timed_out=timed_out,
            interrupted=interrupted,
        )
