"""Decide whether a cell is natural language for the model or code for IPython.

The decision is made on the text the user wrote (DESIGN.md §4), in this order:

1. ``%%codeact`` as the first line (after blank lines, like any cell magic) forces
   natural language: the rest of that line is ``options``, the lines below it are
   the request.
2. A blank cell is code, and so is every cell that compiles as Python, top-level
   ``await`` included. So a cell of comments is code, and so is a single bare word:
   ``help``, ``df``, ``continue`` run as Python (a ``NameError`` or ``SyntaxError``
   is what an IPython user expects), and a one-word request needs ``%%codeact`` or
   a second word. Prose that happens to be one identifier (Chinese or Japanese
   without spaces or punctuation) is code for the same reason.
3. A cell whose first line is a cell magic (``%%time``) is code, whatever follows.
4. A cell that compiles after IPython's static input transforms is code: magics,
   ``!shell``, ``x = !cmd``, help on one name (``df?``, ``np.mean??``, ``?df``),
   autocall escapes with a name (``/f a``, ``,f a``, ``;f a``), pasted ``>>>``
   prompts. Unless a transform swallowed prose: IPython reads
   ``what is the mean of df?`` as ``%pinfo df``. A line of several words ending in
   ``?`` is a question, and an escape not followed by a name (``% change``,
   ``, and then``) is not IPython syntax; either sends the cell on to step 6.
5. With ``automagic=True`` (off by default in this kernel) a single-line cell that
   IPython would run as an automagic stays code, as in stock IPython:
   ``load the sales data`` is ``%load the sales data``, ``time to plot`` is
   ``%time to plot``. IPython's own conditions are mirrored (one line after the
   static transforms, no ``name =``/``name,`` assignment, first word a line magic),
   except that the namespace is not consulted: a magic shadowed by a variable still
   counts, and IPython then reports a ``SyntaxError`` rather than asking the model.
   Questions are unaffected: IPython's help transform claims them first.
6. The cell does not compile. Each line is judged prose or code, and the cell is
   natural language if prose wins.

   - A line is **code** if it is explicit IPython syntax, the header of a block
     (it compiles given a body: ``for x in items:``, ``else:``, ``if ready``), or
     has more code signals than prose signals. **Code signals**: each ``=`` (and two
     more for ``name =`` opening the line), each run of operators, each call or
     subscript (``f(``, ``[``, ``{``), unbalanced brackets, an unclosed string, a
     trailing comma. **Prose signals**: each pair of words or numbers side by side,
     which no Python statement has (``load the``, ``top 10``; keywords do not count,
     so ``for x in y`` has none), two for a question (several words ending in
     ``?``), one for each Markdown inline code span. Ties go to prose. Strings,
     comments, list markers (``1.``, ``-``) and Markdown emphasis are left out of
     the count, so ``print("hello world"`` is code and ``- load data`` is prose.
   - A line with no signal either way is code if it compiles on its own or starts
     with a statement keyword (``import pandas as``, ``def f``, also Python 2's
     ``print "hello"``), prose otherwise (``Thanks!``, ``what's in df``,
     ``データを読み込んで。``).
   - Blank lines, comments and the inside of triple-quoted strings are not counted;
     Markdown fences (````` ``` `````) count as prose.
   - The cell is natural language when its first judged line is prose ending in
     ``:`` or ``?`` (a request introducing pasted material: ``fix this:``), when
     its last judged line is a prose question (``<code>`` then ``why does this
     fail?``), when prose lines outnumber code lines, or on a tie when the first
     judged line is prose. Otherwise it is code, and IPython raises its
     ``SyntaxError`` as usual (``x =``, ``def f(:``, ``prnt(x``, a stray indent).

Known limits, by design: a typo in a keyword reads as prose (``improt pandas``), and
an equation with a word in front reads as code (``solve x^2 - 4 = 0``); ``%%codeact``
settles either. Autocall (off by default in IPython) is not modelled. Nothing is
cached per cell; a cell that compiles costs one ``compile`` call.
"""

from __future__ import annotations

import ast
import functools
import itertools
import keyword
import re
import warnings
from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

from IPython.core.inputtransformer2 import TransformerManager
from IPython.core.splitinput import split_user_input

__all__ = ["Route", "route_cell"]


@dataclass(frozen=True)
class Route:
    """Where a cell goes.

    ``text`` is the cell unchanged for code; for natural language it is the request:
    the cell itself, or what follows a leading ``%%codeact`` line (possibly empty —
    the caller decides what an empty request means). ``options`` is the rest of
    the ``%%codeact`` line, unparsed.
    """

    kind: Literal["code", "natural_language"]
    text: str
    options: str = ""


def route_cell(
    cell: str, *, automagic: bool = False, line_magics: Collection[str] | None = None
) -> Route:
    """Route one cell by the rules in this module's docstring. Never raises.

    ``automagic`` mirrors the shell's setting. ``line_magics`` names the line magics
    automagic may call; pass ``shell.magics_manager.magics["line"]`` for the exact
    set of a running shell (extensions and kernels add their own). By default it is
    IPython's built-in line magics and aliases.
    """
    forced = _codeact_request(cell)
    if forced is not None:
        return forced
    code = Route("code", cell)
    if not cell.strip() or _compiles(cell):
        return code
    if _CELL_MAGIC.match(cell.lstrip()):
        return code
    lines = _TRIPLE_QUOTED.sub(_blank_string, cell).splitlines()
    transformed = _ipython_transform(cell)
    if (
        transformed is not None
        and _compiles(transformed)
        and not any(_swallowed_by_ipython(line.strip()) for line in lines)
    ):
        return code
    if automagic and transformed is not None:
        magics = _builtin_line_magics() if line_magics is None else line_magics
        if _is_automagic(transformed, magics):
            return code
    return Route("natural_language", cell) if _reads_as_prose(lines) else code


# --- %%codeact --------------------------------------------------------------------

_CODEACT = "%%codeact"


def _codeact_request(cell: str) -> Route | None:
    # IPython skips leading blank lines and indentation before looking for a cell
    # magic, so `%%codeact` is recognised in the same place.
    head = cell.lstrip()
    if not head.startswith(_CODEACT):
        return None
    rest = head[len(_CODEACT) :]
    if rest and not rest[0].isspace():
        return None  # `%%codeactx` or `%%codeact?`: some other magic, or help on ours
    # Lines end where str.splitlines says, as in IPython's own cell-magic split.
    header = next(iter(rest.splitlines(keepends=True)), "")
    return Route("natural_language", rest[len(header) :], header.strip())


# --- compiling --------------------------------------------------------------------

_FLAGS = ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
_TRANSFORMER = TransformerManager()


def _compiles(source: str) -> bool:
    # Warnings (invalid escapes, say) are IPython's to show when it runs the cell;
    # under `-W error` they would otherwise turn valid code into "does not compile".
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            compile(source, "<cell>", "exec", _FLAGS, dont_inherit=True)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            # ValueError: NUL bytes; RecursionError/MemoryError: absurd nesting.
            return False
    return True


def _ipython_transform(cell: str) -> str | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return _TRANSFORMER.transform_cell(cell)
        except Exception:
            # IPython raises SyntaxError for help on a non-name (`f(x)?`) and can
            # fail in other ways on text its transforms were not written for; either
            # way IPython would not run the cell as code.
            return None


# --- IPython syntax ---------------------------------------------------------------

# Anything but whitespace and ASCII punctuation is word material, so accents, Indic
# vowel signs, CJK and curly apostrophes all stay inside their word.
_WORD_CHAR = r"[^\s!-/:-@\[-^`{-~]"
# What IPython accepts as the object of a help request (`obj?`): a dotted name,
# possibly with `*` wildcards or literal integer subscripts, possibly a magic.
_TARGET = rf"%{{0,2}}(?!\d)(?:{_WORD_CHAR}|\*)+(?:\.(?!\d)(?:{_WORD_CHAR}|\*)+|\[-?\d+\])*"
_EXPLICIT_IPYTHON = re.compile(
    rf"""
      !(?!=)                          # !shell, !!shell (`!=` is an operator)
    | %{{1,2}}[\w*.]                  # %magic, %%magic; "% change" is not one
    | [/,;][\w*.%]                    # autocall escapes followed by a name
    | \?{{1,2}}\s*(?:{_TARGET})?\s*\Z # ?obj, ??obj, and a bare ? (IPython's usage)
    | {_TARGET}\s*\?{{1,2}}\Z         # obj?, obj??; `np.mean ?` is a typo for it
    | [\w.,\[\]\s]+=\s*(?:%|!(?!=))    # x = %magic, x = !cmd
    """,
    re.VERBOSE,
)
_ESCAPE_CHARS = ("%", "/", ",", ";", "?")
_CELL_MAGIC = re.compile(r"%%[\w*.]")


def _swallowed_by_ipython(line: str) -> bool:
    """True if IPython accepts the line only by reading prose as IPython syntax."""
    if "?" not in line and not line.startswith(_ESCAPE_CHARS):
        return False
    if _EXPLICIT_IPYTHON.match(line):
        return False
    # A question ending in `?` becomes `%pinfo <last word>`; an escape without a
    # name becomes a magic named "" or a tuple of quoted words.
    return line.startswith(_ESCAPE_CHARS) or _is_question(_strip_markup(line)[0])


# IPython's own magics classes (IPython 9 imports them lazily, on attribute access).
_MAGICS_CLASSES = (
    "AsyncMagics",
    "AutoMagics",
    "BasicMagics",
    "CodeMagics",
    "ConfigMagics",
    "DisplayMagics",
    "ExecutionMagics",
    "ExtensionMagics",
    "HistoryMagics",
    "LoggingMagics",
    "NamespaceMagics",
    "OSMagics",
    "PackagingMagics",
    "PylabMagics",
    "ScriptMagics",
)


@functools.cache
def _builtin_line_magics() -> frozenset[str]:
    from IPython.core import magics
    from IPython.core.alias import default_aliases

    names: set[str] = set()
    for class_name in _MAGICS_CLASSES:
        magics_class = getattr(magics, class_name, None)
        if magics_class is not None:
            names.update(magics_class.magics.get("line", {}))
    names.update(name for name, _ in default_aliases())
    # InteractiveShell.init_magics registers these short aliases at start-up.
    names.update({"ed", "hist", "rep"})
    return frozenset(names)


def _is_automagic(transformed: str, magics: Collection[str]) -> bool:
    # The conditions IPython's prefilter checks, in its order: a single line after
    # the static transforms; `name = …` and `name, … = …` are assignments; then the
    # first word must be a magic.
    lines = transformed.splitlines()
    if len(lines) != 1:
        return False
    _, escape, name, rest = split_user_input(lines[0])
    return not escape and name in magics and not rest.lstrip().startswith(("=", ","))


# --- prose or code, line by line --------------------------------------------------

_TRIPLE_QUOTED = re.compile(r"(\"\"\"|''')(?:\\.|[^\\])*?(?:\1|\Z)", re.DOTALL)
_BACKTICKS = re.compile(r"`[^`\n]*`")
# A quote opens a string unless it follows a letter: "what's" and "users'" are
# apostrophes, `f"…"` and `rb'…'` are strings.
_STRING = re.compile(r"""(?<![\w'"])[rRbBuUfF]{0,2}(["'])(?:\\.|(?!\1)[^\\])*\1""")
_COMMENT = re.compile(r"#.*")
_LIST_MARKER = re.compile(r"\A\s*(?:[-*+•]|\d{1,3}[.)])\s+")
_EMPHASIS = re.compile(r"(?<![\w*])(\*\*?)(?=[^\s*])([^*]+?)(?<=[^\s*])\1(?![\w*])")

# A word may hold apostrophes ("what's") and end in one ("users'").
_TERM = re.compile(rf"(?!\d){_WORD_CHAR}(?:{_WORD_CHAR}|'(?={_WORD_CHAR}))*'?|\d[\w.]*")
_WORD = re.compile(rf"{_WORD_CHAR}+")

_ASSIGNMENT = re.compile(
    r"""\A[\w.\[\]"()*]+(?:\s*,\s*[\w.\[\]"()*]+)*\s*(?:[-+*/%&|^@]|//|\*\*|<<|>>)?=(?!=)"""
)
_EQUALS = re.compile(r"=+")
_OPERATORS = re.compile(r"[+*%<>|^&~@\\]+")
_CALL = re.compile(r"[\w)\]]\(")
_OPENERS = re.compile(r"[\[{]")
_PAIRS = {")": "(", "]": "[", "}": "{"}
# Once closed strings are gone, a double quote or a quote that is not an apostrophe
# opens a string that never ends: print("hello world)
_UNCLOSED_QUOTE = re.compile(r"\"|(?<!\w)'")

# Words that start a statement: keywords (but not `not`, `None`, `True`, `False`,
# which also start English sentences), and Python 2's `print` and `exec`, so that
# `print "hello"` gets Python 3's "Missing parentheses" error.
_STATEMENT_WORDS = (
    frozenset(keyword.kwlist) - {"and", "as", "in", "is", "not", "or", "None", "True", "False"}
) | {"print", "exec"}


def _blank_string(match: re.Match[str]) -> str:
    # Keep the line count so the lines after the string are judged as themselves.
    return '""' + "\n" * match.group().count("\n")


def _strip_markup(line: str) -> tuple[str, int]:
    """The line without inline code, strings and comments; and how much inline code."""
    text, inline_code = _BACKTICKS.subn(" ", line)
    # A string becomes `$`: no word, no quote, no operator, and it still keeps the
    # words on either side apart.
    text = _COMMENT.sub("", _STRING.sub("$", text))
    text = _LIST_MARKER.sub("", text)
    return _EMPHASIS.sub(r"\2", text), inline_code


def _reads_as_prose(lines: list[str]) -> bool:
    judged = [(s, prose) for s in map(str.strip, lines) if (prose := _is_prose(s)) is not None]
    if not judged:
        return False
    (first, first_is_prose), (last, last_is_prose) = judged[0], judged[-1]
    if first_is_prose and first.endswith((":", "?")):
        return True
    if last_is_prose and last.endswith("?"):
        return True
    prose_lines = sum(prose for _, prose in judged)
    code_lines = len(judged) - prose_lines
    return prose_lines > code_lines or (prose_lines == code_lines and first_is_prose)


def _is_prose(line: str) -> bool | None:
    """Judge one stripped line: True prose, False code, None not counted."""
    if not line or line.startswith("#"):
        return None
    if line.startswith(("```", "~~~")):
        return True
    if _EXPLICIT_IPYTHON.match(line):
        return False
    text, inline_code = _strip_markup(line)
    if text.rstrip().endswith(":") and _is_block_header(line):
        return False  # checked first: `match command:` and `case x:` have word pairs
    prose = inline_code + _word_pairs(text)
    if _is_question(text):
        prose += 2
    code = _code_signals(text)
    if prose or code:
        return prose >= code
    if _compiles(line) or _is_block_header(line):
        return False
    first_word = _WORD.match(text.lstrip())
    return first_word is None or first_word.group() not in _STATEMENT_WORDS


def _is_question(text: str) -> bool:
    """A line of several words ending in `?` (a single chunk like `f(x)?` is not)."""
    if not text.rstrip().endswith("?"):
        return False
    return sum(_WORD.search(chunk) is not None for chunk in text.split()) > 1


def _word_pairs(text: str) -> int:
    """Count words (or numbers) standing side by side, keywords excepted."""
    terms = list(_TERM.finditer(text))
    pairs = 0
    for left, right in itertools.pairwise(terms):
        gap = text[left.end() : right.start()]
        if (
            gap
            and gap.isspace()
            and not keyword.iskeyword(left.group())
            and not keyword.iskeyword(right.group())
        ):
            pairs += 1
    return pairs


def _code_signals(text: str) -> int:
    stripped = text.strip()
    signals = (
        len(_EQUALS.findall(text))
        + len(_OPERATORS.findall(text))
        + len(_CALL.findall(text))
        + len(_OPENERS.findall(text))
    )
    if _ASSIGNMENT.match(stripped):
        # `name = …` opening a line is code, even when a broken quote after it
        # leaves words side by side: s = 'it's a test'
        signals += 2
    if stripped.endswith(","):
        signals += 1
    if not _balanced(text):
        signals += 1
    if _UNCLOSED_QUOTE.search(text):
        signals += 1
    return signals


def _balanced(text: str) -> bool:
    stack: list[str] = []
    for char in text:
        if char in "([{":
            stack.append(char)
        elif char in _PAIRS and (not stack or stack.pop() != _PAIRS[char]):
            return False
    return not stack


def _is_block_header(line: str) -> bool:
    """True if the line compiles as the header of a block, given a body."""
    header = line if line.endswith(":") else line + ":"
    first_word = header.split(None, 1)[0].rstrip(":")
    if first_word in ("elif", "else"):
        source = f"if 1:\n pass\n{header}\n pass"
    elif first_word in ("except", "finally"):
        source = f"try:\n pass\n{header}\n pass"
    elif first_word == "try":
        source = f"{header}\n pass\nfinally:\n pass"
    elif first_word == "case":
        source = f"match 1:\n {header}\n  pass"
    elif first_word == "match":
        source = f"{header}\n case _:\n  pass"
    else:
        source = f"{header}\n pass"
    return _compiles(source)
