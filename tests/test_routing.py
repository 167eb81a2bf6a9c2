"""Routing: which cells are natural language for the model, which are code for IPython.

Examples both ways, then properties: generated Python and IPython syntax is never sent
to the model; generated prose that does not compile always is; nothing ever raises.
An IPython shell in a subprocess checks the automagic rule against IPython itself.
"""

from __future__ import annotations

import ast
import json
import keyword
import os
import string
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from IPython.core.inputtransformer2 import TransformerManager

from codeact_kernel.routing import Route, route_cell

FLAGS = ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT


def compiles(source: str) -> bool:
    try:
        compile(source, "<test>", "exec", FLAGS, dont_inherit=True)
    except (SyntaxError, ValueError):
        return False
    return True


def ipython_compiles(cell: str) -> bool:
    try:
        return compiles(TransformerManager().transform_cell(cell))
    except SyntaxError:
        return False


# --- examples -----------------------------------------------------------------------

NATURAL_LANGUAGE = [
    "plot x vs y",
    "Plot revenue by month.",
    "load sales.csv and plot revenue by month",
    "fix the error above",
    "what's in df?",
    "what is the mean of df?",  # IPython alone would run `%pinfo df`
    "what is x[0]?",
    "is x > 3?",
    "what is df['a'].mean()?",
    "explain this: `df.groupby('a').sum()`",
    "1. load data\n2. plot it",
    "- load the data\n- plot it",
    "print hello world",
    "load the sales data",  # `%load …` only with automagic on
    "run the analysis again",
    "time to plot the results",
    "who is the best customer?",
    "help me",
    "go on",
    "Thanks!",
    "Do the following:",
    "Steps:\n- load the data\n- plot it",
    "Do the following:\n  x = 1\n  y = 2",
    "for each file in the folder:",
    "for each row in df, print the name",
    "import the csv and plot it",
    "if the file exists, load it",
    "return the mean of each column",
    "None of these work",
    "calculate 15% of 200",
    "set the title to 'Monthly revenue'",
    "the users' names and the teachers' notes",
    "compute x = a + b for each row",
    "Zeige die ersten fünf Zeilen von df",
    "Charge les données et trace le chiffre d'affaires",
    "Загрузи данные и построй график",
    "¿Cuál es la media de df?",
    "データを読み込んで、グラフを描いてください。",
    "数据 的 平均值",
    "डेटा लोड करो",
    "% change in revenue by month",
    ", and then plot it",
    "?what is this",
    "```python\nx = 1\n```",
    "why does this fail?\nfor x in range(3)\n    print(x",
    "Fix this:\nx = foo(\ny = 2\nz = 3",
    "%matplotlib inline\nimport numpy as np\nx = np.arange(10)\nwhat is the mean of x?",
    "x = 1\nwhat is df?",
    "explain this\ndf.groupby('a').sum()",
    "# Task\nload the data and plot it",
    "\n\n  load the data\n\n",
]

CODE = [
    "",
    "   \n\t\n",
    "# just a comment",
    "# load the data\n# and plot it",
    "x = 1",
    "import pandas as pd",
    "await asyncio.sleep(1)",
    "async with session() as s:\n    await s.get(url)",
    "help",  # a single name runs as Python: NameError or the object's repr
    "continue",
    "thanks",
    "not now",  # compiles
    "加载销售数据并绘制收入",  # one valid identifier
    "df",
    "df?",
    "df.a?",
    "np.mean??",
    "?df",
    "??x",
    "a[0]?",
    "*int*?",
    "%time?",
    "?",
    "%time x",
    "%time load the data?",
    "%matplotlib inline",
    "%pip install pandas",
    "%%time\nload the data",
    "%%bash\nls -la | wc -l",
    "%%codeact?",
    "%%codeactx\nhello",
    "%codeact model=openai:gpt-4o-mini",
    "!ls -la",
    "!!ls",
    "!echo what?",
    "!important do it",
    "files = !ls",
    "names = %who_ls",
    "/f a b",
    ",f a b",
    ";f a b",
    ">>> x = 1\n>>> x + 1",
    "In [1]: x = 1",
    "  x = 1",
    "x = 1\ndf?",
    "x = 1  # why?\n%time f()",
    '%time f()\ns = """\nwhat is this?\nload the data and plot it\n"""',
    # does not compile, but is code: IPython shows its SyntaxError
    "x = ",
    "x =",
    "def f(:",
    "prnt(x",
    "foo(1, 2",
    "])",
    "x = y z",
    "x = foo(bar?",
    "f(x)?",
    "df['a']?",
    "np.mean ?",
    "df ?",
    "x = 1\n  y = 2",
    "def f():\nreturn 1",
    "for x in items:",
    "for x in items",
    "if ready",
    "else:",
    "try:",
    "except ValueError as e:",
    "match command.split():",
    "case [x, y]:",
    "import pandas as",
    "from os import",
    'print "hello"',
    "for x in range(3)\n    print(x)",
    "result = compute(\n    alpha,\n    beta\n",
    "data = {\n    'a': 1,\n    'b': 2,\nprint(data)",
    'def f(x):\n    """Compute the thing.\n\n    It does a lot of\n'
    '    interesting stuff.\n    """\n    return x +',
    "x = [1, 2, 3\ny = 4",
    "x == 1 ==",
    "lambda x: x +",
    "@property\ndef f(self)\n    return 1",
    "print('what is this?'",
    "df.groupby('a').sum(",
]


@pytest.mark.parametrize("cell", NATURAL_LANGUAGE)
def test_natural_language(cell: str) -> None:
    assert route_cell(cell) == Route("natural_language", cell)


@pytest.mark.parametrize("cell", CODE)
def test_code(cell: str) -> None:
    assert route_cell(cell) == Route("code", cell)


def test_the_examples_that_do_not_compile_really_do_not() -> None:
    # Keeps the tables honest: these are decided by the heuristics, not by compile().
    for cell in ["x = y z", "def f(:", "print hello world", "what's in df?", "for x in items"]:
        assert not compiles(cell)


# --- %%codeact ----------------------------------------------------------------------


def test_codeact_forces_natural_language() -> None:
    assert route_cell("%%codeact\nx = 1") == Route("natural_language", "x = 1")


def test_codeact_options_are_the_rest_of_the_first_line() -> None:
    cell = "%%codeact --model openai:gpt-4o --max-steps 3  \nplot it\nand save it"
    assert route_cell(cell) == Route(
        "natural_language", "plot it\nand save it", "--model openai:gpt-4o --max-steps 3"
    )


def test_codeact_after_blank_lines_and_indent_like_ipython() -> None:
    assert route_cell("\n\n  %%codeact -v\r\ncontinue") == Route(
        "natural_language", "continue", "-v"
    )


def test_codeact_with_no_request() -> None:
    assert route_cell("%%codeact") == Route("natural_language", "", "")
    assert route_cell("%%codeact opts") == Route("natural_language", "", "opts")


def test_codeact_only_on_the_first_line() -> None:
    assert route_cell("x = 1\n%%codeact\nplot it").kind == "code"


def test_single_words_go_to_the_model_with_codeact() -> None:
    assert route_cell("%%codeact\ncontinue").kind == "natural_language"


@given(options=st.text().map(lambda s: s.splitlines()[0] if s.splitlines() else s), body=st.text())
def test_codeact_property(options: str, body: str) -> None:
    route = route_cell(f"%%codeact {options}\n{body}")
    assert route == Route("natural_language", body, options.strip())


# --- automagic ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "cell", ["load the sales data", "run the analysis again", "time to plot", "history of sales"]
)
def test_automagic_keeps_ipython_meaning(cell: str) -> None:
    assert route_cell(cell).kind == "natural_language"
    assert route_cell(cell, automagic=True).kind == "code"


@pytest.mark.parametrize(
    "cell",
    [
        "plot revenue by month",  # not a magic
        "load the sales data?",  # a question: help claims it before automagic
        "load the data\nand plot it",  # IPython applies automagic to single lines only
        "load the data\n\n",  # … and a trailing blank line makes it two
        "load.x the data",  # `load.x` is not a magic name
        "# a note\nload the data",
    ],
)
def test_automagic_does_not_apply(cell: str) -> None:
    assert route_cell(cell, automagic=True).kind == "natural_language"


def test_automagic_with_the_shells_own_magics() -> None:
    assert route_cell("ask the model", automagic=True, line_magics={"ask"}).kind == "code"
    assert route_cell("load the data", automagic=True, line_magics=set()).kind == (
        "natural_language"
    )


ORACLE = """
import json, sys
from traitlets.config import Config
from IPython.core.interactiveshell import InteractiveShell
config = Config()
config.HistoryManager.enabled = False
shell = InteractiveShell(config=config)
shell.automagic = True
cells = json.load(sys.stdin)
out = {}
for cell in cells:
    try:
        out[cell] = shell.transform_cell(cell)
    except SyntaxError:
        out[cell] = None
json.dump({"magics": sorted(shell.magics_manager.magics["line"]), "cells": out}, sys.stdout)
"""


def ask_ipython(cells: list[str], tmp_path: Path) -> tuple[list[str], dict[str, str | None]]:
    """Run a real InteractiveShell (automagic on) in a subprocess: its line magics and
    what `transform_cell` makes of each cell."""
    env = {**os.environ, "IPYTHONDIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", ORACLE],
        input=json.dumps(cells),
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    answer = json.loads(done.stdout)
    return answer["magics"], answer["cells"]


def test_automagic_agrees_with_ipython(tmp_path: Path) -> None:
    # For lines that are not questions, with automagic on, the cell is code exactly
    # when the real shell can run it.
    cells = [
        "load the sales data",
        "run the analysis again",
        "time to plot",
        "who has the best sales",
        "history of sales",
        "reset everything now",
        "ls the files",
        "cd into the data folder",
        "  load the data",
        "load, then plot it",
        "run, the thing",
        "plot revenue by month",
        "fix the error above",
        "print hello world",
        "load.x the data",
        "open the file",
        "edit the plot -*- please",
        "edit the plot  # PYTHON-MODE",
    ]
    magics, transformed = ask_ipython(cells, tmp_path)
    for cell in cells:
        result = transformed[cell]
        runs = result is not None and compiles(result)
        routed = route_cell(cell, automagic=True, line_magics=magics).kind
        assert routed == ("code" if runs else "natural_language"), (cell, result)
    # The default set is IPython's own (a plain shell's line magics).
    for name in magics:
        assert route_cell(f"{name} the data now", automagic=True).kind == "code", name


# --- properties: code is never sent to the model --------------------------------------

# Strategies are wrapped in `deferred` to keep their reprs (which hypothesis shows
# in reports) short: the nested ones would otherwise run to megabytes.
IDENTIFIER = st.deferred(
    lambda: st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,7}", fullmatch=True).filter(
        lambda name: not keyword.iskeyword(name)
    )
)
UNICODE_IDENTIFIER = st.text(
    alphabet=st.characters(categories=["Lu", "Ll", "Lo", "Nd", "Mn"]), min_size=1, max_size=8
).filter(lambda name: name.isidentifier() and not keyword.iskeyword(name))
NAMES = st.deferred(lambda: st.one_of(IDENTIFIER, UNICODE_IDENTIFIER))
DOTTED = st.lists(IDENTIFIER, min_size=1, max_size=3).map(".".join)

LOAD, STORE = ast.Load(), ast.Store()
BINARY = [ast.Add(), ast.Sub(), ast.Mult(), ast.Div(), ast.FloorDiv(), ast.Mod(), ast.Pow()]
BINARY += [ast.MatMult(), ast.BitAnd(), ast.BitOr(), ast.BitXor(), ast.LShift(), ast.RShift()]
COMPARE = [ast.Eq(), ast.NotEq(), ast.Lt(), ast.LtE(), ast.Gt(), ast.GtE(), ast.Is()]
COMPARE += [ast.IsNot(), ast.In(), ast.NotIn()]

CONSTANTS = st.one_of(
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.binary(max_size=8),
    st.sampled_from([None, True, False, ...]),
).map(lambda value: ast.Constant(value=value))
NAME_EXPR = st.deferred(lambda: NAMES.map(lambda name: ast.Name(id=name, ctx=LOAD)))


def compound_expressions(children: st.SearchStrategy[ast.expr]) -> st.SearchStrategy[ast.expr]:
    keywords = st.lists(
        st.builds(ast.keyword, arg=IDENTIFIER, value=children),
        max_size=2,
        unique_by=lambda kw: kw.arg,
    )
    return st.one_of(
        st.builds(ast.BinOp, children, st.sampled_from(BINARY), children),
        st.builds(
            ast.UnaryOp,
            st.sampled_from([ast.USub(), ast.UAdd(), ast.Not(), ast.Invert()]),
            children,
        ),
        st.builds(
            ast.BoolOp,
            st.sampled_from([ast.And(), ast.Or()]),
            st.lists(children, min_size=2, max_size=3),
        ),
        st.builds(
            lambda left, rest: ast.Compare(left, [op for op, _ in rest], [v for _, v in rest]),
            children,
            st.lists(st.tuples(st.sampled_from(COMPARE), children), min_size=1, max_size=2),
        ),
        st.builds(ast.Call, children, st.lists(children, max_size=3), keywords),
        st.builds(ast.Attribute, children, IDENTIFIER, st.just(LOAD)),
        st.builds(ast.Subscript, children, children, st.just(LOAD)),
        st.builds(ast.List, st.lists(children, max_size=3), st.just(LOAD)),
        st.builds(ast.Tuple, st.lists(children, max_size=3), st.just(LOAD)),
        st.builds(ast.Set, st.lists(children, min_size=1, max_size=3)),
        st.lists(st.tuples(children, children), max_size=3).map(
            lambda items: ast.Dict([k for k, _ in items], [v for _, v in items])
        ),
        st.builds(ast.IfExp, children, children, children),
        # `await` of a name or call: ast.unparse writes `await -1` for a unary operand,
        # which does not parse.
        st.builds(ast.Await, st.one_of(NAME_EXPR, NAME_EXPR.map(lambda f: ast.Call(f, [], [])))),
        st.builds(
            lambda element, target, source: ast.ListComp(
                element, [ast.comprehension(ast.Name(target, STORE), source, [], 0)]
            ),
            children,
            NAMES,
            children,
        ),
    )


EXPRESSIONS = st.deferred(
    lambda: st.recursive(st.one_of(CONSTANTS, NAME_EXPR), compound_expressions, max_leaves=8)
)
TARGETS = st.deferred(
    lambda: st.one_of(
        NAMES.map(lambda name: ast.Name(id=name, ctx=STORE)),
        st.builds(ast.Attribute, NAME_EXPR, IDENTIFIER, st.just(STORE)),
        st.builds(ast.Subscript, NAME_EXPR, EXPRESSIONS, st.just(STORE)),
    )
)


def function(name: str, params: list[str], body: list[ast.stmt], is_async: bool) -> ast.stmt:
    arguments = ast.arguments(
        posonlyargs=[],
        args=[ast.arg(arg=p) for p in params],
        vararg=None,
        kwonlyargs=[],
        kw_defaults=[],
        kwarg=None,
        defaults=[],
    )
    kind = ast.AsyncFunctionDef if is_async else ast.FunctionDef
    return kind(name=name, args=arguments, body=body, decorator_list=[], returns=None)


def compound_statements(
    children: st.SearchStrategy[list[ast.stmt]],
) -> st.SearchStrategy[list[ast.stmt]]:
    body = children.map(lambda stmts: stmts or [ast.Pass()])
    statement = st.one_of(
        st.builds(ast.If, EXPRESSIONS, body, st.one_of(st.just([]), body)),
        st.builds(lambda t, i, b: ast.For(t, i, b, []), TARGETS, EXPRESSIONS, body),
        st.builds(lambda t, i, b: ast.AsyncFor(t, i, b, []), TARGETS, EXPRESSIONS, body),
        st.builds(lambda t, b: ast.While(t, b, []), EXPRESSIONS, body),
        st.builds(
            lambda e, n, b: ast.With([ast.withitem(e, n)], b),
            EXPRESSIONS,
            st.none() | TARGETS,
            body,
        ),
        st.builds(
            function,
            IDENTIFIER,
            st.lists(IDENTIFIER, max_size=3, unique=True),
            body.map(lambda b: [*b, ast.Return(ast.Constant(1))]),
            st.booleans(),
        ),
        st.builds(
            lambda n, b: ast.ClassDef(name=n, bases=[], keywords=[], body=b, decorator_list=[]),
            IDENTIFIER,
            body,
        ),
        st.builds(
            lambda b, e, n, h: ast.Try(b, [ast.ExceptHandler(e, n if e else None, h)], [], []),
            body,
            st.none() | NAME_EXPR,
            st.none() | IDENTIFIER,
            body,
        ),
    )
    return st.lists(statement, min_size=1, max_size=2)


SIMPLE_STATEMENTS = st.deferred(lambda: _SIMPLE_STATEMENTS)
_SIMPLE_STATEMENTS = st.one_of(
    st.builds(ast.Expr, EXPRESSIONS),
    st.builds(lambda t, v: ast.Assign([t], v), TARGETS, EXPRESSIONS),
    st.builds(ast.AugAssign, TARGETS, st.sampled_from(BINARY), EXPRESSIONS),
    st.builds(
        lambda t, a, v: ast.AnnAssign(t, a, v, simple=1),
        NAMES.map(lambda n: ast.Name(n, STORE)),
        EXPRESSIONS,
        st.none() | EXPRESSIONS,
    ),
    st.builds(
        lambda m, a: ast.Import([ast.alias(m, a)]),
        DOTTED,
        st.none() | IDENTIFIER,
    ),
    st.builds(
        lambda m, n, level: ast.ImportFrom(m, [ast.alias(n, None)], level),
        st.none() | DOTTED,
        IDENTIFIER,
        st.integers(1, 2),
    ),
    st.builds(lambda m, n: ast.ImportFrom(m, [ast.alias(n, None)], 0), DOTTED, IDENTIFIER),
    st.builds(ast.Raise, st.none() | EXPRESSIONS, st.none()),
    st.builds(ast.Assert, EXPRESSIONS, st.none() | EXPRESSIONS),
    st.builds(lambda n: ast.Delete([ast.Name(n, ast.Del())]), NAMES),
    st.builds(lambda names: ast.Global(names), st.lists(IDENTIFIER, min_size=1, max_size=3)),
    st.sampled_from([ast.Pass(), ast.Break(), ast.Continue(), ast.Return(None)]),
    st.builds(lambda e: ast.Expr(ast.Await(e)), NAME_EXPR),
)
STATEMENTS = st.deferred(
    lambda: st.recursive(
        st.lists(SIMPLE_STATEMENTS, min_size=1, max_size=3), compound_statements, max_leaves=6
    )
)


def unparse(statements: list[ast.stmt]) -> str:
    module = ast.fix_missing_locations(ast.Module(body=statements, type_ignores=[]))
    return ast.unparse(module)


PYTHON = STATEMENTS.map(unparse)

# Arguments of magics and shell commands: anything on one line. (`?` is left out: an
# IPython line ending in `?` is a help request, tested on its own.)
ARGUMENTS = st.text(
    alphabet=st.characters(
        codec="utf-8", exclude_characters="\x00?\\\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
    ),
    max_size=30,
)
WORDS = st.lists(IDENTIFIER, max_size=4).map(" ".join)
HELP_TARGET = st.one_of(
    DOTTED,
    DOTTED.map(lambda d: d + "[0]"),
    IDENTIFIER.map(lambda n: f"*{n}*"),
    IDENTIFIER.map(lambda n: "%" + n),
)
IPYTHON_LINE = st.one_of(
    st.builds(lambda n, a: f"%{n} {a}".rstrip(), IDENTIFIER, ARGUMENTS),
    st.builds(lambda bang, a: f"{bang}{a}", st.sampled_from(["!", "!!"]), ARGUMENTS)
    # a line starting `!=` is Python's operator, not a shell escape
    .filter(lambda line: not line.startswith("!=")),
    st.builds(lambda t, q: t + q, HELP_TARGET, st.sampled_from(["?", "??"])),
    st.builds(lambda t, q: q + t, DOTTED, st.sampled_from(["?", "??"])),
    st.builds(lambda n, a: f"{n} = !{a}", IDENTIFIER, ARGUMENTS).filter(lambda s: "!=" not in s),
    st.builds(lambda n, m, a: f"{n} = %{m} {a}", IDENTIFIER, IDENTIFIER, ARGUMENTS),
    st.builds(lambda e, f, a: f"{e}{f} {a}", st.sampled_from("/,;"), IDENTIFIER, WORDS),
)
# Comments may hold prose, which must not matter.
COMMENT = st.builds(lambda t: "# " + t, ARGUMENTS)
CELL_MAGIC = st.builds(lambda n, a, body: f"%%{n} {a}\n{body}", IDENTIFIER, ARGUMENTS, st.text())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(PYTHON)
def test_generated_python_is_code(source: str) -> None:
    assert compiles(source)
    assert route_cell(source) == Route("code", source)
    assert route_cell(source, automagic=True).kind == "code"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(PYTHON, IPYTHON_LINE, COMMENT, st.just("")), min_size=1, max_size=6))
@example(["%time load the data", "what = 1"])
@example(["x = 1", "df?"])
@example(["!echo load the data and plot it"])
def test_generated_ipython_is_code(chunks: list[str]) -> None:
    cell = "\n".join(chunks)
    assert ipython_compiles(cell), "the generator made something IPython rejects"
    assert route_cell(cell).kind == "code"
    assert route_cell(cell, automagic=True).kind == "code"


@settings(max_examples=300, deadline=None)
@given(PYTHON, st.sampled_from(["(", "[", "{", ")", "]", ",", " +", " =", " *"]), st.data())
def test_broken_python_stays_code(source: str, typo: str, data: st.DataObject) -> None:
    # Valid Python with a stray bracket or operator at the end of one line: IPython's
    # SyntaxError is the answer, not the model. (Not a stray colon: `x:` alone reads
    # like the heading `Steps:`, and is left to the model.)
    lines = source.splitlines()
    index = data.draw(st.integers(0, len(lines) - 1))
    lines[index] += typo
    cell = "\n".join(lines)
    assume(not ipython_compiles(cell))
    assert route_cell(cell).kind == "code"


@settings(deadline=None)
@given(CELL_MAGIC)
def test_cell_magics_are_code(cell: str) -> None:
    assume(not cell.startswith("%%codeact"))
    assert route_cell(cell) == Route("code", cell)


@given(NAMES)
def test_single_names_are_code(name: str) -> None:
    assert route_cell(name).kind == "code"
    assert route_cell(name + "?").kind == "code"


# --- properties: prose goes to the model ----------------------------------------------

ORDINARY = [
    "load", "run", "time", "who", "history", "plot", "edit", "reset", "save", "env",
    "alias", "macro", "page", "config", "debug", "pip", "cd", "ls", "cat", "store",
    "the", "a", "sales", "data", "revenue", "month", "mean", "of", "df", "column",
    "show", "me", "please", "then", "it", "again", "analysis", "chart", "by", "x", "y",
    "vs", "each", "row", "what's", "don't", "it's", "let's", "users'", "match", "case",
    "type", "print", "exec", "help", "fix", "error", "above", "why", "how", "does",
    "données", "Umsatz", "данные", "数据", "Zeige", "top", "10", "2024", "3.5",
]  # fmt: skip
KEYWORDS = [
    "for", "in", "if", "else", "and", "or", "not", "is", "import", "from", "with", "as",
    "return", "while", "try", "break", "continue", "pass", "class", "global", "yield",
    "raise", "assert", "None", "True", "False", "del", "lambda", "def", "async", "await",
]  # fmt: skip
VOCABULARY = ORDINARY + KEYWORDS
# Soft keywords are ordinary words, but `match x:` is a real block header, so the pair
# that makes a sentence prose is drawn without them.
PAIR_WORDS = [word for word in ORDINARY if word not in ("match", "case", "type")]


@st.composite
def decorated_word(draw: st.DrawFn) -> str:
    word = draw(st.sampled_from(VOCABULARY))
    form = draw(st.sampled_from(["plain"] * 6 + ["comma", "colon", "dquote", "squote", "paren"]))
    if form == "squote" and "'" in word:
        form = "dquote"
    return {
        "plain": word,
        "comma": word + ",",
        "colon": word + ":",
        "dquote": f'"{word}"',
        "squote": f"'{word}'",
        "paren": f"({word})",
    }[form]


@st.composite
def sentence(draw: st.DrawFn) -> str:
    """Words from the vocabulary, with at least two ordinary words side by side."""
    before = draw(st.lists(decorated_word(), max_size=5))
    pair = draw(st.lists(st.sampled_from(PAIR_WORDS), min_size=2, max_size=2))
    after = draw(st.lists(decorated_word(), max_size=5))
    end = draw(st.sampled_from(["", ".", "?", "!", ":", "...", " ?"]))
    marker = draw(st.sampled_from(["", "", "", "- ", "1. ", "2) ", "* "]))
    words = [*before, *pair, *after]
    if draw(st.booleans()):
        words[0] = words[0][:1].upper() + words[0][1:]
    return marker + " ".join(words) + end


PROSE = st.lists(sentence(), min_size=1, max_size=4).map("\n".join)


@settings(max_examples=500, deadline=None)
@given(PROSE)
@example("load the sales data")
@example("run the analysis again")
@example("for each row in df, print the name")
@example("import the data")
@example("None of these work")
def test_generated_prose_is_natural_language(cell: str) -> None:
    assume(not compiles(cell))
    assert route_cell(cell) == Route("natural_language", cell)


@settings(max_examples=200, deadline=None)
@given(st.lists(sentence(), min_size=2, max_size=4).map("\n".join))
def test_automagic_leaves_multiline_prose_alone(cell: str) -> None:
    assume(not compiles(cell))
    assert route_cell(cell, automagic=True).kind == "natural_language"


@settings(max_examples=300, deadline=None)
@given(PROSE, st.booleans())
def test_prose_under_codeact_is_the_request(request: str, automagic: bool) -> None:
    assert route_cell("%%codeact\n" + request, automagic=automagic) == Route(
        "natural_language", request
    )


# --- never raises ----------------------------------------------------------------------

CODEISH = st.text(alphabet=string.printable + "’“”¿？。、数据é\u2028\x00", max_size=200)


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(), CODEISH), st.booleans())
@example("(" * 500, False)
@example("-" * 10_000 + "1", False)
@example("x = '\\d'\nprint hello", False)
@example('"""' + "\nload the data", False)
@example("a\x00b", True)
def test_never_raises(cell: str, automagic: bool) -> None:
    route = route_cell(cell, automagic=automagic)
    assert route.kind in ("code", "natural_language")
    if not cell.lstrip().startswith("%%codeact"):
        assert route == Route(route.kind, cell)


def test_routing_leaves_warnings_to_ipython(recwarn: pytest.WarningsRecorder) -> None:
    cell = textwrap.dedent("""\
        pattern = '\\d+'
        x is 1
        load the data
    """)
    route_cell(cell)
    route_cell("pattern = '\\d'")
    assert not recwarn.list
