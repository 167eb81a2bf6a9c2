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

Several action blocks in one answer are joined in order by a blank line and run as one
action: models split one step into "imports" then "compute" with prose between and
expect all of it to run; running only the first would silently drop work, and running
them as separate steps would cost model calls for no information. (As in any cell,
only the last expression's value is displayed.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "Block",
    "ParsedAnswer",
    "close_open_block",
    "extract_code",
    "parse_answer",
    "split_answer",
    "stop_sequences",
]

BlockKind = Literal["execute", "python", "bare", "other"]

# Info-string words that mark a fenced block as Python to run.
_PYTHON_LANGUAGES = frozenset({"python", "py", "python3", "py3", "ipython", "ipython3"})

_EXECUTE_OPEN = re.compile(r"<execute\s*>", re.IGNORECASE)
_EXECUTE_CLOSE = re.compile(r"</execute\s*>", re.IGNORECASE)
# A fence opens at the start of a line (after any indentation: fences nested in list
# items are indented). `^` under MULTILINE never matches mid-line, so text after an
# inline `</execute>` cannot open a fence.
_FENCE_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^\n]*)$", re.M)


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
        """The action to run, or None when the answer has no code (the model is done)."""
        if not self.actions:
            return None
        return "\n\n".join(block.code for block in self.actions)

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
    CodeAct training data, or the model learns to leave its blocks open.
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
    return f"{text}{separator}{fence}"


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
    info = opening.group("info").strip()
    language = info.split()[0].strip("{}.").lower() if info else ""
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
