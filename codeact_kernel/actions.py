"""Code actions: find the Python a model wants run in its answer.

Two action formats are accepted whatever the system prompt asked for, because models
drift between them:

- `<execute> … </execute>`, the CodeAct reference format (CodeActAgent models are
  trained on it). The server strips the `</execute>` stop sequence, so an unclosed
  trailing `<execute>` runs to the end of the answer.
- Fenced Markdown blocks labelled ```` ```python ````, ```` ```py ````,
  ```` ```python3 ````, ```` ```ipython ```` or unlabelled, with backticks or tildes,
  indented or not (CommonMark rules: the closing fence uses the same character, at least
  as long as the opening one). An unclosed trailing fence runs to the end of the answer.

Which blocks are actions, in order of precedence (blocks holding only whitespace never
are: there is nothing to run):

1. If the answer has `<execute>` blocks, those are the actions and fences are prose:
   a model using the tags uses fences only to show things.
2. Otherwise, fences labelled as Python.
3. Otherwise, unlabelled fences. A model that labels its code uses bare fences for
   output and plain text, so bare fences count only when nothing is labelled.

Fences in other languages (```` ```bash ````, ```` ```json ````, ```` ```text ````,
```` ```output ````, ```` ```pytb ```` …) are never actions. That includes shell: the
CodeAct convention is Python only, the system prompt tells the model to run commands as
`!cmd` inside Python, and a final answer often shows shell commands for the *user* to
run (install instructions), which the kernel must not run on its own.

One action per answer, as in the CodeAct reference (it stops the model at
`</execute>`): the action is the first action block, and the model's text after it
is not ours to run. Whatever the model wrote after its action it wrote without seeing
the action's result: an "Observation:" it made up, a second action built on that, a
claim about what the code printed.

`AnswerStream` applies this while the answer streams, on our side, so that a server
that ignores stop sequences changes nothing: the answer ends where one of our stop
sequences begins, or right after the first complete action (a closed `<execute>`
block; in the markdown format also a closed fence labelled Python). Nothing past that
point is shown, recorded, sent back to the model or run; the agent stops reading the
stream soon after. Bare fences cannot end an answer while it streams (a labelled
block may still follow and win), so an answer whose actions are bare fences is cut
after the first once it is complete (`first_action_end`) and the user is told what
was dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "AnswerStream",
    "Block",
    "ParsedAnswer",
    "close_open_block",
    "extract_code",
    "first_action_end",
    "parse_answer",
    "split_answer",
    "stop_sequences",
    "valid_text",
]

BlockKind = Literal["execute", "python", "bare", "other"]

# Info-string words that mark a fenced block as Python to run.
_PYTHON_LANGUAGES = frozenset({"python", "py", "python3", "py3", "ipython", "ipython3"})
# The first word of an info string, as models write it: a language, then perhaps a
# version (`python3.11`) or a file (`python:main.py`, `py{title=…}`), in any case.
_INFO_WORD = re.compile(r"[{.]*(?P<language>[^\s:,;{}=]*)")
_PYTHON_VERSION = re.compile(r"(?:i?python|py)\d+(?:\.\d+)*")
# Invisible characters that a model or a copy may leave in an info string.
_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff"

_EXECUTE_OPEN = re.compile(r"<execute\s*>", re.IGNORECASE)
_EXECUTE_CLOSE = re.compile(r"</execute\s*>", re.IGNORECASE)
# A fence opens at the start of a line (after any indentation: fences nested in list
# items are indented). `^` under MULTILINE never matches mid-line, so text after an
# inline `</execute>` cannot open a fence.
_FENCE_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^\n]*)$", re.M)
_SURROGATE = re.compile(r"[\ud800-\udfff]")


@dataclass(frozen=True)
class Block:
    """One fenced or tagged block of a model answer.

    `start`/`end` delimit the whole block (tags or fence lines included) in the
    newline-normalised answer; `code` is its content with the fence indentation
    removed and blank edge lines trimmed.
    """

    kind: BlockKind
    language: str
    code: str
    start: int
    end: int
    closed: bool


@dataclass(frozen=True)
class ParsedAnswer:
    """A model answer taken apart: the prose, the action blocks, everything found."""

    text: str
    blocks: tuple[Block, ...]
    actions: tuple[Block, ...]

    @property
    def code(self) -> str | None:
        """The action to run (the first action block), or None when the answer has no
        code (the model is done)."""
        return self.actions[0].code if self.actions else None

    @property
    def narrative(self) -> str:
        """The answer without its action blocks, for display as Markdown."""
        pieces: list[str] = []
        position = 0
        for block in self.actions:
            pieces.append(self.text[position : block.start])
            position = block.end
        pieces.append(self.text[position:])
        # Only the seams left by removed blocks are tidied; the prose itself (blank
        # lines inside an output block, say) is kept as the model wrote it.
        kept = [_trim_blank_lines(piece).rstrip() for piece in pieces]
        return "\n\n".join(piece for piece in kept if piece).lstrip()


def parse_answer(text: str) -> ParsedAnswer:
    """Find every block in a model answer and decide which are actions. Never raises."""
    text = _normalise_newlines(text)
    blocks = tuple(_scan(text))
    actions = _select_actions(blocks)
    return ParsedAnswer(text, blocks, actions)


def extract_code(text: str) -> str | None:
    """The code action in a model answer, or None when it has no code (the model is done)."""
    return parse_answer(text).code


def valid_text(text: str) -> str:
    """`text` as valid UTF-8: each lone surrogate (the escaped bytes of a file name that
    is not UTF-8, a `\\ud800` escape in a server's JSON) becomes U+FFFD.

    Such text cannot be encoded for a request or an IOPub message; one that slipped into
    the conversation would make every later request fail.
    """
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text


def first_action_end(text: str) -> int | None:
    """Where the first action of a complete answer ends, when more actions follow it
    (they are not ours to run); None when there is at most one action.

    `text` must have `\\n` newlines (an `AnswerStream` answer has).
    """
    actions = parse_answer(text).actions
    return actions[0].end if len(actions) > 1 else None


def split_answer(text: str) -> tuple[str, str | None]:
    """(the prose with the action blocks removed, the code) for separate display."""
    parsed = parse_answer(text)
    return parsed.narrative, parsed.code


def stop_sequences(action_format: str) -> tuple[str, ...]:
    """Stop sequences that end the model's answer after one action.

    For `execute`, stopping at `</execute>` ends the answer right after the action, as
    the CodeAct reference does. For `markdown`, stopping at a fence would cut the
    *opening* fence, so instead the model is stopped where it would start inventing
    the output of its own code (observations arrive as "Observation:" messages).
    """
    if action_format == "execute":
        return ("</execute>",)
    if action_format == "markdown":
        return ("\nObservation:",)
    raise ValueError(f"Unknown action format {action_format!r}: use 'markdown' or 'execute'.")


def close_open_block(text: str) -> str:
    """`text` with an unclosed trailing block closed again.

    The server strips the stop sequence (`</execute>`) and answers can end inside a
    fence; the conversation sent back to the model should be well formed, as in the
    CodeAct training data, or the model learns to leave its blocks open. A closing
    fence that would change how earlier blocks read (an earlier fence closed only by a
    glued `print(x)```` would take it as its own) is not added.
    """
    text = _normalise_newlines(text)
    blocks = _scan(text)
    if not blocks or blocks[-1].closed:
        return text
    last = blocks[-1]
    separator = "" if text.endswith("\n") else "\n"
    if last.kind == "execute":
        return f"{text}{separator}</execute>"
    match = _FENCE_OPEN.match(text, last.start)
    fence = match.group("indent") + match.group("fence") if match else "```"
    closed = f"{text}{separator}{fence}"
    if [block.code for block in _scan(closed)] != [block.code for block in blocks]:
        return text
    return closed


class AnswerStream:
    """A model answer as it streams, ended where the answer ends for us.

    `add` each delta as it arrives: it returns the text that may be shown now, and
    `ended` turns true once the answer is complete (the module docstring says where
    that is); the rest of the stream is ignored. `finish` returns what was held back
    when the stream ends. `text` is the answer, `shown` what `add` and `finish`
    returned so far.

    Text that may be the beginning of a stop sequence (`\\nObserv…`) is held back until
    the next delta tells, and so is a line that may close an `<execute>` block part
    way (a line inside one, or one with a `<`) until it is complete: nothing past the
    end is ever shown. Newlines are normalised to `\\n`, and the text is made valid
    UTF-8 (`valid_text`). Each delta costs what it holds: lines are scanned once, as
    they complete, and the text is joined only when asked for.
    """

    def __init__(self, action_format: str) -> None:
        self.stops = stop_sequences(action_format)
        # In the execute format fences only show things; the tags are the actions.
        self._fences_end = action_format == "markdown"
        self._pieces: list[str] = []
        self._unshown: list[str] = []
        self._length = 0
        self._shown = 0
        self._keep = max((len(stop) for stop in self.stops), default=1) - 1
        self._tail = ""
        self._carriage = False
        self._line: list[str] = []
        self._line_start = 0
        self._line_may_tag = False
        self._scanner = _ActionScanner(self._fences_end)
        self.ended = False

    @property
    def text(self) -> str:
        joined = "".join(self._pieces)
        self._pieces = [joined] if joined else []
        return joined

    @property
    def shown(self) -> str:
        return self.text[: self._shown]

    def add(self, delta: str) -> str:
        """Take `delta`; return the part of the answer that may be shown now."""
        if self.ended or not delta:
            return ""
        delta = self._newlines(delta)
        # Only the last few characters and the delta can hold a stop sequence now.
        stop = self._stop_in(self._tail + delta)
        end = None if stop is None else self._length - len(self._tail) + stop
        piece = delta if end is None else delta[: max(end - self._length, 0)]
        # Text before a stop sequence is all there is: its last line is complete.
        action = self._lines(piece, last=end is not None)
        self._append(piece)
        if action is not None and (end is None or action < end):
            end = action
        if end is not None:
            self.ended = True
            if end < self._length:
                self._truncate(end)
            return self._show(self._length)
        visible = self._length - self._held()
        if self._line_may_tag or self._scanner.in_execute:
            visible = min(visible, self._line_start)
        return self._show(visible)

    def finish(self) -> str:
        """The stream ended: whatever was held back, now that it is known to be text."""
        if not self.ended:
            if self._carriage:
                self._carriage = False
                self._lines("\n")
                self._append("\n")
            action = self._lines("", last=True)
            if action is not None and action < self._length:
                self._truncate(action)
        return self._show(self._length)

    # --- internals ---------------------------------------------------------------------

    def _newlines(self, delta: str) -> str:
        delta = valid_text(delta)
        if self._carriage:
            delta = "\r" + delta
        self._carriage = delta.endswith("\r")
        if self._carriage:
            delta = delta[:-1]
        return _normalise_newlines(delta)

    def _stop_in(self, window: str) -> int | None:
        found = [index for stop in self.stops if (index := window.find(stop)) >= 0]
        return min(found) if found else None

    def _held(self) -> int:
        """The longest end of the text that may still grow into a stop sequence."""
        tail = self._tail
        held = 0
        for stop in self.stops:
            # Only where the stop's first character is can such an end begin.
            start = tail.find(stop[0], len(tail) - min(len(stop) - 1, len(tail)))
            while start >= 0 and len(tail) - start > held:
                if stop.startswith(tail[start:]):
                    held = len(tail) - start
                    break
                start = tail.find(stop[0], start + 1)
        return held

    def _append(self, piece: str) -> None:
        if piece:
            self._pieces.append(piece)
            self._unshown.append(piece)
            self._length += len(piece)
            self._tail = (self._tail + piece)[-self._keep :] if self._keep else ""

    def _truncate(self, end: int) -> None:
        # The end is never in text already shown (that is what holding back is for).
        text = self.text[:end]
        self._pieces = [text] if text else []
        self._unshown = [text[self._shown :]]
        self._length = len(text)
        self._tail = text[-self._keep :] if self._keep else ""

    def _show(self, visible: int) -> str:
        """The text up to `visible` not shown yet; joined only when some is shown."""
        count = visible - self._shown
        if count <= 0:
            return ""
        unshown = "".join(self._unshown)
        self._unshown = [unshown[count:]]
        self._shown = visible
        return unshown[:count]

    def _lines(self, piece: str, *, last: bool = False) -> int | None:
        """Scan the lines `piece` completes (with `last`, the line it ends in too); where
        the first action ends, if it does."""
        if last:
            rest = "".join([*self._line, piece])
            self._line = []
            return self._scanner.lines(rest + "\n", self._line_start)
        if "\n" not in piece:
            self._line.append(piece)
            self._line_may_tag = self._line_may_tag or "<" in piece
            return None
        cut = piece.rindex("\n") + 1
        lines = "".join([*self._line, piece[:cut]])
        self._line = [piece[cut:]]
        self._line_may_tag = "<" in piece[cut:]
        start = self._line_start
        self._line_start += len(lines)
        return self._scanner.lines(lines, start)


class _ActionScanner:
    """Follows complete lines through the blocks they open and close, as `_scan` reads
    them, and tells where the first action closes."""

    def __init__(self, fences_end: bool) -> None:
        self._fences_end = fences_end
        # The open fence (its characters, whether it is labelled Python) and whether it
        # has code yet, or the open `<execute>` block's text so far; never both.
        self._fence: tuple[str, bool] | None = None
        self._has_code = False
        self._execute: list[str] | None = None

    @property
    def in_execute(self) -> bool:
        return self._execute is not None

    def lines(self, text: str, offset: int) -> int | None:
        """Scan `text`, complete lines starting at `offset` in the answer."""
        position = offset
        for line in text.split("\n")[:-1]:
            end = self._line(line, position)
            if end is not None:
                return end
            position += len(line) + 1
        return None

    def _line(self, line: str, offset: int) -> int | None:
        if self._fence is not None:
            return self._in_fence(line, offset)
        column = 0
        if self._execute is None:
            opening = _FENCE_OPEN.fullmatch(line)
            if opening is not None and _is_fence(opening):
                python = _language(opening) in _PYTHON_LANGUAGES
                self._fence = (opening.group("fence"), python)
                self._has_code = False
                return None
        while True:
            if self._execute is None:
                tag = _EXECUTE_OPEN.search(line, column)
                if tag is None:
                    return None
                self._execute, column = [tag.group()], tag.end()
            close = _EXECUTE_CLOSE.search(line, column)
            if close is None:
                self._execute.append(line[column:] + "\n")
                return None
            self._execute.append(line[column : close.end()])
            block = "".join(self._execute)
            self._execute = None
            tag = _EXECUTE_OPEN.match(block)
            if tag is not None and _execute_block(block, tag).code.strip():
                return offset + close.end()
            column = close.end()

    def _in_fence(self, line: str, offset: int) -> int | None:
        assert self._fence is not None
        fence, python = self._fence
        closing = rf"[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*"
        if re.fullmatch(closing, line) is None:
            # Indentation and blank lines are trimmed from code: any other
            # character makes the block one with code to run.
            self._has_code = self._has_code or bool(line.strip())
            return None
        self._fence = None
        if self._fences_end and python and self._has_code:
            return offset + len(line)
        return None


# --- scanning --------------------------------------------------------------------


def _normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _scan(text: str) -> list[Block]:
    """Blocks in order of appearance. Whichever opens first owns the text it spans:
    an `<execute>` inside a fence is code, a fence inside `<execute>` is its content."""
    blocks: list[Block] = []
    position = 0
    while position < len(text):
        tag = _EXECUTE_OPEN.search(text, position)
        fence = _FENCE_OPEN.search(text, position)
        while fence is not None and not _is_fence(fence):
            fence = _FENCE_OPEN.search(text, fence.end() + 1)
        if tag is not None and (fence is None or tag.start() < fence.start()):
            block = _execute_block(text, tag)
        elif fence is not None:
            block = _fenced_block(text, fence)
        else:
            break
        blocks.append(block)
        position = max(block.end, position + 1)
    return blocks


def _is_fence(match: re.Match[str]) -> bool:
    # CommonMark: a backtick fence's info string has no backticks, else ```x``` on one
    # line is inline code, not a block.
    return not (match.group("fence")[0] == "`" and "`" in match.group("info"))


def _execute_block(text: str, tag: re.Match[str]) -> Block:
    close = _EXECUTE_CLOSE.search(text, tag.end())
    content = text[tag.end() : close.start() if close else len(text)]
    end = close.end() if close else len(text)
    code = _execute_code(content)
    return Block("execute", "python", code, tag.start(), end, close is not None)


def _execute_code(content: str) -> str:
    first, newline, rest = content.partition("\n")
    # Code written on the tag's line (`<execute> x = 1`) starts after the spaces that
    # separate it from the tag.
    content = first.lstrip() + newline + rest
    inner = [block for block in _scan(content) if block.kind != "execute"]
    # Some models wrap a fenced block in the tags; the fence lines are not Python.
    # A fence in another language stays as written: its SyntaxError tells the model.
    if (
        len(inner) == 1
        and inner[0].kind in ("python", "bare")
        and not content[: inner[0].start].strip()
        and not content[inner[0].end :].strip()
    ):
        return inner[0].code
    return _trim_blank_lines(content)


def _fenced_block(text: str, opening: re.Match[str]) -> Block:
    indent = len(opening.group("indent"))
    fence = opening.group("fence")
    language = _language(opening)
    if language in _PYTHON_LANGUAGES:
        kind: BlockKind = "python"
    else:
        kind = "bare" if not language else "other"
    body_start = opening.end() + 1
    closing_line = rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$"
    closing = re.compile(closing_line, re.M).search(text, body_start)
    if closing is not None:
        body, end, closed = text[body_start : closing.start()], closing.end(), True
    else:
        body, end, closed = _unclosed_body(text, body_start, fence)
    code = _trim_blank_lines(_dedent(body, indent))
    return Block(kind, language, code, opening.start(), min(end, len(text)), closed)


def _language(opening: re.Match[str]) -> str:
    """The language a fence's info string names (```` ```{python} title="a.py" ````)."""
    info = opening.group("info").strip().strip(_INVISIBLE).lower()
    match = _INFO_WORD.match(info)
    language = match.group("language").strip(_INVISIBLE) if match else ""
    if _PYTHON_VERSION.fullmatch(language):
        return "python"
    return language


def _unclosed_body(text: str, body_start: int, fence: str) -> tuple[str, int, bool]:
    """The body of a fence with no closing line: to the end of the answer, unless a
    line ends with the fence (`print(x)```), a slip small models make."""
    char = re.escape(fence[0])
    glued = re.compile(rf"^(?P<code>[^\n]*[^\n{char}\s])[ \t]*{char}{{{len(fence)},}}[ \t]*$", re.M)
    match = glued.search(text, body_start)
    if match is None:
        return text[body_start:], len(text), False
    return text[body_start : match.end("code")], match.end(), True


def _dedent(body: str, indent: int) -> str:
    """Remove up to the opening fence's indentation from each line (CommonMark)."""
    if not indent:
        return body
    lines = body.split("\n")
    for i, line in enumerate(lines):
        width = len(line) - len(line.lstrip(" \t"))
        lines[i] = line[min(width, indent) :]
    return "\n".join(lines)


def _trim_blank_lines(text: str) -> str:
    """Drop whitespace-only lines at both ends; the first real line keeps its indent."""
    lines = text.split("\n")
    start, stop = 0, len(lines)
    while start < stop and not lines[start].strip():
        start += 1
    while stop > start and not lines[stop - 1].strip():
        stop -= 1
    return "\n".join(lines[start:stop])


def _select_actions(blocks: tuple[Block, ...]) -> tuple[Block, ...]:
    runnable = [block for block in blocks if block.code.strip()]
    for kind in ("execute", "python", "bare"):
        chosen = tuple(block for block in runnable if block.kind == kind)
        if chosen:
            return chosen
    return ()
