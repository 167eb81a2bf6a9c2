"""Routing in a real `codeact` kernel, driven through jupyter_client as JupyterLab drives it.

The rules are tested on their own in test_routing.py; here the kernel applies them to
what a user types: follow-ups that start with a Python keyword reach the model (the
step-budget error itself tells the user to "ask a follow-up to continue"), code that
merely fails to compile gets IPython's SyntaxError, and a request in a language written
without spaces (or a capitalised `Continue`) reaches the model unless it names a
variable the user defined.
"""

from __future__ import annotations

import pytest
from kernel_harness import Host, user_messages
from model_server import ScriptedModelServer, text

pytest_plugins = ("kernel_harness",)

FOLLOW_UPS = [
    "try again",
    "continue please",
    "continue",
    "Continue",
    "try harder",
    "continue with the plot",
    "is it sorted?",
    "return the top 5 rows",
    "pass the result to the plot",
    "break it down by month",
    "finally plot it",
    "else show nothing",
    "if possible sort it",
    "if possible, sort it",
    "while you're at it add a title",
    "not quite, use a log scale",
    "in the chart use red",
    "from now on use seaborn",
    "with pandas load x",
    "import the sales data and plot it",
    "for each month, plot revenue",
    "del the outliers",
    "raise the threshold to 10",
    "assert that the totals match",
    "lambda calculus explained",
    "yield",
    "as before",
    "and also plot it",
    "try again with bins=20",
    "try again :)",
]


def asks_the_model(host: Host, server: ScriptedModelServer, cell: str) -> None:
    server.script(text(f"Noted: {cell}"))
    before = len(server.requests)
    result = host.execute(cell)
    assert result.status == "ok", (cell, result.content)
    assert len(server.requests) == before + 1, f"{cell!r} did not reach the model"
    assert user_messages(server.requests[-1])[-1].endswith(cell)
    assert f"Noted: {cell}" in result.markdown


def runs_as_code(host: Host, server: ScriptedModelServer, cell: str) -> dict[str, object]:
    before = len(server.requests)
    result = host.execute(cell)
    assert len(server.requests) == before, f"{cell!r} reached the model"
    return result.content


@pytest.mark.parametrize("cell", FOLLOW_UPS)
def test_follow_ups_that_start_with_a_keyword_reach_the_model(
    kernel_host: Host, model_server: ScriptedModelServer, cell: str
) -> None:
    asks_the_model(kernel_host, model_server, cell)


def test_continue_after_the_step_budget_ran_out(
    kernel_host: Host, model_server: ScriptedModelServer
) -> None:
    model_server.script(text("```python\nsteps = 1\n```"))
    result = kernel_host.request("count the steps", "--max-steps 1")
    assert result.content["ename"] == "StepBudgetExhausted"
    assert "ask a follow-up to continue" in result.content["evalue"]
    asks_the_model(kernel_host, model_server, "continue")


@pytest.mark.parametrize(
    "cell",
    [
        "for x in range(3) print(x)",
        "def f(:",
        "x = (1,",
        "if x > 1 print(x)",
        # Incomplete code that starts with a keyword: Python's SyntaxError, not a request.
        "for i in range(3):",
        "if x",
        "while True",
        "return x",
        "def main",
        "class Foo",
        "except ValueError",
    ],
)
def test_code_that_does_not_compile_raises_its_syntax_error(
    kernel_host: Host, model_server: ScriptedModelServer, cell: str
) -> None:
    content = runs_as_code(kernel_host, model_server, cell)
    assert content["status"] == "error" and content["ename"] == "SyntaxError", content


def test_a_bare_keyword_that_compiles_is_code(
    kernel_host: Host, model_server: ScriptedModelServer
) -> None:
    assert runs_as_code(kernel_host, model_server, "pass")["status"] == "ok"


def test_an_unspaced_request_reaches_the_model(
    kernel_host: Host, model_server: ScriptedModelServer
) -> None:
    asks_the_model(kernel_host, model_server, "画一个正弦曲线")
    asks_the_model(kernel_host, model_server, "データを読み込んでグラフを描いて")
    # Quoting code: Python would read a SyntaxError, an assignment or an attribute.
    asks_the_model(kernel_host, model_server, "画出y=sin(x)的图像")
    asks_the_model(kernel_host, model_server, "用plt.plot画图")


def test_a_defined_name_is_code(kernel_host: Host, model_server: ScriptedModelServer) -> None:
    model_server.script(text("Only asked if the name was sent to the model."))
    assert runs_as_code(kernel_host, model_server, "数据 = 41\nContinue = 'go'")["status"] == "ok"
    for cell in ("数据", "数据?", "Continue"):
        assert runs_as_code(kernel_host, model_server, cell)["status"] == "ok", cell
    result = kernel_host.execute("数据")
    assert result.of_type("execute_result")[0]["content"]["data"]["text/plain"] == "41"


def test_a_keyword_on_a_defined_name_is_code(
    kernel_host: Host, model_server: ScriptedModelServer
) -> None:
    assert runs_as_code(kernel_host, model_server, "results = [1]")["status"] == "ok"
    content = runs_as_code(kernel_host, model_server, "return results")
    assert content["ename"] == "SyntaxError", content
    asks_the_model(kernel_host, model_server, "return totals")


def test_consoles_see_follow_ups_as_complete(kernel_host: Host) -> None:
    client = kernel_host.client
    for cell in ("try again", "continue", "画一个正弦曲线"):
        client.is_complete(cell)
        assert client.get_shell_msg(timeout=10)["content"]["status"] == "complete", cell


@pytest.mark.parametrize(
    "cell", ["\u200b", "\ufeff", "\ufeff\u200b", ";", "\u00a0", "(" * 300 + ")" * 300]
)
def test_cells_with_nothing_to_ask_or_too_deep_never_reach_the_model(
    kernel_host: Host, model_server: ScriptedModelServer, cell: str
) -> None:
    content = runs_as_code(kernel_host, model_server, cell)
    assert content["status"] in ("ok", "error"), content
    if content["status"] == "error":
        assert content["ename"] == "SyntaxError", content
    assert kernel_host.execute("1 + 1").status == "ok"
