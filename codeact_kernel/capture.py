"""Record what an action shows, on its way to the user.

While an action runs, `recording()` puts a `Tee` in place of `sys.stdout` and
`sys.stderr` and, on POSIX, points file descriptors 1 and 2 at pipes (`FdCapture`), so
that what subprocesses and C code write reaches the model too. Every piece of text
takes exactly one of these paths, and each path does three things in order: mask the
secrets the user must not see (the kernel's own key), show the text where it would
have gone without us, and record it into the action's `Capture`, from which the
executor builds the observation. Displays, results and tracebacks are recorded by the
executor, which patches the shell's own paths for them.

Cost: recording appends to a list of chunks joined once, so an action that prints a
million lines costs O(output), as showing them does. What a file descriptor receives
is read by a thread as it arrives, and also taken before a write to `sys.stdout` or
`sys.stderr` that comes after it, so that the model and the user see a subprocess's
output where it came among the prints.

Other ways to the user go through the same tees: writes to the replaced stream
object itself (a logging handler made before the action holds it: `Tee.routed`), and
what a process forked by the action writes to its copy of the stream (sent to the
captured descriptor instead of ipykernel's socket). A flush does not show the end of
a write held back as a possible start of the key; closing `sys.stdout` closes nothing.

File descriptors are captured on POSIX only; elsewhere what subprocesses write goes
where it always went, unseen by the model.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import select
import sys
import threading
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TextIO

from .secrets import MASK, MIN_SECRET_LENGTH, mask_shown

# What the file descriptors carry is decoded the way ipykernel decodes it.
_ENCODING = "utf-8"
_READ_SIZE = 65536
_FD_NAMES = {1: "stdout", 2: "stderr"}
_FD_NUMBERS = {name: fd for fd, name in _FD_NAMES.items()}


@dataclass
class Capture:
    """Everything one action sent to the frontend, as nbformat outputs, in order.

    Writes may come from the thread that reads the file descriptors, hence the lock.
    """

    _outputs: list[dict[str, Any]] = field(default_factory=list)
    # The text of the last output while it is a stream still growing (named
    # `_growing`): joined once, when the outputs are read, instead of once per write.
    _chunks: list[str] = field(default_factory=list)
    _growing: str = ""
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    @property
    def outputs(self) -> list[dict[str, Any]]:
        with self.lock:
            self._seal()
            return self._outputs

    def stream(self, name: str, text: str) -> None:
        if not text:
            return
        with self.lock:
            if self._chunks and self._growing == name:
                self._chunks.append(text)
                return
            last = self._outputs[-1] if self._outputs else None
            if last is not None and last["output_type"] == "stream" and last["name"] == name:
                self._chunks.append(last["text"])
            else:
                self._append({"output_type": "stream", "name": name, "text": ""})
            self._chunks.append(text)
            self._growing = name

    def display(self, data: dict[str, Any], metadata: dict[str, Any] | None) -> None:
        self._append(
            {"output_type": "display_data", "data": dict(data), "metadata": dict(metadata or {})}
        )

    def result(self, data: dict[str, Any], metadata: dict[str, Any] | None, count: int) -> None:
        self._append(
            {
                "output_type": "execute_result",
                "data": dict(data),
                "metadata": dict(metadata or {}),
                "execution_count": count,
            }
        )

    def error(self, ename: str, evalue: str, traceback: list[str]) -> None:
        self._append(
            {"output_type": "error", "ename": ename, "evalue": evalue, "traceback": traceback}
        )

    @property
    def failed(self) -> bool:
        """Whether a traceback was shown."""
        with self.lock:
            return any(output["output_type"] == "error" for output in self._outputs)

    def clear(self) -> None:
        with self.lock:
            self._outputs.clear()
            self._chunks.clear()

    def _append(self, output: dict[str, Any]) -> None:
        with self.lock:
            self._seal()
            self._outputs.append(output)

    def _seal(self) -> None:
        if self._chunks:
            self._outputs[-1]["text"] = "".join(self._chunks)
            self._chunks.clear()


class Masker:
    """Masks known secrets in text that arrives in pieces, even across pieces.

    A piece that ends in what could be the start of a secret keeps that end back until
    the next piece (or `flush`) shows whether it is one. What is masked is what the
    user must not see (`secrets.mask_shown`); what reaches the model is redacted
    further (context.py).
    """

    def __init__(self, secrets: Collection[str] = ()) -> None:
        self.secrets = tuple(s for s in secrets if len(s.strip()) >= MIN_SECRET_LENGTH)
        # A piece that ends in none of these characters cannot end in a secret's start.
        self._chars = frozenset("".join(self.secrets))
        self._held = ""

    def feed(self, text: str) -> str:
        if not self.secrets:
            return text
        if self._held:
            text, self._held = self._held + text, ""
        # Whole secrets first, so that an end held back is never part of one.
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        if text and text[-1] in self._chars:
            keep = _partial_secret(text, self.secrets)
            if keep:
                text, self._held = text[:-keep], text[-keep:]
        return mask_shown(text, self.secrets)

    def flush(self) -> str:
        held, self._held = self._held, ""
        return self.whole(held)

    def whole(self, text: str) -> str:
        """A text that arrives in one piece (a display, a traceback)."""
        return mask_shown(text, self.secrets) if self.secrets else text


def _partial_secret(text: str, secrets: Collection[str]) -> int:
    """The length of the longest end of `text` that begins one of `secrets`."""
    longest = 0
    for secret in secrets:
        at = text.find(secret[0], max(0, len(text) - len(secret) + 1))
        while at != -1:
            if secret.startswith(text[at:]):
                longest = max(longest, len(text) - at)
                break
            at = text.find(secret[0], at + 1)
    return longest


class Recorder:
    """One action's recording: its `Capture`, its tees, the descriptors it captures."""

    def __init__(self, capture: Capture) -> None:
        self.capture = capture
        self.lock = capture.lock
        self.tees: list[Tee] = []
        self.fds: FdCapture | None = None
        self._quiet = 0

    @contextmanager
    def quiet(self) -> Iterator[None]:
        """The shell prints what was recorded already (a terminal's results and
        tracebacks): show it, do not record it again as a stream."""
        with self.lock:
            for tee in self.tees:
                tee.release(self)
        self._quiet += 1
        try:
            yield
        finally:
            self._quiet -= 1

    @contextmanager
    def standard_streams(self) -> Iterator[None]:
        """`sys.stdout` and `sys.stderr` are this recording's tees while the block runs,
        whatever the action put there (None, a closed file, an object without `flush`):
        what the shell shows for the action (a traceback, a result, a display, a
        refusal) reaches the user and the model as IPython would show it."""
        with ExitStack() as stack:
            for tee in self.tees:
                # Only a stream the action replaced: a display from another thread that
                # ends after the action must not put this tee back for good.
                if getattr(sys, tee.sys_name, None) is not tee:
                    stack.enter_context(patched(sys, tee.sys_name, tee))
            yield

    def records(self, fd: int | None, *, from_fd: bool) -> bool:
        """Whether text shown on `fd` is recorded now.

        What goes to a captured descriptor is recorded when it comes out of the pipe.
        """
        if self._quiet and not from_fd:
            return False
        return self.fds is None or fd not in self.fds.captured

    def catch_up(self) -> None:
        """Record what the file descriptors received so far, before what comes next."""
        if self.fds is not None:
            self.fds.catch_up()

    def settle(self) -> None:
        """Record everything written so far (to the descriptors too), before a display,
        result or traceback that comes after it."""
        with self.lock:
            self.catch_up()
            for tee in self.tees:
                tee.release(self)


# The recorder of the action running now. A `Tee` can outlive its action (a logging
# handler made in step 1 keeps it), so it records into whichever action is current.
_recorders: list[Recorder] = []


@contextmanager
def standard_streams() -> Iterator[None]:
    """`Recorder.standard_streams` of the action running now, if one is."""
    if not _recorders:
        yield
        return
    with _recorders[-1].standard_streams():
        yield


# Whether this process was forked (by `multiprocessing`, say) from the one that records.
_forked = False


def _mark_forked() -> None:
    global _forked
    _forked = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_mark_forked)


class Tee:
    """A stand-in for sys.stdout or sys.stderr: masks, shows and records what is written.

    `target` is where the text is shown: the stream it replaces, or, when that stream
    writes to a file descriptor being captured (a terminal's), a stream on the
    descriptor's original destination, so that the text is not captured twice.
    Everything else (`fileno`, `buffer`, `encoding` …) is the replaced stream's.
    """

    def __init__(
        self,
        stream: TextIO,
        name: str,
        hide: Collection[str] = (),
        target: TextIO | None = None,
    ) -> None:
        self._stream = stream
        self._name = name
        self._masker = Masker(hide)
        self._target = target or stream
        self._target_fd = _fileno(self._target)
        # While `routed`, the stream's own `write` comes here: showing goes to the
        # `write` it had before. Otherwise it is looked up at each write, since IPython
        # swaps a stream's `write` per cell (to keep the cell's output history).
        self._beneath: Callable[[str], Any] | None = None

    @property
    def sys_name(self) -> str:
        """The attribute of `sys` this tee stands in for: "stdout" or "stderr"."""
        return self._name

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        recorder = _recorders[-1] if _recorders else None
        if recorder is None:
            self._show(self._masker.feed(text))
            return len(text)
        if _forked and recorder.fds is not None:
            # A child process forked by the action: what ipykernel's stream would send
            # from here goes straight to the user. Through the captured descriptor it is
            # masked, shown and recorded by the parent, and no lock copied mid-use is
            # touched here.
            _write_all(_FD_NUMBERS[self._name], text.encode(_ENCODING, "surrogatepass"))
            return len(text)
        with recorder.lock:
            recorder.catch_up()
            self.emit(text, recorder)
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if self._target is not self._stream:
            # Bytes the replaced stream buffers go to the captured descriptor.
            self._stream.flush()
        recorder = _recorders[-1] if _recorders else None
        if recorder is None:
            self._show(self._masker.flush())
        elif _forked and recorder.fds is not None:
            return
        else:
            # What is held back as a possible start of the key stays held: a key
            # written a piece at a time, flushed after each, must not be shown whole.
            # The next write, display or the action's end releases it.
            with recorder.lock:
                recorder.catch_up()
        self._target.flush()

    def close(self) -> None:
        """Not the replaced stream's: an action that closes `sys.stdout` would leave
        the kernel without output for good."""
        self.flush()

    def emit(self, text: str, recorder: Recorder, *, from_fd: bool = False) -> None:
        """Mask, show and record `text` (the caller holds the recorder's lock)."""
        shown = self._masker.feed(text)
        if shown:
            self._show_text(shown)
            if recorder.records(self._target_fd, from_fd=from_fd):
                recorder.capture.stream(self._name, shown)

    def release(self, recorder: Recorder) -> None:
        """Show and record the text held back as a possible start of a secret."""
        shown = self._masker.flush()
        if shown:
            self._show_text(shown)
            if recorder.records(self._target_fd, from_fd=False):
                recorder.capture.stream(self._name, shown)

    def retarget(self) -> None:
        """Show through the replaced stream again (its action's capture ended)."""
        self._target = self._stream
        self._target_fd = _fileno(self._stream)

    def _show_text(self, text: str) -> None:
        (self._beneath or self._target.write)(text)

    @contextmanager
    def routed(self) -> Iterator[None]:
        """Writes to the replaced stream itself come through this tee while the block
        runs: a logging handler made before the action holds that stream, not
        `sys.stdout`, and what it writes must be masked and recorded all the same.

        Only a stream this tee shows through is routed (a terminal's writes to the
        descriptor, which is captured anyway), and only one whose instance takes the
        attribute (ipykernel's `OutStream`).
        """
        stream = self._stream
        if self._target is not stream or not hasattr(stream, "__dict__"):
            yield
            return
        self._beneath = stream.write
        try:
            with patched(stream, "write", self.write):
                yield
        finally:
            self._beneath = None

    def _show(self, text: str) -> None:
        if text:
            self._show_text(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


# Frames of this module in a traceback are ours (a tee's `write`, `__getattr__` …).
_HERE = Tee.write.__code__.co_filename


def without_tee_frames(error: BaseException | None) -> None:
    """Take this module's frames out of the tracebacks of `error` and of the exceptions
    it chains, so that the user and the model see the traceback IPython would show:
    `sys.stdout.buffer` fails in the user's line, not in `Tee.__getattr__`."""
    pending = [error]
    seen: set[int] = set()
    while pending:
        error = pending.pop()
        if error is None or id(error) in seen:
            continue
        seen.add(id(error))
        error.__traceback__ = _without_frames_here(error.__traceback__)
        pending += [error.__cause__, error.__context__]


def _without_frames_here(tb: TracebackType | None) -> TracebackType | None:
    while tb is not None and tb.tb_frame.f_code.co_filename == _HERE:
        tb = tb.tb_next
    head = tb
    while tb is not None:
        after = tb.tb_next
        while after is not None and after.tb_frame.f_code.co_filename == _HERE:
            after = after.tb_next
        if after is not tb.tb_next:
            tb.tb_next = after
        tb = after
    return head


def _write_all(fd: int, data: bytes) -> None:
    with contextlib.suppress(OSError):
        while data:
            data = data[os.write(fd, data) :]


def _fileno(stream: Any) -> int | None:
    try:
        fd = stream.fileno()
    except Exception:
        return None
    return fd if isinstance(fd, int) else None


@dataclass
class _Pipe:
    fd: int
    read: int
    decoder: codecs.IncrementalDecoder
    tee: Tee | None = None
    eof: bool = False


# Ended captures whose pipes a process started by their action still holds open.
_outlived: set[FdCapture] = set()


class FdCapture:
    """File descriptors pointed at pipes while an action runs.

    What arrives is handed, as text, to the `Tee` of that descriptor's stream (to be
    masked, shown and recorded): by a reader thread as it arrives, and by `catch_up`
    when a write to `sys.stdout`/`sys.stderr` comes after it. `stop` points the
    descriptors back and hands over what is left. A process started by the action may
    outlive it and keep a pipe: what it writes later goes on, as it is, to wherever
    the descriptor points then (the next action's capture, or the user).
    """

    def __init__(self, recorder: Recorder, fds: Collection[int]) -> None:
        self._recorder = recorder
        self._pipes: dict[int, _Pipe] = {}
        self._saved: dict[int, int] = {}
        self._attached = True
        self._serving = False
        try:
            for fd in fds:
                self._redirect(fd)
        except OSError:
            self._restore()
            raise
        self.captured = frozenset(fds)
        # Asked before every write to sys.stdout/sys.stderr, so one system call for all
        # the pipes: a subprocess can write and end within any interval between asks.
        self._holding = select.poll()
        for read in self._pipes:
            self._holding.register(read, select.POLLIN)

    def _redirect(self, fd: int) -> None:
        read, write = os.pipe()
        try:
            os.set_blocking(read, False)
            saved = os.dup(fd)
            try:
                os.dup2(write, fd)
            except OSError:
                os.close(saved)
                raise
        except OSError:
            os.close(read)
            raise
        finally:
            os.close(write)
        self._saved[fd] = saved
        decoder = codecs.getincrementaldecoder(_ENCODING)(errors="replace")
        self._pipes[read] = _Pipe(fd, read, decoder)

    def original(self, fd: int) -> int:
        """A descriptor for where `fd` pointed before the capture (closed by `stop`)."""
        return self._saved[fd]

    def start(self, tees: dict[int, Tee]) -> None:
        """Hand what each descriptor receives to its tee, from now on."""
        for pipe in self._pipes.values():
            pipe.tee = tees[pipe.fd]
        threading.Thread(target=self._serve, name="codeact-fd-capture", daemon=True).start()
        self._serving = True

    def catch_up(self) -> None:
        """Hand over what the pipes hold (the caller holds the recorder's lock)."""
        for read, _ in self._holding.poll(0):
            # A pipe the reader thread closed (after its end) is no longer in `_pipes`.
            pipe = self._pipes.get(read)
            if pipe is not None and not pipe.eof:
                self._read(pipe)

    def stop(self) -> None:
        # A process an earlier action started may have written to its pipe just now:
        # forwarded before the descriptors go back, it belongs to this action.
        for earlier in list(_outlived):
            earlier.forward_pending()
        self._restore()
        with self._recorder.lock:
            # Written before the descriptors were restored: it belongs to this action.
            for pipe in list(self._pipes.values()):
                if not pipe.eof:
                    self._read(pipe)
                if pipe.tee is not None:
                    rest = pipe.decoder.decode(b"", final=True)
                    pipe.tee.emit(rest, self._recorder, from_fd=True)
                if not self._serving:
                    os.close(pipe.read)
                    del self._pipes[pipe.read]
            self._attached = False
            if self._pipes:
                _outlived.add(self)

    def forward_pending(self) -> None:
        """Forward what the pipes of this ended capture hold now (see `stop`)."""
        with self._recorder.lock:
            for pipe in list(self._pipes.values()):
                if not pipe.eof:
                    self._read(pipe)

    def _restore(self) -> None:
        for fd, saved in self._saved.items():
            os.dup2(saved, fd)
            os.close(saved)
        self._saved.clear()

    def _serve(self) -> None:
        poller = select.poll()
        for read in self._pipes:
            poller.register(read, select.POLLIN)
        while self._pipes:
            ready = poller.poll()
            with self._recorder.lock:
                for read, _ in ready:
                    pipe = self._pipes.get(read)
                    if pipe is not None and not pipe.eof:
                        self._read(pipe)
                for pipe in [p for p in self._pipes.values() if p.eof]:
                    # Only this thread closes a pipe: its poller is watching it.
                    poller.unregister(pipe.read)
                    os.close(pipe.read)
                    del self._pipes[pipe.read]
        _outlived.discard(self)

    def _read(self, pipe: _Pipe) -> None:
        """Hand over all that `pipe` holds now (the caller holds the recorder's lock)."""
        while True:
            try:
                data = os.read(pipe.read, _READ_SIZE)
            except BlockingIOError:
                return
            if not data:
                pipe.eof = True
                return
            if not self._attached or pipe.tee is None:
                self._forward(pipe, data)
                continue
            try:
                pipe.tee.emit(pipe.decoder.decode(data), self._recorder, from_fd=True)
            except Exception:
                # The stream cannot show it (a terminal that cannot encode U+FFFD): the
                # bytes go where they were going, and this never fails unrelated code.
                self._forward(pipe, data)

    def _forward(self, pipe: _Pipe, data: bytes) -> None:
        """Write `data` where the descriptor pointed before the capture, or points now."""
        with contextlib.suppress(OSError):
            os.write(self._saved.get(pipe.fd, pipe.fd), data)


def _can_capture_fds() -> bool:
    if sys.platform == "win32" or not hasattr(select, "poll"):
        return False
    try:
        for fd in _FD_NAMES:
            os.fstat(fd)
    except OSError:
        return False
    return True


@contextmanager
def recording(hide: Collection[str] = (), *, fds: bool = True) -> Iterator[Recorder]:
    """Tee sys.stdout and sys.stderr, and file descriptors 1 and 2 when `fds`, into a
    new `Recorder` while the block runs, masking `hide` in what is shown."""
    recorder = Recorder(Capture())
    direct: list[TextIO] = []
    try:
        tees = _start(recorder, hide, fds, direct)
        with ExitStack() as stack:
            for fd, tee in tees.items():
                stack.enter_context(patched(sys, _FD_NAMES[fd], tee))
                stack.enter_context(tee.routed())
            _recorders.append(recorder)
            try:
                yield recorder
            finally:
                try:
                    # Text still buffered on its way to a captured descriptor.
                    for stream in (*recorder.tees, sys.__stdout__, sys.__stderr__):
                        _flush_quietly(stream)
                finally:
                    _recorders.remove(recorder)
    finally:
        _finish(recorder, direct)


def _start(
    recorder: Recorder, hide: Collection[str], fds: bool, direct: list[TextIO]
) -> dict[int, Tee]:
    streams: dict[int, TextIO] = {fd: getattr(sys, name) for fd, name in _FD_NAMES.items()}
    if fds and _can_capture_fds():
        # What a stream still buffers was written before the action.
        for stream in (*streams.values(), sys.__stdout__, sys.__stderr__):
            _flush_quietly(stream)
        recorder.fds = FdCapture(recorder, tuple(_FD_NAMES))
    for fd, stream in streams.items():
        target = None
        if recorder.fds is not None and _fileno(stream) == fd:
            # A terminal's stream writes to the descriptor itself: show its text on the
            # original destination, so that it is recorded once, by the tee.
            target = _direct_stream(stream, recorder.fds.original(fd))
            direct.append(target)
        recorder.tees.append(Tee(stream, _FD_NAMES[fd], hide, target))
    tees = dict(zip(streams, recorder.tees, strict=True))
    if recorder.fds is not None:
        recorder.fds.start(tees)
    return tees


def _finish(recorder: Recorder, direct: list[TextIO]) -> None:
    """End the capture: everything the action wrote is shown and recorded, once."""
    try:
        if recorder.fds is not None:
            recorder.fds.stop()
    finally:
        with recorder.lock:
            for tee in recorder.tees:
                tee.release(recorder)
        for tee in recorder.tees:
            tee.retarget()
        for stream in direct:
            _flush_quietly(stream)
            with contextlib.suppress(OSError):
                stream.close()


def _direct_stream(like: TextIO, fd: int) -> TextIO:
    """A line-buffered text stream on a copy of `fd`, encoding as `like` does."""
    # Closed when the capture ends.
    return open(
        os.dup(fd),
        "w",
        encoding=getattr(like, "encoding", None) or _ENCODING,
        errors=getattr(like, "errors", None) or "strict",
        buffering=1,
    )


def _flush_quietly(stream: Any) -> None:
    if stream is not None:
        with contextlib.suppress(Exception):
            stream.flush()


@contextmanager
def patched(owner: Any, name: str, value: Any) -> Iterator[None]:
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
