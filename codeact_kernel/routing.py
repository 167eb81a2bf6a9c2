"""Decide whether a cell is natural language for the model or code for IPython.

The decision is made on the text the user wrote (DESIGN.md §4), in this order:

1. ``%%codeact`` as the first line (after blank lines, like any cell magic) forces
   natural language: the rest of that line is ``options``, the lines below it are
   the request.
2. A cell with nothing to say is code: no letter, digit or emoji in any script. So a
   blank cell, one of invisible characters only (a zero-width space, a byte order
   mark) and one of punctuation only (``;``) cost no model call: IPython runs them,
   and reports what it reports.
3. A request in a language written without spaces (Chinese, Japanese, Thai…) can
   be one valid identifier: ``画一个正弦曲线``. A cell whose every line is one run of
   such text (a letter of such a script; no space, no ASCII punctuation, no ``_``,
   which is how code joins words; a ``?`` may end it) is natural language, unless a
   run is a name defined in the user's namespace or the builtins: ``数据`` is code
   once ``数据 = 1`` ran, and ``数据?`` is help on it. A run may quote a dotted name
   (``用plt.plot画图`` is ``用plt`` and its attribute): its first name decides. The
   same holds for a cell that is one keyword written the way a sentence starts:
   ``Continue``, ``Try``.
4. A cell that compiles as IPython compiles it is code: it parses, and each
   top-level statement compiles on its own (top-level ``await`` included). So a
   cell of comments is code, and so is a single name (``help``, ``df``, ``thanks``:
   a ``NameError`` is what an IPython user expects) or ``pass``; but ``continue``,
   ``break`` and ``return x`` only parse, they do not compile here. A cell that
   Python refuses for being nested too deeply (``(`` × 300, ``a.b.b…`` × 100,000:
   too many parentheses, recursion in the compiler) is code too: prose is never
   nested like that, and IPython's own error says what is wrong.
5. A cell whose first line is a cell magic (``%%time``) is code, whatever follows.
6. A cell that compiles after IPython's static input transforms is code: magics,
   ``!shell``, ``x = !cmd``, help on one name (``df?``, ``np.mean??``, ``?df``),
   autocall escapes with a name (``/f a``, ``,f a``, ``;f a``), pasted ``>>>``
   prompts. Unless a transform swallowed prose: IPython reads
   ``what is the mean of df?`` as ``%pinfo df``. A line of several words ending in
   ``?`` is a question, so is a keyword with a ``?`` (``continue?``: a keyword is no
   object to get help on), and an escape not followed by a name (``% change``,
   ``, and then``) is not IPython syntax; each sends the cell on to step 8.
7. With ``automagic=True`` (off by default in this kernel) a single-line cell that
   IPython would run as an automagic stays code, as in stock IPython:
   ``load the sales data`` is ``%load the sales data``, ``time to plot`` is
   ``%time to plot``. IPython's own conditions are mirrored (one line after the
   static transforms, no ``name =``/``name,`` assignment, first word a line magic),
   except that the namespace is not consulted: a magic shadowed by a variable still
   counts, and IPython then reports a ``SyntaxError`` rather than asking the model.
   Questions are unaffected: IPython's help transform claims them first.
8. The cell does not compile. Each line is judged prose or code, and the cell is
   natural language if prose wins.

   - A line is **code** if it is explicit IPython syntax, the header of a block
     ending in ``:`` (``for x in items:``, ``else:``), or has more code signals than
     prose signals. **Code signals**: each ``=`` (and two more for ``name =``
     opening the line), each run of operators, each call or subscript (``f(``,
     ``[``, ``{``), unbalanced brackets, an unclosed string, a trailing comma.
     **Prose signals**: each pair of words or numbers side by side, which no Python
     statement has (``load the``, ``top 10``; keywords do not count, so
     ``for x in y`` has none, nor does a soft keyword where a statement starts:
     ``match x + 1``; but a keyword that takes nothing, like ``try`` or
     ``continue``, followed by two words is one: ``try again with bins=20``), two
     for a question (several words ending in ``?``), one for each Markdown inline
     code span. Ties go to prose. Strings, comments, list markers (``1.``, ``-``),
     Markdown emphasis and smileys (``:)``) are left out of the count, so
     ``print("hello world"`` is code and ``- load data`` is prose.
   - A line with no signal either way that starts with a statement keyword (soft
     ones included) is read by Python's parser in the block where the keyword
     belongs (``else`` after an ``if``, ``break`` in a loop, ``return`` in a
     function). If the parser stops at a word, the keyword merely starts a
     sentence, and the line is prose: ``try again``, ``continue please``,
     ``else nothing``. If it reads the whole line, as a statement or the start of
     one, the line is code: ``for x in items``, ``import pandas as``,
     ``except ValueError as e``; Python 2's ``print "hello"`` too, which gets Python
     3's "Missing parentheses" error. Any other line without signals is code if it
     compiles on its own, prose otherwise (``Thanks!``, ``what's in df``,
     ``データを読み込んで。``).
   - A **short** line, though, has nothing but a keyword or a name to look like
     code: one word, or a keyword and one plain word or a list of them, perhaps
     with a full stop (``continue``, ``try``, ``pass``, ``if ready``,
     ``return it``, ``lambda calculus``, ``Thanks``). It is code when its words
     are what only code has: a keyword that takes an operand (not ``try`` or
     ``continue``), no full stop, and operands that are names of code: one letter
     (not ``a`` or ``I``), a number, a keyword, ``self``, a word joined by ``_`` or
     digits or with a capital inside, a capitalised class after ``class``,
     ``except``, ``raise``, a module Python finds after ``import`` or ``from``, or a
     name the user defined (``if x``, ``while True``, ``return df`` once ``df``
     exists, ``class Foo``, ``from os``, ``yield from``); and always
     after ``def``, ``elif``, ``nonlocal``, which English has no use for. Otherwise
     each run of short lines takes the side of the lines around it: code next to a
     code line or when its lines sit at different indentations, like a block
     (``if ready`` above an indented ``go()``); prose otherwise. So ``continue``
     alone goes to the model, and so does ``Thanks`` followed by ``now plot it``.
   - A line in a script written without spaces that quotes code is prose: its letters
     touch ASCII letters, or follow a digit or a closing bracket (``画出y=sin(x)的图像``,
     ``把df['a']画出来``), which a Python name never does. Its full-width punctuation
     (``，。？``) is one prose signal each; in a line without such letters it is a
     typo in code (``print(a，b)``), and IPython names the character.
   - Blank lines, comments and the inside of triple-quoted strings are not counted;
     Markdown fences (````` ``` `````) count as prose.
   - The cell is natural language when its first judged line is prose ending in
     ``:`` or ``?`` (a request introducing pasted material: ``fix this:``), when
     its last judged line is a prose question (``<code>`` then ``why does this
     fail?``), when prose lines outnumber code lines, or on a tie when the first
     judged line is prose. Otherwise it is code, and IPython raises its
     ``SyntaxError`` as usual (``x =``, ``def f(:``, ``prnt(x``, ``for x in
     range(3) print(x)``, a stray indent).

Known limits, by design: a typo in a keyword reads as prose (``improt pandas``); an
equation with a word in front reads as code (``solve x^2 - 4 = 0``), and so does a
sentence whose words happen to chain into Python through keywords (``return it if
possible``); a one-word request in a language written with spaces is a name
(``thanks``, ``계속``); a request without spaces that is a call is code
(``加上图例(legend)``), and a broken line whose name mixes scripts reads as prose
(``df数据 = (``). ``%%codeact`` settles each. Autocall (off by default in
IPython) is not modelled. Nothing is cached per cell; a cell that compiles costs
one ``compile`` call.
"""

from __future__ import annotations

import ast
import builtins
import functools
import importlib.util
import itertools
import keyword
import re
import sys
import unicodedata
import warnings
from collections.abc import Collection, Container
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
    cell: str,
    *,
    automagic: bool = False,
    line_magics: Collection[str] | None = None,
    namespace: Container[str] | None = None,
) -> Route:
    """Route one cell by the rules in this module's docstring. Never raises.

    ``automagic`` mirrors the shell's setting. ``line_magics`` names the line magics
    automagic may call; pass ``shell.magics_manager.magics["line"]`` for the exact
    set of a running shell (extensions and kernels add their own). By default it is
    IPython's built-in line magics and aliases. ``namespace`` holds the names the
    user has defined (``shell.user_ns``); without it only builtins are defined.
    """
    forced = _codeact_request(cell)
    if forced is not None:
        return forced
    code = Route("code", cell)
    if _says_nothing(cell):
        return code
    if _is_request_by_name(cell, namespace or ()):
        return Route("natural_language", cell)
    failure = _compile_failure(cell)
    if failure is None or _too_deep(failure):
        return code
    # Invisible characters (a zero-width space, a BOM pasted along) decide nothing:
    # code with one still raises Python's SyntaxError, prose with one is prose.
    visible = _without_invisible(cell)
    if visible != cell and _compile_failure(visible) is None:
        return code
    if _CELL_MAGIC.match(cell.lstrip()):
        return code
    lines = _TRIPLE_QUOTED.sub(_blank_string, visible).splitlines()
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
    prose = _reads_as_prose(lines, namespace or ())
    return Route("natural_language", cell) if prose else code


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

_AWAIT = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
_FLAGS = ast.PyCF_ONLY_AST | _AWAIT
_TRANSFORMER = TransformerManager()
# ValueError: NUL bytes; RecursionError/MemoryError: absurd nesting; OverflowError:
# what IPython also catches from compiling.
_COMPILE_ERRORS = (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError)


def _compiles(source: str) -> bool:
    """True if IPython would compile the cell: it parses, and each top-level statement
    compiles on its own (IPython runs them one by one, so a late ``from __future__``
    passes; a ``continue`` outside a loop does not)."""
    return _compile_failure(source) is None


def _compile_failure(source: str) -> BaseException | None:
    """Why IPython would not compile the cell (see `_compiles`), or None."""
    # Warnings (invalid escapes, say) are IPython's to show when it runs the cell;
    # under `-W error` they would otherwise turn valid code into "does not compile".
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            compile(source, "<cell>", "exec", _AWAIT, dont_inherit=True)
            return None
        except _COMPILE_ERRORS:
            pass
        # Rare: the cell may parse and yet not compile as a whole.
        try:
            tree = compile(source, "<cell>", "exec", _FLAGS, dont_inherit=True)
            for statement in tree.body:
                module = ast.Module(body=[statement], type_ignores=[])
                compile(module, "<cell>", "exec", _AWAIT, dont_inherit=True)
        except _COMPILE_ERRORS as error:
            return error
    return None


# How CPython says that a cell is nested too deeply for it (3.10 to 3.13).
_TOO_DEEP = re.compile(
    r"too many (?:statically )?nested|too deeply nested|too complex|maximum recursion", re.I
)


def _too_deep(error: BaseException) -> bool:
    """True if Python refused the cell for its nesting, not for its grammar. (Not a
    MemoryError: a megabyte of prose gets one too.)"""
    if isinstance(error, RecursionError):
        return True
    return isinstance(error, SyntaxError) and bool(_TOO_DEEP.search(str(error.msg)))


def _without_invisible(cell: str) -> str:
    """`cell` without format characters (Unicode category Cf: U+200B, the BOM …)."""
    if cell.isascii():
        return cell
    return "".join(char for char in cell if unicodedata.category(char) != "Cf")


def _says_nothing(cell: str) -> bool:
    """True if the cell has no letter, digit or emoji: it is blank, or invisible
    characters (format characters such as U+200B and the BOM), or punctuation."""
    for char in cell:
        category = unicodedata.category(char)
        if category[0] in "LN" or category == "So":
            return False
    return True


def _parses_to_the_end(source: str, line: str) -> bool:
    """True if Python's parser reads all of ``line``, the last line of ``source``,
    without finding an error before its end: it is a statement, or the start of one."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            compile(source, "<cell>", "exec", _FLAGS, dont_inherit=True)
        except SyntaxError as error:
            last = source.count("\n") + 1
            if error.lineno is None or error.offset is None:
                return False
            column = len(source.splitlines()[-1]) - len(line)
            return error.lineno > last or (
                error.lineno == last and error.offset - column > len(line)
            )
        except _COMPILE_ERRORS:
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
# Help on a keyword finds no object: `continue?` is a question. The constants are
# objects with help of their own.
_NOT_HELP_TARGETS = frozenset(keyword.kwlist) - {"None", "True", "False"}


def _is_ipython_syntax(line: str) -> bool:
    return _EXPLICIT_IPYTHON.match(line) is not None and not _is_help_on_keyword(line)


def _is_help_on_keyword(line: str) -> bool:
    return "?" in line and line.strip("?").strip() in _NOT_HELP_TARGETS


_CELL_MAGIC = re.compile(r"%%[\w*.]")


def _swallowed_by_ipython(line: str) -> bool:
    """True if IPython accepts the line only by reading prose as IPython syntax."""
    if "?" not in line and not line.startswith(_ESCAPE_CHARS):
        return False
    if _EXPLICIT_IPYTHON.match(line):
        return _is_help_on_keyword(line)
    # A question ending in `?` becomes `%pinfo <last word>` (so does one without
    # spaces that quotes code: `y=sin(x)的图像?`); an escape without a name becomes a
    # magic named "" or a tuple of quoted words.
    text = _strip_markup(line)[0]
    return line.startswith(_ESCAPE_CHARS) or _is_question(text) or bool(_GLUED.search(text))


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


# --- requests that read as names ---------------------------------------------------

# Letters of scripts that put no spaces between words: Thai, Lao, Tibetan, Myanmar,
# Khmer, Tai scripts, Balinese, Javanese, Han (with its radicals and marks), kana,
# Bopomofo, Yi and the compatibility and supplementary ideographs. Korean is written
# with spaces, so a Hangul name is one word like any other.
_UNSPACED_LETTER = re.compile(
    "[\u0e00-\u0eff\u0f00-\u0fff\u1000-\u109f\u1780-\u17ff\u1950-\u19ff"
    "\u1a20-\u1aaf\u1b00-\u1b7f\u2e80-\u2fdf\u3005-\u3007\u3021-\u3029"
    "\u3031-\u3035\u3038-\u303c\u3040-\u30ff\u3100-\u312f\u31a0-\u31bf"
    "\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\ua000-\ua4cf\ua980-\ua9ff"
    "\uaa60-\uaadf\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003ffff]"
)
# No whitespace, no ASCII punctuation, no `_`.
_UNSPACED_RUN = re.compile(rf"(?:(?!_){_WORD_CHAR})+")
_KEYWORDS = frozenset(keyword.kwlist)


def _is_request_by_name(cell: str, namespace: Container[str]) -> bool:
    """True if the cell reads as names that are not defined, but is a request: every
    line a sentence without spaces, or the cell one capitalised keyword (`Continue`,
    the way a sentence starts). A `?` may end a line: IPython would read `画图?` as
    help on the name `画图`. A sentence may quote a dotted name (`用plt.plot画图`,
    Python's `用plt` and its attribute `plot画图`), so it is the first name that must
    not be defined."""
    lines = [line.strip() for line in cell.splitlines()]
    runs = [line.rstrip("?") for line in lines if line and not line.startswith("#")]
    if not runs:
        return False
    unspaced = all(_is_unspaced_run(run) for run in runs)
    # A keyword written as a sentence's first word or shouted (`Continue`, `TRY`), not
    # any odd spelling of it (`iF`), which stays a name like any other.
    word = runs[0].lower() if len(runs) == 1 else ""
    capitalised = word in _KEYWORDS and runs[0] in (word.capitalize(), word.upper())
    if not (unspaced or capitalised):
        return False
    # Python reads names in NFKC form: half-width ﾃﾞｰﾀ is the variable データ.
    names = (unicodedata.normalize("NFKC", run.split(".")[0]) for run in runs)
    return not any(name in namespace or name in vars(builtins) for name in names)


def _is_unspaced_run(run: str) -> bool:
    """A sentence without spaces: runs of word characters joined by dots, the first with
    a letter of a script written without spaces (`df.数据` is an attribute, not one)."""
    first, *rest = run.split(".")
    return _UNSPACED_LETTER.search(first) is not None and all(
        _UNSPACED_RUN.fullmatch(part) is not None for part in (first, *rest)
    )


# --- prose or code, line by line --------------------------------------------------

_TRIPLE_QUOTED = re.compile(r"(\"\"\"|''')(?:\\.|[^\\])*?(?:\1|\Z)", re.DOTALL)
_BACKTICKS = re.compile(r"`[^`\n]*`")
# A quote opens a string unless it follows a letter: "what's" and "users'" are
# apostrophes, `f"…"` and `rb'…'` are strings.
_STRING = re.compile(r"""(?<![\w'"])[rRbBuUfF]{0,2}(["'])(?:\\.|(?!\1)[^\\])*\1""")
_COMMENT = re.compile(r"#.*")
_LIST_MARKER = re.compile(r"\A\s*(?:[-*+•]|\d{1,3}[.)])\s+")
_EMPHASIS = re.compile(r"(?<![\w*])(\*\*?)(?=[^\s*])([^*]+?)(?<=[^\s*])\1(?![\w*])")
# A smiley on its own: `try again :)` has no unbalanced bracket.
_EMOTICON = re.compile(r"(?:(?<=\s)|\A)[:;]-?[()DPp](?=\s|\Z)")

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

# Words that start a statement: keywords and soft keywords (but not `not`, `None`,
# `True`, `False`, which start expressions, nor `_`).
_NOT_OPENERS = {"and", "as", "in", "is", "not", "or", "None", "True", "False", "_"}
_STATEMENT_WORDS = frozenset({*keyword.kwlist, *keyword.softkwlist} - _NOT_OPENERS)
# Python 2's statements, so that `print "hello"` gets Python 3's "Missing
# parentheses" error.
_PYTHON2_STATEMENTS = frozenset({"print", "exec"})
# Where a keyword that cannot open a cell belongs: the source before it, and its indent.
_KEYWORD_CONTEXT = {
    "elif": ("if 1:\n pass\n", ""),
    "else": ("if 1:\n pass\n", ""),
    "except": ("try:\n pass\n", ""),
    "finally": ("try:\n pass\n", ""),
    "case": ("match 1:\n", " "),
}
# A short line: a word; or a keyword and one plain word, or a list of them; and
# perhaps a full stop.
_PLAIN = rf"(?:{_TERM.pattern})"
_SHORT = re.compile(rf"\A{_WORD_CHAR}+(?:\s+{_PLAIN}(?:\s*,\s*{_PLAIN})*)?[.!]*\Z")

_Verdict = Literal["prose", "code", "short"]


def _blank_string(match: re.Match[str]) -> str:
    # Keep the line count so the lines after the string are judged as themselves.
    return '""' + "\n" * match.group().count("\n")


def _strip_markup(line: str) -> tuple[str, int]:
    """The line without inline code, strings and comments; and how much inline code."""
    # A string becomes `$`: no word, no quote, no operator, and it still keeps the
    # words on either side apart. Strings go first: a backtick in one is no Markdown.
    text, inline_code = _BACKTICKS.subn(" ", _STRING.sub("$", line))
    text = _COMMENT.sub("", text)
    text = _EMOTICON.sub(" ", _LIST_MARKER.sub("", text))
    return _EMPHASIS.sub(r"\2", text), inline_code


def _reads_as_prose(lines: list[str], namespace: Container[str]) -> bool:
    judged = [
        (line.strip(), verdict, len(line) - len(line.lstrip()))
        for line in lines
        if (verdict := _judge(line.strip(), namespace)) is not None
    ]
    if not judged:
        return False
    prose = _side_with_neighbours(judged)
    (first, _, _), (last, _, _) = judged[0], judged[-1]
    if prose[0] and first.endswith((":", "?")):
        return True
    if prose[-1] and last.endswith("?"):
        return True
    prose_lines = sum(prose)
    code_lines = len(judged) - prose_lines
    return prose_lines > code_lines or (prose_lines == code_lines and prose[0])


def _side_with_neighbours(judged: list[tuple[str, _Verdict, int]]) -> list[bool]:
    """Which judged lines are prose, once each run of short lines has taken a side:
    code next to a code line or when indented like a block, prose otherwise."""
    prose = [verdict == "prose" for _, verdict, _ in judged]
    start = 0
    while start < len(judged):
        if judged[start][1] != "short":
            start += 1
            continue
        end = start
        while end < len(judged) and judged[end][1] == "short":
            end += 1
        borders = [judged[i][1] for i in (start - 1, end) if 0 <= i < len(judged)]
        block = len({indent for _, _, indent in judged[start:end]}) > 1
        prose[start:end] = [not (block or "code" in borders)] * (end - start)
        start = end
    return prose


def _judge(line: str, namespace: Container[str]) -> _Verdict | None:
    """Judge one stripped line; None: not counted."""
    if not line or line.startswith("#"):
        return None
    if line.startswith(("```", "~~~")):
        return "prose"
    if _is_ipython_syntax(line):
        return "code"
    text, inline_code = _strip_markup(line)
    if text.rstrip().endswith(":") and _is_block_header(line):
        return "code"  # checked first: `match command:` and `case x:` have word pairs
    if _GLUED.search(text):
        return "prose"  # 画出y=sin(x)的图像
    prose = inline_code + _word_pairs(text) + _full_width(text)
    if _is_question(text):
        prose += 2
    code = _code_signals(text)
    if prose or code:
        return "prose" if prose >= code else "code"
    first_word = _WORD.match(line)
    word = "" if first_word is None else first_word.group()
    short = first_word is not None and _SHORT.match(line) is not None
    head = line.removesuffix(":").removesuffix("：")  # a colon typed in a CJK input method
    if _SHORT.match(head) and _names_code(head, namespace):
        return "code"  # even where the parser stops early: `if x, y:`, `async x`
    if word in _STATEMENT_WORDS:
        before, indent = _KEYWORD_CONTEXT.get(word, ("", ""))
        # Does the parser read the whole line, or stop at a word (`try again`)?
        readable = _parses_to_the_end(before + indent + line, line)
    else:
        readable = word in _PYTHON2_STATEMENTS or _compiles(line)
    if not readable:
        return "prose"
    return "short" if short else "code"


# Keywords whose operand is an expression or a name. The others (`try`, `continue`,
# `else`…) take none, so a word after them is English: `try again`.
_OPERAND_KEYWORDS = frozenset(
    {"if", "elif", "while", "for", "return", "yield", "assert", "del", "raise", "await",
     "async", "with", "lambda", "def", "class", "import", "from", "global", "nonlocal",
     "except"}
)  # fmt: skip
# Keywords whose operand is a class: a capital letter starts its name.
_CLASS_KEYWORDS = frozenset({"class", "except", "raise"})
# Words English has no use for, so they open code whatever follows.
_CODE_ONLY_KEYWORDS = frozenset({"def", "elif", "nonlocal"})
# One letter is a variable, except the ones English uses as words.
_ENGLISH_LETTERS = frozenset({"a", "A", "I"})
_CODE_WORDS = frozenset({"self", "cls"})


def _names_code(line: str, namespace: Container[str]) -> bool:
    """True if a short line is a statement on names, not a sentence: a keyword that
    takes an operand, and operands only code has (`if x`, `return df` once `df` is
    defined, `def main`, `class Foo`, `while True`, `yield from`, `for i`).
    A sentence ends in a full stop (`import pandas.` is a request), code does not."""
    first, *operands = [term.group() for term in _TERM.finditer(line)]
    if first not in _OPERAND_KEYWORDS or not operands or line.endswith((".", "!")):
        return False
    if first in _CODE_ONLY_KEYWORDS:
        return True
    if first in _CLASS_KEYWORDS and all(word[0].isupper() for word in operands):
        return True
    if first in ("import", "from") and all(_is_module(word) for word in operands):
        return True  # `import os`, `from numpy`; not `import it`, `from here`
    return all(_is_code_operand(word, namespace) for word in operands)


@functools.cache
def _is_module(name: str) -> bool:
    """True if `name` is a top-level module Python can import (found, not imported)."""
    if not name.isidentifier():
        return False
    try:
        return name in sys.modules or importlib.util.find_spec(name) is not None
    except Exception:  # a third-party finder's failure; routing never raises
        return False


def _is_code_operand(word: str, namespace: Container[str]) -> bool:
    if word[0].isdigit() or keyword.iskeyword(word) or word in _CODE_WORDS:
        return True  # 0, 3.5, True, None, `yield from`, `async def`, self
    if word.isascii() and len(word) == 1:
        return word not in _ENGLISH_LETTERS
    # Only code joins words with `_` or digits, or capitalises inside a word (a
    # class: ValueError, MyModel); a capitalised first letter alone may start a name
    # of a class, but also a sentence's proper noun, so it does not count.
    if "_" in word or any(c.isdigit() for c in word) or any(c.isupper() for c in word[1:]):
        return True
    return unicodedata.normalize("NFKC", word) in namespace


def _is_question(text: str) -> bool:
    """A line of several words ending in `?` (a single chunk like `f(x)?` is not)."""
    if not text.rstrip().endswith("?"):
        return False
    return sum(_WORD.search(chunk) is not None for chunk in text.split()) > 1


# A keyword that takes nothing after it (but `:`), then two words: `try again with…`,
# `continue with df…`, never Python. The first is a name or a preposition, not a
# keyword that opens code (`pass assert f()`); the second does not go on with an
# expression (`continue x and y == 1`).
_KEYWORD_THEN_WORDS = re.compile(
    r"\A\s*(?:continue|break|pass|try|finally)\s+"
    r"(?:(?!(?:" + "|".join(keyword.kwlist) + r")\b)[^\W\d]\w*|with|from|for|in|as)"
    r"\s+(?!(?:and|or|if|else|is|in|not|for|async)\b)[^\W\d]"
)


def _word_pairs(text: str) -> int:
    """Count words (or numbers) standing side by side, keywords excepted; and a keyword
    that takes nothing, followed by two words."""
    terms = list(_TERM.finditer(text))
    # A soft keyword is a keyword where a statement starts: `match x`, `case 0`.
    opener = terms[0] if terms and not text[: terms[0].start()].strip() else None
    pairs = 0
    for left, right in itertools.pairwise(terms):
        gap = text[left.end() : right.start()]
        if (
            gap
            and gap.isspace()
            and not keyword.iskeyword(left.group())
            and not keyword.iskeyword(right.group())
            and not (left is opener and keyword.issoftkeyword(left.group()))
        ):
            pairs += 1
    return pairs + (_KEYWORD_THEN_WORDS.match(text) is not None)


# A script written without spaces that touches ASCII letters, or follows a digit or a
# closing bracket (Python has no `f(x) 数据`), is a sentence quoting code: `用plt画图`,
# `画出y=sin(x)的图像`, `把df['a']画出来`, `2024年`. (A limit: a broken line with a
# name like `df数据`.)
_GLUED = re.compile(
    rf"(?:[A-Za-z\d]|[)\]}}]\s*){_UNSPACED_LETTER.pattern}|{_UNSPACED_LETTER.pattern}[A-Za-z]"
)
# Sentence punctuation of those scripts (`，。？：`), which Python never accepts outside a
# string; in a line without their letters, a typo in code: `print(a，b)`.
_FULL_WIDTH_PUNCTUATION = re.compile(
    "[\u3001-\u3003\u3008-\u3011\u3014-\u301f\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65]"
)


def _full_width(text: str) -> int:
    if _UNSPACED_LETTER.search(text) is None:
        return 0
    return len(_FULL_WIDTH_PUNCTUATION.findall(text))


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
