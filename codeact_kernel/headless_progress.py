"""What `codeact run` shows while it runs: terminal text on stderr, or JSON lines.

The runner (headless.py) reports two things: events (dicts with an `"event"` name, the
schema in docs/cli.md) and the live outputs of cells and actions (IOPub contents).
`TerminalReporter` renders both as terminal IPython does (render_terminal.py): the
model's prose as it streams, a rule per action with its code, the action's own output,
a footer per request. `JsonReporter` writes each event as one line of JSON on stdout
and nothing else, for scripts and CI.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
from collections.abc import Mapping
from typing import Any, Protocol, TextIO

_DIM = "\x1b[2m"
_ACTION = "\x1b[1;36m"
_RESET = "\x1b[0m"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class Reporter(Protocol):
    def emit(self, event: dict[str, Any]) -> None:
        """One event of the run (docs/cli.md has their schema)."""
        ...

    def output(self, kind: str, content: Mapping[str, Any]) -> None:
        """A live output (IOPub `stream`, `display_data`, `execute_result`, `error`)."""
        ...


class JsonReporter:
    """One JSON object per line on `stream` (stdout), flushed at once."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._closed = False

    def emit(self, event: dict[str, Any]) -> None:
        if self._closed:
            return
        stream = self._stream or sys.stdout
        try:
            stream.write(json.dumps(event, ensure_ascii=False, default=str) + "\n")
            stream.flush()
        except BrokenPipeError:
            # The reader went away (`| head -1`): the run goes on and its notebook is
            # still written; the rest of the events have nobody to read them.
            self._closed = True
            _discard(stream)

    def output(self, kind: str, content: Mapping[str, Any]) -> None:
        """Outputs are in the notebook; the events point to their cells."""


class TerminalReporter:
    """Progress as text on `stream` (stderr), coloured when `color`."""

    def __init__(
        self, *, stream: TextIO | None = None, color: bool = False, cells: bool = False
    ) -> None:
        self.color = color
        self.cells = cells
        """Whether to announce each cell (a notebook run), not only requests."""
        self._stream = stream
        self._at_line_start = True
        self._footer_shown = False

    def emit(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "cell_started" and self.cells:
            first = str(event.get("source", "")).strip().splitlines()[:1]
            self._line(f"[cell {event.get('cell')}] {first[0][:70] if first else ''}", _DIM)
        elif kind == "request_started":
            self._footer_shown = False
        elif kind == "text_delta":
            self._write(str(event.get("text", "")))
        elif kind == "notice":
            self._line(f"[{event.get('message')}]", _DIM)
        elif kind == "action":
            self._line(f"--- step {event.get('step')} ---", _ACTION)
            code = str(event.get("code", ""))
            self._write(code if code.endswith("\n") else code + "\n")
            self._line("--- output ---", _DIM)
        elif kind == "observation" and event.get("status") != "ok":
            name = f" ({event['error_name']})" if event.get("error_name") else ""
            self._line(f"--- step {event.get('step')}: {event.get('status')}{name} ---", _ACTION)
        elif kind in ("finished", "failed") and not self._footer_shown:
            # The kernel's own footer was not shown (an interrupted request has none).
            self._line(footer(event), _DIM)
        elif kind == "notebook_written":
            self._line(f"Wrote {event.get('path')}", _DIM)

    def output(self, kind: str, content: Mapping[str, Any]) -> None:
        if kind == "stream":
            self._write(str(content.get("text", "")))
        elif kind in ("display_data", "execute_result"):
            data = content.get("data") or {}
            markdown = data.get("text/markdown")
            if isinstance(markdown, str) and markdown.startswith("<sub>"):
                # The kernel's footer (or a note such as "replayed without the model").
                self._footer_shown = True
                self._line(str(data.get("text/plain", "")), _DIM)
                return
            text = data.get("text/plain")
            if not isinstance(text, str):
                text = f"[{', '.join(sorted(data))}]"
            if kind == "execute_result":
                text = f"Out[{content.get('execution_count')}]: {text}"
            self._line(text, "")
        elif kind == "error":
            traceback = "\n".join(str(line) for line in content.get("traceback") or [])
            self._line(traceback or f"{content.get('ename')}: {content.get('evalue')}", "")

    def _line(self, text: str, style: str) -> None:
        if not self._at_line_start:
            self._write("\n")
        self._write(f"{style}{text}{_RESET}\n" if self.color and style else f"{text}\n")

    def _write(self, text: str) -> None:
        if not text:
            return
        if not self.color:
            text = _ANSI.sub("", text)
        stream = self._stream or sys.stderr
        encoding = getattr(stream, "encoding", None) or "utf-8"
        # A model may answer in any script; an ASCII terminal must not stop the run.
        stream.write(text.encode(encoding, "replace").decode(encoding))
        stream.flush()
        self._at_line_start = text.endswith("\n")


def _discard(stream: TextIO) -> None:
    """Point `stream`'s descriptor at /dev/null, so that flushing it at exit (Python
    does) raises no second BrokenPipeError."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)


def footer(event: Mapping[str, Any]) -> str:
    """The request's closing line, as the kernel's footer reads."""
    steps = int(event.get("steps") or 0)
    parts = [
        f"{steps} step{'s' if steps != 1 else ''}",
        f"{int(event.get('tokens') or 0):,} tokens",
        f"{float(event.get('seconds') or 0.0):.1f} s",
    ]
    status = event.get("status")
    if status != "ok":
        error = event.get("error") or {}
        name = error.get("ename") if isinstance(error, Mapping) else None
        parts.insert(0, f"stopped: {name or status}")
    return "CodeAct · " + " · ".join(parts)
