"""Routing: which cells are natural language for the model, which are code for IPython.

Examples both ways, then properties: generated Python and IPython syntax is never sent
to the model; generated prose that does not compile always is, including sentences
that start with a Python keyword and requests in languages written without spaces;
nothing ever raises. An IPython shell in a subprocess checks the automagic rule, and
what compiles, against IPython itself.
"""

from __future__ import annotations

import ast
import importlib.util
import itertools
import json
import keyword
import os
import re
import string
import subprocess
import sys
import textwrap
import unicodedata
import warnings
from pathlib import Path
from typing import Any, Literal

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from IPython.core.inputtransformer2 import TransformerManager

from codeact_kernel.routing import _UNSPACED_LETTER as UNSPACED_LETTER
from codeact_kernel.routing import Route, route_cell

AWAIT = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT


def compiles(source: str) -> bool:
    """What IPython compiles: the cell parses, and each top-level statement compiles
    on its own (`continue` parses but does not compile outside a loop)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            tree = compile(source, "<test>", "exec", ast.PyCF_ONLY_AST | AWAIT, dont_inherit=True)
            for statement in tree.body:
                compile(ast.Module([statement], []), "<test>", "exec", AWAIT, dont_inherit=True)
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
    "Thanks\nnow plot it",  # a lone word takes the side of its neighbours
]

# Follow-ups that start with a Python keyword: none of them compiles.
KEYWORD_FOLLOW_UPS = [
    "try again",
    "try harder",
    "try again.",
    "continue",
    "continue please",
    "continue with the plot",
    "continue from step 3",
    "break",
    "return",
    "else",
    "is it sorted?",
    "return the top 5 rows",
    "return it",
    "pass the result to the plot",
    "import the data from sales.csv",
    "for each region show the total",
    "for now",
    "with the same data plot revenue",
    "with pleasure",
    "not that one, the other",
    "del the outliers and replot",
    "raise the threshold to 10",
    "break it down by month",
    "global warming data please",
    "assert that the totals match",
    "lambda calculus explained",
    "lambda calculus",
    "yield per acre by field",
    "finally plot it",
    "finally",
    "else show nothing",
    "while you're at it add a title",
    "if possible sort it",
    "if possible",
    "if so, plot",
    "class imbalance",
    "except the last one",
    "nonlocal",
    "async please",
    "match the colors",
    "- continue\n- try again",
    "try again\nthis time with more bins",
    "continue\n\nbreak it down by region",
    "continue?",  # not help: a keyword is no object
    "try?",
    # A keyword and plain words, or a full stop: nothing else looks like code.
    "if ready",
    "if possible",
    "if so",
    "if I",
    "for now",
    "for a",
    "as before",
    "with it",
    "return it",
    "return x.",
    "import pandas.",
    "async please",
    "yield curve",
    "from here",
    "import it\nplot it",
    "try\nagain",
    "False\nFalse load",
    # Quoting a little code, or smiling.
    "try again with bins=20",
    "try again, this time with df.dropna()",
    "continue with df['a']",
    "continue from In[5]",
    "try again :)",
    "continue ;-)",
]

# Requests in languages written without spaces, none of them a defined name.
UNSPACED = [
    "画一个正弦曲线",
    "加载销售数据并绘制收入",
    "画一个正弦曲线?",
    "画一个正弦曲线？",
    "用matplotlib画正弦曲线",
    "画3条曲线",
    "数据",
    "データを読み込んでグラフを描いて",
    "ﾃﾞｰﾀを読み込んで",
    "グラフ",
    "วาดกราฟรายได้รายเดือน",
    "画一个正弦曲线\n用红色",
    "# 任务\n画一个正弦曲线",
    # Quoting code: letters glued to ASCII, after a digit or a bracket; dotted names.
    "画出y=sin(x)的图像",
    "y=sin(x)的图像",
    "画出 y=sin(x) 的图像",
    "把df['a']画出来",
    "计算df.mean()的结果",
    "x=1のときの値は？",
    "df.head()を表示して",
    "print(x)是什么意思？",
    "x[0]是多少",
    "{'a': 1}是什么",
    "2024年的收入",
    "画图：sin(x)",
    "用plt.plot画图",
    "读取data.csv并画图",
    "使用pandas读取sales.csv",
    "วาดกราฟsin(x)หน่อย",
    "y=sin(x)的图像?",
    "画出y=sin(x)。",  # without the full stop, an assignment to `画出y`
]

# A keyword written the way a sentence starts is a name, but not a defined one.
CAPITALISED = ["Continue", "Try", "Break", "Continue?", "CONTINUE"]

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
    "thanks",
    "pass",  # compiles, unlike `continue`
    "raise",
    "not now",  # compiles
    "global warming",
    "import this",
    "x = 1\nfrom __future__ import annotations",  # IPython compiles statement by statement
    "print(y)\nglobal y",
    "数据 = 1",
    "数据.mean()",
    "数据_2024",  # an underscore joins words in code, not in prose
    "계속",  # Korean puts spaces between words: one word is a name, like `thanks`
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
    "for x, y in pairs",
    "if x is None",
    "while not done",
    "async def f",
    "return df.head()",
    "return 'done'",
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
    "for x in range(3) print(x)",
    "if x > 1 print(x)",
    "x = (1,",
    "while True print(1)",
    "def f(x)\n    return x",
    "if ready\n    go()",
    "for x in items\n    continue",
    "while waiting\n    break",
    "def f\n    return 1",
    "try\n    f()\nexcept ValueError\n    pass",
    "if x:\n    y = 1\nelse\n    y = 2",
    "x = 1\ncontinue",
    "for 数据 in 列表",
    "数据 = 读取(文件",
    "数据2 = 3 +",
    "数据[0",
    "df.数据",  # an attribute of an undefined name: NameError
    "print(a，b)",  # a full-width comma typed in code: IPython names the character
    "x = foo(a，b)",
    "for i in range(3)：",
    "if x：",
    "match x + 1",  # a soft keyword where a statement starts is a keyword
    # A keyword and operands only code has: incomplete code, IPython's SyntaxError.
    "if x",
    "while x",
    "while True",
    "while 1",
    "return x",
    "return None",
    "return 5",
    "return self",
    "yield x",
    "yield from",
    "for i",
    "for x, y",
    "lambda x",
    "elif x",
    "def f",
    "def main",
    "def plot_data",
    "nonlocal count",
    "class A",
    "class Foo",
    "class MyModel",
    "except ValueError",
    "except Exception",
    "raise SystemExit",
    "async def",
    "if __name__",
    "return my_list",
    "if x1",
    "import numpy_financial",
    "from os",
    "import os\nreturn os",
    "x = '`a`' +",  # a backtick in a string is no Markdown
]


@pytest.mark.parametrize("cell", NATURAL_LANGUAGE + KEYWORD_FOLLOW_UPS + UNSPACED + CAPITALISED)
def test_natural_language(cell: str) -> None:
    assert route_cell(cell) == Route("natural_language", cell)


@pytest.mark.parametrize("cell", CODE)
def test_code(cell: str) -> None:
    assert route_cell(cell) == Route("code", cell)


def test_the_examples_that_do_not_compile_really_do_not() -> None:
    # Keeps the tables honest: these are decided by the heuristics, not by compile().
    for cell in ["x = y z", "def f(:", "print hello world", "what's in df?", "for x in items"]:
        assert not compiles(cell)
    for cell in KEYWORD_FOLLOW_UPS:
        assert not compiles(cell), cell


# --- names in languages written without spaces ---------------------------------------


@pytest.mark.parametrize("cell", ["数据", "数据?", "数据??", "画一个正弦曲线", "データ"])
def test_a_defined_unspaced_name_is_code(cell: str) -> None:
    namespace = {"数据": 1, "画一个正弦曲线": print, "データ": [1]}
    assert route_cell(cell, namespace=namespace) == Route("code", cell)
    assert route_cell(cell) == Route("natural_language", cell)


def test_names_are_looked_up_as_python_reads_them() -> None:
    # NFKC: half-width katakana name the same variable as full-width ones.
    assert route_cell("ﾃﾞｰﾀ", namespace={"データ": 1}).kind == "code"
    assert route_cell("ﾃﾞｰﾀ", namespace={"ﾃﾞｰﾀ": 1}).kind == "natural_language"


@pytest.mark.parametrize(
    "cell", ["if done", "return result", "while running", "for row", "for 数据"]
)
def test_a_keyword_on_a_defined_name_is_code(cell: str) -> None:
    # `return result` is a request until `result` exists; then it is code that
    # does not compile, and IPython's SyntaxError is the answer.
    namespace = {"done", "result", "running", "row", "数据"}
    assert route_cell(cell) == Route("natural_language", cell)
    assert route_cell(cell, namespace=namespace) == Route("code", cell)
    assert route_cell(cell + ".", namespace=namespace).kind == "natural_language"


def test_a_dotted_request_is_code_when_its_first_name_is_defined() -> None:
    assert route_cell("用plt.plot画图", namespace={"用plt"}).kind == "code"
    assert route_cell("数据.head", namespace={"数据"}).kind == "code"
    assert route_cell("数据.head").kind == "natural_language"


def test_one_defined_name_makes_the_cell_code() -> None:
    cell = "数据\n画一个正弦曲线"
    assert route_cell(cell, namespace={"数据": 1}).kind == "code"
    assert route_cell(cell).kind == "natural_language"


def test_any_container_of_names_is_a_namespace() -> None:
    assert route_cell("数据", namespace=frozenset({"数据"})).kind == "code"


NOT_CONSTANTS = [word for word in keyword.kwlist if word not in ("None", "True", "False")]


@pytest.mark.parametrize("word", NOT_CONSTANTS)
def test_a_capitalised_keyword_is_a_request_unless_defined(word: str) -> None:
    for cell in (word.capitalize(), word.upper()):
        assert route_cell(cell) == Route("natural_language", cell)
        assert route_cell(cell, namespace={cell}) == Route("code", cell)


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


RUN_ORACLE = """
import io, json, sys
from traitlets.config import Config
from IPython.core.interactiveshell import InteractiveShell
config = Config()
config.HistoryManager.enabled = False
shell = InteractiveShell(config=config)
shell.automagic = False
answer, sys.stdout = sys.stdout, io.StringIO()  # tracebacks are not the answer
out = {}
for cell in json.load(sys.stdin):
    result = shell.run_cell(cell, store_history=False, silent=True)
    before, during = result.error_before_exec, result.error_in_exec
    out[cell] = [type(e).__name__ if e is not None else None for e in (before, during)]
json.dump(out, answer)
"""


def run_in_ipython(cells: list[str], tmp_path: Path) -> dict[str, list[str | None]]:
    """Run each cell in a real InteractiveShell (automagic off, as in this kernel) in a
    subprocess: the exception raised before execution (compiling), and during it."""
    env = {**os.environ, "IPYTHONDIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", RUN_ORACLE],
        input=json.dumps(cells),
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    answer: dict[str, list[str | None]] = json.loads(done.stdout)
    return answer


def test_keyword_follow_ups_are_what_ipython_cannot_compile(tmp_path: Path) -> None:
    # Each cell IPython compiles is code; each follow-up sent to the model is one
    # IPython would have refused with a SyntaxError before running anything.
    runs = ["pass", "raise", "global warming", "y = 1\nprint(y)\nglobal y"]
    runs += ["x = 1\nfrom __future__ import annotations", "数据 = 2"]
    # After `数据 = 2` ran in the same shell, `数据` is defined.
    answers = run_in_ipython([*runs, "数据", *KEYWORD_FOLLOW_UPS], tmp_path)
    for cell in runs:
        assert answers[cell][0] is None, (cell, answers[cell])
        assert route_cell(cell).kind == "code", cell
    assert answers["数据"] == [None, None]
    assert route_cell("数据", namespace={"数据": 2}).kind == "code"
    for cell in KEYWORD_FOLLOW_UPS:
        # (IPython would read a question as help on its last word: `%pinfo sorted`.)
        if not cell.endswith("?"):
            assert answers[cell][0] == "SyntaxError", (cell, answers[cell])
        assert route_cell(cell).kind == "natural_language", cell


def test_requests_by_name_are_what_ipython_cannot_find(tmp_path: Path) -> None:
    cells = [cell for cell in UNSPACED + CAPITALISED if not cell.endswith("?")]
    for cell, (before, during) in run_in_ipython(cells, tmp_path).items():
        assert (before, during) in (("SyntaxError", None), (None, "NameError")), cell


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


class Placement(ast.NodeTransformer):
    """Make generated statements valid where they stand, as IPython compiles them:
    `break`/`continue` only in loops, `return` only in functions, `await` and
    `async for`/`async with` not in a plain function or a class body, `global` only
    as a statement of its own (IPython compiles each top-level statement apart; in a
    block it may follow a use of the name)."""

    def __init__(self) -> None:
        self.in_loop = False
        self.scope: Literal["module", "function", "async function", "class"] = "module"

    def _enter(self, node: ast.AST, scope: Any, in_loop: bool) -> ast.AST:
        saved = self.scope, self.in_loop
        self.scope, self.in_loop = scope, in_loop
        try:
            return self.generic_visit(node)
        finally:
            self.scope, self.in_loop = saved

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        return self._enter(node, "function", False)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> ast.AST:
        return self._enter(node, "async function", False)

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        return self._enter(node, "class", False)

    def _loop(self, node: ast.For | ast.AsyncFor | ast.While) -> ast.AST:
        # The `else:` of a loop is outside it; the generator leaves `orelse` empty.
        return self._enter(node, self.scope, True)

    def visit_For(self, node: ast.For) -> ast.AST:
        return self._loop(node)

    def visit_While(self, node: ast.While) -> ast.AST:
        return self._loop(node)

    def _no_async_here(self) -> bool:
        return self.scope in ("function", "class")

    def visit_AsyncFor(self, node: ast.AsyncFor) -> ast.AST:
        if self._no_async_here():
            return self._loop(ast.For(node.target, node.iter, node.body, node.orelse))
        return self._loop(node)

    def visit_AsyncWith(self, node: ast.AsyncWith) -> ast.AST:
        if self._no_async_here():
            return self.generic_visit(ast.With(node.items, node.body))
        return self.generic_visit(node)

    def visit_Await(self, node: ast.Await) -> ast.AST:
        if self._no_async_here():
            return self.visit(node.value)
        return self.generic_visit(node)

    def visit_Break(self, node: ast.Break) -> ast.AST:
        return node if self.in_loop else ast.Pass()

    def visit_Continue(self, node: ast.Continue) -> ast.AST:
        return node if self.in_loop else ast.Pass()

    def visit_Return(self, node: ast.Return) -> ast.AST:
        if self.scope in ("function", "async function"):
            return self.generic_visit(node)
        return ast.Pass()

    def visit_Module(self, node: ast.Module) -> ast.AST:
        node.body = [s if isinstance(s, ast.Global) else self.visit(s) for s in node.body]
        return node

    def visit_Global(self, node: ast.Global) -> ast.AST:
        return ast.Pass()  # only reached inside a block


def unparse(statements: list[ast.stmt]) -> str:
    module = ast.Module(body=statements, type_ignores=[])
    return ast.unparse(ast.fix_missing_locations(Placement().visit(module)))


PYTHON = STATEMENTS.map(unparse)


def one_line(statement: ast.stmt) -> str:
    return unparse([statement]).splitlines()[0]


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


class Everything:
    """The namespace of a session in which the generated code's names are defined."""

    def __contains__(self, name: object) -> bool:
        return True


EVERYTHING = Everything()


def only_bare_names(source: str) -> bool:
    """True if every statement is a bare name: the one kind of valid cell that is
    natural language when the name is not defined (`画一个正弦曲线`)."""
    tree = ast.parse(source)
    return all(isinstance(s, ast.Expr) and isinstance(s.value, ast.Name) for s in tree.body)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(PYTHON)
@example("for x in y:\n    continue")
@example("def f():\n    return 1")
def test_generated_python_is_code(source: str) -> None:
    assert compiles(source), "the generator made something that does not compile"
    assert route_cell(source, namespace=EVERYTHING) == Route("code", source)
    assert route_cell(source, automagic=True, namespace=EVERYTHING).kind == "code"
    if not only_bare_names(source):
        assert route_cell(source) == Route("code", source)


# The code samples of this file that compile (IPython's own syntax aside).
COMPILING_SAMPLES = sorted(
    {cell for cell in CODE + NATURAL_LANGUAGE + KEYWORD_FOLLOW_UPS if compiles(cell)}
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(PYTHON, st.sampled_from(COMPILING_SAMPLES)), min_size=1, max_size=4))
def test_compiling_samples_and_generated_python_together_are_code(chunks: list[str]) -> None:
    cell = "\n".join(chunks)
    assume(compiles(cell))
    assert route_cell(cell, namespace=EVERYTHING) == Route("code", cell)
    if not only_bare_names(cell):
        assert route_cell(cell).kind == "code"


@pytest.mark.parametrize("cell", COMPILING_SAMPLES)
def test_every_compiling_sample_is_code(cell: str) -> None:
    assert route_cell(cell, namespace=EVERYTHING) == Route("code", cell)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(PYTHON, IPYTHON_LINE, COMMENT, st.just("")), min_size=1, max_size=6))
@example(["%time load the data", "what = 1"])
@example(["x = 1", "df?"])
@example(["!echo load the data and plot it"])
def test_generated_ipython_is_code(chunks: list[str]) -> None:
    cell = "\n".join(chunks)
    assert ipython_compiles(cell), "the generator made something IPython rejects"
    assert route_cell(cell, namespace=EVERYTHING).kind == "code"
    assert route_cell(cell, automagic=True, namespace=EVERYTHING).kind == "code"


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
    assume(not ipython_compiles(cell) and not glues_scripts(cell))
    assert route_cell(cell).kind == "code"
    assert route_cell(cell, namespace=EVERYTHING).kind == "code"


@settings(deadline=None)
@given(CELL_MAGIC)
def test_cell_magics_are_code(cell: str) -> None:
    assume(not cell.startswith("%%codeact"))
    assert route_cell(cell) == Route("code", cell)


@given(NAMES)
def test_single_names_are_code(name: str) -> None:
    # Defined, any name is code; undefined, only names in a script written without
    # spaces are not (they are whole sentences: see the properties below). Python
    # stores a name in its NFKC form: `ŉ = 1` defines `ʼn`.
    namespace = {unicodedata.normalize("NFKC", name)}
    assert route_cell(name, namespace=namespace).kind == "code"
    assert route_cell(name + "?", namespace=namespace).kind == "code"


@given(IDENTIFIER)
@example("iF")
@example("Iff")
def test_undefined_ascii_names_are_code(name: str) -> None:
    # A lone keyword written `Continue` or `CONTINUE` is a request (tested above).
    word = name.lower()
    assume(not keyword.iskeyword(word) or name not in (word.capitalize(), word.upper()))
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


# --- properties: a sentence that starts with a keyword is prose ------------------------

# Every keyword and soft keyword (`_` aside), as the first word of a follow-up.
ALL_KEYWORDS = sorted(set(keyword.kwlist + keyword.softkwlist) - {"_"})


@st.composite
def keyword_sentence(draw: st.DrawFn) -> str:
    """A keyword, then ordinary words (some followed by a comma), then perhaps an end."""
    first = draw(st.sampled_from(ALL_KEYWORDS))
    words = draw(st.lists(st.sampled_from(ORDINARY), max_size=6))
    commas = draw(st.lists(st.booleans(), min_size=len(words), max_size=len(words)))
    words = [
        w + "," if comma and i < len(words) - 1 else w
        for i, (w, comma) in enumerate(zip(words, commas, strict=True))
    ]
    end = draw(st.sampled_from(["", "", ".", "!", "?", "...", " please", " again"]))
    if not words and end == "?" and (first[0].isupper() or keyword.issoftkeyword(first)):
        end = ""  # `None?` and `match?` are help on a name, like `df?`
    return " ".join([first, *words]) + end


@settings(max_examples=600, deadline=None)
@given(keyword_sentence(), st.booleans())
@example("try again", False)
@example("continue", False)
@example("for example", False)
@example("return it", False)
@example("lambda calculus", False)
@example("if so, plot", False)
def test_sentences_that_start_with_a_keyword_are_prose(cell: str, automagic: bool) -> None:
    assume(not compiles(cell) and not names_code(cell))
    assert route_cell(cell, automagic=automagic) == Route("natural_language", cell)


@settings(max_examples=300, deadline=None)
@given(st.lists(keyword_sentence(), min_size=2, max_size=4).map("\n".join))
def test_follow_ups_of_several_lines_are_prose(cell: str) -> None:
    assume(not compiles(cell) and not any(names_code(line) for line in cell.splitlines()))
    assert route_cell(cell).kind == "natural_language"


# Keywords that take an operand; a sentence that is such a keyword and names only code
# has (a letter, a number, `snake_case`, `True`) is code, whatever follows it.
OPERAND_KEYWORDS = ["if", "elif", "while", "for", "return", "yield", "assert", "del", "raise",
                    "await", "async", "with", "lambda", "def", "class", "import", "from",
                    "global", "nonlocal", "except"]  # fmt: skip


def names_code(line: str) -> bool:
    """A keyword sentence made of a keyword that takes an operand and one word, or a
    list of words, that only code has (or capitalised, after `class`, `except`,
    `raise`; or modules, after `import`, `from`); or `def`, `elif`, `nonlocal` and any
    words."""
    first, *rest = line.split(" ")
    if first not in OPERAND_KEYWORDS or not rest or line.endswith((".", "!", "?")):
        return False
    if any(not word.endswith(",") for word in rest[:-1]):
        return False  # words side by side: a sentence
    words = [word.rstrip(",") for word in rest]
    code_only = ("x", "y", "True", "None", "False")
    if first in ("class", "except", "raise") and all(word[0].isupper() for word in words):
        return True  # class Zeige, except Umsatz: class names
    if first in ("import", "from") and all(
        word.isidentifier() and importlib.util.find_spec(word) for word in words
    ):
        return True  # from time, import pip: modules
    return first in ("def", "elif", "nonlocal") or all(
        word in code_only or word[0].isdigit() for word in words
    )


CODE_NAME = st.one_of(
    st.sampled_from(["x", "i", "n", "df2", "my_list", "__name__", "self"]),
    st.from_regex(r"[a-z]{1,6}_[a-z0-9_]{1,6}", fullmatch=True),
    st.from_regex(r"[a-z]{1,6}[A-Z][a-z]{0,6}", fullmatch=True),
)
CODE_VALUE = st.one_of(CODE_NAME, st.sampled_from(["True", "None", "0", "3.5"]))


# `async` takes `def`, `for`, `with` only (in the examples above).
EXPRESSION_KEYWORDS = ["if", "elif", "while", "return", "yield", "assert", "await", "with"]
NAME_KEYWORDS = [w for w in OPERAND_KEYWORDS if w not in [*EXPRESSION_KEYWORDS, "async"]]


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.tuples(
            st.sampled_from(EXPRESSION_KEYWORDS), st.lists(CODE_VALUE, min_size=1, max_size=3)
        ),
        st.tuples(st.sampled_from(NAME_KEYWORDS), st.lists(CODE_NAME, min_size=1, max_size=3)),
    ),
    st.sampled_from(["", ":", "  "]),
)
@example(("if", ["x"]), "")
@example(("while", ["True"]), "")
@example(("return", ["my_list"]), "")
def test_a_keyword_on_names_only_code_has_is_code(
    statement: tuple[str, list[str]], end: str
) -> None:
    # The other direction: `if x`, `return my_list`, `for i, j`, `while True:` are
    # code that does not compile (or does), never a request to the model. Keywords
    # that take an expression take values too; the others, names.
    word, operands = statement
    cell = f"{word} {', '.join(operands)}{end}"
    assert route_cell(cell) == Route("code", cell)


# Keywords that open a statement (`not`, `None`… open expressions, or English).
STATEMENT_KEYWORDS = [
    word
    for word in ALL_KEYWORDS
    if word not in ("and", "as", "in", "is", "not", "or") and not word[0].isupper()
]


STRING_LITERAL = re.compile(r"[rRbBuUfF]*(?:'(?:\\.|[^'\\])*'|\"(?:\\.|[^\"\\])*\")")
# (Not `/` or `-`, which prose has too: "and/or", "e-mail".)
CODE_LIKE = re.compile(r"=|[\w)\]]\(|[\[{+*%<>|^&~@]")


def glues_scripts(source: str) -> bool:
    """True if a letter of a script written without spaces (as routing lists them)
    touches an ASCII letter, or follows a digit or a closing bracket (spaces between
    or not): how a sentence quotes code
    (`画出y=sin(x)`), and so, by design, no sign of code (a limit: a broken line with
    a name like `df数据` reads as prose)."""

    def unspaced(char: str) -> bool:
        return UNSPACED_LETTER.fullmatch(char) is not None

    def ascii_letter(char: str) -> bool:
        return char.isascii() and char.isalpha()

    source = re.sub(r"([)\]}])\s+", r"\1", source)
    return any(
        (unspaced(a) and ascii_letter(b))
        or ((ascii_letter(a) or a.isdigit() or a in ")]}") and unspaced(b))
        for a, b in itertools.pairwise(source)
    )


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(STATEMENT_KEYWORDS), st.deferred(lambda: SIMPLE_STATEMENTS.map(one_line)))
@example("assert", "A: ['`', '`']")
def test_a_keyword_before_code_is_not_prose(word: str, line: str) -> None:
    # The other direction: what follows the keyword is code-like syntax (outside its
    # strings: an assignment, a call, a subscript, a display, an operator), so
    # IPython answers with its SyntaxError.
    assume(CODE_LIKE.search(STRING_LITERAL.sub("", line)) and not glues_scripts(line))
    cell = f"{word} {line}"
    assume(not ipython_compiles(cell))
    assert route_cell(cell, namespace=EVERYTHING).kind == "code"


# --- properties: languages written without spaces ---------------------------------------

# Letters of Han, kana (full and half width), Thai; digits; a few Latin words that
# such requests quote; the scripts' own punctuation.
UNSPACED_LETTERS = st.one_of(
    st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF),
    st.characters(min_codepoint=0x3041, max_codepoint=0x3096),
    st.characters(min_codepoint=0x30A1, max_codepoint=0x30FC),
    st.characters(min_codepoint=0xFF66, max_codepoint=0xFF9F),
    st.characters(min_codepoint=0x0E01, max_codepoint=0x0E4E, categories=["Lo", "Mn"]),
)
UNSPACED_CHUNK = st.one_of(
    st.text(UNSPACED_LETTERS, min_size=1, max_size=6),
    st.sampled_from(["matplotlib", "pandas", "csv", "df", "sin", "3", "10", "2024"]),
    st.sampled_from(["、", "。", "！", "？", "「", "」", "ー", "々"]),
)
UNSPACED_SENTENCE = (
    st.lists(UNSPACED_CHUNK, min_size=1, max_size=6)
    .map("".join)
    .filter(
        lambda text: any(
            unicodedata.name(c, "").startswith(
                ("CJK", "HIRAGANA", "KATAKANA", "HALFWIDTH KATAKANA", "THAI")
            )
            and c.isalpha()
            for c in text
        )
    )
)


@settings(max_examples=500, deadline=None)
@given(UNSPACED_SENTENCE, st.sampled_from(["", "?", "??", "。", "？"]), st.booleans())
@example("画一个正弦曲线", "", False)
@example("用matplotlib画图", "?", False)
def test_unspaced_requests_are_prose_when_not_defined(text: str, end: str, automagic: bool) -> None:
    cell = text + end
    namespace = {"数据": 1, "df": 2}  # other names do not matter
    assert route_cell(cell, automagic=automagic, namespace=namespace) == Route(
        "natural_language", cell
    )


@settings(max_examples=300, deadline=None)
@given(UNSPACED_SENTENCE, st.sampled_from(["", "?", "??"]))
def test_unspaced_names_are_code_when_defined(text: str, end: str) -> None:
    assume(text.isidentifier())
    cell = text + end
    namespace = {unicodedata.normalize("NFKC", text): 1}
    assert route_cell(cell, namespace=namespace) == Route("code", cell)


CODE_QUOTED = st.sampled_from(
    ["y=sin(x)", "sin(x)", "df['a']", "df.head()", "x[0]", "plt.plot", "data.csv", "x = 1",
     "np.mean(df, axis=0)", "len(x) > 3", "f(x, y)", "a + b", "2024", "{'a': 1}"]
)  # fmt: skip
UNSPACED_WORDS = st.text(UNSPACED_LETTERS, min_size=2, max_size=6)


@settings(max_examples=300, deadline=None)
@given(
    UNSPACED_WORDS,
    CODE_QUOTED,
    UNSPACED_WORDS,
    st.sampled_from(["", " "]),
    st.sampled_from(["", "？", "。", "?"]),
)
@example("画出", "y=sin(x)", "的图像", "", "")
@example("把", "df['a']", "画出来", " ", "？")
def test_unspaced_requests_that_quote_code_are_prose(
    before: str, code: str, after: str, space: str, end: str
) -> None:
    # A sentence in a script written without spaces, with code in it: the code is
    # never taken for the cell. (Code first or last: examples in UNSPACED; a word, a
    # space and an equation is the limit `solve x^2 - 4 = 0`.) Unless the whole
    # compiles (`กกy=sin(x)` assigns to `กกy`): valid code is never sent to the model.
    cell = f"{before}{space}{code}{space}{after}{end}"
    assume(not compiles(cell))
    assert route_cell(cell) == Route("natural_language", cell)


@settings(max_examples=200, deadline=None)
@given(st.lists(UNSPACED_SENTENCE, min_size=2, max_size=4).map("\n".join))
def test_unspaced_requests_of_several_lines_are_prose(cell: str) -> None:
    assert route_cell(cell).kind == "natural_language"


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


# --- cells with nothing to say, and cells nested too deeply for Python -----------------

INVISIBLE = ["\u200b", "\ufeff", "\u200c", "\u200d", "\u2060", "\u00ad", "\u200e", "\x07"]
NOTHING_TO_SAY = [
    *INVISIBLE,
    "\ufeff\u200b",
    "\u200b\n\ufeff\n",
    "\u00a0",
    ";",
    ";;",
    "-",
    "?!",
    ":)",
    "？",
    "。",
    "\u200b;",
    "...\n---",
]


@pytest.mark.parametrize("cell", NOTHING_TO_SAY)
def test_a_cell_with_nothing_to_say_is_code(cell: str) -> None:
    assert route_cell(cell) == Route("code", cell)
    assert route_cell(cell, automagic=True) == Route("code", cell)


@settings(max_examples=300, deadline=None)
@given(
    st.text(
        st.one_of(
            st.sampled_from(INVISIBLE),
            st.characters(categories=["Zs", "Cf", "Cc", "P", "Sm", "Sk", "Sc"]),
        )
    )
)
def test_invisible_characters_and_punctuation_alone_are_code(cell: str) -> None:
    assert route_cell(cell) == Route("code", cell)


@settings(max_examples=200, deadline=None)
@given(PROSE, st.sampled_from(INVISIBLE[:3]), st.integers(0, 2))
@example("2) load load for,", "\u200b", 0)  # found by hypothesis: a list item
def test_prose_with_an_invisible_character_is_still_prose(
    cell: str, invisible: str, where: int
) -> None:
    # Pasted text often carries a BOM or a zero-width space; the words still decide.
    cell = [invisible + cell, cell + invisible, cell.replace(" ", invisible + " ", 1)][where]
    assume(not compiles(cell))
    assert route_cell(cell) == Route("natural_language", cell)


TOO_DEEP = [
    "(" * 300 + ")" * 300,
    "[" * 5000 + "]" * 5000,
    "x = " + "(" * 250 + "1" + ")" * 250,
    "a" + ".b" * 100_000,
    "1" + "+1" * 200_000,
    "x = " + "-" * 100_000 + "1",
    "f(" * 300 + ")" * 300,
    "please " + "(" * 1000 + "help",
    "".join("    " * i + "if x:\n" for i in range(101)) + "    " * 101 + "pass",
]


@pytest.mark.parametrize("cell", TOO_DEEP, ids=lambda cell: f"{cell[:12]}…{len(cell)}")
def test_a_cell_too_deep_for_python_is_code(cell: str) -> None:
    assert route_cell(cell) == Route("code", cell)


@settings(max_examples=30, deadline=None)
@given(
    st.integers(201, 600),
    st.sampled_from([("(", ")"), ("[", "]"), ("{", "}"), ("f(", ")")]),
    st.sampled_from(["", "x = ", "print", "plot the "]),
)
def test_nesting_past_pythons_limit_is_code(depth: int, pair: tuple[str, str], head: str) -> None:
    cell = head + pair[0] * depth + "1" + pair[1] * depth
    assert route_cell(cell) == Route("code", cell)


def test_a_very_long_request_is_still_prose() -> None:
    """Python gives a megabyte of prose a MemoryError, not a nesting error: the words
    decide, as for any request."""
    cell = "word " * 400_000
    assert route_cell(cell) == Route("natural_language", cell)
